package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
)

// summary is the part of a pod status the tables compare.
type summary struct {
	phase                                 corev1.PodPhase
	readyToStart, initialized, ready, crs corev1.ConditionStatus
	states                                string // per container in status order: W:reason, R, T:reason
	restarts                              int32
}

func summarize(s corev1.PodStatus) summary {
	out := summary{phase: s.Phase}
	for _, c := range s.Conditions {
		switch c.Type {
		case corev1.PodReadyToStartContainers:
			out.readyToStart = c.Status
		case corev1.PodInitialized:
			out.initialized = c.Status
		case corev1.PodReady:
			out.ready = c.Status
		case corev1.ContainersReady:
			out.crs = c.Status
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), s.InitContainerStatuses...), s.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			out.states += "W:" + cs.State.Waiting.Reason + " "
		case cs.State.Running != nil:
			out.states += "R "
		case cs.State.Terminated != nil:
			out.states += "T:" + cs.State.Terminated.Reason + " "
		}
		out.restarts += cs.RestartCount
	}
	return out
}

func TestGeneratePodStatus(t *testing.T) {
	now := t0.Add(time.Hour)
	T, F := corev1.ConditionTrue, corev1.ConditionFalse
	sidecar := corev1.Container{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	tests := []struct {
		name       string
		pod        *corev1.Pod
		sandboxes  []Sandbox
		containers []Container
		backoff    map[string]time.Duration
		terminal   bool
		want       summary
	}{
		{name: "nothing yet", pod: testPod("Always", nil, "a"),
			want: summary{"Pending", F, T, F, F, "W:ContainerCreating ", 0}},
		{name: "init running", pod: testPod("Always", []corev1.Container{{Name: "i"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i", 0, ContainerRunning, 0, time.Time{})},
			want: summary{"Pending", T, F, F, F, "R W:PodInitializing ", 0}},
		{name: "running", pod: testPod("Always", nil, "a", "b"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerRunning, 0, time.Time{}), ctr("b", 0, ContainerRunning, 0, time.Time{})},
			want: summary{"Running", T, T, T, T, "R R ", 0}},
		{name: "one of two running", pod: testPod("Always", nil, "a", "b"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerRunning, 0, time.Time{})},
			want: summary{"Pending", T, T, F, F, "R W:ContainerCreating ", 0}},
		{name: "init done, sidecar running", pod: testPod("Always", []corev1.Container{sidecar, {Name: "i"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("side", 0, ContainerRunning, 0, time.Time{}), ctr("i", 0, ContainerExited, 0, now), ctr("a", 0, ContainerRunning, 0, time.Time{})},
			want: summary{"Running", T, T, T, T, "R T:Completed R ", 0}},
		{name: "Never, exit 0: Succeeded", pod: testPod("Never", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 0, now)},
			want: summary{"Succeeded", T, T, F, F, "T:Completed ", 0}},
		{name: "Never, exit 1: Failed", pod: testPod("Never", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 1, now)},
			want: summary{"Failed", T, T, F, F, "T:Error ", 0}},
		{name: "OnFailure, exit 1: Running", pod: testPod("OnFailure", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 0, ContainerExited, 1, now)},
			want: summary{"Running", T, T, F, F, "T:Error ", 0}},
		{name: "crash loop: Running, waiting", pod: testPod("Always", nil, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("a", 3, ContainerExited, 1, now), ctr("a", 2, ContainerExited, 1, now)},
			backoff: map[string]time.Duration{"a": 40 * time.Second},
			want:    summary{"Running", T, T, F, F, "W:CrashLoopBackOff ", 3}},
		{name: "init failed, Never: Failed", pod: testPod("Never", []corev1.Container{{Name: "i"}}, "a"),
			sandboxes: readySandbox(), containers: []Container{ctr("i", 0, ContainerExited, 1, now)},
			want: summary{"Failed", T, F, F, F, "T:Error W:PodInitializing ", 0}},
		{name: "deleted, stopped with 0: Succeeded", pod: testPod("Always", nil, "a"),
			sandboxes: []Sandbox{{ID: "sb", State: SandboxNotReady}}, containers: []Container{ctr("a", 0, ContainerExited, 0, now)},
			terminal: true, want: summary{"Succeeded", F, T, F, F, "T:Completed ", 0}},
		{name: "deleted, killed: Failed", pod: testPod("Always", nil, "a"),
			sandboxes: []Sandbox{{ID: "sb", State: SandboxNotReady}}, containers: []Container{ctr("a", 0, ContainerExited, 137, now)},
			terminal: true, want: summary{"Failed", F, T, F, F, "T:Error ", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := generatePodStatus(statusInput{Pod: tt.pod, Runtime: newPodRuntime(tt.sandboxes, tt.containers), Scheme: "sim",
				HostIPs: []string{"192.0.2.1"}, Backoff: tt.backoff, Terminal: tt.terminal, Now: now})
			if got := summarize(s); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestGeneratePodStatusDetails(t *testing.T) {
	now := t0.Add(time.Hour)
	pod := testPod("Always", nil, "b", "a")
	pod.Generation = 3
	rt := newPodRuntime(readySandbox(), []Container{
		{ID: "a1", Name: "a", Attempt: 1, State: ContainerRunning, StartedAt: now.Add(-1500 * time.Millisecond), ImageID: "img@sha256:1"},
		{ID: "a0", Name: "a", Attempt: 0, State: ContainerExited, ExitCode: 2, StartedAt: t0, FinishedAt: now.Add(-2 * time.Second)},
	})
	s := generatePodStatus(statusInput{Pod: pod, Runtime: rt, Scheme: "sim", HostIPs: []string{"192.0.2.1"}, Now: now})
	if s.PodIP != "10.0.0.2" || len(s.PodIPs) != 1 || s.HostIP != "192.0.2.1" || len(s.HostIPs) != 1 {
		t.Errorf("addresses: got podIP %q %v hostIP %q %v, want 10.0.0.2 and 192.0.2.1", s.PodIP, s.PodIPs, s.HostIP, s.HostIPs)
	}
	if s.ObservedGeneration != 3 {
		t.Errorf("observedGeneration: got %d, want 3", s.ObservedGeneration)
	}
	if s.ContainerStatuses[0].Name != "a" || s.ContainerStatuses[1].Name != "b" {
		t.Fatalf("container statuses: got %s, %s; want sorted by name", s.ContainerStatuses[0].Name, s.ContainerStatuses[1].Name)
	}
	a := s.ContainerStatuses[0]
	if a.ContainerID != "sim://a1" || a.RestartCount != 1 || !a.Ready || a.Started == nil || !*a.Started || a.ImageID != "img@sha256:1" {
		t.Errorf("container a: got %+v", a)
	}
	if a.State.Running == nil || !a.State.Running.StartedAt.Time.Equal(now.Add(-2*time.Second)) {
		t.Errorf("container a running since: got %+v, want %v (to the second)", a.State.Running, now.Add(-2*time.Second))
	}
	if lt := a.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 || lt.Reason != "Error" || lt.ContainerID != "sim://a0" {
		t.Errorf("container a last state: got %+v, want terminated 2 Error sim://a0", lt)
	}
	b := s.ContainerStatuses[1]
	if b.State.Waiting == nil || b.State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("container b: got %+v, want waiting ContainerCreating", b.State)
	}
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady && (c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [b]") {
			t.Errorf("ready condition: got %q %q, want ContainersNotReady \"containers with unready status: [b]\"", c.Reason, c.Message)
		}
		if c.ObservedGeneration != 3 {
			t.Errorf("condition %s observedGeneration: got %d, want 3", c.Type, c.ObservedGeneration)
		}
	}
	// Computing again from the written status changes nothing: otherwise
	// every sync would write.
	pod.Status = s
	again := generatePodStatus(statusInput{Pod: pod, Runtime: rt, Scheme: "sim", HostIPs: []string{"192.0.2.1"}, Now: now.Add(time.Minute)})
	if !apiequality.Semantic.DeepEqual(s, again) {
		t.Errorf("status not stable: got %+v, want %+v", again, s)
	}
}
