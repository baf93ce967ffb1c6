package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
)

// rolloutRecreate scales every old ReplicaSet to zero, waits until none of
// their pods runs, then creates or grows the new one to spec.replicas.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.allReplicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := withNew(old, newRS)
	scaledDown := false
	for _, rs := range activeRSs(old) {
		scaled, _, err := c.scaleAndRecord(ctx, rs, 0, d)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if c.oldPodsRunning(d, newRS, old) {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if newRS == nil {
		newRS, old, err = c.allReplicaSets(ctx, d, rsList, true)
		if err != nil {
			return err
		}
		all = withNew(old, newRS)
	}
	if _, _, err := c.scaleAndRecord(ctx, newRS, replicas(d), d); err != nil {
		return err
	}
	if DeploymentComplete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}
