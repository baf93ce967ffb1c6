package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/endpointslicemirroring"
)

// startEndpointSliceMirroring mirrors the Endpoints of Services without a
// selector into EndpointSlices, which the service proxy and DNS read.
func startEndpointSliceMirroring(ctx context.Context, cc *ControllerContext) error {
	c := endpointslicemirroring.New(cc.Informers.Core().V1().Services(), cc.Informers.Core().V1().Endpoints(),
		cc.Informers.Discovery().V1().EndpointSlices(), cc.Client, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
