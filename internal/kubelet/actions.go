package kubelet

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Crash-loop backoff, as upstream: the first restart of a container is
// immediate; each later one waits for a delay that starts at 10 s and
// doubles up to 5 min, counted from the container's last exit. A delay
// last raised more than 10 min ago starts over.
const (
	initialBackoff = 10 * time.Second
	maxBackoff     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// backoffEntry is the crash-loop state of one container of one pod.
type backoffEntry struct {
	// Delay is how long after an exit the next restart must wait.
	Delay time.Duration
	// Updated is when Delay last changed (at a restart).
	Updated time.Time
}

// podRuntime is what the runtime holds for one pod.
type podRuntime struct {
	// Sandboxes, newest first.
	Sandboxes []Sandbox
	// Containers by name, newest attempt first.
	Containers map[string][]Container
	// Killed holds the IDs of containers the kubelet killed (a failed
	// liveness or startup probe or postStart hook): they restart under
	// OnFailure whatever their exit code.
	Killed map[string]bool
	// NotStarted holds the IDs of running containers whose startup probe
	// has not succeeded: a sidecar among them holds back what follows it.
	NotStarted map[string]bool
}

// sandbox returns the newest sandbox, or nil.
func (r podRuntime) sandbox() *Sandbox {
	if len(r.Sandboxes) == 0 {
		return nil
	}
	return &r.Sandboxes[0]
}

// latest returns the newest container of a name, or nil.
func (r podRuntime) latest(name string) *Container {
	if cs := r.Containers[name]; len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// newPodRuntime groups a pod's sandboxes and containers and orders them
// newest first.
func newPodRuntime(sandboxes []Sandbox, containers []Container) podRuntime {
	r := podRuntime{Sandboxes: slices.Clone(sandboxes), Containers: map[string][]Container{}}
	slices.SortFunc(r.Sandboxes, func(a, b Sandbox) int {
		if a.Attempt != b.Attempt {
			return int(b.Attempt) - int(a.Attempt)
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	for _, c := range containers {
		r.Containers[c.Name] = append(r.Containers[c.Name], c)
	}
	for _, cs := range r.Containers {
		slices.SortFunc(cs, func(a, b Container) int {
			if a.Attempt != b.Attempt {
				return int(b.Attempt) - int(a.Attempt)
			}
			return b.CreatedAt.Compare(a.CreatedAt)
		})
	}
	return r
}

// containerStart is one container the kubelet must create and start.
type containerStart struct {
	Name    string
	Init    bool
	Attempt uint32
	// Backoff is the container's crash-loop state after this start; it is
	// recorded only for restarts.
	Backoff *backoffEntry
}

// podActions is what must change for a pod to move toward its spec.
type podActions struct {
	// KillPod stops every container and the sandbox.
	KillPod bool
	// CreateSandbox creates a new sandbox with SandboxAttempt (after
	// KillPod, when a sandbox died).
	CreateSandbox  bool
	SandboxAttempt uint32
	// Start lists containers to create and start, in order.
	Start []containerStart
	// Remove lists exited containers no status needs any more.
	Remove []string
	// Backoff names containers waiting out a crash-loop delay, with the
	// delay, for their CrashLoopBackOff status.
	Backoff map[string]time.Duration
	// RequeueAfter is when the pod must be looked at again although
	// nothing may have changed (a backoff runs out); 0 means never.
	RequeueAfter time.Duration
}

// isSidecar reports whether an init container is a sidecar: one with
// restartPolicy Always, which keeps running beside the containers.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// shouldRestart reports whether an exited container of a pod with policy is
// started again.
func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// backoffWait returns how much longer an exited container must wait before
// it may restart, given its crash-loop entry (ok false: none), and the
// entry it has once restarted.
func backoffWait(e backoffEntry, ok bool, finishedAt, now time.Time) (wait time.Duration, next backoffEntry) {
	if ok && now.Sub(e.Updated) >= backoffReset {
		ok = false
	}
	if !ok {
		return 0, backoffEntry{Delay: initialBackoff, Updated: now}
	}
	if end := finishedAt.Add(e.Delay); now.Before(end) {
		return end.Sub(now), e
	}
	return 0, backoffEntry{Delay: min(2*e.Delay, maxBackoff), Updated: now}
}

// backoffKey names a container's crash-loop entry.
func backoffKey(uid, name string) string { return uid + "/" + name }

// computePodActions compares a running pod with its spec and says what
// must change. It is pure: the caller passes the runtime's view, the
// crash-loop entries (by backoffKey) and the time.
//
// Terminal and terminating pods are the caller's business: for them the
// answer is always KillPod.
func computePodActions(pod *corev1.Pod, rt podRuntime, backoff map[string]backoffEntry, now time.Time) podActions {
	var a podActions
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		a.KillPod = true
		return a
	}
	uid := string(pod.UID)
	policy := pod.Spec.RestartPolicy

	// Exited containers older than the newest of each name only served
	// lastState, which the newest one's predecessor provides.
	for _, cs := range rt.Containers {
		for i, c := range cs {
			if i >= 2 && c.State != ContainerRunning {
				a.Remove = append(a.Remove, c.ID)
			}
		}
	}
	slices.Sort(a.Remove)

	sb := rt.sandbox()
	if sb == nil || sb.State != SandboxReady {
		if sb != nil && policy == corev1.RestartPolicyNever && len(rt.Containers) > 0 {
			// The sandbox died after containers ran; a Never pod does
			// not come back.
			a.KillPod = true
			return a
		}
		if sb != nil {
			a.KillPod = true
			a.SandboxAttempt = sb.Attempt + 1
		}
		a.CreateSandbox = true
		// Everything starts over in the new sandbox; attempts continue
		// from the old containers so restart counts keep growing.
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			a.Start = append(a.Start, containerStart{Name: c.Name, Init: true, Attempt: nextAttempt(rt.latest(c.Name))})
			if !isSidecar(c) {
				return a
			}
		}
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			a.Start = append(a.Start, containerStart{Name: c.Name, Attempt: nextAttempt(rt.latest(c.Name))})
		}
		return a
	}

	// restart decides about one exited container that policy restarts:
	// start it now, or note the backoff.
	restart := func(c *Container, init bool) {
		key := backoffKey(uid, c.Name)
		e, ok := backoff[key]
		wait, next := backoffWait(e, ok, c.FinishedAt, now)
		if wait > 0 {
			if a.Backoff == nil {
				a.Backoff = map[string]time.Duration{}
			}
			a.Backoff[c.Name] = e.Delay
			if a.RequeueAfter == 0 || wait < a.RequeueAfter {
				a.RequeueAfter = wait
			}
			return
		}
		a.Start = append(a.Start, containerStart{Name: c.Name, Init: init, Attempt: c.Attempt + 1, Backoff: &next})
	}

	// Init containers, in order: each must finish (a sidecar: be running)
	// before the next one starts. Once the containers have started, only
	// sidecars are restarted.
	mainStarted := false
	for i := range pod.Spec.Containers {
		if rt.latest(pod.Spec.Containers[i].Name) != nil {
			mainStarted = true
		}
	}
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := rt.latest(spec.Name)
		if isSidecar(spec) {
			switch {
			case c == nil:
				a.Start = append(a.Start, containerStart{Name: spec.Name, Init: true})
			case c.State == ContainerExited:
				restart(c, true)
			case c.State == ContainerCreated:
				a.Remove = append(a.Remove, c.ID)
				a.Start = append(a.Start, containerStart{Name: spec.Name, Init: true, Attempt: c.Attempt})
			}
			if !mainStarted && (c == nil || c.State != ContainerRunning || rt.NotStarted[c.ID]) {
				return a
			}
			continue
		}
		if mainStarted {
			continue
		}
		switch {
		case c == nil:
			a.Start = append(a.Start, containerStart{Name: spec.Name, Init: true})
			return a
		case c.State == ContainerCreated:
			a.Remove = append(a.Remove, c.ID)
			a.Start = append(a.Start, containerStart{Name: spec.Name, Init: true, Attempt: c.Attempt})
			return a
		case c.State == ContainerExited && c.ExitCode == 0:
			continue
		case c.State == ContainerExited:
			// A failed init container is retried unless the pod never
			// restarts anything, which makes the pod Failed.
			if policy != corev1.RestartPolicyNever {
				restart(c, true)
			}
			return a
		default:
			// Running (or unknown): wait for it.
			return a
		}
	}

	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := rt.latest(spec.Name)
		switch {
		case c == nil:
			a.Start = append(a.Start, containerStart{Name: spec.Name})
		case c.State == ContainerCreated:
			a.Remove = append(a.Remove, c.ID)
			a.Start = append(a.Start, containerStart{Name: spec.Name, Attempt: c.Attempt})
		case c.State == ContainerExited && (shouldRestart(policy, c.ExitCode) || (rt.Killed[c.ID] && policy != corev1.RestartPolicyNever)):
			restart(c, false)
		}
	}
	return a
}

// nextAttempt is the attempt number of a container created after c.
func nextAttempt(c *Container) uint32 {
	if c == nil {
		return 0
	}
	return c.Attempt + 1
}
