package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Container lifecycle hooks, as upstream's kubelet runs them:
//
//   - postStart runs right after a container started; the kubelet waits
//     for it before it starts the next container. When it fails, the
//     container is killed (event FailedPostStartHook) and restarted as its
//     pod's restart policy says.
//   - preStop runs before a running container is stopped (pod deletion, a
//     liveness kill), within the termination grace period; the runtime
//     gets what is left of the grace, at least minStopGrace. A failure is
//     the event FailedPreStopHook and does not keep the container from
//     stopping.
//
// An httpGet hook fails only when no response comes; its status code does
// not matter, as upstream.

// podFormat names a pod in hook messages as upstream does:
// "name_namespace(uid)".
func podFormat(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// runHook runs a lifecycle handler for a container. The error says what
// failed, for the log; events carry no details, which might hold secrets.
func (k *Kubelet) runHook(ctx context.Context, t probeTarget, h *corev1.LifecycleHandler) error {
	name := t.Container.Name
	switch {
	case h.Exec != nil:
		out := &limitedBuffer{n: maxProbeOutput}
		code, err := k.rt.Exec(ctx, t.ContainerID, h.Exec.Command, nil, out, out, false)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		if err != nil {
			return fmt.Errorf("exec lifecycle hook (%v) for container %q in pod %q failed - error: %w, message: %q",
				h.Exec.Command, name, podFormat(t.Pod), err, out.String())
		}
		return nil
	case h.HTTPGet != nil:
		err := k.httpHook(ctx, t, h.HTTPGet)
		if err != nil {
			return fmt.Errorf("http lifecycle hook (%s) for container %q in pod %q failed - error: %w", h.HTTPGet.Path, name, podFormat(t.Pod), err)
		}
		return nil
	case h.Sleep != nil:
		if !k.sleep(ctx, time.Duration(h.Sleep.Seconds)*time.Second) {
			return errors.New("container terminated before sleep hook finished")
		}
		return nil
	}
	return fmt.Errorf("lifecycle hook for container %q in pod %q: no supported handler", name, podFormat(t.Pod))
}

// httpHook sends an httpGet hook's request; any response will do.
func (k *Kubelet) httpHook(ctx context.Context, t probeTarget, a *corev1.HTTPGetAction) error {
	if k.simulated() {
		return nil
	}
	if a.Host == "" && t.PodIP == "" {
		return errNoPodIP
	}
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return err
	}
	req, err := newHTTPGetRequest(ctx, httpGetURL(a, t.PodIP, port), a.HTTPHeaders, "kube-lifecycle/"+k.runner.version)
	if err != nil {
		return err
	}
	resp, err := k.runner.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeOutput))
	return resp.Body.Close()
}

// postStart runs a started container's postStart hook, if it has one. On
// failure it kills the container, which its restart policy then
// restarts, and reports false.
func (k *Kubelet) postStart(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id, podIP string) bool {
	if spec.Lifecycle == nil || spec.Lifecycle.PostStart == nil {
		return true
	}
	t := probeTarget{Pod: pod, Container: spec, ContainerID: id, PodIP: podIP}
	err := k.runHook(ctx, t, spec.Lifecycle.PostStart)
	if err == nil || ctx.Err() != nil {
		return err == nil
	}
	k.log.Info("postStart hook failed", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "err", err)
	k.event(pod, spec, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed")
	k.markKilled(pod.UID, id)
	c := &Container{ID: id, Name: spec.Name, State: ContainerRunning}
	if err := k.stopContainer(ctx, pod, c, podGrace(pod), podIP); err != nil {
		k.log.Error("kill container after failed postStart hook", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "err", err)
	}
	return false
}

// podGrace is a pod's terminationGracePeriodSeconds (default 30 s).
func podGrace(pod *corev1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return defaultTerminationGrace
}

// specOf returns the spec of a container of the pod, init or not.
func specOf(pod *corev1.Pod, name string) *corev1.Container {
	if c := findContainer(pod, name, false); c != nil {
		return c
	}
	return findContainer(pod, name, true)
}

// stopContainer stops one container within grace: a running container's
// preStop hook first, bounded by grace, then the runtime's stop with what
// is left of it (at least minStopGrace).
func (k *Kubelet) stopContainer(ctx context.Context, pod *corev1.Pod, c *Container, grace time.Duration, podIP string) error {
	spec := specOf(pod, c.Name)
	if c.State == ContainerRunning && spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		start := k.clock.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		err := k.runHook(hctx, probeTarget{Pod: pod, Container: spec, ContainerID: c.ID, PodIP: podIP}, spec.Lifecycle.PreStop)
		cancel()
		if err != nil {
			k.log.Info("preStop hook failed", "pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "err", err)
			k.event(pod, spec, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed")
		}
		grace -= k.clock.Since(start)
	}
	if err := k.rt.StopContainer(ctx, c.ID, max(grace, minStopGrace)); err != nil {
		return fmt.Errorf("pod %s/%s: stop container %q: %w", pod.Namespace, pod.Name, c.Name, err)
	}
	return nil
}

// stopContainers stops the given containers of a pod at once, each within
// grace, and returns the first error.
func (k *Kubelet) stopContainers(ctx context.Context, pod *corev1.Pod, cs []*Container, grace time.Duration, podIP string) error {
	if len(cs) == 1 {
		return k.stopContainer(ctx, pod, cs[0], grace, podIP)
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k.stopContainer(ctx, pod, c, grace, podIP)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// markKilled remembers that the kubelet killed a container (a failed
// probe or postStart hook), so it is restarted under OnFailure whatever
// its exit code.
func (k *Kubelet) markKilled(uid types.UID, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed[uid] == nil {
		k.killed[uid] = map[string]bool{}
	}
	k.killed[uid][id] = true
}

// killedIn returns the containers of rt the kubelet killed, forgetting
// those the runtime no longer holds.
func (k *Kubelet) killedIn(uid types.UID, rt podRuntime) map[string]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	ids := k.killed[uid]
	if len(ids) == 0 {
		return nil
	}
	present := map[string]bool{}
	for _, cs := range rt.Containers {
		for _, c := range cs {
			present[c.ID] = true
		}
	}
	for id := range ids {
		if !present[id] {
			delete(ids, id)
		}
	}
	if len(ids) == 0 {
		delete(k.killed, uid)
		return nil
	}
	out := make(map[string]bool, len(ids))
	for id := range ids {
		out[id] = true
	}
	return out
}

// killUnhealthy kills the running containers whose liveness or startup
// probe failed, with upstream's events, and reports whether it killed
// any. The restart policy restarts them.
func (k *Kubelet) killUnhealthy(ctx context.Context, pod *corev1.Pod, rt podRuntime, podIP string) (bool, error) {
	failed := k.probes.failed(pod.UID)
	if len(failed) == 0 {
		return false, nil
	}
	killed := false
	for name, cs := range rt.Containers {
		c := &cs[0]
		kind, ok := failed[c.ID]
		if !ok || c.State != ContainerRunning {
			continue
		}
		spec := specOf(pod, name)
		grace := podGrace(pod)
		if pr := probeOf(spec, kind); pr != nil && pr.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
		}
		k.event(pod, spec, corev1.EventTypeNormal, "Killing",
			fmt.Sprintf("Container %s failed %s probe, will be restarted", name, strings.ToLower(kind.String())))
		k.log.Info("killing unhealthy container", "pod", pod.Namespace+"/"+pod.Name, "container", name, "probe", kind.String())
		k.markKilled(pod.UID, c.ID)
		if err := k.stopContainer(ctx, pod, c, grace, podIP); err != nil {
			return killed, err
		}
		killed = true
	}
	return killed, nil
}
