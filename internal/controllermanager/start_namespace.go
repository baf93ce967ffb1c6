package controllermanager

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/controller/namespace"
)

// startNamespace runs the namespace controller, which empties namespaces
// being deleted and then finalizes them.
func startNamespace(ctx context.Context, cc *ControllerContext) error {
	c := namespace.New(cc.Informers.Core().V1().Namespaces(), cc.Client, cc.Metadata, cc.Client.Discovery(), cc.Logger, time.Now)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
