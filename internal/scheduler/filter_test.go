package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFilters(t *testing.T) {
	zone := "topology.kubernetes.io/zone"
	sidecar := v1.ContainerRestartPolicyAlways
	tests := []struct {
		name     string
		nodes    []*v1.Node
		existing []*v1.Pod
		pod      *v1.Pod
		ns       []*v1.Namespace
		want     string
	}{
		{
			name:  "NodeUnschedulable refuses a cordoned node",
			nodes: nodes(node("a").unschedulable(), node("b")),
			pod:   pod("p").obj(),
			want:  "a=node(s) were unschedulable; b=ok",
		},
		{
			name:  "NodeUnschedulable lets the unschedulable toleration through",
			nodes: nodes(node("a").unschedulable()),
			pod:   pod("p").tolerate(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}).obj(),
			want:  "a=ok",
		},
		{
			name:  "NodeName",
			nodes: nodes(node("a"), node("b")),
			pod:   func() *v1.Pod { p := pod("p").obj(); p.Spec.NodeName = "b"; return p }(),
			want:  "a=node(s) didn't match the requested node name; b=ok",
		},
		{
			name:  "TaintToleration: NoSchedule and NoExecute refuse, PreferNoSchedule does not",
			nodes: nodes(node("a").taint("node-role.kubernetes.io/control-plane", "", v1.TaintEffectNoSchedule), node("b").taint("k", "v", v1.TaintEffectNoExecute), node("c").taint("k", "v", v1.TaintEffectPreferNoSchedule)),
			pod:   pod("p").obj(),
			want:  "a=node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }; b=node(s) had untolerated taint {k: v}; c=ok",
		},
		{
			name:  "TaintToleration: Equal with value and Exists without key",
			nodes: nodes(node("a").taint("k", "v", v1.TaintEffectNoSchedule), node("b").taint("k", "w", v1.TaintEffectNoSchedule)),
			pod:   pod("p").tolerate(v1.Toleration{Key: "k", Value: "v", Effect: v1.TaintEffectNoSchedule}).obj(),
			want:  "a=ok; b=node(s) had untolerated taint {k: w}",
		},
		{
			name:  "TaintToleration: empty key with Exists tolerates everything",
			nodes: nodes(node("a").taint("k", "v", v1.TaintEffectNoExecute)),
			pod:   pod("p").tolerate(v1.Toleration{Operator: v1.TolerationOpExists}).obj(),
			want:  "a=ok",
		},
		{
			name:  "nodeSelector",
			nodes: nodes(node("a").label("disk", "ssd"), node("b")),
			pod:   pod("p").selector("disk", "ssd").obj(),
			want:  "a=ok; b=node(s) didn't match Pod's node affinity/selector",
		},
		{
			name:  "required node affinity: matchExpressions terms are ORed",
			nodes: nodes(node("a").label(zone, "z1"), node("b").label(zone, "z2"), node("c").label(zone, "z3")),
			pod: pod("p").affinity(&v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{
					{MatchExpressions: []v1.NodeSelectorRequirement{{Key: zone, Operator: v1.NodeSelectorOpIn, Values: []string{"z1"}}}},
					{MatchExpressions: []v1.NodeSelectorRequirement{{Key: zone, Operator: v1.NodeSelectorOpIn, Values: []string{"z2"}}}},
				}}}}).obj(),
			want: "a=ok; b=ok; c=node(s) didn't match Pod's node affinity/selector",
		},
		{
			name:  "required node affinity: matchFields on metadata.name",
			nodes: nodes(node("a"), node("b")),
			pod: pod("p").affinity(&v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{
					{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"b"}}}},
				}}}}).obj(),
			want: "a=node(s) didn't match Pod's node affinity/selector; b=ok",
		},
		{
			name:     "NodePorts: same port and protocol conflicts, other protocol or IP does not",
			nodes:    nodes(node("a"), node("b"), node("c")),
			existing: pods(pod("x").on("a").hostPort(80, v1.ProtocolTCP, ""), pod("y").on("b").hostPort(80, v1.ProtocolUDP, ""), pod("z").on("c").hostPort(80, v1.ProtocolTCP, "10.0.0.1")),
			pod:      pod("p").hostPort(80, v1.ProtocolTCP, "10.0.0.2").obj(),
			want:     "a=node(s) didn't have free ports for the requested pod ports; b=ok; c=ok",
		},
		{
			name:     "NodePorts: 0.0.0.0 conflicts with any IP",
			nodes:    nodes(node("c")),
			existing: pods(pod("z").on("c").hostPort(80, v1.ProtocolTCP, "10.0.0.1")),
			pod:      pod("p").hostPort(80, "", "").obj(),
			want:     "c=node(s) didn't have free ports for the requested pod ports",
		},
		{
			name:     "NodeResourcesFit: cpu and memory, both reported",
			nodes:    nodes(node("a").cpu("2").mem("2Gi"), node("b")),
			existing: pods(pod("x").on("a").req("1500m", "1Gi")),
			pod:      pod("p").req("1", "1500Mi").obj(),
			want:     "a=Insufficient cpu+Insufficient memory; b=ok",
		},
		{
			name:     "NodeResourcesFit: pod count",
			nodes:    nodes(node("a").pods("1")),
			existing: pods(pod("x").on("a")),
			pod:      pod("p").obj(),
			want:     "a=Too many pods",
		},
		{
			name:  "NodeResourcesFit: max of init containers and the sum of containers plus sidecars",
			nodes: nodes(node("a").cpu("3"), node("b").cpu("4")),
			pod: func() *v1.Pod {
				p := pod("p").req("1", "").obj()
				p.Spec.InitContainers = []v1.Container{
					{Name: "side", RestartPolicy: &sidecar, Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resourceMust("1")}}},
					{Name: "init", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resourceMust("3")}}},
				}
				return p // max(1+1, 1+3) = 4 cpus
			}(),
			want: "a=Insufficient cpu; b=ok",
		},
		{
			name:  "NodeResourcesFit: overhead counts",
			nodes: nodes(node("a").cpu("1")),
			pod: func() *v1.Pod {
				p := pod("p").req("1", "").obj()
				p.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resourceMust("100m")}
				return p
			}(),
			want: "a=Insufficient cpu",
		},
		{
			name:     "InterPodAffinity: required anti-affinity by hostname",
			nodes:    nodes(node("a"), node("b")),
			existing: pods(pod("x").on("a").label("app", "web")),
			pod:      pod("p").label("app", "web").affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "web"})).obj(),
			want:     "a=node(s) didn't match pod anti-affinity rules; b=ok",
		},
		{
			name:     "InterPodAffinity: an existing pod's anti-affinity refuses the incoming pod",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z1"), node("c").label(zone, "z2")),
			existing: pods(pod("x").on("a").affinity(antiAffinity(zone, map[string]string{"app": "web"}))),
			pod:      pod("p").label("app", "web").obj(),
			want:     "a=node(s) didn't satisfy existing pods anti-affinity rules; b=node(s) didn't satisfy existing pods anti-affinity rules; c=ok",
		},
		{
			name:     "InterPodAffinity: anti-affinity in another namespace does not match",
			nodes:    nodes(node("a")),
			existing: pods(pod("x").on("a").ns("other").label("app", "web")),
			pod:      pod("p").affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "web"})).obj(),
			want:     "a=ok",
		},
		{
			name:     "InterPodAffinity: namespaceSelector reaches other namespaces",
			nodes:    nodes(node("a")),
			existing: pods(pod("x").on("a").ns("other").label("app", "web")),
			ns:       []*v1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"team": "x"}}}},
			pod: pod("p").affinity(&v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				TopologyKey: v1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}},
			}}}}).obj(),
			want: "a=node(s) didn't match pod anti-affinity rules",
		},
		{
			name:     "InterPodAffinity: required affinity to a zone",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z1"), node("c").label(zone, "z2"), node("d")),
			existing: pods(pod("db").on("a").label("app", "db")),
			pod:      pod("p").affinity(podAffinity(zone, map[string]string{"app": "db"})).obj(),
			want:     "a=ok; b=ok; c=node(s) didn't match pod affinity rules; d=node(s) didn't match pod affinity rules",
		},
		{
			name:  "InterPodAffinity: the first pod of a self-affine group may go anywhere with the key",
			nodes: nodes(node("a").label(zone, "z1"), node("d")),
			pod:   pod("p").label("app", "db").affinity(podAffinity(zone, map[string]string{"app": "db"})).obj(),
			want:  "a=ok; d=node(s) didn't match pod affinity rules",
		},
		{
			name:     "PodTopologySpread: DoNotSchedule maxSkew 1 across zones",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z2"), node("c")),
			existing: pods(pod("x").on("a").label("app", "web")),
			pod:      pod("p").label("app", "web").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "web"}).obj(),
			want:     "a=node(s) didn't match pod topology spread constraints; b=ok; c=node(s) didn't match pod topology spread constraints (missing required label)",
		},
		{
			name:     "PodTopologySpread: nodes excluded by nodeSelector do not count as domains (nodeAffinityPolicy Honor)",
			nodes:    nodes(node("a").label(zone, "z1").label("pool", "x"), node("b").label(zone, "z2")),
			existing: pods(pod("x").on("a").label("app", "web")),
			pod:      pod("p").label("app", "web").selector("pool", "x").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "web"}).obj(),
			want:     "a=ok; b=node(s) didn't match Pod's node affinity/selector",
		},
		{
			name:     "PodTopologySpread: minDomains above the domain count makes the minimum 0",
			nodes:    nodes(node("a").label(zone, "z1"), node("b").label(zone, "z2")),
			existing: pods(pod("x").on("a").label("app", "web"), pod("y").on("b").label("app", "web")),
			pod: func() *v1.Pod {
				p := pod("p").label("app", "web").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "web"}).obj()
				three := int32(3)
				p.Spec.TopologySpreadConstraints[0].MinDomains = &three
				return p
			}(),
			want: "a=node(s) didn't match pod topology spread constraints; b=node(s) didn't match pod topology spread constraints",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := NewSnapshot(tt.nodes, tt.existing, tt.ns...)
			mustEqual(t, "verdicts", filterVerdicts(snap, tt.pod), tt.want)
		})
	}
}

func TestNominatedPodsHoldResources(t *testing.T) {
	snap := NewSnapshot(nodes(node("a").cpu("2")), nil)
	nominated := pod("high").req("2", "").prio(100).obj()
	snap.Nominated = map[string][]*PodInfo{"a": {NewPodInfo(nominated)}}
	mustEqual(t, "lower priority", filterVerdicts(snap, pod("low").req("1", "").prio(10).obj()), "a=Insufficient cpu")
	mustEqual(t, "higher priority", filterVerdicts(snap, pod("higher").req("1", "").prio(1000).obj()), "a=ok")
	mustEqual(t, "the nominated pod itself", filterVerdicts(snap, nominated), "a=ok")
}
