package statefulset

import (
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

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
}

// PlanInput is what the planner looks at.
type PlanInput struct {
	Set *appsv1.StatefulSet
	// Pods are the set's pods with valid ordinal names.
	Pods []*corev1.Pod
	// UpdateRevision is the name of the revision of the set's template.
	UpdateRevision string
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

func revisionOf(p *corev1.Pod) string { return p.Labels[appsv1.StatefulSetRevisionLabel] }

// Decide is the statefulset controller's pure core: given the pods that
// exist, which to create and which to delete now. With OrderedReady it
// moves one pod at a time and stops at the first pod that is not Running
// and Ready: creation ascends from the start ordinal, scale-down descends
// from the highest, and a rolling update replaces pods from the highest
// ordinal down to the partition, each only after the one before is ready
// again. Parallel creates and deletes without waiting; rolling updates
// still go one pod at a time.
func Decide(in PlanInput) Plan {
	set := in.Set
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
	var plan Plan
	unhealthy := 0
	for ord := start; ord < start+n; ord++ {
		p := byOrd[ord]
		if p != nil && controller.IsPodTerminal(p) && !terminating(p) {
			// A finished pod is replaced under the same name once gone.
			plan.Delete = append(plan.Delete, p)
			unhealthy++
			if ordered {
				plan.Wait = "pod " + p.Name + " finished and is being replaced"
				return plan
			}
			continue
		}
		if p == nil {
			plan.Create = append(plan.Create, ord)
			unhealthy++
			if ordered {
				plan.Wait = "pod " + PodName(set.Name, ord) + " is being created"
				return plan
			}
			continue
		}
		if terminating(p) {
			unhealthy++
			if ordered {
				plan.Wait = "pod " + p.Name + " is terminating"
				return plan
			}
			continue
		}
		if !runningAndReady(p) {
			unhealthy++
			if ordered {
				plan.Wait = "pod " + p.Name + " is not running and ready"
				return plan
			}
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
		// OrderedReady deletes a condemned pod only when every other pod is
		// healthy (the condemned pod itself may be the unhealthy one).
		if ordered && unhealthy > 0 {
			plan.Wait = "waiting for pods to be ready before scaling down " + p.Name
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
	for ord := start + n - 1; ord >= max(start, partition(set)); ord-- {
		p := byOrd[ord]
		if p == nil || terminating(p) {
			plan.Wait = "rolling update: pod " + PodName(set.Name, ord) + " is being replaced"
			return plan
		}
		if revisionOf(p) != in.UpdateRevision {
			plan.Delete = append(plan.Delete, p)
			return plan
		}
		if !runningAndReady(p) {
			plan.Wait = "rolling update: pod " + p.Name + " is not running and ready"
			return plan
		}
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
