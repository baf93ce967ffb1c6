package kubelet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
)

// noExecRuntime is the simulated runtime, except that creating a
// container whose command is "nosuch" fails as runc's create does.
type noExecRuntime struct {
	kubelet.Runtime
}

func (r noExecRuntime) CreateContainer(ctx context.Context, sandboxID string, cfg kubelet.ContainerConfig) (string, error) {
	if slices.Equal(cfg.Command, []string{"nosuch"}) {
		return "", errors.New(`runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`)
	}
	return r.Runtime.CreateContainer(ctx, sandboxID, cfg)
}

// TestStartFailure: a container the runtime cannot start is reported as
// upstream's runtime reports it (terminated, StartError, exit code 128,
// the runtime's message) with a Failed event; under restartPolicy Always
// it is restarted into CrashLoopBackOff with a growing restart count,
// under Never the pod fails. Other pods are not affected.
func TestStartFailure(t *testing.T) {
	cs := fake.NewClientset()
	rec := record.NewFakeRecorder(10000)
	start(t, cs, func(c *kubelet.Config) {
		c.Recorder = rec
		c.Runtime = noExecRuntime{sim.New(sim.Options{})}
	})
	ctx := context.Background()
	always := pod("always", corev1.RestartPolicyAlways)
	never := pod("never", corev1.RestartPolicyNever)
	fine := pod("fine", corev1.RestartPolicyAlways)
	for _, p := range []*corev1.Pod{always, never} {
		p.Spec.Containers[0].Command = []string{"nosuch"}
	}
	for _, p := range []*corev1.Pod{always, never, fine} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const msg = `exec: "nosuch": executable file not found in $PATH`
	startError := func(term *corev1.ContainerStateTerminated) bool {
		return term != nil && term.Reason == "StartError" && term.ExitCode == 128 && strings.Contains(term.Message, msg)
	}
	eventually(t, "never: Failed with a StartError", func() (bool, string) {
		p, err := getPod(t, cs, "never")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodFailed && startError(s.State.Terminated) && s.ContainerID != "",
			fmt.Sprintf("phase %s state %+v", p.Status.Phase, s.State)
	})
	eventually(t, "always: CrashLoopBackOff after a StartError", func() (bool, string) {
		p, err := getPod(t, cs, "always")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodRunning && s.RestartCount == 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
				startError(s.LastTerminationState.Terminated),
			fmt.Sprintf("phase %s restarts %d state %+v last %+v", p.Status.Phase, s.RestartCount, s.State, s.LastTerminationState)
	})
	eventually(t, "fine: running", func() (bool, string) {
		p, err := getPod(t, cs, "fine")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	var events []string
	for len(rec.Events) > 0 {
		events = append(events, <-rec.Events)
	}
	want := "Warning Failed Error: " + `runc create failed: unable to start container process: ` + msg
	if !slices.Contains(events, want) {
		t.Errorf("events %q: want %q", events, want)
	}
	if !slices.Contains(events, "Warning BackOff Back-off restarting failed container c in pod always_default(uid-always)") {
		t.Errorf("events %q: want the BackOff event", events)
	}
}
