package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/ttlafterfinished"
)

// startTTLAfterFinished runs the ttl-after-finished controller.
func startTTLAfterFinished(ctx context.Context, cc *ControllerContext) error {
	c := ttlafterfinished.New(cc.Informers.Batch().V1().Jobs(), cc.Client, cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
