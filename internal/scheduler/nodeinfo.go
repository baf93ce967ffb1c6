package scheduler

import (
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Upstream's defaults for a container that requests no cpu or memory, used
// only when scoring so that request-less pods still spread (schedutil's
// DefaultMilliCPURequest and DefaultMemoryRequest).
const (
	defaultMilliCPURequest int64 = 100
	defaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// Resource is an amount of the resources the scheduler accounts for.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	AllowedPods      int64
	// Scalar holds extended resources (example.com/gpu, hugepages-2Mi).
	Scalar map[v1.ResourceName]int64
}

func resourceFromList(rl v1.ResourceList) Resource {
	var r Resource
	for name, q := range rl {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case v1.ResourceMemory:
			r.Memory = q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case v1.ResourcePods:
			r.AllowedPods = q.Value()
		default:
			if r.Scalar == nil {
				r.Scalar = map[v1.ResourceName]int64{}
			}
			r.Scalar[name] = q.Value()
		}
	}
	return r
}

func (r *Resource) add(o *Resource, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.EphemeralStorage += sign * o.EphemeralStorage
	for n, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[v1.ResourceName]int64{}
		}
		r.Scalar[n] += sign * v
	}
}

// affinityTerm is a parsed pod (anti-)affinity term.
type affinityTerm struct {
	namespaces  map[string]struct{}
	selector    labels.Selector
	nsSelector  labels.Selector // labels.Nothing() when the term has none
	topologyKey string
	weight      int32 // preferred terms only
	// key identifies what the term selects, for NodeInfo.memoized.
	key string
}

// matches reports whether pod (whose namespace has nsLabels) is selected by t.
func (t *affinityTerm) matches(pod *v1.Pod, nsLabels labels.Set) bool {
	if _, ok := t.namespaces[pod.Namespace]; !ok && !t.nsSelector.Matches(nsLabels) {
		return false
	}
	return t.selector.Matches(labels.Set(pod.Labels))
}

func newAffinityTerm(pod *v1.Pod, term *v1.PodAffinityTerm, weight int32) affinityTerm {
	t := affinityTerm{topologyKey: term.TopologyKey, weight: weight, namespaces: map[string]struct{}{}}
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		sel = labels.Nothing()
	}
	// matchLabelKeys / mismatchLabelKeys take their values from the pod
	// itself, as upstream merges them into the selector.
	for _, k := range term.MatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, "in", []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, k := range term.MismatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, "notin", []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	t.selector = sel
	for _, ns := range term.Namespaces {
		t.namespaces[ns] = struct{}{}
	}
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		t.namespaces[pod.Namespace] = struct{}{}
	}
	t.nsSelector = labels.Nothing()
	if term.NamespaceSelector != nil {
		if s, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector); err == nil {
			t.nsSelector = s
		}
	}
	nss := make([]string, 0, len(t.namespaces))
	for ns := range t.namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	t.key = strings.Join(nss, ",") + "|" + t.nsSelector.String() + "|" + t.selector.String()
	return t
}

// hostPort is one hostPort a pod uses.
type hostPort struct {
	ip       string
	protocol v1.Protocol
	port     int32
}

// PodInfo is a pod with what the scheduler derives from it, computed once
// per pod object.
type PodInfo struct {
	Pod      *v1.Pod
	Priority int32
	// Requests as upstream computes them: max(sum of containers and
	// sidecars, each init container) plus overhead.
	Requests Resource
	// NonZeroCPU and NonZeroMemory are the requests with upstream's
	// defaults for containers that request nothing (scoring only).
	NonZeroCPU    int64
	NonZeroMemory int64

	RequiredAffinity      []affinityTerm
	RequiredAntiAffinity  []affinityTerm
	PreferredAffinity     []affinityTerm
	PreferredAntiAffinity []affinityTerm
	Ports                 []hostPort
	// Images are the normalized image names of all containers.
	Images []string
}

// scoresOthers reports whether InterPodAffinity scores other pods by the
// pod's terms.
func (p *PodInfo) scoresOthers() bool {
	return len(p.RequiredAffinity)+len(p.PreferredAffinity)+len(p.PreferredAntiAffinity) > 0
}

func (p *PodInfo) hasAffinity() bool {
	return len(p.RequiredAffinity)+len(p.RequiredAntiAffinity)+len(p.PreferredAffinity)+len(p.PreferredAntiAffinity) > 0
}

// NewPodInfo derives a PodInfo from pod. pod is not copied: it must not be
// mutated afterwards.
func NewPodInfo(pod *v1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod}
	if pod.Spec.Priority != nil {
		pi.Priority = *pod.Spec.Priority
	}
	pi.Requests = resourceFromList(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	pi.Requests.AllowedPods = 0
	nz := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		SkipPodLevelResources: true,
		NonMissingContainerRequests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.BinarySI),
		},
	})
	pi.NonZeroCPU = nz.Cpu().MilliValue()
	pi.NonZeroMemory = nz.Memory().Value()

	if a := pod.Spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
				pi.RequiredAffinity = append(pi.RequiredAffinity, newAffinityTerm(pod, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 0))
			}
			for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
				w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
				pi.PreferredAffinity = append(pi.PreferredAffinity, newAffinityTerm(pod, &w.PodAffinityTerm, w.Weight))
			}
		}
		if pa := a.PodAntiAffinity; pa != nil {
			for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
				pi.RequiredAntiAffinity = append(pi.RequiredAntiAffinity, newAffinityTerm(pod, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 0))
			}
			for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
				w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
				pi.PreferredAntiAffinity = append(pi.PreferredAntiAffinity, newAffinityTerm(pod, &w.PodAffinityTerm, w.Weight))
			}
		}
	}
	addPorts := func(cs []v1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
				if hp.ip == "" {
					hp.ip = "0.0.0.0"
				}
				if hp.protocol == "" {
					hp.protocol = v1.ProtocolTCP
				}
				pi.Ports = append(pi.Ports, hp)
			}
		}
	}
	addPorts(pod.Spec.Containers)
	// Restartable init containers (sidecars) keep their ports for the
	// pod's life, as upstream counts them.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			addPorts([]v1.Container{*c})
		}
	}
	for i := range pod.Spec.InitContainers {
		pi.Images = append(pi.Images, normalizeImage(pod.Spec.InitContainers[i].Image))
	}
	for i := range pod.Spec.Containers {
		pi.Images = append(pi.Images, normalizeImage(pod.Spec.Containers[i].Image))
	}
	return pi
}

// normalizeImage turns "nginx" into "docker.io/library/nginx:latest", so
// that pod images and node status images compare as upstream does.
func normalizeImage(name string) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.TagNameOnly(named).String()
}

// NodeInfo is a node with the pods the scheduler counts on it and the sums
// it derives from them, maintained incrementally.
type NodeInfo struct {
	Node *v1.Node
	Pods []*PodInfo
	// PodsWithAffinity have any pod (anti-)affinity term;
	// PodsWithRequiredAntiAffinity have a required anti-affinity term.
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo

	Allocatable   Resource
	Requested     Resource
	NonZeroCPU    int64
	NonZeroMemory int64
	// usedPorts counts pods per host port.
	usedPorts map[hostPort]int
	// images are the node's images, normalized name -> size in bytes.
	images map[string]int64

	// gen changes whenever the node or its pods change, which
	// invalidates what Snapshot memo tables derived from them.
	gen uint64
}

// NewNodeInfo returns the NodeInfo of node with pods on it.
func NewNodeInfo(node *v1.Node, pods ...*v1.Pod) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(node)
	for _, p := range pods {
		ni.AddPod(NewPodInfo(p))
	}
	return ni
}

// SetNode replaces the node object (its pods stay).
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.gen++
	n.Node = node
	n.Allocatable = Resource{}
	n.images = nil
	if node == nil {
		return
	}
	n.Allocatable = resourceFromList(node.Status.Allocatable)
	if len(node.Status.Allocatable) == 0 {
		n.Allocatable = resourceFromList(node.Status.Capacity)
	}
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if n.images == nil {
				n.images = map[string]int64{}
			}
			n.images[normalizeImage(name)] = img.SizeBytes
		}
	}
}

// AddPod counts pi on the node.
func (n *NodeInfo) AddPod(pi *PodInfo) {
	n.gen++
	n.Pods = append(n.Pods, pi)
	if pi.hasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinity) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.Requested.add(&pi.Requests, 1)
	n.NonZeroCPU += pi.NonZeroCPU
	n.NonZeroMemory += pi.NonZeroMemory
	for _, p := range pi.Ports {
		if n.usedPorts == nil {
			n.usedPorts = map[hostPort]int{}
		}
		n.usedPorts[p]++
	}
}

// RemovePod stops counting the pod with uid; it reports whether it was there.
func (n *NodeInfo) RemovePod(uid types.UID) bool {
	return n.removePod(uid) != nil
}

// removePod stops counting the pod with uid and returns it (nil when it
// was not there).
func (n *NodeInfo) removePod(uid types.UID) *PodInfo {
	idx := -1
	for i, p := range n.Pods {
		if p.Pod.UID == uid {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil
	}
	n.gen++
	pi := n.Pods[idx]
	n.Pods = removeAt(n.Pods, idx)
	n.PodsWithAffinity = removeUID(n.PodsWithAffinity, uid)
	n.PodsWithRequiredAntiAffinity = removeUID(n.PodsWithRequiredAntiAffinity, uid)
	n.Requested.add(&pi.Requests, -1)
	n.NonZeroCPU -= pi.NonZeroCPU
	n.NonZeroMemory -= pi.NonZeroMemory
	for _, p := range pi.Ports {
		if n.usedPorts[p]--; n.usedPorts[p] <= 0 {
			delete(n.usedPorts, p)
		}
	}
	return pi
}

// Clone returns a copy whose pod lists and sums can change independently.
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{Node: n.Node, Allocatable: n.Allocatable, images: n.images}
	for _, p := range n.Pods {
		c.AddPod(p)
	}
	return c
}

func removeAt(s []*PodInfo, i int) []*PodInfo {
	last := len(s) - 1
	s[i] = s[last]
	s[last] = nil
	return s[:last]
}

func removeUID(s []*PodInfo, uid types.UID) []*PodInfo {
	for i, p := range s {
		if p.Pod.UID == uid {
			return removeAt(s, i)
		}
	}
	return s
}

// Snapshot is the cluster state one scheduling decision reads. The
// scheduler's cache keeps one up to date incrementally; tests build one
// with NewSnapshot.
type Snapshot struct {
	// Nodes are the nodes in a stable order.
	Nodes []*NodeInfo
	// NamespaceLabels are the labels of each namespace, for
	// namespaceSelector in pod affinity terms.
	NamespaceLabels map[string]labels.Set
	// ImageNodes counts the nodes that have each (normalized) image.
	ImageNodes map[string]int
	// Nominated are pending pods that preemption nominated to a node, by
	// node name; their requests are held for them against lower-priority pods.
	Nominated map[string][]*PodInfo

	// memo holds per-node values derived from pods (how many pods a
	// selector matches, ...), each valid while its node's gen is
	// unchanged, so a decision does not re-match every pod of every node.
	// It is invisible to callers: the results are the same without it.
	memo map[string]*memoTable
	// journal, in a snapshot the Cache keeps, records the node positions
	// that changed, so that aggs are kept current by visiting only those
	// (see aggregate.go); nil elsewhere.
	journal *journal
	aggs    map[string]*aggregate
	// antiPods counts the pods with required anti-affinity, and
	// scoringAffPods those with terms InterPodAffinity scores for other
	// pods (required affinity, preferred affinity or anti-affinity), in a
	// journaled snapshot, so that pods need not look for them when there
	// are none.
	antiPods, scoringAffPods int
}

type memoEntry struct {
	n     int
	items []topoCount
}

type memoTable struct {
	nodes []*NodeInfo
	gens  []uint64
	vals  []memoEntry
}

const maxMemoTables = 1024

func (s *Snapshot) table(key string) *memoTable {
	if s.memo == nil || len(s.memo) >= maxMemoTables {
		s.memo = make(map[string]*memoTable)
	}
	t := s.memo[key]
	if t == nil {
		t = &memoTable{}
		s.memo[key] = t
	}
	if n := len(s.Nodes); len(t.nodes) < n {
		t.nodes = append(t.nodes, make([]*NodeInfo, n-len(t.nodes))...)
		t.gens = append(t.gens, make([]uint64, n-len(t.gens))...)
		t.vals = append(t.vals, make([]memoEntry, n-len(t.vals))...)
	}
	return t
}

// get returns compute's result for the node at index i, computing it only
// when that node changed since.
func (t *memoTable) get(i int, ni *NodeInfo, compute func() memoEntry) memoEntry {
	if t.nodes[i] == ni && t.gens[i] == ni.gen {
		return t.vals[i]
	}
	v := compute()
	t.nodes[i], t.gens[i], t.vals[i] = ni, ni.gen, v
	return v
}

// NewSnapshot builds a Snapshot from nodes and the pods bound to them
// (pods whose spec.nodeName names no node are ignored).
func NewSnapshot(nodes []*v1.Node, pods []*v1.Pod, namespaces ...*v1.Namespace) *Snapshot {
	s := &Snapshot{NamespaceLabels: map[string]labels.Set{}, ImageNodes: map[string]int{}}
	byName := map[string]*NodeInfo{}
	for _, n := range nodes {
		ni := NewNodeInfo(n)
		byName[n.Name] = ni
		s.Nodes = append(s.Nodes, ni)
		for img := range ni.images {
			s.ImageNodes[img]++
		}
	}
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(NewPodInfo(p))
		}
	}
	for _, ns := range namespaces {
		s.NamespaceLabels[ns.Name] = labels.Set(ns.Labels)
	}
	return s
}

func (s *Snapshot) nodeByName(name string) *NodeInfo {
	for _, n := range s.Nodes {
		if n.Node.Name == name {
			return n
		}
	}
	return nil
}

// podStartTime is when a pod started, or its creation when it has not.
func podStartTime(p *v1.Pod) time.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return p.CreationTimestamp.Time
}
