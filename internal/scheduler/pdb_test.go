package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pdb returns a PodDisruptionBudget in namespace default selecting
// app=<app>, allowing the given number of disruptions.
func pdb(name, app string, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

func TestPreemptionWeighsPodDisruptionBudgets(t *testing.T) {
	disrupted := pdb("db", "db", 0)
	disrupted.Status.DisruptedPods = map[string]metav1.Time{"a1": {}}
	otherNS := pdb("db", "db", 0)
	otherNS.Namespace = "other"
	emptySel := pdb("all", "db", 0)
	emptySel.Spec.Selector = &metav1.LabelSelector{}
	tests := []struct {
		name     string
		nodes    []*v1.Node
		existing []*v1.Pod
		pdbs     []*policyv1.PodDisruptionBudget
		pod      *v1.Pod
		want     string // node: victims (violations)
	}{
		{
			name:  "a node whose victim a budget protects loses to one without, despite a higher victim priority",
			nodes: nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(10).label("app", "db"),
				pod("b1").on("b").req("2", "").prio(50)),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 0)},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "b: b1 (0)",
		},
		{
			name:  "a budget with disruptions allowed does not count",
			nodes: nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(10).label("app", "db"),
				pod("b1").on("b").req("2", "").prio(50)),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 1)},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "a: a1 (0)",
		},
		{
			name:  "fewer violations win: two protected victims lose to one",
			nodes: nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("1", "").prio(1).label("app", "db"), pod("a2").on("a").req("1", "").prio(1).label("app", "db"),
				pod("b1").on("b").req("1", "").prio(50).label("app", "db"), pod("b2").on("b").req("1", "").prio(50)),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 0)},
			pod:  pod("p").req("2", "").prio(100).obj(),
			want: "b: b1,b2 (1)",
		},
		{
			name:     "a budget never forbids preemption: the only candidate violates it",
			nodes:    nodes(node("a").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(10).label("app", "db")),
			pdbs:     []*policyv1.PodDisruptionBudget{pdb("db", "db", 0)},
			pod:      pod("p").req("1", "").prio(100).obj(),
			want:     "a: a1 (1)",
		},
		{
			name:  "reprieve order: the protected pod is kept first, even below an unprotected one",
			nodes: nodes(node("a").cpu("2")),
			existing: pods(pod("hi").on("a").req("1", "").prio(20),
				pod("lo").on("a").req("1", "").prio(10).label("app", "db")),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 0)},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "a: hi (0)",
		},
		{
			name:  "victims count against the same budget: the second of two under a budget allowing one violates it and is kept first",
			nodes: nodes(node("a").cpu("2")),
			existing: pods(pod("hi").on("a").req("1", "").prio(20).label("app", "db"),
				pod("lo").on("a").req("1", "").prio(10).label("app", "db")),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 1)},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "a: hi (0)",
		},
		{
			name:  "both under a budget allowing one must go: one violation, victims most important first",
			nodes: nodes(node("a").cpu("2")),
			existing: pods(pod("lo").on("a").req("1", "").prio(10).label("app", "db"),
				pod("hi").on("a").req("1", "").prio(20).label("app", "db")),
			pdbs: []*policyv1.PodDisruptionBudget{pdb("db", "db", 1)},
			pod:  pod("p").req("2", "").prio(100).obj(),
			want: "a: hi,lo (1)",
		},
		{
			name:  "a pod already in disruptedPods neither spends nor violates the budget",
			nodes: nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(10).label("app", "db"),
				pod("b1").on("b").req("2", "").prio(50)),
			pdbs: []*policyv1.PodDisruptionBudget{disrupted},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "a: a1 (0)",
		},
		{
			name:  "budgets of another namespace, or with an empty selector, match nothing",
			nodes: nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(10).label("app", "db"),
				pod("b1").on("b").req("2", "").prio(50)),
			pdbs: []*policyv1.PodDisruptionBudget{otherNS, emptySel},
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "a: a1 (0)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := NewSnapshot(tt.nodes, tt.existing)
			d := Schedule(snap, tt.pod, 0)
			if d.FitError == nil {
				t.Fatalf("got node %q, want a failure first", d.Node)
			}
			cand, msg := Preempt(snap, tt.pod, d.FitError, tt.pdbs)
			if cand == nil {
				t.Fatalf("got no candidate (%s), want %s", msg, tt.want)
			}
			var names []string
			for _, v := range cand.Victims {
				names = append(names, v.Name)
			}
			got := fmt.Sprintf("%s: %s (%d)", cand.Node, strings.Join(names, ","), cand.PDBViolations)
			mustEqual(t, "candidate", got, tt.want)
		})
	}
}

// TestSchedulerPreemptionReadsBudgets runs the scheduler against a fake
// API: the budget in the API steers preemption away from the node whose
// victim it protects.
func TestSchedulerPreemptionReadsBudgets(t *testing.T) {
	client := newFakeClient(
		node("a").cpu("2").obj(),
		node("b").cpu("2").obj(),
		pod("protected").on("a").req("2", "").prio(1).label("app", "db").obj(),
		pod("free").on("b").req("2", "").prio(50).obj(),
		pdb("db", "db", 0),
		pod("vip").req("1", "").prio(1000).obj(),
	)
	runScheduler(t, client)
	waitFor(t, "unprotected victim deleted", func() (bool, string) {
		_, err := client.CoreV1().Pods("default").Get(context.Background(), "free", metav1.GetOptions{})
		return err != nil, "still there"
	})
	waitFor(t, "preemptor bound", func() (bool, string) {
		p, _ := client.CoreV1().Pods("default").Get(context.Background(), "vip", metav1.GetOptions{})
		return p.Spec.NodeName == "b", "nodeName=" + p.Spec.NodeName + " nominated=" + p.Status.NominatedNodeName
	})
	if _, err := client.CoreV1().Pods("default").Get(context.Background(), "protected", metav1.GetOptions{}); err != nil {
		t.Errorf("got protected pod gone (%v), want it kept", err)
	}
}
