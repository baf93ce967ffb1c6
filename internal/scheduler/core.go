package scheduler

import (
	"fmt"
	"math"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Upstream's adaptive percentageOfNodesToScore: at least this many
// feasible nodes are looked for, and never less than 5% of the cluster.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// numFeasibleNodesToFind is how many feasible nodes a scheduling attempt
// looks for before it stops filtering and scores what it found.
func numFeasibleNodesToFind(all int) int {
	if all < minFeasibleNodesToFind {
		return all
	}
	pct := 50 - all/125
	if pct < minFeasibleNodesPercentageToFind {
		pct = minFeasibleNodesPercentageToFind
	}
	n := all * pct / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

// Decision is the outcome of Schedule.
type Decision struct {
	// Node is the chosen node; "" when the pod fits nowhere.
	Node string
	// Evaluated is how many nodes were filtered, Feasible how many passed.
	Evaluated, Feasible int
	// NextStart is where the next attempt should start filtering, so that
	// consecutive pods see different nodes first (upstream's
	// nextStartNodeIndex).
	NextStart int
	// FitError explains a failure; nil on success.
	FitError *FitError
}

// Schedule decides where pod goes in snap. It is pure: it reads snap and
// pod, changes neither, does no I/O and reads no clock. start is the index
// in snap.Nodes to begin filtering at (Decision.NextStart of the previous
// call).
func Schedule(snap *Snapshot, pod *v1.Pod, start int) Decision {
	all := len(snap.Nodes)
	if all == 0 {
		return Decision{FitError: &FitError{NumAllNodes: 0}}
	}
	c := newCycle(snap, pod)

	// A pod nominated by an earlier preemption tries its node first.
	if nn := pod.Status.NominatedNodeName; nn != "" {
		if ni := snap.nodeByName(nn); ni != nil && c.filter(ni) == nil {
			return Decision{Node: nn, Evaluated: 1, Feasible: 1, NextStart: start % all}
		}
	}

	want := numFeasibleNodesToFind(all)
	start %= all
	feasible := make([]*NodeInfo, 0, min(want, all))
	var statuses map[string]*Status
	evaluated := 0
	for i := 0; i < all && len(feasible) < want; i++ {
		ni := snap.Nodes[(start+i)%all]
		evaluated++
		if st := c.filter(ni); st != nil {
			if statuses == nil {
				statuses = make(map[string]*Status)
			}
			statuses[ni.Node.Name] = st
			continue
		}
		feasible = append(feasible, ni)
	}
	d := Decision{Evaluated: evaluated, Feasible: len(feasible), NextStart: (start + evaluated) % all}
	if len(feasible) == 0 {
		d.FitError = &FitError{NumAllNodes: all, Statuses: statuses}
		return d
	}
	if len(feasible) == 1 {
		d.Node = feasible[0].Node.Name
		return d
	}
	scores := c.scores(feasible)
	best := 0
	for i := 1; i < len(scores); i++ {
		if scores[i] > scores[best] {
			best = i
		}
	}
	d.Node = feasible[best].Node.Name
	return d
}

// FitError says why a pod fits on no node, and formats as upstream's.
type FitError struct {
	NumAllNodes int
	// Statuses are the failures by node name.
	Statuses map[string]*Status
	// PostFilterMsg is preemption's message ("preemption: ...").
	PostFilterMsg string
}

// Error is upstream's message: "0/N nodes are available: <count reason>,
// ... sorted as strings>." followed by preemption's message.
func (f *FitError) Error() string {
	if f.NumAllNodes == 0 {
		return "no nodes available to schedule pods"
	}
	msg := fmt.Sprintf("0/%v nodes are available:", f.NumAllNodes)
	if h := reasonHistogram(f.Statuses); h != "" {
		msg += " " + h + "."
	}
	if f.PostFilterMsg != "" {
		msg += " " + f.PostFilterMsg
	}
	return msg
}

func reasonHistogram(statuses map[string]*Status) string {
	counts := map[string]int{}
	for _, st := range statuses {
		for _, r := range st.Reasons {
			counts[r]++
		}
	}
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%v %v", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Preemption reasons and messages, as upstream's DefaultPreemption words them.
const (
	ReasonPreemptionNotHelpful = "Preemption is not helpful for scheduling"
	ReasonNoVictims            = "No preemption victims found for incoming pod"
	msgPreemptNever            = "not eligible due to preemptionPolicy=Never."
	msgTerminatingOnNominated  = "not eligible due to a terminating pod on the nominated node."
)

// Candidate is a node where evicting Victims lets the preemptor fit.
type Candidate struct {
	Node    string
	Victims []*v1.Pod
	// PDBViolations is how many of the victims a PodDisruptionBudget
	// protects: evicting them takes a budget's disruptions allowed below
	// zero.
	PDBViolations int
}

// Preempt decides, purely, whether evicting lower-priority pods lets pod
// (which failed with fitErr) fit, and where. pdbs are the cluster's
// PodDisruptionBudgets (read, never changed): on each node the victims
// whose eviction would violate one are reprieved first, and the candidate
// with the fewest violations wins. Budgets never forbid preemption; they
// only steer it, as upstream's. It returns the chosen candidate, or nil
// and the message upstream would add to the FailedScheduling event
// ("preemption: ...").
func Preempt(snap *Snapshot, pod *v1.Pod, fitErr *FitError, pdbs []*policyv1.PodDisruptionBudget) (*Candidate, string) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == v1.PreemptNever {
		return nil, "preemption: " + msgPreemptNever
	}
	prio := podPriority(pod)
	if nn := pod.Status.NominatedNodeName; nn != "" {
		st := fitErr.Statuses[nn]
		if ni := snap.nodeByName(nn); ni != nil && (st == nil || st.Code != UnschedulableAndUnresolvable) {
			for _, p := range ni.Pods {
				if p.Pod.DeletionTimestamp != nil && p.Priority < prio {
					return nil, "preemption: " + msgTerminatingOnNominated
				}
			}
		}
	}
	statuses := make(map[string]*Status, len(snap.Nodes))
	var candidates []*Candidate
	want := numCandidates(len(snap.Nodes))
	// The pre-filter state depends on other nodes' pods only for pods with
	// inter-pod affinity or spreading; otherwise compute it once.
	pi := NewPodInfo(pod)
	needsGlobal := len(pod.Spec.TopologySpreadConstraints) > 0 || len(pi.RequiredAffinity)+len(pi.RequiredAntiAffinity) > 0
	shared := newCycle(snap, pod)
	budgets := newBudgets(pdbs)
	if !needsGlobal {
		for _, ni := range snap.Nodes {
			if len(ni.PodsWithRequiredAntiAffinity) > 0 {
				needsGlobal = true
				break
			}
		}
	}
	for idx, ni := range snap.Nodes {
		name := ni.Node.Name
		st := fitErr.Statuses[name]
		if st == nil || st.Code == UnschedulableAndUnresolvable {
			statuses[name] = fail(UnschedulableAndUnresolvable, "DefaultPreemption", ReasonPreemptionNotHelpful)
			continue
		}
		if len(candidates) >= want {
			continue
		}
		victims, violations, ok := selectVictims(snap, idx, pod, prio, shared, needsGlobal, budgets)
		if !ok {
			statuses[name] = fail(Unschedulable, "DefaultPreemption", ReasonNoVictims)
			continue
		}
		candidates = append(candidates, &Candidate{Node: name, Victims: victims, PDBViolations: violations})
	}
	if len(candidates) == 0 {
		fe := &FitError{NumAllNodes: len(snap.Nodes), Statuses: statuses}
		return nil, "preemption: " + fe.Error()
	}
	return pickCandidate(candidates), ""
}

func numCandidates(all int) int {
	n := all / 10
	if n < 100 {
		n = 100
	}
	if n > all {
		n = all
	}
	return n
}

func podPriority(p *v1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// selectVictims removes every lower-priority pod from node idx, checks the
// preemptor fits, then puts back as many as possible, most important
// first: first those whose eviction would violate a PodDisruptionBudget,
// then the others. It returns the victims, most important first, and how
// many of them violate a budget.
func selectVictims(snap *Snapshot, idx int, pod *v1.Pod, prio int32, shared *cycle, needsGlobal bool, budgets []budget) ([]*v1.Pod, int, bool) {
	orig := snap.Nodes[idx]
	ni := orig.Clone()
	var lower []*PodInfo
	for _, p := range orig.Pods {
		if p.Priority < prio {
			lower = append(lower, p)
			ni.RemovePod(p.Pod.UID)
		}
	}
	if len(lower) == 0 {
		return nil, 0, false
	}
	fits := func() bool {
		c := shared
		if needsGlobal {
			tmp := *snap
			tmp.Nodes = append([]*NodeInfo(nil), snap.Nodes...)
			tmp.Nodes[idx] = ni
			// The what-if copy is not the cache's: its node at idx
			// changes unjournaled, so it sums its aggregates afresh.
			tmp.journal, tmp.aggs = nil, nil
			c = newCycle(&tmp, pod)
		}
		return c.filter(ni) == nil
	}
	if !fits() {
		return nil, 0, false
	}
	sort.SliceStable(lower, func(i, j int) bool { return moreImportant(lower[i], lower[j]) })
	violating, nonViolating := splitByBudget(lower, budgets)
	var victims []*PodInfo
	// reprieve puts p back; if the preemptor no longer fits, p stays a
	// victim and reprieve reports false.
	reprieve := func(p *PodInfo) bool {
		ni.AddPod(p)
		if fits() {
			return true
		}
		ni.RemovePod(p.Pod.UID)
		victims = append(victims, p)
		return false
	}
	violations := 0
	for _, p := range violating {
		if !reprieve(p) {
			violations++
		}
	}
	for _, p := range nonViolating {
		reprieve(p)
	}
	// Victims were gathered violating first; report them most important
	// first, as upstream does after reprieving.
	sort.SliceStable(victims, func(i, j int) bool { return moreImportant(victims[i], victims[j]) })
	out := make([]*v1.Pod, len(victims))
	for i, p := range victims {
		out[i] = p.Pod
	}
	return out, violations, true
}

// moreImportant orders pods by priority, then earlier start.
func moreImportant(a, b *PodInfo) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return podStartTime(a.Pod).Before(podStartTime(b.Pod))
}

// pickCandidate applies upstream's ordering: fewest PDB violations, lowest
// highest-victim priority, smallest sum of victim priorities, fewest
// victims, latest start among the highest-priority victims, first found.
func pickCandidate(cands []*Candidate) *Candidate {
	type stat struct {
		pdb       int
		highest   int32
		sum       int64
		n         int
		lateStart int64
	}
	stats := make([]stat, len(cands))
	for i, c := range cands {
		s := stat{pdb: c.PDBViolations, highest: math.MinInt32, n: len(c.Victims)}
		for _, v := range c.Victims {
			p := podPriority(v)
			// Shift so negative priorities still sum sensibly, as upstream.
			s.sum += int64(p) + int64(math.MaxInt32) + 1
			if p > s.highest {
				s.highest = p
			}
		}
		s.lateStart = math.MinInt64
		for _, v := range c.Victims {
			if podPriority(v) == s.highest {
				if t := podStartTime(v).UnixNano(); t > s.lateStart {
					s.lateStart = t
				}
			}
		}
		stats[i] = s
	}
	best := 0
	for i := 1; i < len(cands); i++ {
		a, b := stats[i], stats[best]
		switch {
		case a.pdb != b.pdb:
			if a.pdb < b.pdb {
				best = i
			}
		case a.highest != b.highest:
			if a.highest < b.highest {
				best = i
			}
		case a.sum != b.sum:
			if a.sum < b.sum {
				best = i
			}
		case a.n != b.n:
			if a.n < b.n {
				best = i
			}
		case a.lateStart != b.lateStart:
			if a.lateStart > b.lateStart {
				best = i
			}
		}
	}
	return cands[best]
}
