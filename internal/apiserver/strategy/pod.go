package strategy

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// schedulingGatedMessage is the message upstream puts on the PodScheduled
// condition of a pod created with scheduling gates.
const schedulingGatedMessage = "Scheduling is blocked due to non-empty scheduling gates"

func preparePodCreate(pod *corev1.Pod) {
	pod.Generation = 1
	// The QoS class is computed before the status is replaced, so a class
	// the client already set survives, exactly as upstream's GetPodQOS
	// (which prefers status.qosClass) behaves.
	qos := podQOS(pod)
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: qos,
	}
	applySchedulingGatedCondition(pod)
	mergeAffinityLabelKeys(pod)
	mergeTopologySpreadLabelKeys(pod)
}

func preparePodStatusUpdate(pod, old *corev1.Pod) {
	pod.Spec = old.Spec
	// The kubelet must not touch deletion or ownership through /status:
	// old kubelets corrupted owner references and broke garbage collection.
	pod.DeletionTimestamp = old.DeletionTimestamp
	pod.OwnerReferences = old.OwnerReferences
	// The QoS class is immutable; old kubelets dropped it when rejecting a
	// pod, so it is backfilled.
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = old.Status.QOSClass
	}
	preserveObservedGeneration(pod, old)
}

// preserveObservedGeneration keeps observedGeneration values a status writer
// did not send, in the pod status and in each condition (matched by type, in
// order, since validation allows repeated types).
func preserveObservedGeneration(pod, old *corev1.Pod) {
	if pod.Status.ObservedGeneration == 0 {
		pod.Status.ObservedGeneration = old.Status.ObservedGeneration
	}
	byType := map[corev1.PodConditionType][]int64{}
	for _, c := range old.Status.Conditions {
		byType[c.Type] = append(byType[c.Type], c.ObservedGeneration)
	}
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		var prev int64
		if gens := byType[c.Type]; len(gens) > 0 {
			prev = gens[0]
			byType[c.Type] = gens[1:]
		}
		if c.ObservedGeneration == 0 {
			c.ObservedGeneration = prev
		}
	}
}

// podQOS returns the pod's QoS class: the one in its status when set,
// otherwise the class computed from its resources.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return computeQOS(pod)
}

// computeQOS classifies a pod: BestEffort when no container (nor the pod
// level) requests or limits cpu or memory, Guaranteed when every container
// has equal, non-zero cpu and memory requests and limits, Burstable
// otherwise. Pod-level resources, when set, decide alone.
func computeQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		return requirementsQOS(pod.Spec.Resources)
	}
	var class corev1.PodQOSClass
	all := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	all = append(all, pod.Spec.InitContainers...)
	all = append(all, pod.Spec.Containers...)
	for i := range all {
		c := requirementsQOS(&all[i].Resources)
		switch {
		case c == corev1.PodQOSBurstable:
			return c
		case class == "":
			class = c
		case class != c:
			// One container guaranteed, another best effort.
			return corev1.PodQOSBurstable
		}
	}
	if class == "" {
		return corev1.PodQOSBestEffort
	}
	return class
}

// requirementsQOS classifies one set of requirements by its cpu and memory
// requests and limits.
func requirementsQOS(r *corev1.ResourceRequirements) corev1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	var class corev1.PodQOSClass
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := r.Requests[name], r.Limits[name]
		var c corev1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return corev1.PodQOSBurstable
		case req.IsZero():
			c = corev1.PodQOSBestEffort
		default:
			c = corev1.PodQOSGuaranteed
		}
		if class == "" {
			class = c
		} else if class != c {
			// Some of cpu and memory set, not all.
			return corev1.PodQOSBurstable
		}
	}
	return class
}

// applySchedulingGatedCondition adds PodScheduled=False/SchedulingGated to a
// new pod that has scheduling gates. The transition time is the pod's
// creation time, which is the instant upstream stamps.
func applySchedulingGatedCondition(pod *corev1.Pod) {
	if len(pod.Spec.SchedulingGates) == 0 {
		return
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type:               corev1.PodScheduled,
		Status:             corev1.ConditionFalse,
		Reason:             corev1.PodReasonSchedulingGated,
		Message:            schedulingGatedMessage,
		LastTransitionTime: pod.CreationTimestamp,
	})
}

// mergeAffinityLabelKeys folds matchLabelKeys and mismatchLabelKeys of the
// pod's (anti-)affinity terms into their label selectors as "key in (value)"
// and "key notin (value)", using the pod's own labels, as upstream does on
// pod create.
func mergeAffinityLabelKeys(pod *corev1.Pod) {
	a := pod.Spec.Affinity
	if a == nil {
		return
	}
	merge := func(t *corev1.PodAffinityTerm) {
		if t.LabelSelector == nil || (len(t.MatchLabelKeys) == 0 && len(t.MismatchLabelKeys) == 0) {
			return
		}
		appendLabelKeyRequirements(t.LabelSelector, t.MatchLabelKeys, metav1.LabelSelectorOpIn, pod.Labels)
		appendLabelKeyRequirements(t.LabelSelector, t.MismatchLabelKeys, metav1.LabelSelectorOpNotIn, pod.Labels)
	}
	if pa := a.PodAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			merge(&pa.RequiredDuringSchedulingIgnoredDuringExecution[i])
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			merge(&pa.PreferredDuringSchedulingIgnoredDuringExecution[i].PodAffinityTerm)
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			merge(&pa.RequiredDuringSchedulingIgnoredDuringExecution[i])
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			merge(&pa.PreferredDuringSchedulingIgnoredDuringExecution[i].PodAffinityTerm)
		}
	}
}

// mergeTopologySpreadLabelKeys folds matchLabelKeys of the pod's topology
// spread constraints into their label selectors, as upstream does on pod
// create.
func mergeTopologySpreadLabelKeys(pod *corev1.Pod) {
	for i := range pod.Spec.TopologySpreadConstraints {
		c := &pod.Spec.TopologySpreadConstraints[i]
		if len(c.MatchLabelKeys) == 0 || c.LabelSelector == nil {
			continue
		}
		appendLabelKeyRequirements(c.LabelSelector, c.MatchLabelKeys, metav1.LabelSelectorOpIn, pod.Labels)
	}
}

func appendLabelKeyRequirements(sel *metav1.LabelSelector, keys []string, op metav1.LabelSelectorOperator, podLabels map[string]string) {
	for _, k := range keys {
		if v, ok := podLabels[k]; ok {
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key:      k,
				Operator: op,
				Values:   []string{v},
			})
		}
	}
}
