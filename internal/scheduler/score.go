package scheduler

import (
	"math"
	"sort"

	v1 "k8s.io/api/core/v1"
)

// maxNodeScore is the top of every plugin's normalized score.
const maxNodeScore int64 = 100

// Upstream's default profile weights.
const (
	weightTaintToleration   = 3
	weightNodeAffinity      = 2
	weightPodTopologySpread = 2
	weightInterPodAffinity  = 2
	weightNodeResourcesFit  = 1
	weightBalanced          = 1
	weightImageLocality     = 1
)

// ImageLocality thresholds (upstream's minThreshold and maxContainerThreshold).
const (
	imageMinThreshold          int64 = 23 * 1024 * 1024
	imageMaxContainerThreshold int64 = 1000 * 1024 * 1024
)

// scores returns the weighted total score of each of nodes (upstream's
// Score and NormalizeScore for the default profile).
func (c *cycle) scores(nodes []*NodeInfo) []int64 {
	total := make([]int64, len(nodes))
	raw := make([]int64, len(nodes))

	// NodeResourcesFit (LeastAllocated) and BalancedAllocation: already 0..100.
	for i, ni := range nodes {
		total[i] += weightNodeResourcesFit*c.leastAllocated(ni) + weightBalanced*c.balanced(ni)
	}

	// NodeAffinity: preferred terms, normalized to the best node.
	if c.preferredAffinity != nil {
		for i, ni := range nodes {
			raw[i] = c.preferredAffinity.Score(ni.Node)
		}
		normalize(raw, false)
		addWeighted(total, raw, weightNodeAffinity)
	}

	// TaintToleration: fewer untolerated PreferNoSchedule taints is better.
	var tols []v1.Toleration
	for _, t := range c.pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == v1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	for i, ni := range nodes {
		raw[i] = 0
		for j := range ni.Node.Spec.Taints {
			t := &ni.Node.Spec.Taints[j]
			if t.Effect == v1.TaintEffectPreferNoSchedule && !toleratesAny(tols, t) {
				raw[i]++
			}
		}
	}
	normalize(raw, true)
	addWeighted(total, raw, weightTaintToleration)

	// InterPodAffinity: preferred terms both ways, required affinity of
	// existing pods.
	if c.interPodScores(nodes, raw) {
		addWeighted(total, raw, weightInterPodAffinity)
	}

	// PodTopologySpread: ScheduleAnyway constraints.
	if c.spreadScores(nodes, raw) {
		addWeighted(total, raw, weightPodTopologySpread)
	}

	// ImageLocality.
	if len(c.snap.ImageNodes) > 0 {
		for i, ni := range nodes {
			total[i] += weightImageLocality * c.imageLocality(ni)
		}
	}
	return total
}

func addWeighted(total, raw []int64, w int64) {
	for i := range total {
		total[i] += w * raw[i]
	}
}

// normalize scales scores to 0..maxNodeScore by the highest one; reverse
// makes the lowest raw score the best (upstream's DefaultNormalizeScore).
func normalize(s []int64, reverse bool) {
	var max int64
	for _, v := range s {
		if v > max {
			max = v
		}
	}
	if max == 0 {
		if reverse {
			for i := range s {
				s[i] = maxNodeScore
			}
		}
		return
	}
	for i, v := range s {
		v = maxNodeScore * v / max
		if reverse {
			v = maxNodeScore - v
		}
		s[i] = v
	}
}

func (c *cycle) leastAllocated(ni *NodeInfo) int64 {
	score := func(requested, allocatable int64) int64 {
		if allocatable == 0 || requested > allocatable {
			return 0
		}
		return (allocatable - requested) * maxNodeScore / allocatable
	}
	cpu := score(ni.NonZeroCPU+c.pi.NonZeroCPU, ni.Allocatable.MilliCPU)
	mem := score(ni.NonZeroMemory+c.pi.NonZeroMemory, ni.Allocatable.Memory)
	return (cpu + mem) / 2
}

func (c *cycle) balanced(ni *NodeInfo) int64 {
	fraction := func(requested, allocatable int64) float64 {
		if allocatable == 0 {
			return 0
		}
		f := float64(requested) / float64(allocatable)
		if f > 1 {
			f = 1
		}
		return f
	}
	cpu := fraction(ni.Requested.MilliCPU+c.pi.Requests.MilliCPU, ni.Allocatable.MilliCPU)
	mem := fraction(ni.Requested.Memory+c.pi.Requests.Memory, ni.Allocatable.Memory)
	// With two resources the standard deviation is half their difference.
	std := math.Abs(cpu-mem) / 2
	return int64((1 - std) * float64(maxNodeScore))
}

func (c *cycle) imageLocality(ni *NodeInfo) int64 {
	if len(ni.images) == 0 || len(c.pi.Images) == 0 {
		return 0
	}
	total := len(c.snap.Nodes)
	var sum int64
	for _, img := range c.pi.Images {
		if size, ok := ni.images[img]; ok {
			spread := float64(c.snap.ImageNodes[img]) / float64(total)
			sum += int64(float64(size) * spread)
		}
	}
	maxThreshold := imageMaxContainerThreshold * int64(len(c.pi.Images))
	if sum < imageMinThreshold {
		sum = imageMinThreshold
	} else if sum > maxThreshold {
		sum = maxThreshold
	}
	return maxNodeScore * (sum - imageMinThreshold) / (maxThreshold - imageMinThreshold)
}

// interPodScores fills out with the normalized InterPodAffinity score of
// nodes; it returns false when the plugin has nothing to say.
func (c *cycle) interPodScores(nodes []*NodeInfo, out []int64) bool {
	pi := c.pi
	incoming := len(pi.PreferredAffinity)+len(pi.PreferredAntiAffinity) > 0
	if !incoming && c.snap.journal != nil && c.snap.scoringAffPods == 0 {
		return false // no term on either side: nothing to score
	}
	topo := map[topoPair]int64{}
	podNS := c.nsLabels(c.pod.Namespace)
	add := func(node *v1.Node, key string, w int64) {
		if v, ok := node.Labels[key]; ok {
			topo[topoPair{key, v}] += w
		}
	}
	for _, ni := range c.snap.Nodes {
		pods := ni.PodsWithAffinity
		if incoming {
			pods = ni.Pods
		}
		for _, ex := range pods {
			exNS := c.nsLabels(ex.Pod.Namespace)
			for i := range pi.PreferredAffinity {
				if t := &pi.PreferredAffinity[i]; t.matches(ex.Pod, exNS) {
					add(ni.Node, t.topologyKey, int64(t.weight))
				}
			}
			for i := range pi.PreferredAntiAffinity {
				if t := &pi.PreferredAntiAffinity[i]; t.matches(ex.Pod, exNS) {
					add(ni.Node, t.topologyKey, -int64(t.weight))
				}
			}
			// Upstream's hardPodAffinityWeight is 1.
			for i := range ex.RequiredAffinity {
				if t := &ex.RequiredAffinity[i]; t.matches(c.pod, podNS) {
					add(ni.Node, t.topologyKey, 1)
				}
			}
			for i := range ex.PreferredAffinity {
				if t := &ex.PreferredAffinity[i]; t.matches(c.pod, podNS) {
					add(ni.Node, t.topologyKey, int64(t.weight))
				}
			}
			for i := range ex.PreferredAntiAffinity {
				if t := &ex.PreferredAntiAffinity[i]; t.matches(c.pod, podNS) {
					add(ni.Node, t.topologyKey, -int64(t.weight))
				}
			}
		}
	}
	if len(topo) == 0 {
		return false
	}
	minS, maxS := int64(math.MaxInt64), int64(math.MinInt64)
	for i, ni := range nodes {
		var s int64
		for p, w := range topo {
			if ni.Node.Labels[p.key] == p.value {
				if _, ok := ni.Node.Labels[p.key]; ok {
					s += w
				}
			}
		}
		out[i] = s
		minS = min(minS, s)
		maxS = max(maxS, s)
	}
	for i := range out[:len(nodes)] {
		if maxS-minS > 0 {
			out[i] = int64(float64(maxNodeScore) * float64(out[i]-minS) / float64(maxS-minS))
		} else {
			out[i] = 0
		}
	}
	return true
}

// spreadScores fills out with the normalized PodTopologySpread score for
// ScheduleAnyway constraints; false when the pod has none.
func (c *cycle) spreadScores(nodes []*NodeInfo, out []int64) bool {
	if len(c.soft) == 0 {
		return false
	}
	ignored := make([]bool, len(nodes))
	values := make([]map[string]struct{}, len(c.soft))
	for j := range c.soft {
		values[j] = map[string]struct{}{}
	}
	for i, ni := range nodes {
		for j := range c.soft {
			v, ok := ni.Node.Labels[c.soft[j].topologyKey]
			if !ok {
				ignored[i] = true
				break
			}
			values[j][v] = struct{}{}
		}
	}
	weights := make([]float64, len(c.soft))
	for j := range c.soft {
		sc := &c.soft[j]
		weights[j] = math.Log(float64(len(values[j]) + 2))
		sc.counts = map[string]int{}
		if sc.hostnameOnly {
			continue
		}
		table := c.snap.table(sc.memoKey)
		for idx, ni := range c.snap.Nodes {
			v, ok := ni.Node.Labels[sc.topologyKey]
			if !ok {
				continue
			}
			if _, want := values[j][v]; !want || !c.spreadEligible(ni.Node, c.soft) {
				continue
			}
			sc.counts[v] += countMatchingMemo(table, idx, ni, c.pod.Namespace, sc)
		}
	}
	minS, maxS := int64(math.MaxInt64), int64(0)
	for i, ni := range nodes {
		if ignored[i] {
			continue
		}
		var f float64
		for j := range c.soft {
			sc := &c.soft[j]
			var cnt int
			if sc.hostnameOnly {
				cnt = countMatching(ni, c.pod.Namespace, sc.selector)
			} else {
				cnt = sc.counts[ni.Node.Labels[sc.topologyKey]]
			}
			f += float64(cnt)*weights[j] + float64(sc.maxSkew-1)
		}
		out[i] = int64(math.Round(f))
		minS = min(minS, out[i])
		maxS = max(maxS, out[i])
	}
	for i := range nodes {
		switch {
		case ignored[i]:
			out[i] = 0
		case maxS == 0:
			out[i] = maxNodeScore
		default:
			out[i] = maxNodeScore * (maxS + minS - out[i]) / maxS
		}
	}
	return true
}

func sortedResourceNames(m map[v1.ResourceName]int64) []v1.ResourceName {
	names := make([]v1.ResourceName, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}
