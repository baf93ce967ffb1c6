package kubelet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons and messages, as upstream's kubelet writes them.
const (
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"

	waitingContainerCreating = "ContainerCreating"
	waitingPodInitializing   = "PodInitializing"
	waitingCrashLoopBackOff  = "CrashLoopBackOff"
	waitingRunContainerError = "RunContainerError"
	terminatedCompleted      = "Completed"
	terminatedError          = "Error"
)

// statusInput is everything the pod status is computed from.
type statusInput struct {
	Pod     *corev1.Pod
	Runtime podRuntime
	// Scheme prefixes container IDs ("sim" gives "sim://<id>").
	Scheme string
	// HostIPs are the node's addresses, the primary first.
	HostIPs []string
	// Backoff names containers waiting out a crash-loop delay, with it.
	Backoff map[string]time.Duration
	// Started and Ready say whether a running container has started (its
	// startup probe succeeded) and is ready (its readiness probe
	// succeeded); nil means every running container is both.
	Started func(c *Container) bool
	Ready   func(c *Container) bool
	// Terminal is set once the kubelet has stopped a pod for good (it is
	// being deleted): the phase is then final.
	Terminal bool
	Now      time.Time
	// Message, when set, gives an exited container's termination message
	// (its terminationMessagePath file); nil uses the runtime's.
	Message func(c *Container) string
	// Waiting holds containers that cannot be created yet and why (their
	// image could not be pulled); it overrides their state.
	Waiting map[string]corev1.ContainerStateWaiting
}

// generatePodStatus computes the status the API must show for a pod from
// the runtime's view. It is pure. Fields the kubelet does not own
// (qosClass, nominatedNodeName, conditions of other writers) are kept from
// the pod's current status.
func generatePodStatus(in statusInput) corev1.PodStatus {
	pod := in.Pod
	old := &pod.Status
	s := corev1.PodStatus{
		QOSClass:           old.QOSClass,
		NominatedNodeName:  old.NominatedNodeName,
		Reason:             old.Reason,
		Message:            old.Message,
		Resize:             old.Resize,
		ObservedGeneration: pod.Generation,
	}
	now := apiTime(in.Now)
	if old.StartTime != nil {
		s.StartTime = old.StartTime
	} else {
		s.StartTime = &now
	}
	if len(in.HostIPs) > 0 {
		s.HostIP = in.HostIPs[0]
		for _, ip := range in.HostIPs {
			s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
		}
	}
	sb := in.Runtime.sandbox()
	var podIPs []string
	switch {
	case pod.Spec.HostNetwork:
		podIPs = in.HostIPs
	case sb != nil:
		podIPs = sb.IPs
	}
	if len(podIPs) == 0 {
		// An IP, once reported, stays with the pod until it is gone.
		s.PodIP, s.PodIPs = old.PodIP, old.PodIPs
	} else {
		s.PodIP = podIPs[0]
		for _, ip := range podIPs {
			s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
		}
	}

	ready := in.Ready
	if ready == nil {
		ready = func(*Container) bool { return true }
	}
	initialized := true
	var incompleteInit []string
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		cs := in.containerStatus(spec, waitingPodInitializing, ready)
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
		done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		if isSidecar(spec) {
			done = cs.Started != nil && *cs.Started
		}
		if !done {
			initialized = false
			incompleteInit = append(incompleteInit, spec.Name)
		}
	}
	// Once the containers have started, the pod stays initialized even if a
	// sidecar restarts.
	for i := range pod.Spec.Containers {
		if in.Runtime.latest(pod.Spec.Containers[i].Name) != nil {
			initialized, incompleteInit = true, nil
			break
		}
	}
	waitingReason := waitingContainerCreating
	if !initialized {
		waitingReason = waitingPodInitializing
	}
	for i := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, in.containerStatus(&pod.Spec.Containers[i], waitingReason, ready))
	}
	slices.SortFunc(s.ContainerStatuses, func(a, b corev1.ContainerStatus) int { return strings.Compare(a.Name, b.Name) })

	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses, in.Terminal)
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		s.Phase = old.Phase // terminal phases are final
	}

	// Conditions: the kubelet's own, then any other writer's.
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: message, ObservedGeneration: pod.Generation}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		c.LastTransitionTime = now
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	sandboxReady := sb != nil && sb.State == SandboxReady && (len(sb.IPs) > 0 || pod.Spec.HostNetwork)
	s.Conditions = append(s.Conditions, cond(corev1.PodReadyToStartContainers, sandboxReady, "", ""))
	initMsg := ""
	if len(incompleteInit) > 0 {
		initMsg = fmt.Sprintf("containers with incomplete status: %s", bracket(incompleteInit))
	}
	s.Conditions = append(s.Conditions, cond(corev1.PodInitialized, initialized, reasonContainersNotInitialized, initMsg))

	var unready []string
	for i, spec := range pod.Spec.InitContainers {
		if isSidecar(&spec) && !s.InitContainerStatuses[i].Ready {
			unready = append(unready, spec.Name)
		}
	}
	for _, spec := range pod.Spec.Containers {
		for _, cs := range s.ContainerStatuses {
			if cs.Name == spec.Name && !cs.Ready {
				unready = append(unready, spec.Name)
			}
		}
	}
	containersReady := len(unready) == 0
	crReason, crMsg := reasonContainersNotReady, ""
	switch {
	case s.Phase == corev1.PodSucceeded:
		containersReady, crReason = false, reasonPodCompleted
	case s.Phase == corev1.PodFailed:
		containersReady, crReason = false, reasonPodFailed
	case len(unready) > 0:
		crMsg = fmt.Sprintf("containers with unready status: %s", bracket(unready))
	}
	readyCond := cond(corev1.PodReady, containersReady, crReason, crMsg)
	if containersReady {
		// Readiness gates: every named condition must be True.
		var missing, notTrue []string
		for _, g := range pod.Spec.ReadinessGates {
			found := false
			for _, o := range old.Conditions {
				if o.Type == g.ConditionType {
					found = true
					if o.Status != corev1.ConditionTrue {
						notTrue = append(notTrue, string(g.ConditionType))
					}
				}
			}
			if !found {
				missing = append(missing, string(g.ConditionType))
			}
		}
		if len(missing)+len(notTrue) > 0 {
			var msgs []string
			for _, m := range missing {
				msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", m))
			}
			if len(notTrue) > 0 {
				msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but False", notTrue[0]))
			}
			readyCond = cond(corev1.PodReady, false, reasonReadinessGatesNotReady, strings.Join(msgs, ", "))
		}
	}
	s.Conditions = append(s.Conditions, readyCond)
	s.Conditions = append(s.Conditions, cond(corev1.ContainersReady, containersReady, crReason, crMsg))
	s.Conditions = append(s.Conditions, cond(corev1.PodScheduled, true, "", ""))
	for _, o := range old.Conditions {
		if !kubeletCondition(o.Type) {
			s.Conditions = append(s.Conditions, o)
		}
	}
	return s
}

// kubeletCondition reports whether the kubelet owns a pod condition type.
func kubeletCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled:
		return true
	}
	return false
}

// bracket formats names as Go prints a []string: "[a b]", as upstream's
// messages do.
func bracket(names []string) string { return "[" + strings.Join(names, " ") + "]" }

// containerStatus is the API status of one container of the pod.
func (in statusInput) containerStatus(spec *corev1.Container, waitingReason string, ready func(*Container) bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: new(bool)}
	all := in.Runtime.Containers[spec.Name]
	w, blocked := in.Waiting[spec.Name]
	if len(all) == 0 {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitingReason}
		if blocked {
			cs.State.Waiting = &w
		}
		return cs
	}
	c := &all[0]
	cs.RestartCount = int32(c.Attempt)
	cs.ImageID = c.ImageID
	cs.ContainerID = in.Scheme + "://" + c.ID
	if len(all) > 1 && all[1].State == ContainerExited {
		cs.LastTerminationState.Terminated = in.terminated(&all[1])
	}
	switch c.State {
	case ContainerRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: apiTime(c.StartedAt)}
		*cs.Started = in.Started == nil || in.Started(c)
		cs.Ready = *cs.Started && ready(c)
	case ContainerExited:
		t := in.terminated(c)
		if blocked {
			cs.State.Waiting = &w
			cs.LastTerminationState = corev1.ContainerState{Terminated: t}
		} else if delay, ok := in.Backoff[spec.Name]; ok {
			cs.State.Waiting = &corev1.ContainerStateWaiting{
				Reason: waitingCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					delay, spec.Name, in.Pod.Name, in.Pod.Namespace, in.Pod.UID),
			}
			cs.LastTerminationState = corev1.ContainerState{Terminated: t}
		} else if c.Reason == terminatedStartError && !in.Terminal && (isSidecar(spec) || shouldRestart(in.Pod.Spec.RestartPolicy, c.ExitCode)) {
			// Upstream shows a container whose start failed and that will
			// be started again as waiting with the start's error, until a
			// back-off makes it CrashLoopBackOff.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitingRunContainerError, Message: t.Message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: t}
		} else {
			cs.State.Terminated = t
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitingContainerCreating}
	}
	return cs
}

// terminated is the API state of an exited container.
func (in statusInput) terminated(c *Container) *corev1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = terminatedError
		if c.ExitCode == 0 {
			reason = terminatedCompleted
		}
	}
	msg := c.Message
	if in.Message != nil {
		msg = in.Message(c)
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    c.ExitCode,
		Reason:      reason,
		Message:     msg,
		StartedAt:   apiTime(c.StartedAt),
		FinishedAt:  apiTime(c.FinishedAt),
		ContainerID: in.Scheme + "://" + c.ID,
	}
}

// podPhase derives the pod phase from its container statuses, as upstream:
// Pending until initialized and every container has started once, Running
// while any container runs or will be restarted, and Succeeded or Failed
// once every container has exited for good. terminal says the pod was
// stopped for good, so containers that would restart will not.
func podPhase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus, terminal bool) corev1.PodPhase {
	policy := pod.Spec.RestartPolicy
	pendingInit, failedInit := 0, 0
	mainStarted := false
	for _, cs := range statuses {
		if cs.ContainerID != "" {
			mainStarted = true
		}
	}
	for i, cs := range initStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			if !mainStarted && (cs.Started == nil || !*cs.Started) {
				pendingInit++
			}
			continue
		}
		switch {
		case mainStarted:
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
		case cs.State.Terminated != nil:
			failedInit++
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.ExitCode != 0:
			failedInit++
		default:
			pendingInit++
		}
	}
	if failedInit > 0 && (policy == corev1.RestartPolicyNever || terminal) {
		return corev1.PodFailed
	}
	if (pendingInit > 0 || failedInit > 0) && !terminal {
		return corev1.PodPending
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			// Waiting to restart: not done, even after exit 0 (a container
			// the kubelet killed restarts under OnFailure too).
			stopped++
			if terminal && cs.LastTerminationState.Terminated.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	if terminal {
		if running == 0 && stopped > 0 && stopped == succeeded && waiting == 0 {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch policy {
		case corev1.RestartPolicyNever:
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		case corev1.RestartPolicyOnFailure:
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodRunning
		default:
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

// apiTime is t as the API stores it, to the second, so a status computed
// again compares equal to the one read back.
func apiTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}
