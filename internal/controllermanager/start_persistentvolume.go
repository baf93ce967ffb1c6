package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/persistentvolume"
)

// startPersistentVolumeBinder binds PersistentVolumeClaims to
// PersistentVolumes and releases volumes whose claims are gone.
func startPersistentVolumeBinder(ctx context.Context, cc *ControllerContext) error {
	f := cc.Informers
	c := persistentvolume.New(f.Core().V1().PersistentVolumes(), f.Core().V1().PersistentVolumeClaims(), f.Storage().V1().StorageClasses(),
		cc.Client, cc.Recorder("persistentvolume-controller"), cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
