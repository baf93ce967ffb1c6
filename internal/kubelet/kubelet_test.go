package kubelet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
)

// start runs a kubelet for node n1 against a fake API until the test ends.
func start(t *testing.T, cs *fake.Clientset, mutate func(*kubelet.Config)) {
	t.Helper()
	capacity, err := kubelet.ParseCapacity("8", "32Gi", "110", "100Gi")
	if err != nil {
		t.Fatal(err)
	}
	cfg := kubelet.Config{
		Client: cs, NodeName: "n1", NodeIP: "192.0.2.10", Runtime: sim.New(sim.Options{}),
		Capacity: capacity, Labels: map[string]string{"role": "test"},
		Taints:         []corev1.Taint{{Key: "dedicated", Value: "x", Effect: corev1.TaintEffectNoSchedule}},
		KubeletVersion: "v1.37.2", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RelistPeriod: 50 * time.Millisecond, LeaseRenewInterval: 200 * time.Millisecond, StatusUpdateFrequency: 200 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	k, err := kubelet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

// eventually polls cond for up to 10 s and fails with its last observation.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s; last seen: %s", what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegistersNodeAndLease(t *testing.T) {
	cs := fake.NewClientset()
	start(t, cs, nil)
	ctx := context.Background()
	var node *corev1.Node
	eventually(t, "node registered and ready", func() (bool, string) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("conditions %v", n.Status.Conditions)
	})
	for k, v := range map[string]string{"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "role": "test"} {
		if node.Labels[k] != v {
			t.Errorf("label %s: got %q, want %q", k, node.Labels[k], v)
		}
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("taints: got %v, want dedicated=x:NoSchedule", node.Spec.Taints)
	}
	if got := node.Status.Capacity.Cpu().String(); got != "8" {
		t.Errorf("cpu capacity: got %s, want 8", got)
	}
	if got := node.Status.Allocatable.Pods().String(); got != "110" {
		t.Errorf("allocatable pods: got %s, want 110", got)
	}
	var ready corev1.NodeCondition
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c
		}
	}
	if ready.Reason != "KubeletReady" || ready.Message != "kubelet is posting ready status" {
		t.Errorf("ready condition: got %q %q", ready.Reason, ready.Message)
	}
	if len(node.Status.Conditions) != 4 {
		t.Errorf("conditions: got %d, want 4 (memory, disk, pid pressure, ready)", len(node.Status.Conditions))
	}
	if node.Status.NodeInfo.ContainerRuntimeVersion != "sim://0.1.0" || node.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("node info: got %+v", node.Status.NodeInfo)
	}
	if len(node.Status.Addresses) != 2 || node.Status.Addresses[0].Address != "192.0.2.10" {
		t.Errorf("addresses: got %v, want InternalIP 192.0.2.10 and Hostname", node.Status.Addresses)
	}

	// The lease is renewed.
	var first time.Time
	eventually(t, "lease created", func() (bool, string) {
		l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 40 || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" {
			return false, fmt.Sprintf("lease %+v", l)
		}
		first = l.Spec.RenewTime.Time
		return true, ""
	})
	eventually(t, "lease renewed", func() (bool, string) {
		l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return l.Spec.RenewTime.After(first), fmt.Sprintf("renewTime %v, first %v", l.Spec.RenewTime, first)
	})

	// A deleted node comes back.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node registered again", func() (bool, string) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(n.Status.Conditions) == 4, fmt.Sprintf("%v", n.Status.Conditions)
	})
}

func pod(name string, policy corev1.RestartPolicy, env ...corev1.EnvVar) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "c", Image: "nginx", Env: env}}},
	}
}

func getPod(t *testing.T, cs *fake.Clientset, name string) (*corev1.Pod, error) {
	t.Helper()
	return cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
}

func TestPodLifecycle(t *testing.T) {
	cs := fake.NewClientset()
	start(t, cs, nil)
	ctx := context.Background()
	p := pod("web", corev1.RestartPolicyAlways)
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod running and ready", func() (bool, string) {
		p, err := getPod(t, cs, "web")
		if err != nil {
			return false, err.Error()
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		return p.Status.Phase == corev1.PodRunning && ready && p.Status.PodIP != "" && p.Status.HostIP == "192.0.2.10",
			fmt.Sprintf("%+v", p.Status)
	})
	p, _ = getPod(t, cs, "web")
	if cs := p.Status.ContainerStatuses[0]; cs.ContainerID == "" || cs.State.Running == nil || !cs.Ready {
		t.Errorf("container status: got %+v, want running, ready, with an ID", cs)
	}

	// Graceful deletion as the API server does it: mark, then the kubelet
	// stops the pod and deletes it with grace 0.
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.DeletionGracePeriodSeconds = new(int64)
	*p.DeletionGracePeriodSeconds = 30
	if _, err := cs.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod deleted by the kubelet", func() (bool, string) {
		p, err := getPod(t, cs, "web")
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("pod %v err %v", p.Status.Phase, err)
	})
	var deletes int
	for _, a := range cs.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			deletes++
		}
	}
	// A sync queued before the informer saw the deletion may delete once
	// more (the API answers NotFound); more than that is a loop.
	if deletes < 1 || deletes > 2 {
		t.Errorf("pod deletes: got %d, want 1 (or 2 when a queued sync raced the informer)", deletes)
	}
}

func TestRestartPolicies(t *testing.T) {
	cs := fake.NewClientset()
	start(t, cs, nil)
	ctx := context.Background()
	fail := corev1.EnvVar{Name: sim.EnvExitCode, Value: "3"}
	ok := corev1.EnvVar{Name: sim.EnvRunSeconds, Value: "0.2"}
	cases := []struct {
		name      string
		policy    corev1.RestartPolicy
		env       []corev1.EnvVar
		wantPhase corev1.PodPhase
		wantState string
	}{
		{"never-fail", corev1.RestartPolicyNever, []corev1.EnvVar{fail}, corev1.PodFailed, "Error"},
		{"never-ok", corev1.RestartPolicyNever, []corev1.EnvVar{ok}, corev1.PodSucceeded, "Completed"},
		{"onfailure-ok", corev1.RestartPolicyOnFailure, []corev1.EnvVar{ok}, corev1.PodSucceeded, "Completed"},
		{"onfailure-fail-twice", corev1.RestartPolicyOnFailure, []corev1.EnvVar{{Name: sim.EnvFailTimes, Value: "1"}, ok}, corev1.PodSucceeded, "Completed"},
	}
	for _, c := range cases {
		p := pod(c.name, c.policy, c.env...)
		p.UID = k8stypes.UID("uid-" + c.name)
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		eventually(t, c.name, func() (bool, string) {
			p, err := getPod(t, cs, c.name)
			if err != nil {
				return false, err.Error()
			}
			if p.Status.Phase != c.wantPhase || len(p.Status.ContainerStatuses) != 1 {
				return false, fmt.Sprintf("phase %s statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
			}
			term := p.Status.ContainerStatuses[0].State.Terminated
			return term != nil && term.Reason == c.wantState, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
		})
	}
	p, _ := getPod(t, cs, "onfailure-fail-twice")
	if got := p.Status.ContainerStatuses[0].RestartCount; got != 1 {
		t.Errorf("onfailure-fail-twice restarts: got %d, want 1", got)
	}

	// Always: the restart count goes up, then the container waits in
	// CrashLoopBackOff (the first restart is immediate, the next 10 s
	// later).
	crash := pod("crash", corev1.RestartPolicyAlways, fail)
	if _, err := cs.CoreV1().Pods("default").Create(ctx, crash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "crash loop", func() (bool, string) {
		p, err := getPod(t, cs, "crash")
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodRunning && s.RestartCount == 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
				s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode == 3,
			fmt.Sprintf("phase %s %+v", p.Status.Phase, s)
	})
}
