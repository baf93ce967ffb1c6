package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/job"
)

// startJob runs the job controller.
func startJob(ctx context.Context, cc *ControllerContext) error {
	f := cc.Informers
	c := job.New(f.Batch().V1().Jobs(), f.Core().V1().Pods(), cc.Client, cc.Recorder("job-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
