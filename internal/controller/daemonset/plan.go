package daemonset

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/controller"
)

// NodeState is one node as the planner sees it.
type NodeState struct {
	Node                      string
	ShouldRun, ShouldContinue bool
	// Pods are the set's pods for this node (gone nodes: ShouldRun and
	// ShouldContinue false).
	Pods []*corev1.Pod
}

// PlanInput is what the planner looks at.
type PlanInput struct {
	Nodes []NodeState
	// Hash is the controller-revision-hash of the set's current template.
	Hash string
	// RollingUpdate is false for OnDelete.
	RollingUpdate            bool
	MaxUnavailable, MaxSurge int
	MinReadySeconds          int32
	Now                      time.Time
}

// Plan lists the nodes to create a daemon pod for and the pods to delete.
type Plan struct {
	Create []string
	Delete []*corev1.Pod
}

func hashOf(p *corev1.Pod) string { return p.Labels[hashLabel] }

// Decide is the daemonset controller's pure core. Each eligible node gets
// one pod; extra, failed and misplaced pods go. A RollingUpdate then
// replaces pods of an old hash: without surge it deletes old pods while at
// most MaxUnavailable nodes lack an available pod; with surge it first
// starts a new pod beside an available old one (at most MaxSurge at once)
// and deletes the old one when the new one is available.
func Decide(in PlanInput) Plan {
	var plan Plan
	type pair struct {
		node     string
		old, new *corev1.Pod
	}
	var rolling []pair
	for _, n := range in.Nodes {
		var active []*corev1.Pod
		for _, p := range n.Pods {
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
				plan.Delete = append(plan.Delete, p)
				continue
			}
			active = append(active, p)
		}
		if !n.ShouldContinue || (!n.ShouldRun && len(active) == 0) {
			plan.Delete = append(plan.Delete, active...)
			continue
		}
		if !n.ShouldRun {
			continue // tolerated to stay, not ours to replace
		}
		if len(active) == 0 {
			if len(n.Pods) == 0 || noneTerminating(n.Pods) {
				plan.Create = append(plan.Create, n.Node)
			}
			continue
		}
		slices.SortFunc(active, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
		var olds, news []*corev1.Pod
		for _, p := range active {
			if hashOf(p) == in.Hash {
				news = append(news, p)
			} else {
				olds = append(olds, p)
			}
		}
		// Keep at most one pod of each kind (the oldest); more than one
		// kind only while a surge is in flight.
		if len(news) > 1 {
			plan.Delete = append(plan.Delete, news[1:]...)
			news = news[:1]
		}
		if len(olds) > 1 {
			plan.Delete = append(plan.Delete, olds[1:]...)
			olds = olds[:1]
		}
		pr := pair{node: n.Node}
		if len(olds) > 0 {
			pr.old = olds[0]
		}
		if len(news) > 0 {
			pr.new = news[0]
		}
		if pr.old != nil && pr.new != nil && (!in.RollingUpdate || in.MaxSurge == 0) {
			plan.Delete = append(plan.Delete, pr.old)
			pr.old = nil
		}
		rolling = append(rolling, pr)
	}
	if !in.RollingUpdate {
		return plan
	}
	avail := func(p *corev1.Pod) bool { return controller.IsPodAvailable(p, in.MinReadySeconds, in.Now) }
	if in.MaxSurge == 0 {
		unavailable := 0
		var candidates []*corev1.Pod
		for _, pr := range rolling {
			switch {
			case pr.new != nil:
				if !avail(pr.new) {
					unavailable++
				}
			case pr.old != nil && !avail(pr.old):
				plan.Delete = append(plan.Delete, pr.old)
				unavailable++
			case pr.old != nil:
				candidates = append(candidates, pr.old)
			}
		}
		for _, p := range candidates {
			if unavailable >= in.MaxUnavailable {
				break
			}
			plan.Delete = append(plan.Delete, p)
			unavailable++
		}
		return plan
	}
	surging := 0
	var candidates []string
	for _, pr := range rolling {
		switch {
		case pr.old != nil && pr.new != nil:
			if avail(pr.new) {
				plan.Delete = append(plan.Delete, pr.old)
			} else {
				surging++
			}
		case pr.old != nil && !avail(pr.old):
			plan.Create = append(plan.Create, pr.node)
		case pr.old != nil:
			candidates = append(candidates, pr.node)
		}
	}
	for _, n := range candidates {
		if surging >= in.MaxSurge {
			break
		}
		plan.Create = append(plan.Create, n)
		surging++
	}
	return plan
}

func noneTerminating(pods []*corev1.Pod) bool {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			return false // wait for the old one to go before replacing it
		}
	}
	return true
}
