package daemonset

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func TestShouldRun(t *testing.T) {
	ds := func(mut func(*corev1.PodSpec)) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{}
		if mut != nil {
			mut(&d.Spec.Template.Spec)
		}
		return d
	}
	tests := []struct {
		name      string
		node      *corev1.Node
		ds        *appsv1.DaemonSet
		run, cont bool
	}{
		{"plain node", node("n", nil), ds(nil), true, true},
		{"selector matches", node("n", map[string]string{"disk": "ssd"}), ds(func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"disk": "ssd"} }), true, true},
		{"selector misses", node("n", nil), ds(func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"disk": "ssd"} }), false, false},
		{"affinity misses", node("n", map[string]string{"zone": "b"}), ds(func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}}
		}), false, false},
		{"untolerated NoSchedule keeps existing", node("n", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}), ds(nil), false, true},
		{"untolerated NoExecute evicts", node("n", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}), ds(nil), false, false},
		{"tolerated NoExecute", node("n", nil, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}), ds(func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}), true, true},
		{"not-ready tolerated by default", node("n", nil, corev1.Taint{Key: taintNotReady, Effect: corev1.TaintEffectNoExecute}), ds(nil), true, true},
		{"cordoned tolerated by default", node("n", nil, corev1.Taint{Key: taintUnschedulable, Effect: corev1.TaintEffectNoSchedule}), ds(nil), true, true},
		{"network-unavailable only for host network", node("n", nil, corev1.Taint{Key: taintNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}), ds(nil), false, true},
		{"network-unavailable host network", node("n", nil, corev1.Taint{Key: taintNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}), ds(func(s *corev1.PodSpec) { s.HostNetwork = true }), true, true},
	}
	for _, tc := range tests {
		run, cont := ShouldRun(tc.node, tc.ds)
		if run != tc.run || cont != tc.cont {
			t.Errorf("%s: got run %v continue %v, want %v %v", tc.name, run, cont, tc.run, tc.cont)
		}
	}
}

// dpod: state "a" available, "p" pending; hash "new" or "old".
func dpod(name, node, hash, state string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{hashLabel: hash}}, Spec: corev1.PodSpec{NodeName: node}}
	if state == "a" {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	if state == "f" {
		p.Status.Phase = corev1.PodFailed
	}
	return p
}

func TestDecide(t *testing.T) {
	run := func(n string, pods ...*corev1.Pod) NodeState {
		return NodeState{Node: n, ShouldRun: true, ShouldContinue: true, Pods: pods}
	}
	tests := []struct {
		name       string
		in         PlanInput
		wantCreate []string
		wantDelete []string
	}{
		{"creates on empty nodes", PlanInput{Nodes: []NodeState{run("n1"), run("n2", dpod("a", "n2", "new", "a"))}, Hash: "new"}, []string{"n1"}, nil},
		{"removes from ineligible node", PlanInput{Nodes: []NodeState{{Node: "n1", Pods: []*corev1.Pod{dpod("a", "n1", "new", "a")}}}, Hash: "new"}, nil, []string{"a"}},
		{"replaces failed", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "new", "f"))}, Hash: "new"}, []string{"n1"}, []string{"a"}},
		{"maxUnavailable 1", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "old", "a")), run("n2", dpod("b", "n2", "old", "a"))}, Hash: "new", RollingUpdate: true, MaxUnavailable: 1}, nil, []string{"a"}},
		{"maxUnavailable 2", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "old", "a")), run("n2", dpod("b", "n2", "old", "a"))}, Hash: "new", RollingUpdate: true, MaxUnavailable: 2}, nil, []string{"a", "b"}},
		{"waits for new pod available", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "new", "p")), run("n2", dpod("b", "n2", "old", "a"))}, Hash: "new", RollingUpdate: true, MaxUnavailable: 1}, nil, nil},
		{"unavailable old deleted at once", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "new", "p")), run("n2", dpod("b", "n2", "old", "p"))}, Hash: "new", RollingUpdate: true, MaxUnavailable: 1}, nil, []string{"b"}},
		{"on delete leaves old", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "old", "a"))}, Hash: "new"}, nil, nil},
		{"surge creates beside old", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "old", "a")), run("n2", dpod("b", "n2", "old", "a"))}, Hash: "new", RollingUpdate: true, MaxSurge: 1}, []string{"n1"}, nil},
		{"surge deletes old when new available", PlanInput{Nodes: []NodeState{run("n1", dpod("a", "n1", "old", "a"), dpod("c", "n1", "new", "a")), run("n2", dpod("b", "n2", "old", "a"))}, Hash: "new", RollingUpdate: true, MaxSurge: 1}, []string{"n2"}, []string{"a"}},
	}
	for _, tc := range tests {
		plan := Decide(tc.in)
		var del []string
		for _, p := range plan.Delete {
			del = append(del, p.Name)
		}
		sort.Strings(del)
		if !slices.Equal(plan.Create, tc.wantCreate) || !slices.Equal(del, tc.wantDelete) {
			t.Errorf("%s: got create %v delete %v, want create %v delete %v", tc.name, plan.Create, del, tc.wantCreate, tc.wantDelete)
		}
	}
}

func TestSyncCreatesPinnedPods(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "u1", Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
	}
	n1, n2 := node("n1", nil), node("n2", nil, corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule})
	client := fake.NewClientset(ds, n1, n2)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Apps().V1().DaemonSets(), f.Core().V1().Nodes(), f.Core().V1().Pods(), f.Apps().V1().ControllerRevisions(), client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	_ = f.Apps().V1().DaemonSets().Informer().GetIndexer().Add(ds)
	_ = f.Core().V1().Nodes().Informer().GetIndexer().Add(n1)
	_ = f.Core().V1().Nodes().Informer().GetIndexer().Add(n2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, "ns/agent"); err != nil {
		t.Fatal(err)
	}
	pods, _ := client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Fatalf("got %d pods, want 1 (n2's taint is not tolerated)", len(pods.Items))
	}
	p := &pods.Items[0]
	if got := targetNode(p); got != "n1" {
		t.Errorf("got pod pinned to %q, want n1", got)
	}
	if p.Labels[hashLabel] == "" || len(p.Spec.Tolerations) != 6 {
		t.Errorf("got labels %v tolerations %d, want hash label and 6 default tolerations", p.Labels, len(p.Spec.Tolerations))
	}
	got, _ := client.AppsV1().DaemonSets("ns").Get(ctx, "agent", metav1.GetOptions{})
	if got.Status.DesiredNumberScheduled != 1 || got.Status.ObservedGeneration != 1 || got.Status.NumberUnavailable != 1 {
		t.Errorf("got status %+v, want desired 1, unavailable 1, observedGeneration 1", got.Status)
	}
}
