package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestReplacedStartFailure(t *testing.T) {
	failed := Container{PodUID: "u1", Name: "c", Attempt: 2}
	tests := []struct {
		name       string
		containers []Container
		want       bool
	}{
		{name: "nothing in the runtime", want: false},
		{name: "an earlier attempt", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 1}}, want: false},
		{name: "the same attempt (created, then failed to start)", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 2}}, want: false},
		{name: "a later attempt", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 3}}, want: true},
		{name: "a later attempt of another container", containers: []Container{{PodUID: "u1", Name: "d", Attempt: 5}}, want: false},
		{name: "a later attempt in another pod", containers: []Container{{PodUID: "u2", Name: "c", Attempt: 5}}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replacedStartFailure(failed, tt.containers); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if a, b := startFailureID("u1/c", 1), startFailureID("u1/c", 2); a == b || len(a) != 64 {
		t.Errorf("startFailureID: got %q and %q, want distinct 64-character IDs", a, b)
	}
}

// TestStartErrorStatus: a container whose start failed shows as upstream
// shows it: waiting RunContainerError (the start's error) with the
// StartError as its last state while it is about to be started again,
// CrashLoopBackOff once it backs off, and terminated StartError when
// nothing restarts it.
func TestStartErrorStatus(t *testing.T) {
	now := t0.Add(time.Hour)
	failed := func(name string) Container {
		c := ctr(name, 1, ContainerExited, startErrorExitCode, now)
		c.Reason, c.Message = terminatedStartError, `exec: "nosuch": executable file not found in $PATH`
		return c
	}
	T, F := corev1.ConditionTrue, corev1.ConditionFalse
	tests := []struct {
		name     string
		pod      *corev1.Pod
		backoff  map[string]time.Duration
		terminal bool
		want     summary
		wantLast bool // lastState is the StartError
	}{
		{name: "Always, about to restart", pod: testPod("Always", nil, "a"),
			want: summary{"Running", T, T, F, F, "W:RunContainerError ", 1}, wantLast: true},
		{name: "Always, backing off", pod: testPod("Always", nil, "a"), backoff: map[string]time.Duration{"a": 10 * time.Second},
			want: summary{"Running", T, T, F, F, "W:CrashLoopBackOff ", 1}, wantLast: true},
		{name: "OnFailure", pod: testPod("OnFailure", nil, "a"),
			want: summary{"Running", T, T, F, F, "W:RunContainerError ", 1}, wantLast: true},
		{name: "Never: terminated, Failed", pod: testPod("Never", nil, "a"),
			want: summary{"Failed", T, T, F, F, "T:StartError ", 1}},
		{name: "being deleted: terminated", pod: testPod("Always", nil, "a"), terminal: true,
			want: summary{"Failed", T, T, F, F, "T:StartError ", 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := generatePodStatus(statusInput{Pod: tt.pod, Runtime: newPodRuntime(readySandbox(), []Container{failed("a")}), Scheme: "sim",
				HostIPs: []string{"192.0.2.1"}, Backoff: tt.backoff, Terminal: tt.terminal, Now: now})
			if got := summarize(s); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			cs := s.ContainerStatuses[0]
			last := cs.LastTerminationState.Terminated
			if tt.wantLast && (last == nil || last.Reason != "StartError" || last.ExitCode != 128) {
				t.Errorf("lastState: got %+v, want terminated StartError 128", cs.LastTerminationState)
			}
			if w := cs.State.Waiting; w != nil && w.Reason == "RunContainerError" && w.Message != failed("a").Message {
				t.Errorf("waiting message: got %q, want the start's error", w.Message)
			}
		})
	}
}
