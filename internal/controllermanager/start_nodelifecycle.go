package controllermanager

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/controller/nodelifecycle"
)

// startNodeLifecycle watches node heartbeats, taints silent nodes and
// evicts pods whose tolerations run out.
func startNodeLifecycle(ctx context.Context, cc *ControllerContext) error {
	c, err := nodelifecycle.New(cc.Informers.Core().V1().Nodes(), cc.Informers.Coordination().V1().Leases(), cc.Informers.Core().V1().Pods(),
		cc.Client, nodelifecycle.Config{
			MonitorPeriod:      cc.Options.NodeMonitorPeriod,
			GracePeriod:        cc.Options.NodeMonitorGracePeriod,
			StartupGracePeriod: cc.Options.NodeStartupGracePeriod,
		}, cc.Recorder("node-controller"), cc.Logger, time.Now)
	if err != nil {
		return err
	}
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
