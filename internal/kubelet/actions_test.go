package kubelet

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func testPod(policy corev1.RestartPolicy, init []corev1.Container, names ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid1"},
		Spec:       corev1.PodSpec{RestartPolicy: policy, InitContainers: init, NodeName: "n1"},
	}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img"})
	}
	return p
}

func ctr(name string, attempt uint32, state ContainerState, code int32, finished time.Time) Container {
	return Container{ID: name + string(rune('0'+attempt)), Name: name, Attempt: attempt, State: state, ExitCode: code,
		StartedAt: finished.Add(-time.Second), FinishedAt: finished, CreatedAt: t0.Add(time.Duration(attempt) * time.Second)}
}

func readySandbox() []Sandbox {
	return []Sandbox{{ID: "sb", State: SandboxReady, IPs: []string{"10.0.0.2"}}}
}

func starts(a podActions) []string {
	var out []string
	for _, s := range a.Start {
		out = append(out, s.Name+"#"+string(rune('0'+s.Attempt)))
	}
	return out
}

func TestComputePodActions(t *testing.T) {
	sidecar := corev1.Container{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	now := t0.Add(time.Hour)
	tests := []struct {
		name       string
		pod        *corev1.Pod
		sandboxes  []Sandbox
		containers []Container
		backoff    map[string]backoffEntry
		wantStart  []string
		wantKill   bool
		wantNewSB  bool
		wantBO     []string
		wantRemove []string
	}{
		{name: "new pod: sandbox and all containers", pod: testPod("Always", nil, "a", "b"),
			wantNewSB: true, wantStart: []string{"a#0", "b#0"}},
		{name: "new pod with init: only the first init container", pod: testPod("Always", []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
			wantNewSB: true, wantStart: []string{"i1#0"}},
		{name: "sidecar first, then next init", pod: testPod("Always", []corev1.Container{sidecar, {Name: "i1"}}, "a"),
			wantNewSB: true, wantStart: []string{"side#0", "i1#0"}},
		{name: "init running: wait", pod: testPod("Always", []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i1", 0, ContainerRunning, 0, time.Time{})}},
		{name: "init done: next init", pod: testPod("Always", []corev1.Container{{Name: "i1"}, {Name: "i2"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i1", 0, ContainerExited, 0, now)}, wantStart: []string{"i2#0"}},
		{name: "all init done: containers", pod: testPod("Always", []corev1.Container{{Name: "i1"}}, "a", "b"),
			sandboxes: readySandbox(), containers: []Container{ctr("i1", 0, ContainerExited, 0, now)}, wantStart: []string{"a#0", "b#0"}},
		{name: "init failed, Never: nothing", pod: testPod("Never", []corev1.Container{{Name: "i1"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i1", 0, ContainerExited, 1, now)}},
		{name: "init failed, OnFailure: restart", pod: testPod("OnFailure", []corev1.Container{{Name: "i1"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i1", 0, ContainerExited, 1, now)}, wantStart: []string{"i1#1"}},
		{name: "running: nothing", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerRunning, 0, time.Time{})}},
		{name: "Always restarts success", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 0, now)}, wantStart: []string{"a#1"}},
		{name: "OnFailure keeps success", pod: testPod("OnFailure", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 0, now)}},
		{name: "OnFailure restarts failure", pod: testPod("OnFailure", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 2, now)}, wantStart: []string{"a#1"}},
		{name: "Never keeps failure", pod: testPod("Never", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 2, now)}},
		{name: "in backoff: wait", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 1, ContainerExited, 1, now.Add(-5*time.Second))},
			backoff: map[string]backoffEntry{"uid1/a": {Delay: 10 * time.Second, Updated: now.Add(-20 * time.Second)}},
			wantBO:  []string{"a"}},
		{name: "backoff over: restart", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 1, ContainerExited, 1, now.Add(-11*time.Second))},
			backoff:   map[string]backoffEntry{"uid1/a": {Delay: 10 * time.Second, Updated: now.Add(-20 * time.Second)}},
			wantStart: []string{"a#2"}},
		{name: "dead sandbox: new sandbox, attempts go on", pod: testPod("Always", nil, "a"),
			sandboxes: []Sandbox{{ID: "sb", State: SandboxNotReady}}, containers: []Container{ctr("a", 0, ContainerExited, 0, now)},
			wantKill: true, wantNewSB: true, wantStart: []string{"a#1"}},
		{name: "dead sandbox, Never: kill only", pod: testPod("Never", nil, "a"),
			sandboxes: []Sandbox{{ID: "sb", State: SandboxNotReady}}, containers: []Container{ctr("a", 0, ContainerExited, 0, now)},
			wantKill: true},
		{name: "old dead containers removed", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 2, ContainerRunning, 0, time.Time{}), ctr("a", 1, ContainerExited, 1, now), ctr("a", 0, ContainerExited, 1, now)},
			wantRemove: []string{"a0"}},
		{name: "sidecar restarted after containers started", pod: testPod("Always", []corev1.Container{sidecar}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("side", 0, ContainerExited, 1, now), ctr("a", 0, ContainerRunning, 0, time.Time{})},
			wantStart: []string{"side#1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := computePodActions(tt.pod, newPodRuntime(tt.sandboxes, tt.containers), tt.backoff, now)
			if got := starts(a); !reflect.DeepEqual(got, tt.wantStart) {
				t.Errorf("start: got %v, want %v", got, tt.wantStart)
			}
			if a.KillPod != tt.wantKill {
				t.Errorf("kill pod: got %v, want %v", a.KillPod, tt.wantKill)
			}
			if a.CreateSandbox != tt.wantNewSB {
				t.Errorf("create sandbox: got %v, want %v", a.CreateSandbox, tt.wantNewSB)
			}
			var bo []string
			for n := range a.Backoff {
				bo = append(bo, n)
			}
			if !reflect.DeepEqual(bo, tt.wantBO) {
				t.Errorf("backoff: got %v, want %v", bo, tt.wantBO)
			}
			if len(tt.wantBO) > 0 && a.RequeueAfter <= 0 {
				t.Errorf("requeue after: got %v, want > 0", a.RequeueAfter)
			}
			if !reflect.DeepEqual(a.Remove, tt.wantRemove) {
				t.Errorf("remove: got %v, want %v", a.Remove, tt.wantRemove)
			}
		})
	}
}

func TestComputePodActionsTerminating(t *testing.T) {
	pod := testPod("Always", nil, "a")
	pod.DeletionTimestamp = &metav1.Time{Time: t0}
	if a := computePodActions(pod, newPodRuntime(readySandbox(), nil), nil, t0); !a.KillPod || len(a.Start) > 0 {
		t.Errorf("terminating pod: got %+v, want KillPod and no starts", a)
	}
	pod = testPod("Never", nil, "a")
	pod.Status.Phase = corev1.PodSucceeded
	if a := computePodActions(pod, newPodRuntime(readySandbox(), nil), nil, t0); !a.KillPod || len(a.Start) > 0 {
		t.Errorf("succeeded pod: got %+v, want KillPod and no starts", a)
	}
}

func TestBackoffWait(t *testing.T) {
	now := t0
	tests := []struct {
		name      string
		entry     backoffEntry
		ok        bool
		finished  time.Time
		wantWait  time.Duration
		wantDelay time.Duration
	}{
		{"first restart is immediate, then 10s", backoffEntry{}, false, now, 0, 10 * time.Second},
		{"waits out the delay from the exit", backoffEntry{10 * time.Second, now.Add(-time.Minute)}, true, now.Add(-4 * time.Second), 6 * time.Second, 10 * time.Second},
		{"doubles after the wait", backoffEntry{10 * time.Second, now.Add(-time.Minute)}, true, now.Add(-10 * time.Second), 0, 20 * time.Second},
		{"capped at 5 minutes", backoffEntry{4 * time.Minute, now.Add(-5 * time.Minute)}, true, now.Add(-4 * time.Minute), 0, 5 * time.Minute},
		{"stays at 5 minutes", backoffEntry{5 * time.Minute, now.Add(-6 * time.Minute)}, true, now.Add(-5 * time.Minute), 0, 5 * time.Minute},
		{"reset after 10 minutes", backoffEntry{5 * time.Minute, now.Add(-10 * time.Minute)}, true, now.Add(-time.Second), 0, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, next := backoffWait(tt.entry, tt.ok, tt.finished, now)
			if wait != tt.wantWait {
				t.Errorf("wait: got %v, want %v", wait, tt.wantWait)
			}
			if next.Delay != tt.wantDelay {
				t.Errorf("next delay: got %v, want %v", next.Delay, tt.wantDelay)
			}
		})
	}
}
