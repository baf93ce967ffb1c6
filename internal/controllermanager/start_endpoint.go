package controllermanager

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/controller/endpoint"
	"github.com/skiff-sh/skiff/internal/controller/endpointslice"
)

// startEndpoint writes core/v1 Endpoints for Services with a selector.
func startEndpoint(ctx context.Context, cc *ControllerContext) error {
	c := endpoint.New(cc.Informers.Core().V1().Services(), cc.Informers.Core().V1().Pods(), cc.Informers.Core().V1().Endpoints(),
		cc.Client, cc.Logger, time.Now)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}

// startEndpointSlice writes EndpointSlices for Services with a selector.
func startEndpointSlice(ctx context.Context, cc *ControllerContext) error {
	c := endpointslice.New(cc.Informers.Core().V1().Services(), cc.Informers.Core().V1().Pods(), cc.Informers.Core().V1().Nodes(),
		cc.Informers.Discovery().V1().EndpointSlices(), cc.Client, cc.Logger, time.Now)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
