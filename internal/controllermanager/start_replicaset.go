package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/replicaset"
)

// startReplicaSet runs the replicaset controller.
func startReplicaSet(ctx context.Context, cc *ControllerContext) error {
	c := replicaset.New(cc.Informers.Apps().V1().ReplicaSets(), cc.Informers.Core().V1().Pods(), cc.Client,
		cc.Recorder("replicaset-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}

// startReplicationController runs the replicationcontroller controller,
// the replicaset controller's logic over core/v1 ReplicationControllers.
func startReplicationController(ctx context.Context, cc *ControllerContext) error {
	c := replicaset.NewForReplicationControllers(cc.Informers.Core().V1().ReplicationControllers(), cc.Informers.Core().V1().Pods(), cc.Client,
		cc.Recorder("replication-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
