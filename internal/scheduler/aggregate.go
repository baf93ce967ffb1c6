package scheduler

// Aggregates are the cluster-wide sums that pre-filtering derives from
// every node's pods: the pods matching a spread constraint per topology
// domain, the pods matching an anti-affinity term per domain, the domains
// that existing pods' anti-affinity closes to a pod. Recomputing one means
// visiting every node, which at 5,000 nodes costs more than the rest of a
// decision together, for every pod with a spread constraint or an affinity
// term.
//
// A Snapshot kept by the Cache therefore carries a journal of the node
// positions that changed (a pod counted or dropped, a node set or removed),
// and keeps each aggregate it was asked for, with every node's
// contribution, up to date by visiting only the nodes changed since it was
// last read: after one decision and its assumption, a handful. A Snapshot
// built otherwise (NewSnapshot, preemption's what-if copies) has no
// journal, and its aggregates are summed afresh per decision from the
// per-node memo tables. Both give the same sums: a node's contribution is
// one function of the node.

// topoCount is one node's contribution to an aggregate: n pods in the
// domain pair.
type topoCount struct {
	pair topoPair
	n    int
}

// aggregate sums per-node contributions by topology domain.
type aggregate struct {
	// counts is the sum of n per domain; a domain is present while at
	// least one node contributes to it (with n 0 for spreading, whose
	// domains are those of all eligible nodes).
	counts map[topoPair]int
	// nodes counts the contributing nodes per domain.
	nodes map[topoPair]int
	// hist counts domains per value of counts (only with wantMin), so
	// that the smallest count is found without visiting every domain.
	hist    map[int]int
	wantMin bool

	// contrib is each node position's contribution, and seq the journal
	// position it reflects (journaled snapshots only).
	contrib [][]topoCount
	seq     uint64
}

func newAggregate(wantMin bool) *aggregate {
	a := &aggregate{counts: map[topoPair]int{}, nodes: map[topoPair]int{}, wantMin: wantMin}
	if wantMin {
		a.hist = map[int]int{}
	}
	return a
}

func (a *aggregate) add(items []topoCount, sign int) {
	for _, it := range items {
		old, had := a.counts[it.pair]
		nodes := a.nodes[it.pair] + sign
		if a.wantMin && had {
			a.histAdd(old, -1)
		}
		if nodes <= 0 {
			delete(a.counts, it.pair)
			delete(a.nodes, it.pair)
			continue
		}
		v := old + sign*it.n
		a.counts[it.pair] = v
		a.nodes[it.pair] = nodes
		if a.wantMin {
			a.histAdd(v, 1)
		}
	}
}

// build adds contributions while the aggregate is being built: no
// histogram yet (built, finishes it) and, for an aggregate that is
// summed once and dropped (nodes nil), no node counts.
func (a *aggregate) build(items []topoCount) {
	for _, it := range items {
		a.counts[it.pair] += it.n
		if a.nodes != nil {
			a.nodes[it.pair]++
		}
	}
}

func (a *aggregate) built() *aggregate {
	if a.wantMin {
		for _, v := range a.counts {
			a.hist[v]++
		}
	}
	return a
}

func (a *aggregate) histAdd(v, d int) {
	if n := a.hist[v] + d; n > 0 {
		a.hist[v] = n
	} else {
		delete(a.hist, v)
	}
}

// min returns the smallest count over the domains (0 when there are none).
func (a *aggregate) min() int {
	m, first := 0, true
	for v := range a.hist {
		if first || v < m {
			m, first = v, false
		}
	}
	return m
}

// journal records the positions in Snapshot.Nodes whose NodeInfo changed.
// Positions are recorded, not NodeInfos, because removing a node moves
// the last one into its place: both positions are recorded then.
type journal struct {
	// start is the sequence number of changed[0].
	start   uint64
	changed []int
	// read is the end of the journal when an aggregate last read it: a
	// position recorded twice in a row with no read between is
	// recorded once.
	read uint64
}

func (j *journal) end() uint64 { return j.start + uint64(len(j.changed)) }

// maxAggregates bounds the aggregates a Snapshot keeps; past it they are
// dropped and rebuilt when next needed.
const maxAggregates = 64

// touch records that the NodeInfo at position i of s.Nodes changed, or
// that the position was vacated. A journal longer than the node list is
// dropped: replaying it would cost more than rebuilding.
func (s *Snapshot) touch(i int) {
	j := s.journal
	if j == nil {
		return
	}
	if n := len(j.changed); n > 0 && j.changed[n-1] == i && j.read < j.end() {
		return
	}
	if len(j.changed) >= max(1024, 2*len(s.Nodes)) {
		j.start = j.end()
		j.changed = j.changed[:0]
	}
	j.changed = append(j.changed, i)
}

// invalidate drops every derived value, for a change no node records
// (a namespace's labels, which affinity terms' namespaceSelector reads).
func (s *Snapshot) invalidate() {
	s.memo = nil
	s.aggs = nil
}

// aggregate returns the aggregate named key, whose per-node contribution
// is contrib. key must identify everything contrib reads besides the
// NodeInfo. The result is read-only, and valid until the snapshot changes.
func (s *Snapshot) aggregate(key string, wantMin bool, contrib func(*NodeInfo) []topoCount) *aggregate {
	if s.journal == nil {
		a := newAggregate(wantMin)
		a.nodes = nil
		t := s.table("g|" + key)
		for idx, ni := range s.Nodes {
			a.build(t.get(idx, ni, func() memoEntry { return memoEntry{items: contrib(ni)} }).items)
		}
		return a.built()
	}
	if s.aggs == nil || len(s.aggs) >= maxAggregates {
		s.aggs = map[string]*aggregate{}
	}
	j := s.journal
	a := s.aggs[key]
	if a == nil || a.seq < j.start {
		a = newAggregate(wantMin)
		a.contrib = make([][]topoCount, len(s.Nodes))
		for idx, ni := range s.Nodes {
			items := contrib(ni)
			a.contrib[idx] = items
			a.build(items)
		}
		a.built()
		a.seq = j.end()
		j.read = a.seq
		s.aggs[key] = a
		return a
	}
	for _, idx := range j.changed[a.seq-j.start:] {
		if idx < len(a.contrib) {
			a.add(a.contrib[idx], -1)
			a.contrib[idx] = nil
		}
		if idx >= len(s.Nodes) {
			continue
		}
		if idx >= len(a.contrib) {
			a.contrib = append(a.contrib, make([][]topoCount, idx+1-len(a.contrib))...)
		}
		items := contrib(s.Nodes[idx])
		a.contrib[idx] = items
		a.add(items, 1)
	}
	a.seq = j.end()
	j.read = a.seq
	return a
}

// mayHaveRequiredAntiAffinity reports whether a pod counted in s may have
// a required anti-affinity term (false only when none has).
func (s *Snapshot) mayHaveRequiredAntiAffinity() bool {
	if s.journal != nil {
		return s.antiPods > 0
	}
	for _, ni := range s.Nodes {
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			return true
		}
	}
	return false
}
