package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
)

// startCronJob runs the cronjob controller.
func startCronJob(ctx context.Context, cc *ControllerContext) error {
	f := cc.Informers
	c := cronjob.New(f.Batch().V1().CronJobs(), f.Batch().V1().Jobs(), cc.Client, cc.Recorder("cronjob-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
