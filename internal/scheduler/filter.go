package scheduler

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Code says how a node failed a filter.
type Code int

const (
	// Success means the node passed.
	Success Code = iota
	// Unschedulable means the node does not fit now, and preempting pods on
	// it might change that.
	Unschedulable
	// UnschedulableAndUnresolvable means preemption cannot help on this node.
	UnschedulableAndUnresolvable
)

// Status is a filter's verdict on one node, with upstream's reason strings.
type Status struct {
	Code    Code
	Reasons []string
	// Plugin is the filter plugin that failed.
	Plugin string
}

// Reason strings, exactly as upstream's plugins word them.
const (
	ReasonNodeUnschedulable         = "node(s) were unschedulable"
	ReasonNodeName                  = "node(s) didn't match the requested node name"
	ReasonNodeAffinity              = "node(s) didn't match Pod's node affinity/selector"
	ReasonNodePorts                 = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods               = "Too many pods"
	ReasonAffinityRulesNotMatch     = "node(s) didn't match pod affinity rules"
	ReasonAntiAffinityRulesNotMatch = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinity      = "node(s) didn't satisfy existing pods anti-affinity rules"
	ReasonSpreadConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ReasonSpreadMissingLabel        = ReasonSpreadConstraintsNotMatch + " (missing required label)"
)

func untoleratedTaintReason(t *v1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

func insufficientReason(name v1.ResourceName) string {
	return fmt.Sprintf("Insufficient %v", name)
}

func fail(code Code, plugin string, reasons ...string) *Status {
	return &Status{Code: code, Plugin: plugin, Reasons: reasons}
}

// topoPair is one topology domain (a label key and value).
type topoPair struct{ key, value string }

// spreadConstraint is a parsed topology spread constraint with the counts
// of matching pods per domain of its key.
type spreadConstraint struct {
	maxSkew     int32
	topologyKey string
	selector    labels.Selector
	minDomains  int32
	honorAff    bool // nodeAffinityPolicy Honor (default)
	honorTaints bool // nodeTaintsPolicy Honor (default Ignore)
	selfMatch   int
	// counts are the matching pods per domain: agg for DoNotSchedule
	// constraints (read-only, the snapshot's), counts for ScheduleAnyway.
	agg          *aggregate
	counts       map[string]int
	minMatchNum  int
	hostnameOnly bool
	memoKey      string
}

// cycle is what one pod's scheduling attempt computes once (upstream's
// PreFilter and PreScore state).
type cycle struct {
	snap *Snapshot
	pi   *PodInfo
	pod  *v1.Pod

	nodeAffinity nodeaffinity.RequiredNodeAffinity
	// preferredAffinity scores preferred node affinity (nil when none).
	preferredAffinity *nodeaffinity.PreferredSchedulingTerms

	// InterPodAffinity: domains with existing pods whose required
	// anti-affinity matches the pod; domains with pods matching the pod's
	// required affinity (all terms); domains with pods matching each
	// required anti-affinity term. The maps belong to the snapshot's
	// aggregates: read-only.
	existingAnti   map[topoPair]int
	affinityCounts map[topoPair]int
	antiCounts     []map[topoPair]int
	matchesOwnAff  bool

	spread []spreadConstraint // DoNotSchedule
	soft   []spreadConstraint // ScheduleAnyway
}

func (c *cycle) nsLabels(ns string) labels.Set {
	return c.snap.NamespaceLabels[ns]
}

// newCycle runs the pre-filter computations for pod over snap.
func newCycle(snap *Snapshot, pod *v1.Pod) *cycle {
	c := &cycle{snap: snap, pod: pod, pi: NewPodInfo(pod)}
	c.nodeAffinity = nodeaffinity.GetRequiredNodeAffinity(pod)
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		if t, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err == nil {
			c.preferredAffinity = t
		}
	}
	c.prepareInterPod()
	c.prepareSpread()
	return c
}

func (c *cycle) prepareInterPod() {
	pi := c.pi
	podNSLabels := c.nsLabels(c.pod.Namespace)
	// Which domains existing pods' required anti-affinity closes to this
	// pod depends only on the pod's namespace and labels.
	if c.snap.mayHaveRequiredAntiAffinity() {
		key := "x|" + c.pod.Namespace + "|" + labels.Set(c.pod.Labels).String()
		a := c.snap.aggregate(key, false, func(ni *NodeInfo) []topoCount {
			var items []topoCount
			for _, ex := range ni.PodsWithRequiredAntiAffinity {
				for i := range ex.RequiredAntiAffinity {
					t := &ex.RequiredAntiAffinity[i]
					if v, ok := ni.Node.Labels[t.topologyKey]; ok && t.matches(c.pod, podNSLabels) {
						items = append(items, topoCount{topoPair{t.topologyKey, v}, 1})
					}
				}
			}
			return items
		})
		if len(a.counts) > 0 {
			c.existingAnti = a.counts
		}
	}
	if len(pi.RequiredAffinity) > 0 {
		key := "A"
		for i := range pi.RequiredAffinity {
			key += "|" + pi.RequiredAffinity[i].key + "@" + pi.RequiredAffinity[i].topologyKey
		}
		c.affinityCounts = c.snap.aggregate(key, false, func(ni *NodeInfo) []topoCount {
			n := 0
			for _, ex := range ni.Pods {
				if matchesAll(pi.RequiredAffinity, ex.Pod, c.nsLabels(ex.Pod.Namespace)) {
					n++
				}
			}
			if n == 0 {
				return nil
			}
			var items []topoCount
			for i := range pi.RequiredAffinity {
				if v, ok := ni.Node.Labels[pi.RequiredAffinity[i].topologyKey]; ok {
					items = append(items, topoCount{topoPair{pi.RequiredAffinity[i].topologyKey, v}, n})
				}
			}
			return items
		}).counts
		c.matchesOwnAff = matchesAll(pi.RequiredAffinity, c.pod, podNSLabels)
	}
	c.antiCounts = make([]map[topoPair]int, len(pi.RequiredAntiAffinity))
	for i := range pi.RequiredAntiAffinity {
		t := &pi.RequiredAntiAffinity[i]
		c.antiCounts[i] = c.snap.aggregate("a|"+t.key+"@"+t.topologyKey, false, func(ni *NodeInfo) []topoCount {
			v, ok := ni.Node.Labels[t.topologyKey]
			if !ok {
				return nil
			}
			n := 0
			for _, ex := range ni.Pods {
				if t.matches(ex.Pod, c.nsLabels(ex.Pod.Namespace)) {
					n++
				}
			}
			if n == 0 {
				return nil
			}
			return []topoCount{{topoPair{t.topologyKey, v}, n}}
		}).counts
	}
}

func matchesAll(terms []affinityTerm, pod *v1.Pod, nsLabels labels.Set) bool {
	for i := range terms {
		if !terms[i].matches(pod, nsLabels) {
			return false
		}
	}
	return true
}

func (c *cycle) prepareSpread() {
	for _, tsc := range c.pod.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil {
			sel = labels.Nothing()
		}
		for _, k := range tsc.MatchLabelKeys {
			if v, ok := c.pod.Labels[k]; ok {
				if r, err := labels.NewRequirement(k, "in", []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
		sc := spreadConstraint{
			maxSkew:     tsc.MaxSkew,
			topologyKey: tsc.TopologyKey,
			selector:    sel,
			minDomains:  1,
			honorAff:    tsc.NodeAffinityPolicy == nil || *tsc.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor,
			honorTaints: tsc.NodeTaintsPolicy != nil && *tsc.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor,
		}
		sc.memoKey = "s|" + c.pod.Namespace + "|" + sel.String()
		if tsc.MinDomains != nil {
			sc.minDomains = *tsc.MinDomains
		}
		if sel.Matches(labels.Set(c.pod.Labels)) {
			sc.selfMatch = 1
		}
		if tsc.WhenUnsatisfiable == v1.ScheduleAnyway {
			sc.hostnameOnly = tsc.TopologyKey == v1.LabelHostname
			c.soft = append(c.soft, sc)
		} else {
			c.spread = append(c.spread, sc)
		}
	}
	if len(c.spread) == 0 {
		return
	}
	elig := c.spreadEligibilityKey()
	for i := range c.spread {
		sc := &c.spread[i]
		sc.agg = c.snap.aggregate(sc.memoKey+"|"+sc.topologyKey+"|"+elig, true, func(ni *NodeInfo) []topoCount {
			if !c.spreadEligible(ni.Node, c.spread) {
				return nil
			}
			v := ni.Node.Labels[sc.topologyKey]
			return []topoCount{{topoPair{sc.topologyKey, v}, countMatching(ni, c.pod.Namespace, sc.selector)}}
		})
		sc.minMatchNum = sc.agg.min()
		if int32(len(sc.agg.counts)) < sc.minDomains {
			sc.minMatchNum = 0
		}
	}
}

// spreadEligibilityKey identifies what spreadEligible reads of the pod
// for its DoNotSchedule constraints: their keys and inclusion policies,
// and the pod's required node affinity and tolerations where a policy
// honors them.
func (c *cycle) spreadEligibilityKey() string {
	var b strings.Builder
	honorAff, honorTaints := false, false
	for i := range c.spread {
		sc := &c.spread[i]
		fmt.Fprintf(&b, "%q:%t:%t;", sc.topologyKey, sc.honorAff, sc.honorTaints)
		honorAff = honorAff || sc.honorAff
		honorTaints = honorTaints || sc.honorTaints
	}
	if honorAff {
		b.WriteString("sel=" + labels.Set(c.pod.Spec.NodeSelector).String())
		if a := c.pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			fmt.Fprintf(&b, ";aff=%+v", *a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		}
	}
	if honorTaints {
		b.WriteString(";tol=")
		for _, t := range c.pod.Spec.Tolerations {
			fmt.Fprintf(&b, "%q %q %q %q,", t.Key, t.Operator, t.Value, t.Effect)
		}
	}
	return b.String()
}

// spreadEligible reports whether node's pods count toward spreading: it
// has every constraint's key and passes the inclusion policies (the first
// constraint's policies, as all of a pod's constraints usually share them).
func (c *cycle) spreadEligible(node *v1.Node, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := node.Labels[cs[i].topologyKey]; !ok {
			return false
		}
		if cs[i].honorAff {
			if ok, _ := c.nodeAffinity.Match(node); !ok {
				return false
			}
		}
		if cs[i].honorTaints {
			if _, bad := untoleratedTaint(node.Spec.Taints, c.pod.Spec.Tolerations, doNotSchedule); bad {
				return false
			}
		}
	}
	return true
}

// countMatchingMemo is countMatching, memoized per node.
func countMatchingMemo(t *memoTable, idx int, ni *NodeInfo, ns string, sc *spreadConstraint) int {
	if len(ni.Pods) == 0 {
		return 0
	}
	return t.get(idx, ni, func() memoEntry {
		return memoEntry{n: countMatching(ni, ns, sc.selector)}
	}).n
}

func countMatching(ni *NodeInfo, ns string, sel labels.Selector) int {
	n := 0
	for _, p := range ni.Pods {
		if p.Pod.Namespace == ns && p.Pod.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Pod.Labels)) {
			n++
		}
	}
	return n
}

func doNotSchedule(t *v1.Taint) bool {
	return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
}

// tolerates reports whether tol tolerates taint, as upstream's
// Toleration.ToleratesTaint with the comparison operators off.
func tolerates(tol *v1.Toleration, taint *v1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case "", v1.TolerationOpEqual:
		return tol.Value == taint.Value
	case v1.TolerationOpExists:
		return true
	}
	return false
}

func toleratesAny(tols []v1.Toleration, taint *v1.Taint) bool {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return true
		}
	}
	return false
}

func untoleratedTaint(taints []v1.Taint, tols []v1.Toleration, include func(*v1.Taint) bool) (*v1.Taint, bool) {
	for i := range taints {
		if include(&taints[i]) && !toleratesAny(tols, &taints[i]) {
			return &taints[i], true
		}
	}
	return nil, false
}

// filter runs upstream's default filter plugins in upstream's order and
// returns the first failure, or nil when the pod fits on ni.
func (c *cycle) filter(ni *NodeInfo) *Status {
	node := ni.Node
	pod := c.pod
	// NodeUnschedulable
	if node.Spec.Unschedulable && !toleratesAny(pod.Spec.Tolerations, &v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}) {
		return fail(UnschedulableAndUnresolvable, "NodeUnschedulable", ReasonNodeUnschedulable)
	}
	// NodeName
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		return fail(UnschedulableAndUnresolvable, "NodeName", ReasonNodeName)
	}
	// TaintToleration
	if t, bad := untoleratedTaint(node.Spec.Taints, pod.Spec.Tolerations, doNotSchedule); bad {
		return fail(UnschedulableAndUnresolvable, "TaintToleration", untoleratedTaintReason(t))
	}
	// NodeAffinity
	if ok, _ := c.nodeAffinity.Match(node); !ok {
		return fail(UnschedulableAndUnresolvable, "NodeAffinity", ReasonNodeAffinity)
	}
	// NodePorts
	if portsConflict(c.pi.Ports, ni.usedPorts) {
		return fail(Unschedulable, "NodePorts", ReasonNodePorts)
	}
	// NodeResourcesFit
	if st := c.fit(ni); st != nil {
		return st
	}
	// PodTopologySpread
	if st := c.filterSpread(node); st != nil {
		return st
	}
	// InterPodAffinity
	return c.filterInterPod(node)
}

func portsConflict(want []hostPort, used map[hostPort]int) bool {
	if len(want) == 0 || len(used) == 0 {
		return false
	}
	for _, p := range want {
		if p.ip == "0.0.0.0" {
			for u := range used {
				if u.port == p.port && u.protocol == p.protocol {
					return true
				}
			}
			continue
		}
		if used[p] > 0 || used[hostPort{ip: "0.0.0.0", protocol: p.protocol, port: p.port}] > 0 {
			return true
		}
	}
	return false
}

func (c *cycle) fit(ni *NodeInfo) *Status {
	req := &c.pi.Requests
	used := ni.Requested
	pods := int64(len(ni.Pods))
	if nom := c.snap.Nominated[ni.Node.Name]; len(nom) > 0 {
		used = Resource{MilliCPU: used.MilliCPU, Memory: used.Memory, EphemeralStorage: used.EphemeralStorage}
		for n, v := range ni.Requested.Scalar {
			if used.Scalar == nil {
				used.Scalar = map[v1.ResourceName]int64{}
			}
			used.Scalar[n] = v
		}
		for _, p := range nom {
			if p.Pod.UID != c.pod.UID && p.Priority >= c.pi.Priority {
				used.add(&p.Requests, 1)
				pods++
			}
		}
	}
	alloc := &ni.Allocatable
	var reasons []string
	code := Unschedulable
	if pods+1 > alloc.AllowedPods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	check := func(name v1.ResourceName, want, allocatable, inUse int64) {
		if want > 0 && want > allocatable-inUse {
			reasons = append(reasons, insufficientReason(name))
			// No eviction frees more than the node has at all.
			if want > allocatable {
				code = UnschedulableAndUnresolvable
			}
		}
	}
	check(v1.ResourceCPU, req.MilliCPU, alloc.MilliCPU, used.MilliCPU)
	check(v1.ResourceMemory, req.Memory, alloc.Memory, used.Memory)
	check(v1.ResourceEphemeralStorage, req.EphemeralStorage, alloc.EphemeralStorage, used.EphemeralStorage)
	if len(req.Scalar) > 0 {
		for _, name := range sortedResourceNames(req.Scalar) {
			check(name, req.Scalar[name], alloc.Scalar[name], used.Scalar[name])
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return fail(code, "NodeResourcesFit", reasons...)
}

func (c *cycle) filterSpread(node *v1.Node) *Status {
	if len(c.spread) == 0 {
		return nil
	}
	for i := range c.spread {
		if _, ok := node.Labels[c.spread[i].topologyKey]; !ok {
			return fail(UnschedulableAndUnresolvable, "PodTopologySpread", ReasonSpreadMissingLabel)
		}
	}
	for i := range c.spread {
		sc := &c.spread[i]
		match := sc.agg.counts[topoPair{sc.topologyKey, node.Labels[sc.topologyKey]}]
		if skew := match + sc.selfMatch - sc.minMatchNum; skew > int(sc.maxSkew) {
			return fail(Unschedulable, "PodTopologySpread", ReasonSpreadConstraintsNotMatch)
		}
	}
	return nil
}

func (c *cycle) filterInterPod(node *v1.Node) *Status {
	pi := c.pi
	// The pod's required affinity: every term's domain must hold a
	// matching pod, unless no pod anywhere matches and the pod matches its
	// own terms (the first pod of a group).
	if len(pi.RequiredAffinity) > 0 {
		ok := true
		for i := range pi.RequiredAffinity {
			k := pi.RequiredAffinity[i].topologyKey
			v, has := node.Labels[k]
			if !has || c.affinityCounts[topoPair{k, v}] <= 0 {
				ok = false
				break
			}
		}
		if !ok && len(c.affinityCounts) == 0 && c.matchesOwnAff {
			ok = true
			for i := range pi.RequiredAffinity {
				if _, has := node.Labels[pi.RequiredAffinity[i].topologyKey]; !has {
					ok = false
				}
			}
		}
		if !ok {
			return fail(UnschedulableAndUnresolvable, "InterPodAffinity", ReasonAffinityRulesNotMatch)
		}
	}
	for i := range pi.RequiredAntiAffinity {
		k := pi.RequiredAntiAffinity[i].topologyKey
		if v, has := node.Labels[k]; has && c.antiCounts[i][topoPair{k, v}] > 0 {
			return fail(Unschedulable, "InterPodAffinity", ReasonAntiAffinityRulesNotMatch)
		}
	}
	if len(c.existingAnti) > 0 {
		for k, v := range node.Labels {
			if c.existingAnti[topoPair{k, v}] > 0 {
				return fail(Unschedulable, "InterPodAffinity", ReasonExistingAntiAffinity)
			}
		}
	}
	return nil
}
