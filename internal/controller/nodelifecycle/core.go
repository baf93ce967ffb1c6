package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// watchedConditions are set to Unknown when a node stops reporting, as
// upstream does.
var watchedConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// MarkUnknown sets the watched conditions of status to Unknown and reports
// whether anything changed. Heartbeat times are kept: they say when the
// kubelet last spoke.
func MarkUnknown(status *corev1.NodeStatus, now metav1.Time) bool {
	changed := false
	for _, t := range watchedConditions {
		i := -1
		for j := range status.Conditions {
			if status.Conditions[j].Type == t {
				i = j
			}
		}
		if i < 0 {
			status.Conditions = append(status.Conditions, corev1.NodeCondition{Type: t, Status: corev1.ConditionUnknown,
				Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.",
				LastHeartbeatTime: now, LastTransitionTime: now})
			changed = true
			continue
		}
		c := &status.Conditions[i]
		if c.Status == corev1.ConditionUnknown {
			continue
		}
		c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", now
		changed = true
	}
	return changed
}

func condition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// managed are the taints this controller owns.
var managed = map[string][]corev1.TaintEffect{
	corev1.TaintNodeNotReady:           {corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute},
	corev1.TaintNodeUnreachable:        {corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute},
	corev1.TaintNodeMemoryPressure:     {corev1.TaintEffectNoSchedule},
	corev1.TaintNodeDiskPressure:       {corev1.TaintEffectNoSchedule},
	corev1.TaintNodePIDPressure:        {corev1.TaintEffectNoSchedule},
	corev1.TaintNodeNetworkUnavailable: {corev1.TaintEffectNoSchedule},
	corev1.TaintNodeUnschedulable:      {corev1.TaintEffectNoSchedule},
}

func isManaged(t corev1.Taint) bool {
	for _, e := range managed[t.Key] {
		if e == t.Effect {
			return true
		}
	}
	return false
}

// WantTaints returns the condition taints a node should carry: not-ready
// or unreachable (NoSchedule and NoExecute) from its Ready condition,
// NoSchedule for pressure, network and spec.unschedulable.
func WantTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	add := func(key string, effects ...corev1.TaintEffect) {
		for _, e := range effects {
			out = append(out, corev1.Taint{Key: key, Effect: e})
		}
	}
	if c := condition(node, corev1.NodeReady); c != nil {
		switch c.Status {
		case corev1.ConditionFalse:
			add(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute)
		case corev1.ConditionUnknown:
			add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute)
		}
	}
	for t, key := range map[corev1.NodeConditionType]string{
		corev1.NodeMemoryPressure:     corev1.TaintNodeMemoryPressure,
		corev1.NodeDiskPressure:       corev1.TaintNodeDiskPressure,
		corev1.NodePIDPressure:        corev1.TaintNodePIDPressure,
		corev1.NodeNetworkUnavailable: corev1.TaintNodeNetworkUnavailable,
	} {
		if c := condition(node, t); c != nil && c.Status == corev1.ConditionTrue {
			add(key, corev1.TaintEffectNoSchedule)
		}
	}
	if node.Spec.Unschedulable {
		add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	}
	return out
}

// ReconcileTaints returns the node's taints with the managed ones made to
// match want (existing ones keep their TimeAdded; new NoExecute ones get
// now), and whether they changed. Taints the controller does not manage
// are kept as they are.
func ReconcileTaints(cur, want []corev1.Taint, now metav1.Time) ([]corev1.Taint, bool) {
	same := func(a, b corev1.Taint) bool { return a.Key == b.Key && a.Effect == b.Effect }
	var out []corev1.Taint
	changed := false
	for _, t := range cur {
		if !isManaged(t) {
			out = append(out, t)
			continue
		}
		keep := false
		for _, w := range want {
			if same(t, w) {
				keep = true
			}
		}
		if keep {
			out = append(out, t)
		} else {
			changed = true
		}
	}
	for _, w := range want {
		found := false
		for _, t := range cur {
			if same(t, w) {
				found = true
			}
		}
		if !found {
			if w.Effect == corev1.TaintEffectNoExecute {
				w.TimeAdded = &now
			}
			out = append(out, w)
			changed = true
		}
	}
	return out, changed
}

// Eviction is the taint manager's decision for one pod.
type Eviction struct {
	// Now means delete the pod at once.
	Now bool
	// After is how long until it must be deleted, when Now is false and
	// Never is false.
	After time.Duration
	// Never means the pod tolerates the taints forever.
	Never bool
}

// DecideEviction decides what happens to a pod on a node with the given
// NoExecute taints: a taint the pod does not tolerate evicts it at once;
// otherwise it goes when the shortest tolerationSeconds among the
// tolerations used has passed since the taints were added (or the pod
// created, whichever is later).
func DecideEviction(pod *corev1.Pod, taints []corev1.Taint, now time.Time) Eviction {
	var noExec []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			noExec = append(noExec, t)
		}
	}
	if len(noExec) == 0 {
		return Eviction{Never: true}
	}
	var minSeconds *int64
	start := pod.CreationTimestamp.Time
	for i := range noExec {
		t := &noExec[i]
		tolerated := false
		for j := range pod.Spec.Tolerations {
			tol := &pod.Spec.Tolerations[j]
			if !tol.ToleratesTaint(klog.Background(), t, false) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds != nil && (minSeconds == nil || *tol.TolerationSeconds < *minSeconds) {
				minSeconds = tol.TolerationSeconds
			}
		}
		if !tolerated {
			return Eviction{Now: true}
		}
		if t.TimeAdded != nil && t.TimeAdded.After(start) {
			start = t.TimeAdded.Time
		}
	}
	if minSeconds == nil {
		return Eviction{Never: true}
	}
	if *minSeconds <= 0 {
		return Eviction{Now: true}
	}
	left := start.Add(time.Duration(*minSeconds) * time.Second).Sub(now)
	if left <= 0 {
		return Eviction{Now: true}
	}
	return Eviction{After: left}
}
