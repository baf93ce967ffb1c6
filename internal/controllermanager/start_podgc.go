package controllermanager

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/controller/podgc"
)

// startPodGC runs the pod garbage collector.
func startPodGC(ctx context.Context, cc *ControllerContext) error {
	c := podgc.New(cc.Informers.Core().V1().Pods(), cc.Informers.Core().V1().Nodes(), cc.Client,
		cc.Options.TerminatedPodGCThreshold, cc.Logger, time.Now)
	go c.Run(ctx, 1)
	return nil
}
