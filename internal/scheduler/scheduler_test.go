package scheduler

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// newFakeClient returns a fake clientset whose pods/binding sets
// spec.nodeName, as the API server does.
func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset(objs...)
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := action.(k8stesting.CreateAction)
		if !ok || ca.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := ca.GetObject().(*v1.Binding)
		obj, err := client.Tracker().Get(podsGVR, b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		p := obj.(*v1.Pod).DeepCopy()
		p.Spec.NodeName = b.Target.Name
		return true, b, client.Tracker().Update(podsGVR, p, p.Namespace)
	})
	return client
}

func runScheduler(t *testing.T, client *fake.Clientset) {
	t.Helper()
	s, err := New(Config{Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// waitFor polls cond until it is true or 10s pass.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
}

func TestSchedulerBindsPods(t *testing.T) {
	client := newFakeClient(
		node("small").cpu("1").obj(),
		node("big").cpu("8").obj(),
		node("tainted").cpu("16").taint("dedicated", "x", v1.TaintEffectNoSchedule).obj(),
		pod("web").req("2", "").obj(),
		pod("other").req("100m", "").obj(),
	)
	// A pod for another scheduler stays alone.
	foreign := pod("foreign").obj()
	foreign.Spec.SchedulerName = "someone-else"
	if _, err := client.CoreV1().Pods("default").Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runScheduler(t, client)

	waitFor(t, "pod web bound to big", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Spec.NodeName == "big", "nodeName=" + p.Spec.NodeName
	})
	waitFor(t, "pod other bound", func() (bool, string) {
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "other", metav1.GetOptions{})
		return p.Spec.NodeName != "" && p.Spec.NodeName != "tainted", "nodeName=" + p.Spec.NodeName
	})
	waitFor(t, "a Scheduled event", func() (bool, string) {
		evs, _ := client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		var msgs []string
		for _, e := range evs.Items {
			if e.Reason == "Scheduled" && e.Message == "Successfully assigned default/web to big" && e.Source.Component == DefaultSchedulerName {
				return true, ""
			}
			msgs = append(msgs, e.Reason+": "+e.Message)
		}
		return false, strings.Join(msgs, " | ")
	})
	p, _ := client.CoreV1().Pods("default").Get(context.Background(), "foreign", metav1.GetOptions{})
	mustEqual(t, "foreign pod's node", p.Spec.NodeName, "")
}

func TestSchedulerReportsUnschedulable(t *testing.T) {
	client := newFakeClient(
		node("n1").cpu("1").obj(),
		node("cp").taint("node-role.kubernetes.io/control-plane", "", v1.TaintEffectNoSchedule).obj(),
		pod("huge").req("2", "").obj(),
	)
	runScheduler(t, client)
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	waitFor(t, "PodScheduled=False condition", func() (bool, string) {
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "huge", metav1.GetOptions{})
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled {
				return c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable && c.Message == want, c.Reason + ": " + c.Message
			}
		}
		return false, "no condition"
	})
	waitFor(t, "FailedScheduling event", func() (bool, string) {
		evs, _ := client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.Reason == "FailedScheduling" {
				return e.Message == want && e.Type == v1.EventTypeWarning, e.Message
			}
		}
		return false, "none"
	})

	// A bigger node arrives: the pod is retried and bound there.
	if _, err := client.CoreV1().Nodes().Create(context.Background(), node("n2").cpu("4").obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod bound to the new node", func() (bool, string) {
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "huge", metav1.GetOptions{})
		return p.Spec.NodeName == "n2", "nodeName=" + p.Spec.NodeName
	})
}

func TestSchedulerPreempts(t *testing.T) {
	client := newFakeClient(
		node("n1").cpu("2").obj(),
		pod("victim").on("n1").req("2", "").prio(1).obj(),
		pod("vip").req("1", "").prio(1000).obj(),
	)
	runScheduler(t, client)
	waitFor(t, "victim deleted", func() (bool, string) {
		_, err := client.CoreV1().Pods("default").Get(context.Background(), "victim", metav1.GetOptions{})
		return err != nil, "still there"
	})
	waitFor(t, "preemptor bound", func() (bool, string) {
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "vip", metav1.GetOptions{})
		return p.Spec.NodeName == "n1", "nodeName=" + p.Spec.NodeName + " nominated=" + p.Status.NominatedNodeName
	})
}

func TestLeaderElectionTakesLease(t *testing.T) {
	client := newFakeClient(node("n1").obj(), pod("p").obj())
	s, err := New(Config{Client: client, LeaderElect: true, Identity: "me", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "lease held and pod bound", func() (bool, string) {
		l, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-scheduler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "me" && p.Spec.NodeName == "n1", "node=" + p.Spec.NodeName
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
