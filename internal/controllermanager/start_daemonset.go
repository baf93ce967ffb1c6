package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/daemonset"
)

// startDaemonSet runs the daemonset controller.
func startDaemonSet(ctx context.Context, cc *ControllerContext) error {
	f := cc.Informers
	c := daemonset.New(f.Apps().V1().DaemonSets(), f.Core().V1().Nodes(), f.Core().V1().Pods(),
		f.Apps().V1().ControllerRevisions(), cc.Client, cc.Recorder("daemonset-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
