package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/resourcequota"
)

// startResourceQuota recomputes ResourceQuota usage.
func startResourceQuota(ctx context.Context, cc *ControllerContext) error {
	c := resourcequota.New(cc.Informers, cc.Client, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
