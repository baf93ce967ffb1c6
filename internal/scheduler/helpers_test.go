package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeB builds test nodes.
type nodeB struct{ n *v1.Node }

func node(name string) nodeB {
	return nodeB{&v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:              resource.MustParse("4"),
			v1.ResourceMemory:           resource.MustParse("8Gi"),
			v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
			v1.ResourcePods:             resource.MustParse("110"),
		}},
	}}
}

func (b nodeB) cpu(q string) nodeB {
	b.n.Status.Allocatable[v1.ResourceCPU] = resource.MustParse(q)
	return b
}
func (b nodeB) mem(q string) nodeB {
	b.n.Status.Allocatable[v1.ResourceMemory] = resource.MustParse(q)
	return b
}
func (b nodeB) pods(q string) nodeB {
	b.n.Status.Allocatable[v1.ResourcePods] = resource.MustParse(q)
	return b
}
func (b nodeB) label(k, v string) nodeB { b.n.Labels[k] = v; return b }
func (b nodeB) taint(k, v string, e v1.TaintEffect) nodeB {
	b.n.Spec.Taints = append(b.n.Spec.Taints, v1.Taint{Key: k, Value: v, Effect: e})
	return b
}
func (b nodeB) unschedulable() nodeB { b.n.Spec.Unschedulable = true; return b }
func (b nodeB) image(size int64, names ...string) nodeB {
	b.n.Status.Images = append(b.n.Status.Images, v1.ContainerImage{Names: names, SizeBytes: size})
	return b
}
func (b nodeB) obj() *v1.Node { return b.n }

// podB builds test pods.
type podB struct{ p *v1.Pod }

var uidSeq int

func pod(name string) podB {
	uidSeq++
	return podB{&v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%s-%d", name, uidSeq)), Labels: map[string]string{}},
		Spec: v1.PodSpec{
			SchedulerName: DefaultSchedulerName,
			Containers:    []v1.Container{{Name: "c", Image: "nginx"}},
		},
	}}
}

func (b podB) req(cpu, mem string) podB {
	rl := v1.ResourceList{}
	if cpu != "" {
		rl[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		rl[v1.ResourceMemory] = resource.MustParse(mem)
	}
	b.p.Spec.Containers[0].Resources.Requests = rl
	return b
}
func (b podB) ns(ns string) podB         { b.p.Namespace = ns; return b }
func (b podB) on(node string) podB       { b.p.Spec.NodeName = node; return b }
func (b podB) label(k, v string) podB    { b.p.Labels[k] = v; return b }
func (b podB) prio(p int32) podB         { b.p.Spec.Priority = &p; return b }
func (b podB) image(img string) podB     { b.p.Spec.Containers[0].Image = img; return b }
func (b podB) selector(k, v string) podB { b.p.Spec.NodeSelector = map[string]string{k: v}; return b }
func (b podB) tolerate(t v1.Toleration) podB {
	b.p.Spec.Tolerations = append(b.p.Spec.Tolerations, t)
	return b
}
func (b podB) hostPort(port int32, proto v1.Protocol, ip string) podB {
	b.p.Spec.Containers[0].Ports = append(b.p.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIP: ip})
	return b
}
func (b podB) affinity(a *v1.Affinity) podB { b.p.Spec.Affinity = a; return b }
func (b podB) spread(key string, skew int32, when v1.UnsatisfiableConstraintAction, sel map[string]string) podB {
	b.p.Spec.TopologySpreadConstraints = append(b.p.Spec.TopologySpreadConstraints, v1.TopologySpreadConstraint{
		MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: when, LabelSelector: &metav1.LabelSelector{MatchLabels: sel},
	})
	return b
}
func (b podB) obj() *v1.Pod { return b.p }

func antiAffinity(key string, sel map[string]string) *v1.Affinity {
	return &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{
		{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: sel}},
	}}}
}

func podAffinity(key string, sel map[string]string) *v1.Affinity {
	return &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{
		{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: sel}},
	}}}
}

func nodes(bs ...nodeB) []*v1.Node {
	out := make([]*v1.Node, len(bs))
	for i, b := range bs {
		out[i] = b.obj()
	}
	return out
}

func pods(bs ...podB) []*v1.Pod {
	out := make([]*v1.Pod, len(bs))
	for i, b := range bs {
		out[i] = b.obj()
	}
	return out
}

// filterVerdicts returns, per node, "" when the pod passes or its reasons.
func filterVerdicts(snap *Snapshot, p *v1.Pod) string {
	c := newCycle(snap, p)
	var out []string
	for _, ni := range snap.Nodes {
		v := "ok"
		if st := c.filter(ni); st != nil {
			v = strings.Join(st.Reasons, "+")
		}
		out = append(out, ni.Node.Name+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func mustEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func resourceMust(q string) resource.Quantity { return resource.MustParse(q) }
