package nodelifecycle

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func TestSilentNodeGoesUnknownAndTainted(t *testing.T) {
	start := time.Unix(10000, 0)
	now := start
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(start)}}}}
	renew := metav1.NewMicroTime(start)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: "n1"}, Spec: coordinationv1.LeaseSpec{RenewTime: &renew}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "p"}, Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	client := fake.NewSimpleClientset(node, lease, pod)
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(f.Core().V1().Nodes(), f.Coordination().V1().Leases(), f.Core().V1().Pods(), client,
		Config{MonitorPeriod: time.Second, GracePeriod: 50 * time.Second, StartupGracePeriod: 60 * time.Second},
		record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Core().V1().Nodes().Informer().GetStore().Add(node)
	_ = f.Coordination().V1().Leases().Informer().GetStore().Add(lease)
	_ = f.Core().V1().Pods().Informer().GetStore().Add(pod)
	ctx := context.Background()
	if err := c.syncNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if s := condition(got, corev1.NodeReady).Status; s != corev1.ConditionTrue || len(got.Spec.Taints) != 0 {
		t.Fatalf("got Ready=%s taints %v right after a heartbeat, want True and none", s, got.Spec.Taints)
	}
	now = start.Add(51 * time.Second)
	if err := c.syncNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	got, _ = client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if r := condition(got, corev1.NodeReady); r.Status != corev1.ConditionUnknown || r.Reason != "NodeStatusUnknown" {
		t.Errorf("got Ready %+v after 51s of silence, want Unknown/NodeStatusUnknown", r)
	}
	var keys []string
	for _, tn := range got.Spec.Taints {
		keys = append(keys, tn.ToString())
	}
	if len(keys) != 2 || keys[0] != "node.kubernetes.io/unreachable:NoSchedule" || keys[1] != "node.kubernetes.io/unreachable:NoExecute" {
		t.Errorf("got taints %v, want unreachable NoSchedule and NoExecute", keys)
	}
	gp, _ := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if gp.Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("got pod Ready %s, want False", gp.Status.Conditions[0].Status)
	}

	// Taint manager: the pod has no toleration, so it is evicted at once.
	_ = f.Core().V1().Nodes().Informer().GetStore().Update(got)
	if err := c.syncPod(ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{}); err == nil {
		t.Error("got pod kept on an unreachable node without toleration, want evicted")
	}
}
