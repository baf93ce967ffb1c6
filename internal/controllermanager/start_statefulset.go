package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/statefulset"
)

// startStatefulSet runs the statefulset controller.
func startStatefulSet(ctx context.Context, cc *ControllerContext) error {
	f := cc.Informers
	c := statefulset.New(f.Apps().V1().StatefulSets(), f.Core().V1().Pods(), f.Core().V1().PersistentVolumeClaims(),
		f.Apps().V1().ControllerRevisions(), cc.Client, cc.Recorder("statefulset-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
