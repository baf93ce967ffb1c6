package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFailedSchedulingMessage(t *testing.T) {
	never := v1.PreemptNever
	cp := "node-role.kubernetes.io/control-plane"
	tests := []struct {
		name     string
		nodes    []*v1.Node
		existing []*v1.Pod
		pod      *v1.Pod
		want     string
	}{
		{
			name:  "taint and insufficient cpu, preemption not helpful (request above allocatable)",
			nodes: nodes(node("cp").taint(cp, "", v1.TaintEffectNoSchedule), node("w1").cpu("2"), node("w2").cpu("2")),
			pod:   pod("p").req("3", "").obj(),
			want:  "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
		},
		{
			name:     "no lower-priority pods to evict",
			nodes:    nodes(node("cp").taint(cp, "", v1.TaintEffectNoSchedule), node("w1").cpu("2"), node("w2").cpu("2")),
			existing: pods(pod("x").on("w1").req("2", ""), pod("y").on("w2").req("2", "")),
			pod:      pod("p").req("1", "").obj(),
			want:     "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
		},
		{
			name:  "preemptionPolicy Never",
			nodes: nodes(node("w1").cpu("1")),
			pod:   func() *v1.Pod { p := pod("p").req("2", "").obj(); p.Spec.PreemptionPolicy = &never; return p }(),
			want:  "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.",
		},
		{
			name:  "reasons sort as strings; several reasons on one node each count",
			nodes: nodes(node("a").cpu("1").mem("1Gi").label("x", "y"), node("b").cpu("1").label("x", "y"), node("c")),
			pod:   pod("p").req("2", "2Gi").selector("x", "y").obj(),
			want:  "0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
		},
		{
			name: "no nodes",
			pod:  pod("p").obj(),
			want: "no nodes available to schedule pods",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := NewSnapshot(tt.nodes, tt.existing)
			d := Schedule(snap, tt.pod, 0)
			if d.FitError == nil {
				t.Fatalf("got node %q, want a failure", d.Node)
			}
			if len(snap.Nodes) > 0 {
				cand, msg := Preempt(snap, tt.pod, d.FitError, nil)
				if cand != nil {
					t.Fatalf("got preemption candidate %s, want none", cand.Node)
				}
				d.FitError.PostFilterMsg = msg
			}
			mustEqual(t, "message", d.FitError.Error(), tt.want)
		})
	}
}

func TestScheduleSpreadsAndAvoidsFullNodes(t *testing.T) {
	snap := NewSnapshot(nodes(node("a"), node("b"), node("c").cpu("1")), nil)
	counts := map[string]int{}
	start := 0
	for i := 0; i < 6; i++ {
		p := pod(fmt.Sprint("p", i)).req("500m", "").obj()
		d := Schedule(snap, p, start)
		if d.FitError != nil {
			t.Fatalf("pod %d: %v", i, d.FitError)
		}
		start = d.NextStart
		p.Spec.NodeName = d.Node
		snap.nodeByName(d.Node).AddPod(NewPodInfo(p))
		counts[d.Node]++
	}
	// LeastAllocated keeps the 4-cpu nodes ahead of the 1-cpu one.
	got := fmt.Sprintf("a=%d b=%d c=%d", counts["a"], counts["b"], counts["c"])
	mustEqual(t, "placement", got, "a=3 b=3 c=0")
}

func TestScheduleNominatedNodeFirst(t *testing.T) {
	snap := NewSnapshot(nodes(node("a"), node("b")), pods(pod("x").on("b").req("3", "")))
	p := pod("p").obj()
	p.Status.NominatedNodeName = "b"
	mustEqual(t, "node", Schedule(snap, p, 0).Node, "b")
}

func TestPreemptionCandidateChoice(t *testing.T) {
	at := func(p podB, sec int) podB {
		p.p.Status.StartTime = &metav1.Time{Time: time.Unix(int64(sec), 0)}
		return p
	}
	tests := []struct {
		name     string
		nodes    []*v1.Node
		existing []*v1.Pod
		pod      *v1.Pod
		want     string // node: victims
	}{
		{
			name:     "lowest highest-victim priority wins",
			nodes:    nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(50), pod("b1").on("b").req("2", "").prio(10)),
			pod:      pod("p").req("1", "").prio(100).obj(),
			want:     "b: b1",
		},
		{
			name:     "then the smallest sum of priorities",
			nodes:    nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("1", "").prio(10), pod("a2").on("a").req("1", "").prio(10), pod("b1").on("b").req("1", "").prio(10), pod("b2").on("b").req("1", "").prio(5)),
			pod:      pod("p").req("2", "").prio(100).obj(),
			want:     "b: b1,b2",
		},
		{
			name:     "then the fewest victims",
			nodes:    nodes(node("a").cpu("3"), node("b").cpu("3")),
			existing: pods(pod("a1").on("a").req("1", "").prio(0), pod("a2").on("a").req("1", "").prio(0), pod("a3").on("a").req("1", "").prio(0), pod("b1").on("b").req("3", "").prio(0)),
			pod:      pod("p").req("2", "").prio(100).obj(),
			// both sums are equal per victim count only when counts equal: a needs 2 victims (sum 2*(2^31)), b one.
			want: "b: b1",
		},
		{
			name:  "then the latest start of the highest-priority victims",
			nodes: nodes(node("a").cpu("1"), node("b").cpu("1")),
			existing: pods(at(pod("old").on("a").req("1", "").prio(1), 100),
				at(pod("new").on("b").req("1", "").prio(1), 200)),
			pod:  pod("p").req("1", "").prio(100).obj(),
			want: "b: new",
		},
		{
			name:     "reprieve: only as many victims as needed, the most important kept",
			nodes:    nodes(node("a").cpu("3")),
			existing: pods(pod("hi").on("a").req("1", "").prio(50), pod("lo").on("a").req("1", "").prio(1), pod("mid").on("a").req("1", "").prio(20)),
			pod:      pod("p").req("1", "").prio(100).obj(),
			want:     "a: lo",
		},
		{
			name:     "higher-priority pods are never victims",
			nodes:    nodes(node("a").cpu("2"), node("b").cpu("2")),
			existing: pods(pod("a1").on("a").req("2", "").prio(1000), pod("b1").on("b").req("2", "").prio(1)),
			pod:      pod("p").req("1", "").prio(100).obj(),
			want:     "b: b1",
		},
		{
			name:     "anti-affinity victims: evicting the conflicting pod makes room",
			nodes:    nodes(node("a")),
			existing: pods(pod("x").on("a").label("app", "web").prio(0), pod("y").on("a").prio(0)),
			pod:      pod("p").prio(10).affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "web"})).obj(),
			want:     "a: x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := NewSnapshot(tt.nodes, tt.existing)
			d := Schedule(snap, tt.pod, 0)
			if d.FitError == nil {
				t.Fatalf("got node %q, want a failure first", d.Node)
			}
			cand, msg := Preempt(snap, tt.pod, d.FitError, nil)
			if cand == nil {
				t.Fatalf("got no candidate (%s), want %s", msg, tt.want)
			}
			var names []string
			for _, v := range cand.Victims {
				names = append(names, v.Name)
			}
			mustEqual(t, "candidate", cand.Node+": "+strings.Join(names, ","), tt.want)
		})
	}
}
