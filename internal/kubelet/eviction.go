package kubelet

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Node-pressure eviction, as upstream's kubelet does it with its default
// hard thresholds: while the node is under memory, disk or PID pressure,
// it evicts one pod per status period, the pods that matter least first.
// Under memory pressure with the pods' memory use known (the summary
// API's sampler), the ranking is upstream's: pods using more memory than
// they request first, then lower priority, then those furthest over their
// request. Otherwise: BestEffort before Burstable before Guaranteed, then
// lower priority, then the newest. Static (mirror) and system-critical
// pods are never evicted.
const systemCriticalPriority = 2000000000

// pressure asks the node's resource monitor, if it has one.
func (k *Kubelet) pressure() Pressure {
	if k.cfg.Pressure == nil {
		return Pressure{}
	}
	return k.cfg.Pressure()
}

// evictionCandidate picks the pod to evict from the node's pods, or nil;
// memory, when not nil, is each pod's memory working set by UID.
func evictionCandidate(pods []*corev1.Pod, memory map[types.UID]uint64) *corev1.Pod {
	var cands []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if _, mirror := p.Annotations[annotationMirror]; mirror {
			continue
		}
		if p.Spec.Priority != nil && *p.Spec.Priority >= systemCriticalPriority {
			continue
		}
		cands = append(cands, p)
	}
	if len(cands) == 0 {
		return nil
	}
	rank := map[corev1.PodQOSClass]int{corev1.PodQOSBestEffort: 0, corev1.PodQOSBurstable: 1, corev1.PodQOSGuaranteed: 2}
	prio := func(p *corev1.Pod) int32 {
		if p.Spec.Priority == nil {
			return 0
		}
		return *p.Spec.Priority
	}
	// Over its request by how much (negative: under).
	over := func(p *corev1.Pod) int64 {
		return int64(memory[p.UID]) - podMemoryRequest(p)
	}
	known := memory != nil
	for _, p := range cands {
		if _, ok := memory[p.UID]; !ok {
			known = false
		}
	}
	slices.SortStableFunc(cands, func(a, b *corev1.Pod) int {
		if known {
			// Exceeding the request first, then priority, then
			// the larger excess.
			if c := cmp.Compare(boolRank(over(a) > 0), boolRank(over(b) > 0)); c != 0 {
				return c
			}
			if c := cmp.Compare(prio(a), prio(b)); c != 0 {
				return c
			}
			return cmp.Compare(over(b), over(a))
		}
		if c := cmp.Compare(rank[qosClass(a)], rank[qosClass(b)]); c != 0 {
			return c
		}
		if c := cmp.Compare(prio(a), prio(b)); c != 0 {
			return c
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return cands[0]
}

// boolRank sorts true first.
func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}

// podMemoryRequest is the memory a pod requests: its containers' requests
// together, or its largest init container's when that is more.
func podMemoryRequest(p *corev1.Pod) int64 {
	var sum, initMax int64
	for _, c := range p.Spec.Containers {
		sum += c.Resources.Requests.Memory().Value()
	}
	for _, c := range p.Spec.InitContainers {
		initMax = max(initMax, c.Resources.Requests.Memory().Value())
	}
	return max(sum, initMax)
}

// evict marks a pod Failed with upstream's Evicted reason and a
// DisruptionTarget condition; the pod's next sync stops its containers.
func (k *Kubelet) evict(ctx context.Context, pod *corev1.Pod, resource string) error {
	msg := fmt.Sprintf("The node was low on resource: %s. ", resource)
	status := *pod.Status.DeepCopy()
	status.Phase = corev1.PodFailed
	status.Reason = "Evicted"
	status.Message = msg
	now := metav1.NewTime(k.clock.Now().Truncate(1e9))
	status.Conditions = append(slices.DeleteFunc(status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.DisruptionTarget
	}), corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet",
		Message: msg, LastTransitionTime: now})
	if err := k.writeStatus(ctx, pod, status); err != nil {
		return fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	k.event(pod, nil, corev1.EventTypeWarning, "Evicted", msg)
	k.log.Info("evicted pod", "pod", pod.Namespace+"/"+pod.Name, "resource", resource)
	if k.enqueue != nil {
		k.enqueue(pod.Namespace + "/" + pod.Name)
	}
	return nil
}

// evictUnderPressure evicts one pod when the node is under memory, disk or
// process ID pressure.
func (k *Kubelet) evictUnderPressure(ctx context.Context, p Pressure) error {
	if !p.Memory && !p.Disk && !p.PID {
		return nil
	}
	list, err := k.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + k.name})
	if err != nil {
		return err
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	var memory map[types.UID]uint64
	if p.Memory && k.cfg.PodMemoryUsage != nil {
		memory = k.cfg.PodMemoryUsage(ctx)
	}
	victim := evictionCandidate(pods, memory)
	if victim == nil {
		return nil
	}
	resource := p.Reason
	if resource == "" {
		resource = "memory"
		if !p.Memory {
			resource = "ephemeral-storage"
		}
	}
	return k.evict(ctx, victim, resource)
}
