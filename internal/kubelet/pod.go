package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// minStopGrace is the least time a container gets to stop, as upstream.
const minStopGrace = 2 * time.Second

// list returns the runtime's sandboxes and containers.
func (k *Kubelet) list(ctx context.Context) ([]Sandbox, []Container, error) {
	sandboxes, err := k.rt.ListSandboxes(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list sandboxes: %w", err)
	}
	containers, err := k.rt.ListContainers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	return sandboxes, containers, nil
}

// podRuntimeFor returns what the runtime holds for one pod.
func (k *Kubelet) podRuntimeFor(ctx context.Context, uid types.UID) (podRuntime, error) {
	sandboxes, containers, err := k.list(ctx)
	if err != nil {
		return podRuntime{}, err
	}
	var sb []Sandbox
	var cs []Container
	for _, s := range sandboxes {
		if s.PodUID == uid {
			sb = append(sb, s)
		}
	}
	for _, c := range containers {
		if c.PodUID == uid {
			cs = append(cs, c)
		}
	}
	rt := newPodRuntime(sb, append(cs, k.startFailures(uid, cs)...))
	rt.Killed = k.killedIn(uid, rt)
	rt.NotStarted = k.probes.notStarted(uid)
	return rt, nil
}

// podIP is the pod's primary IP, the default host of probes and hooks.
func (k *Kubelet) podIP(pod *corev1.Pod, rt podRuntime) string {
	if pod.Spec.HostNetwork {
		if ips := k.hostIPs(); len(ips) > 0 {
			return ips[0]
		}
		return ""
	}
	if sb := rt.sandbox(); sb != nil && len(sb.IPs) > 0 {
		return sb.IPs[0]
	}
	return ""
}

// runtimeSignatures summarises, per pod UID, the state of its sandboxes
// and containers, so a relist can tell which pods changed.
func runtimeSignatures(sandboxes []Sandbox, containers []Container) map[string]string {
	parts := map[string][]string{}
	for _, s := range sandboxes {
		parts[string(s.PodUID)] = append(parts[string(s.PodUID)], "s"+s.ID+"="+string(s.State))
	}
	for _, c := range containers {
		parts[string(c.PodUID)] = append(parts[string(c.PodUID)], "c"+c.ID+"="+string(c.State))
	}
	out := make(map[string]string, len(parts))
	for uid, p := range parts {
		slices.Sort(p)
		out[uid] = strings.Join(p, ",")
	}
	return out
}

// syncPod makes the runtime match one pod and reports the pod's status. It
// returns when the pod must be looked at again without an event.
func (k *Kubelet) syncPod(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	rt, err := k.podRuntimeFor(ctx, pod.UID)
	if err != nil {
		return 0, err
	}
	if pod.DeletionTimestamp != nil {
		return k.terminate(ctx, pod, rt)
	}
	// Containers whose liveness or startup probe failed are killed first;
	// the actions below restart them as the restart policy says.
	if killed, err := k.killUnhealthy(ctx, pod, rt, k.podIP(pod, rt)); err != nil {
		return 0, err
	} else if killed {
		if rt, err = k.podRuntimeFor(ctx, pod.UID); err != nil {
			return 0, err
		}
	}
	k.mu.Lock()
	backoff := make(map[string]backoffEntry, len(pod.Spec.Containers))
	for _, c := range allContainers(pod) {
		key := backoffKey(string(pod.UID), c.Name)
		if e, ok := k.backoff[key]; ok {
			backoff[key] = e
		}
	}
	k.mu.Unlock()
	now := k.clock.Now()
	a := computePodActions(pod, rt, backoff, now)
	for _, name := range slices.Sorted(maps.Keys(a.Backoff)) {
		// Upstream's event on every sync that finds a container waiting
		// out its crash-loop delay; the recorder folds repeats into one.
		if spec := specOf(pod, name); spec != nil {
			k.event(pod, spec, corev1.EventTypeWarning, "BackOff", backOffMessage(pod, name))
		}
	}
	changed, pullRetry, err := k.apply(ctx, pod, rt, a)
	if err != nil {
		// What did change is still reported below on the retry.
		return 0, err
	}
	if changed {
		if rt, err = k.podRuntimeFor(ctx, pod.UID); err != nil {
			return 0, err
		}
	}
	k.probes.ensure(ctx, pod, rt, k.podIP(pod, rt))
	status := k.podStatus(pod, rt, a.Backoff, false)
	if (status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed) && !a.KillPod {
		// Finished for good: stop what is left (sidecars, the sandbox)
		// before reporting, so the pod is written once.
		if err := k.killPod(ctx, pod, rt, 0); err != nil {
			return 0, err
		}
		if rt, err = k.podRuntimeFor(ctx, pod.UID); err != nil {
			return 0, err
		}
		status = k.podStatus(pod, rt, a.Backoff, false)
	}
	if err := k.writeStatus(ctx, pod, status); err != nil {
		return 0, err
	}
	requeue := a.RequeueAfter
	if pullRetry > 0 && (requeue == 0 || pullRetry < requeue) {
		requeue = pullRetry
	}
	if k.volumes != nil && hasRefreshedVolumes(pod) && status.Phase == corev1.PodRunning {
		// Running containers see configMap, secret and downward-API
		// updates: look again as often as upstream's sync period.
		if _, err := k.volumes.Setup(ctx, pod); err != nil {
			k.log.Info("refreshing volumes failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		if requeue == 0 || k.cfg.SyncFrequency < requeue {
			requeue = k.cfg.SyncFrequency
		}
	}
	return requeue, nil
}

// backOffMessage is upstream's BackOff event for a container waiting out
// its crash-loop delay.
func backOffMessage(pod *corev1.Pod, container string) string {
	return fmt.Sprintf("Back-off restarting failed container %s in pod %s", container, podRef(pod))
}

// podRef is how upstream's kubelet names a pod in messages:
// "name_namespace(uid)".
func podRef(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// podStatus computes a pod's API status from the runtime's view.
func (k *Kubelet) podStatus(pod *corev1.Pod, rt podRuntime, backoff map[string]time.Duration, terminal bool) corev1.PodStatus {
	in := statusInput{
		Pod: pod, Runtime: rt, Scheme: k.rtInfo.Name, HostIPs: k.hostIPs(),
		Backoff: backoff, Terminal: terminal, Now: k.clock.Now(), Waiting: k.pullWaiting(pod),
		Message: func(c *Container) string { return k.terminationMessage(pod, c) },
	}
	if hasProbes(pod) {
		in.Started = func(c *Container) bool {
			started, _ := k.probes.state(pod.UID, specOf(pod, c.Name), c)
			return started
		}
		in.Ready = func(c *Container) bool {
			_, ready := k.probes.state(pod.UID, specOf(pod, c.Name), c)
			return ready
		}
	}
	return generatePodStatus(in)
}

// allContainers returns the pod's init containers and containers.
func allContainers(pod *corev1.Pod) []corev1.Container {
	return append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
}

// apply carries out a pod's actions and reports whether anything in the
// runtime changed.
func (k *Kubelet) apply(ctx context.Context, pod *corev1.Pod, rt podRuntime, a podActions) (changed bool, retry time.Duration, err error) {
	if a.KillPod {
		if err := k.killPod(ctx, pod, rt, 0); err != nil {
			return changed, retry, err
		}
		changed = true
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return changed, retry, nil
		}
	}
	for _, id := range a.Remove {
		if err := k.rt.RemoveContainer(ctx, id); err != nil {
			return changed, retry, fmt.Errorf("pod %s/%s: remove container %s: %w", pod.Namespace, pod.Name, id, err)
		}
		changed = true
	}
	sandboxID := ""
	if sb := rt.sandbox(); sb != nil && sb.State == SandboxReady && !a.KillPod {
		sandboxID = sb.ID
	}
	if a.CreateSandbox {
		id, err := k.rt.RunSandbox(ctx, k.sandboxConfig(pod, a.SandboxAttempt))
		if err != nil {
			return changed, retry, fmt.Errorf("pod %s/%s: run sandbox: %w", pod.Namespace, pod.Name, err)
		}
		sandboxID, changed = id, true
	}
	for _, s := range a.Start {
		spec := findContainer(pod, s.Name, s.Init)
		if spec == nil || sandboxID == "" {
			continue
		}
		if ok, wait := k.ensureImage(ctx, pod, spec); !ok {
			changed = true // the waiting reason changed
			if wait > 0 && (retry == 0 || wait < retry) {
				retry = wait
			}
			if s.Init {
				break // later init containers wait for this one
			}
			continue
		}
		vm, err := k.volumeMounts(ctx, pod, spec)
		if err != nil {
			// Upstream mounts volumes before it creates any container:
			// the container stays ContainerCreating (PodInitializing) and
			// the FailedMount event says why; the mount is retried.
			if retry == 0 || configRetry < retry {
				retry = configRetry
			}
			break
		}
		mounts, err := k.terminationMount(pod, spec, s.Attempt)
		if err == nil {
			mounts = append(vm, mounts...)
		}
		var cfg ContainerConfig
		if err == nil {
			cfg, err = k.containerConfig(ctx, pod, spec, s.Attempt, k.sandboxIPs(ctx, rt, sandboxID), mounts)
		}
		if err != nil {
			k.configFailed(pod, spec, err)
			changed = true
			if retry == 0 || configRetry < retry {
				retry = configRetry
			}
			if s.Init {
				break
			}
			continue
		}
		id, err := k.rt.CreateContainer(ctx, sandboxID, cfg)
		if err == nil {
			k.event(pod, spec, corev1.EventTypeNormal, "Created", "Created container: "+s.Name)
			err = k.rt.StartContainer(ctx, id)
		}
		if err != nil {
			if ctx.Err() != nil {
				return changed, retry, fmt.Errorf("pod %s/%s: start container %q: %w", pod.Namespace, pod.Name, s.Name, err)
			}
			k.startFailed(pod, spec, s, sandboxID, err)
			changed = true
			if retry == 0 || startFailureRetry < retry {
				retry = startFailureRetry
			}
			if s.Init {
				break
			}
			continue
		}
		changed = true
		k.event(pod, spec, corev1.EventTypeNormal, "Started", "Started container "+s.Name)
		if s.Backoff != nil {
			k.mu.Lock()
			k.backoff[backoffKey(string(pod.UID), s.Name)] = *s.Backoff
			k.mu.Unlock()
		}
		if s.Attempt > 0 {
			k.log.Info("restarted container", "pod", pod.Namespace+"/"+pod.Name, "container", s.Name, "restartCount", s.Attempt)
		}
		// The next container starts once this one's postStart hook is
		// done; a failed hook killed the container.
		podIP := ""
		if spec.Lifecycle != nil && spec.Lifecycle.PostStart != nil {
			if ips := k.sandboxIPs(ctx, rt, sandboxID); len(ips) > 0 {
				podIP = ips[0]
			}
			if pod.Spec.HostNetwork {
				podIP = k.podIP(pod, rt)
			}
		}
		if !k.postStart(ctx, pod, spec, id, podIP) && s.Init {
			break
		}
	}
	return changed, retry, nil
}

// Upstream's runtime (containerd) keeps a container whose process could
// not be started (the command is not in the image, a mount fails) as
// exited with reason StartError and exit code 128, and the kubelet
// restarts it with the crash-loop back-off like any failed container. A
// runtime that keeps nothing of a failed create (runc's) gets the same
// from the kubelet: it stands in for the container until a later attempt
// of the same name runs.
const (
	terminatedStartError = "StartError"
	startErrorExitCode   = 128
	// startFailureRetry is how soon a pod is looked at again after a
	// failed start (the first restart is immediate, later ones back off).
	startFailureRetry = time.Second
)

// startFailed records a container the runtime could not create or start,
// with upstream's Failed event.
func (k *Kubelet) startFailed(pod *corev1.Pod, spec *corev1.Container, s containerStart, sandboxID string, err error) {
	now := k.clock.Now()
	key := backoffKey(string(pod.UID), s.Name)
	c := Container{
		ID: startFailureID(key, s.Attempt), SandboxID: sandboxID, PodUID: pod.UID, Name: s.Name, Attempt: s.Attempt,
		Image: spec.Image, State: ContainerExited, ExitCode: startErrorExitCode, Reason: terminatedStartError,
		Message: err.Error(), CreatedAt: now, FinishedAt: now,
	}
	k.mu.Lock()
	if k.startErrs == nil {
		k.startErrs = map[string]Container{}
	}
	k.startErrs[key] = c
	if s.Backoff != nil {
		k.backoff[key] = *s.Backoff
	}
	k.mu.Unlock()
	k.log.Info("container failed to start", "pod", pod.Namespace+"/"+pod.Name, "container", s.Name, "attempt", s.Attempt, "err", err)
	k.event(pod, spec, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
}

// startFailures returns the stand-ins for a pod's containers that failed
// to start and that no later attempt in the runtime's containers has
// replaced; replaced ones are forgotten.
func (k *Kubelet) startFailures(uid types.UID, containers []Container) []Container {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Container
	for key, f := range k.startErrs {
		if f.PodUID != uid {
			continue
		}
		if replacedStartFailure(f, containers) {
			delete(k.startErrs, key)
			continue
		}
		out = append(out, f)
	}
	return out
}

// replacedStartFailure reports whether a later attempt of a failed
// container exists in the runtime.
func replacedStartFailure(f Container, containers []Container) bool {
	for _, c := range containers {
		if c.PodUID == f.PodUID && c.Name == f.Name && c.Attempt > f.Attempt {
			return true
		}
	}
	return false
}

// startFailureID is the container ID reported for a failed start: unique
// per pod, container and attempt, in the form of a runtime's IDs.
func startFailureID(key string, attempt uint32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "start-failure/%s/%d", key, attempt))
	return hex.EncodeToString(sum[:])
}

// findContainer returns a container of the pod's spec by name.
func findContainer(pod *corev1.Pod, name string, init bool) *corev1.Container {
	list := pod.Spec.Containers
	if init {
		list = pod.Spec.InitContainers
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// sandboxIPs returns the IPs of a pod's sandbox, listing the runtime
// when the sandbox was just created.
func (k *Kubelet) sandboxIPs(ctx context.Context, rt podRuntime, id string) []string {
	if sb := rt.sandbox(); sb != nil && sb.ID == id {
		return sb.IPs
	}
	sbs, err := k.rt.ListSandboxes(ctx)
	if err != nil {
		return nil
	}
	for _, sb := range sbs {
		if sb.ID == id {
			return sb.IPs
		}
	}
	return nil
}

// configRetry is how soon a container whose configuration could not be
// resolved is tried again.
const configRetry = 5 * time.Second

// configFailed records a container whose configuration (an env source)
// could not be resolved: it waits with CreateContainerConfigError.
func (k *Kubelet) configFailed(pod *corev1.Pod, c *corev1.Container, err error) {
	k.mu.Lock()
	k.pulls[backoffKey(string(pod.UID), c.Name)] = pullState{Reason: waitingCreateContainerConfigError, Message: err.Error()}
	k.mu.Unlock()
	k.event(pod, c, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
}

// killPod stops every container of the pod, giving each grace (at least
// minStopGrace), and then the sandbox. Exited containers are kept for the
// status.
func (k *Kubelet) killPod(ctx context.Context, pod *corev1.Pod, rt podRuntime, grace time.Duration) error {
	grace = max(grace, minStopGrace)
	var stop []*Container
	for _, cs := range rt.Containers {
		for i := range cs {
			if cs[i].State != ContainerExited {
				stop = append(stop, &cs[i])
			}
		}
	}
	if len(stop) > 0 {
		for _, c := range stop {
			// Upstream's event; a node without a recorder (simulated)
			// records none.
			if spec := specOf(pod, c.Name); spec != nil {
				k.event(pod, spec, corev1.EventTypeNormal, "Killing", "Stopping container "+c.Name)
			}
		}
		// preStop hooks run first, each within the grace period.
		if err := k.stopContainers(ctx, pod, stop, grace, k.podIP(pod, rt)); err != nil {
			return err
		}
	}
	for _, sb := range rt.Sandboxes {
		if sb.State == SandboxReady {
			if err := k.rt.StopSandbox(ctx, sb.ID); err != nil {
				return fmt.Errorf("pod %s/%s: stop sandbox: %w", pod.Namespace, pod.Name, err)
			}
		}
	}
	return nil
}

// terminate stops a pod being deleted within its grace period, reports
// its final status and deletes it for good (grace 0), which the API
// server waits for once a pod is bound to a node.
func (k *Kubelet) terminate(ctx context.Context, pod *corev1.Pod, rt podRuntime) (time.Duration, error) {
	grace := time.Duration(0)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.DeletionTimestamp != nil {
		// The deadline counts from when the pod was marked.
		if left := pod.DeletionTimestamp.Sub(k.clock.Now()); left < grace {
			grace = max(left, 0)
		}
	}
	if err := k.killPod(ctx, pod, rt, grace); err != nil {
		return 0, err
	}
	rt, err := k.podRuntimeFor(ctx, pod.UID)
	if err != nil {
		return 0, err
	}
	if err := k.writeStatus(ctx, pod, k.podStatus(pod, rt, nil, true)); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	err = k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case err == nil:
		k.log.Info("pod terminated and deleted", "pod", pod.Namespace+"/"+pod.Name)
	case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
		return 0, fmt.Errorf("pod %s/%s: delete: %w", pod.Namespace, pod.Name, err)
	}
	return 0, k.cleanup(ctx, string(pod.UID))
}

// cleanup removes everything the runtime holds for a pod UID and forgets
// the kubelet's state about it.
func (k *Kubelet) cleanup(ctx context.Context, uid string) error {
	rt, err := k.podRuntimeFor(ctx, types.UID(uid))
	if err != nil {
		return err
	}
	for _, cs := range rt.Containers {
		for _, c := range cs {
			if c.State != ContainerExited {
				if err := k.rt.StopContainer(ctx, c.ID, minStopGrace); err != nil {
					return fmt.Errorf("pod uid %s: stop container %q: %w", uid, c.Name, err)
				}
			}
			if err := k.rt.RemoveContainer(ctx, c.ID); err != nil {
				return fmt.Errorf("pod uid %s: remove container %q: %w", uid, c.Name, err)
			}
		}
	}
	for _, sb := range rt.Sandboxes {
		if err := k.rt.StopSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("pod uid %s: stop sandbox: %w", uid, err)
		}
		if err := k.rt.RemoveSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("pod uid %s: remove sandbox: %w", uid, err)
		}
	}
	if k.volumes != nil {
		if err := k.volumes.Teardown(types.UID(uid)); err != nil {
			return fmt.Errorf("pod uid %s: volumes: %w", uid, err)
		}
	}
	k.probes.forget(types.UID(uid))
	k.mu.Lock()
	delete(k.written, uid)
	delete(k.killed, types.UID(uid))
	for key := range k.backoff {
		if strings.HasPrefix(key, uid+"/") {
			delete(k.backoff, key)
		}
	}
	for key := range k.pulls {
		if strings.HasPrefix(key, uid+"/") {
			delete(k.pulls, key)
		}
	}
	for key := range k.startErrs {
		if strings.HasPrefix(key, uid+"/") {
			delete(k.startErrs, key)
		}
	}
	k.mu.Unlock()
	return nil
}

// hasRefreshedVolumes reports whether a pod has volumes whose content
// follows API objects.
func hasRefreshedVolumes(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

// volumeMounts sets up the pod's volumes and returns a container's mounts
// of them; a failure is upstream's FailedMount event.
func (k *Kubelet) volumeMounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]Mount, error) {
	if k.volumes == nil {
		return nil, nil
	}
	hostPaths, err := k.volumes.Setup(ctx, pod)
	if err != nil {
		k.event(pod, nil, corev1.EventTypeWarning, "FailedMount", err.Error())
		return nil, err
	}
	return containerMounts(c, hostPaths)
}

// writeStatus writes a pod's status when it differs from what the API
// holds and from what this kubelet last wrote (the cache may lag behind
// our own write); a static pod's goes to its mirror pod. The write is a merge patch of pods/status that carries
// the UID, so it cannot land on a new pod of the same name.
func (k *Kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	if _, static := k.static.keyOf(pod.UID); static {
		// A static pod's status is kept here and shown on its mirror
		// pod, once there is one.
		k.static.setStatus(pod.UID, status)
		if pod = k.mirrorPod(pod); pod == nil {
			return nil
		}
	}
	if apiequality.Semantic.DeepEqual(&status, &pod.Status) {
		return nil
	}
	uid := string(pod.UID)
	k.mu.Lock()
	last, ok := k.written[uid]
	k.mu.Unlock()
	if ok && olderThan(pod.ResourceVersion, last.resourceVersion) && apiequality.Semantic.DeepEqual(&status, &last.status) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   status,
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s: encode status: %w", pod.Namespace, pod.Name, err)
	}
	out, err := k.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("pod %s/%s: update status: %w", pod.Namespace, pod.Name, err)
	}
	k.mu.Lock()
	k.written[uid] = writtenStatus{status: out.Status, resourceVersion: out.ResourceVersion}
	k.mu.Unlock()
	if out.Status.Phase != pod.Status.Phase {
		k.log.Debug("pod phase", "pod", pod.Namespace+"/"+pod.Name, "phase", out.Status.Phase)
	}
	return nil
}

// olderThan reports whether resource version a is older than b. Skiff's
// resource versions are etcd revisions, so they compare as numbers; a
// version that does not parse is never called older.
func olderThan(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}
