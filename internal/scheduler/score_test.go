package scheduler

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scoreString scores every node of snap for p (all assumed feasible).
func scoreString(snap *Snapshot, p *v1.Pod, plugin func(c *cycle, nodes []*NodeInfo) []int64) string {
	c := newCycle(snap, p)
	s := plugin(c, snap.Nodes)
	var out []string
	for i, ni := range snap.Nodes {
		out = append(out, fmt.Sprintf("%s=%d", ni.Node.Name, s[i]))
	}
	return strings.Join(out, " ")
}

func perNode(f func(c *cycle, ni *NodeInfo) int64) func(c *cycle, nodes []*NodeInfo) []int64 {
	return func(c *cycle, nodes []*NodeInfo) []int64 {
		out := make([]int64, len(nodes))
		for i, ni := range nodes {
			out[i] = f(c, ni)
		}
		return out
	}
}

func TestScores(t *testing.T) {
	zone := "topology.kubernetes.io/zone"
	least := perNode(func(c *cycle, ni *NodeInfo) int64 { return c.leastAllocated(ni) })
	balanced := perNode(func(c *cycle, ni *NodeInfo) int64 { return c.balanced(ni) })
	image := perNode(func(c *cycle, ni *NodeInfo) int64 { return c.imageLocality(ni) })
	interPod := func(c *cycle, nodes []*NodeInfo) []int64 {
		out := make([]int64, len(nodes))
		c.interPodScores(nodes, out)
		return out
	}
	spread := func(c *cycle, nodes []*NodeInfo) []int64 {
		out := make([]int64, len(nodes))
		c.spreadScores(nodes, out)
		return out
	}
	total := func(c *cycle, nodes []*NodeInfo) []int64 { return c.scores(nodes) }
	tests := []struct {
		name     string
		nodes    []*v1.Node
		existing []*v1.Pod
		pod      *v1.Pod
		plugin   func(c *cycle, nodes []*NodeInfo) []int64
		want     string
	}{
		{
			name:     "LeastAllocated: free share of cpu and memory, averaged",
			nodes:    nodes(node("a").cpu("4").mem("4Gi"), node("b").cpu("4").mem("4Gi")),
			existing: pods(pod("x").on("a").req("2", "2Gi")),
			pod:      pod("p").req("1", "1Gi").obj(),
			want:     "a=25 b=75", plugin: least,
		},
		{
			name:  "LeastAllocated: a pod without requests counts 100m and 200Mi",
			nodes: nodes(node("a").cpu("1").mem("1000Mi")),
			pod:   pod("p").obj(),
			want:  "a=85", plugin: least, // cpu 90, memory 80
		},
		{
			name:     "BalancedAllocation: equal cpu and memory shares score best",
			nodes:    nodes(node("a").cpu("4").mem("4Gi"), node("b").cpu("4").mem("4Gi")),
			existing: pods(pod("x").on("b").req("2", "")),
			pod:      pod("p").req("1", "1Gi").obj(),
			want:     "a=100 b=75", plugin: balanced, // b: cpu .75, mem .25, std .25
		},
		{
			name:  "ImageLocality: a node with a large image scores, scaled by how many nodes have it",
			nodes: nodes(node("a").image(500*1024*1024, "docker.io/library/nginx:latest"), node("b")),
			pod:   pod("p").image("nginx").obj(),
			want:  "a=23 b=0", plugin: image, // 250MiB effective: (250-23)/(1000-23)
		},
		{
			name:     "InterPodAffinity: preferred affinity to a zone and anti-affinity by host",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z1"), node("c").label(zone, "z2")),
			existing: pods(pod("db").on("a").label("app", "db")),
			pod: pod("p").affinity(&v1.Affinity{
				PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 10,
					PodAffinityTerm: v1.PodAffinityTerm{TopologyKey: zone, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}}},
				PodAntiAffinity: &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 5,
					PodAffinityTerm: v1.PodAffinityTerm{TopologyKey: v1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}}},
			}).obj(),
			want: "a=50 b=100 c=0", plugin: interPod, // a: 10-5, b: 10, c: 0
		},
		{
			name:     "PodTopologySpread ScheduleAnyway: fewer matching pods in the zone is better",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z1"), node("c").label(zone, "z2"), node("d")),
			existing: pods(pod("x").on("a").label("app", "web"), pod("y").on("b").label("app", "web")),
			pod:      pod("p").label("app", "web").spread(zone, 1, v1.ScheduleAnyway, map[string]string{"app": "web"}).obj(),
			want:     "a=0 b=0 c=100 d=0", plugin: spread,
		},
		{
			name:  "total: PreferNoSchedule taint weighs 3, preferred node affinity 2",
			nodes: nodes(node("a").taint("k", "v", v1.TaintEffectPreferNoSchedule), node("b"), node("c").label("disk", "ssd")),
			pod: pod("p").affinity(&v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
				{Weight: 7, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpIn, Values: []string{"ssd"}}}}},
			}}}).obj(),
			// fit 97 + balanced 100 on every node; taint 0/300/300; affinity 0/0/200.
			want: "a=197 b=497 c=697", plugin: total,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := NewSnapshot(tt.nodes, tt.existing)
			mustEqual(t, "scores", scoreString(snap, tt.pod, tt.plugin), tt.want)
		})
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for _, tt := range []struct{ all, want int }{{50, 50}, {100, 100}, {1000, 420}, {5000, 500}, {10000, 500}, {200, 100}} {
		mustEqual(t, fmt.Sprint(tt.all, " nodes"), numFeasibleNodesToFind(tt.all), tt.want)
	}
}
