package statefulset

import (
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Plan is what one sync does to a set's pods.
type Plan struct {
	// Create lists the ordinals to create, in order.
	Create []int
	// Delete lists the pods to delete (failed, condemned or outdated).
	Delete []*corev1.Pod
	// Wait is why the plan stopped early ("" when it did not).
	Wait string
	// RequeueAfter, when positive, is how long until the first pod that is
	// Ready but not yet available (spec.minReadySeconds) becomes available;
	// the set should be synced again then even if nothing else happens.
	RequeueAfter time.Duration
}

// PlanInput is what the planner looks at.
type PlanInput struct {
	Set *appsv1.StatefulSet
	// Pods are the set's pods with valid ordinal names.
	Pods []*corev1.Pod
	// UpdateRevision is the name of the revision of the set's template.
	UpdateRevision string
	// Now is the time against which spec.minReadySeconds is measured.
	Now time.Time
}

// ParseOrdinal returns the ordinal of a pod named <set>-<ordinal>, or -1.
func ParseOrdinal(set, pod string) int {
	rest, ok := strings.CutPrefix(pod, set+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// PodName is the name of the set's pod with ordinal ord.
func PodName(set string, ord int) string { return set + "-" + strconv.Itoa(ord) }

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicas(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// partition is the ordinal below which RollingUpdate leaves pods alone.
func partition(set *appsv1.StatefulSet) int {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.Partition == nil {
		return 0
	}
	return int(*ru.Partition)
}

func runningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && controller.IsPodReady(p)
}

func terminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

// available reports whether p is Running, Ready for at least
// minReadySeconds, and not terminating (upstream's opposite of
// "unavailable").
func available(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return p != nil && !terminating(p) && runningAndReady(p) && controller.IsPodAvailable(p, minReadySeconds, now)
}

// MaxUnavailable is how many of the set's pods a RollingUpdate may have
// unavailable at once: spec.updateStrategy.rollingUpdate.maxUnavailable as
// a number or a percentage of spec.replicas rounded down, at least 1
// (default 1).
func MaxUnavailable(set *appsv1.StatefulSet) int {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas(set), false)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// untilAvailable is how long until the first pod that is Running and Ready
// but not yet available becomes available, or 0 when none is waiting.
func untilAvailable(pods []*corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	if minReadySeconds <= 0 {
		return 0
	}
	var next time.Duration
	for _, p := range pods {
		if terminating(p) || !runningAndReady(p) || controller.IsPodAvailable(p, minReadySeconds, now) {
			continue
		}
		c := controller.PodReadyCondition(p)
		if c == nil || c.LastTransitionTime.IsZero() {
			continue
		}
		// IsPodAvailable wants the deadline strictly in the past.
		d := c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Sub(now) + time.Millisecond
		if d <= 0 {
			d = time.Millisecond
		}
		if next == 0 || d < next {
			next = d
		}
	}
	return next
}

func revisionOf(p *corev1.Pod) string { return p.Labels[appsv1.StatefulSetRevisionLabel] }

// Decide is the statefulset controller's pure core: given the pods that
// exist, which to create and which to delete now. A pod is available once
// it has been Running and Ready for spec.minReadySeconds.
//
// With OrderedReady it moves one pod at a time and stops at the first pod
// that is not available: creation ascends from the start ordinal,
// scale-down descends from the highest, and a rolling update starts only
// when every pod is available. Parallel creates and deletes without
// waiting.
//
// RollingUpdate replaces pods whose revision is not the update revision,
// from the highest ordinal down to the partition, keeping at most
// maxUnavailable of the set's pods (ordinals start..start+replicas-1)
// unavailable: it deletes up to maxUnavailable minus the pods already
// unavailable (missing, terminating, not Ready or not yet available).
// Since OrderedReady stops at any unavailable pod, it replaces pods in
// batches of maxUnavailable, recreating them in ascending order and
// starting the next batch only when all are available; Parallel keeps a
// window of maxUnavailable pods being replaced.
func Decide(in PlanInput) Plan {
	set := in.Set
	minReady := set.Spec.MinReadySeconds
	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	start, n := startOrdinal(set), replicas(set)
	byOrd := map[int]*corev1.Pod{}
	var condemned []*corev1.Pod
	for _, p := range in.Pods {
		ord := ParseOrdinal(set.Name, p.Name)
		if ord < 0 {
			continue
		}
		if ord >= start && ord < start+n {
			byOrd[ord] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	slices.SortFunc(condemned, func(a, b *corev1.Pod) int {
		return ParseOrdinal(set.Name, b.Name) - ParseOrdinal(set.Name, a.Name)
	})
	plan := Plan{RequeueAfter: untilAvailable(in.Pods, minReady, in.Now)}
	for ord := start; ord < start+n; ord++ {
		p := byOrd[ord]
		if p != nil && controller.IsPodTerminal(p) && !terminating(p) {
			// A finished pod is replaced under the same name once gone.
			plan.Delete = append(plan.Delete, p)
			if ordered {
				plan.Wait = "pod " + p.Name + " finished and is being replaced"
				return plan
			}
			continue
		}
		if p == nil {
			plan.Create = append(plan.Create, ord)
			if ordered {
				plan.Wait = "pod " + PodName(set.Name, ord) + " is being created"
				return plan
			}
			continue
		}
		if !ordered {
			continue
		}
		switch {
		case terminating(p):
			plan.Wait = "pod " + p.Name + " is terminating"
			return plan
		case !runningAndReady(p):
			plan.Wait = "pod " + p.Name + " is not running and ready"
			return plan
		case !available(p, minReady, in.Now):
			plan.Wait = "pod " + p.Name + " is not available yet (minReadySeconds)"
			return plan
		}
	}
	// In OrderedReady every replica is available here. A condemned pod that
	// is not available may go only if no lower condemned pod is unavailable
	// too (upstream deletes only the first unavailable pod out of order).
	var firstUnavailable *corev1.Pod
	for i := len(condemned) - 1; i >= 0; i-- {
		if !available(condemned[i], minReady, in.Now) {
			firstUnavailable = condemned[i]
			break
		}
	}
	for _, p := range condemned {
		if terminating(p) {
			if ordered {
				plan.Wait = "pod " + p.Name + " is terminating"
				return plan
			}
			continue
		}
		if ordered && !available(p, minReady, in.Now) && p != firstUnavailable {
			plan.Wait = "waiting for pod " + firstUnavailable.Name + " to be available before scaling down " + p.Name
			return plan
		}
		plan.Delete = append(plan.Delete, p)
		if ordered {
			return plan
		}
	}
	if !ordered && (len(plan.Create) > 0 || len(plan.Delete) > 0) {
		return plan
	}
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return plan
	}
	unavailable := 0
	for ord := start; ord < start+n; ord++ {
		if !available(byOrd[ord], minReady, in.Now) {
			unavailable++
		}
	}
	budget := MaxUnavailable(set) - unavailable
	if budget <= 0 {
		plan.Wait = "rolling update: " + strconv.Itoa(unavailable) + " pods unavailable, maxUnavailable " + strconv.Itoa(MaxUnavailable(set))
		return plan
	}
	for ord := start + n - 1; ord >= max(start, partition(set)) && budget > 0; ord-- {
		p := byOrd[ord]
		if p == nil || terminating(p) || revisionOf(p) == in.UpdateRevision {
			continue
		}
		plan.Delete = append(plan.Delete, p)
		budget--
	}
	return plan
}

// UseCurrentRevision reports whether a pod created at ord gets the set's
// current revision rather than its update revision: RollingUpdate keeps
// ordinals below the partition at the current revision.
func UseCurrentRevision(set *appsv1.StatefulSet, ord int) bool {
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType && set.Spec.UpdateStrategy.Type != "" {
		return false
	}
	if set.Spec.UpdateStrategy.RollingUpdate == nil {
		return false
	}
	return ord < partition(set)
}
