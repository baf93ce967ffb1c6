package scheduler

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// budget is a PodDisruptionBudget as preemption reads it: its namespace,
// its parsed selector, how many disruptions it allows now, and the pods
// the API server already counts as disrupted.
type budget struct {
	namespace string
	selector  labels.Selector
	allowed   int32
	disrupted map[string]metav1.Time
}

// newBudgets parses the budgets once per preemption attempt. A budget
// whose selector does not parse, or is nil or empty, matches no pod, as
// upstream treats it, so it is left out.
func newBudgets(pdbs []*policyv1.PodDisruptionBudget) []budget {
	out := make([]budget, 0, len(pdbs))
	for _, pdb := range pdbs {
		if pdb == nil || pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		out = append(out, budget{
			namespace: pdb.Namespace,
			selector:  sel,
			allowed:   pdb.Status.DisruptionsAllowed,
			disrupted: pdb.Status.DisruptedPods,
		})
	}
	return out
}

// splitByBudget divides a node's potential victims, in the order given,
// into those whose eviction would take a matching budget below zero
// disruptions allowed and those whose eviction would not. Victims are
// counted against each budget they match cumulatively, in order, so the
// second of two pods under a budget allowing one disruption violates it.
// A pod already listed in a budget's status.disruptedPods has been counted
// by the API server and neither spends nor violates that budget. The
// split is stable: each half keeps the input order.
func splitByBudget(pods []*PodInfo, budgets []budget) (violating, nonViolating []*PodInfo) {
	if len(budgets) == 0 {
		return nil, pods
	}
	left := make([]int32, len(budgets))
	for i := range budgets {
		left[i] = budgets[i].allowed
	}
	for _, p := range pods {
		violates := false
		if len(p.Pod.Labels) > 0 {
			set := labels.Set(p.Pod.Labels)
			for i := range budgets {
				b := &budgets[i]
				if b.namespace != p.Pod.Namespace || !b.selector.Matches(set) {
					continue
				}
				if _, ok := b.disrupted[p.Pod.Name]; ok {
					continue
				}
				left[i]--
				if left[i] < 0 {
					violates = true
				}
			}
		}
		if violates {
			violating = append(violating, p)
		} else {
			nonViolating = append(nonViolating, p)
		}
	}
	return violating, nonViolating
}
