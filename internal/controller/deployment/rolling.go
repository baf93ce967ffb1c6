package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
)

// rolloutRolling takes one step of a rolling update: grow the new
// ReplicaSet within maxSurge, or else shrink old ones within
// maxUnavailable; once complete, trim history.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.allReplicaSets(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := withNew(old, newRS)
	scaledUp, err := c.reconcileNewReplicaSet(ctx, d, all, newRS)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, d, all, activeRSs(old), newRS)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if DeploymentComplete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

func (c *Controller) reconcileNewReplicaSet(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if rsReplicas(newRS) == replicas(d) {
		return false, nil
	}
	if rsReplicas(newRS) > replicas(d) {
		scaled, _, err := c.scaleAndRecord(ctx, newRS, replicas(d), d)
		return scaled, err
	}
	scaled, _, err := c.scaleAndRecord(ctx, newRS, NewRSNewReplicas(d, all, newRS), d)
	return scaled, err
}

// reconcileOldReplicaSets first removes old replicas that are not
// available (they cost nothing in availability), then, as far as
// maxUnavailable allows, available ones, oldest ReplicaSets first.
func (c *Controller) reconcileOldReplicaSets(ctx context.Context, d *appsv1.Deployment, all, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if sumSpec(old) == 0 {
		return false, nil
	}
	maxDown := MaxScaledDown(d, all, newRS)
	if maxDown <= 0 {
		return false, nil
	}
	old = append([]*appsv1.ReplicaSet(nil), old...)
	var total int32
	unhealthy := ScaleDownPlan(old, maxDown, func(rs *appsv1.ReplicaSet) int32 {
		return rsReplicas(rs) - rs.Status.AvailableReplicas
	})
	for i, rs := range old {
		n, ok := unhealthy[rs.Name]
		if !ok {
			continue
		}
		_, updated, err := c.scaleAndRecord(ctx, rs, rsReplicas(rs)-n, d)
		if err != nil {
			return false, err
		}
		old[i] = updated
		total += n
	}
	all = withNew(old, newRS)
	minAvailable := replicas(d) - MaxUnavailable(d)
	available := sumStatus(all, func(s *appsv1.ReplicaSetStatus) int32 { return s.AvailableReplicas })
	if available > minAvailable {
		plan := ScaleDownPlan(old, available-minAvailable, rsReplicas)
		for _, rs := range old {
			n, ok := plan[rs.Name]
			if !ok {
				continue
			}
			if _, _, err := c.scaleAndRecord(ctx, rs, rsReplicas(rs)-n, d); err != nil {
				return false, err
			}
			total += n
		}
	}
	return total > 0, nil
}
