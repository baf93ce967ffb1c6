package nodelifecycle

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestWantTaints(t *testing.T) {
	node := func(ready corev1.ConditionStatus, mem corev1.ConditionStatus, unsched bool) *corev1.Node {
		return &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: unsched}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: ready}, {Type: corev1.NodeMemoryPressure, Status: mem}}}}
	}
	tests := []struct {
		name string
		node *corev1.Node
		want []string
	}{
		{"ready", node(corev1.ConditionTrue, corev1.ConditionFalse, false), nil},
		{"not ready", node(corev1.ConditionFalse, corev1.ConditionFalse, false),
			[]string{"node.kubernetes.io/not-ready:NoSchedule", "node.kubernetes.io/not-ready:NoExecute"}},
		{"unknown", node(corev1.ConditionUnknown, corev1.ConditionFalse, false),
			[]string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}},
		{"memory pressure, cordoned", node(corev1.ConditionTrue, corev1.ConditionTrue, true),
			[]string{"node.kubernetes.io/memory-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tn := range WantTaints(tt.node) {
			got = append(got, tn.ToString())
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}

func TestReconcileTaints(t *testing.T) {
	old := metav1.NewTime(time.Unix(100, 0))
	now := metav1.NewTime(time.Unix(200, 0))
	cur := []corev1.Taint{
		{Key: "user", Value: "x", Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &old},
		{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
	}
	want := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}}
	got, changed := ReconcileTaints(cur, want, now)
	if !changed {
		t.Fatal("got unchanged, want changed")
	}
	if len(got) != 3 || got[0].Key != "user" || got[1].TimeAdded != &old || got[2].Key != corev1.TaintNodeUnreachable || got[2].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("got %+v, want user taint kept, unreachable NoExecute kept with its time, unreachable NoSchedule added, not-ready dropped", got)
	}
	if _, changed := ReconcileTaints(got, want, now); changed {
		t.Error("got changed on a second pass, want stable")
	}
}

func TestMarkUnknown(t *testing.T) {
	beat := metav1.NewTime(time.Unix(50, 0))
	now := metav1.NewTime(time.Unix(100, 0))
	st := corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: beat}}}
	if !MarkUnknown(&st, now) {
		t.Fatal("got no change, want change")
	}
	r := st.Conditions[0]
	if r.Status != corev1.ConditionUnknown || r.Reason != "NodeStatusUnknown" || r.Message != "Kubelet stopped posting node status." || !r.LastHeartbeatTime.Equal(&beat) {
		t.Errorf("got %+v, want Unknown/NodeStatusUnknown with heartbeat kept", r)
	}
	if len(st.Conditions) != 4 || st.Conditions[1].Reason != "NodeStatusNeverUpdated" {
		t.Errorf("got %d conditions (%+v), want 4 with missing ones NodeStatusNeverUpdated", len(st.Conditions), st.Conditions)
	}
	if MarkUnknown(&st, now) {
		t.Error("got change on a second pass, want none")
	}
}

func TestDecideEviction(t *testing.T) {
	added := metav1.NewTime(time.Unix(1000, 0))
	unreachable := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	tol := func(secs *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}}
	}
	pod := func(tols []corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Unix(10, 0))}, Spec: corev1.PodSpec{Tolerations: tols}}
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		taints []corev1.Taint
		now    int64
		want   Eviction
	}{
		{"no taints", pod(nil), nil, 1000, Eviction{Never: true}},
		{"not tolerated", pod(nil), unreachable, 1000, Eviction{Now: true}},
		{"tolerated forever", pod(tol(nil)), unreachable, 5000, Eviction{Never: true}},
		{"tolerated 300s, 100s in", pod(tol(ptr.To[int64](300))), unreachable, 1100, Eviction{After: 200 * time.Second}},
		{"tolerated 300s, expired", pod(tol(ptr.To[int64](300))), unreachable, 1300, Eviction{Now: true}},
		{"NoSchedule only", pod(nil), []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}, 1000, Eviction{Never: true}},
	}
	for _, tt := range tests {
		if got := DecideEviction(tt.pod, tt.taints, time.Unix(tt.now, 0)); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
