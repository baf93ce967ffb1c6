package controllermanager

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/controller/disruption"
)

// startDisruption keeps PodDisruptionBudget status.
func startDisruption(ctx context.Context, cc *ControllerContext) error {
	c := disruption.New(cc.Informers, cc.Client, cc.Logger, time.Now)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
