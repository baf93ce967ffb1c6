package scheduler

import (
	"fmt"
	"math/rand"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestCacheAggregatesMatchFreshSnapshot churns a Cache at random (nodes
// added, relabelled and removed, pods assumed, confirmed, relabelled and
// deleted, namespaces relabelled) and checks after every step that pods
// with spreading and inter-pod affinity get, from the cache's incrementally
// kept aggregates, exactly the decision and message a snapshot built from
// scratch gives.
func TestCacheAggregatesMatchFreshSnapshot(t *testing.T) {
	zone := "topology.kubernetes.io/zone"
	honor, ignore := v1.NodeInclusionPolicyHonor, v1.NodeInclusionPolicyIgnore
	probes := []*v1.Pod{
		pod("anti-host").label("app", "a").affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "a"})).obj(),
		pod("anti-zone").label("app", "b").affinity(antiAffinity(zone, map[string]string{"app": "a"})).obj(),
		pod("aff-zone").label("app", "c").affinity(podAffinity(zone, map[string]string{"app": "b"})).obj(),
		pod("aff-self").label("app", "a").affinity(podAffinity(v1.LabelHostname, map[string]string{"app": "a"})).obj(),
		pod("spread-host").label("app", "a").spread(v1.LabelHostname, 1, v1.DoNotSchedule, map[string]string{"app": "a"}).obj(),
		pod("spread-zone").label("app", "b").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "b"}).
			spread(v1.LabelHostname, 2, v1.DoNotSchedule, map[string]string{"app": "b"}).obj(),
		pod("spread-selector").label("app", "a").selector("disk", "ssd").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "a"}).obj(),
		pod("spread-taints").label("app", "a").spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": "a"}).obj(),
		pod("spread-nsselector").ns("other").label("app", "a").affinity(&v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: zone,
				LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}}}}}).obj(),
	}
	probes[7].Spec.TopologySpreadConstraints[0].NodeTaintsPolicy = &honor
	probes[6].Spec.TopologySpreadConstraints[0].NodeAffinityPolicy = &ignore
	probes[6].Spec.TopologySpreadConstraints[0].MinDomains = ptrInt32(3)

	rng := rand.New(rand.NewSource(1))
	c := NewCache()
	c.SetNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
	c.SetNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}})
	nodeObjs := map[string]*v1.Node{}
	podObjs := map[string]*v1.Pod{}
	newNode := func(name string) *v1.Node {
		b := node(name).label(zone, fmt.Sprint("z", rng.Intn(4)))
		if rng.Intn(2) == 0 {
			b = b.label("disk", "ssd")
		}
		if rng.Intn(6) == 0 {
			b = b.taint("dedicated", "x", v1.TaintEffectNoSchedule)
		}
		if rng.Intn(8) == 0 {
			delete(b.n.Labels, zone)
		}
		return b.obj()
	}
	for i := 0; i < 12; i++ {
		n := newNode(fmt.Sprint("n", i))
		nodeObjs[n.Name] = n
		c.SetNode(n)
	}
	apps := []string{"a", "b", "c"}
	newPod := func(i int) *v1.Pod {
		names := make([]string, 0, len(nodeObjs))
		for n := range nodeObjs {
			names = append(names, n)
		}
		b := pod(fmt.Sprint("p", i)).on(names[rng.Intn(len(names))]).label("app", apps[rng.Intn(3)])
		if rng.Intn(3) == 0 {
			b = b.ns("other")
		}
		switch rng.Intn(5) {
		case 0:
			b = b.affinity(antiAffinity(zone, map[string]string{"app": apps[rng.Intn(3)]}))
		case 1:
			b = b.affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "a"}))
		case 2:
			if rng.Intn(3) == 0 { // existing pods' affinity scores incoming pods
				b = b.affinity(podAffinity(zone, map[string]string{"app": apps[rng.Intn(3)]}))
			}
		}
		return b.obj()
	}
	check := func(step int) {
		t.Helper()
		var ns []*v1.Node
		var ps []*v1.Pod
		c.View(func(s *Snapshot) {
			for _, ni := range s.Nodes {
				ns = append(ns, ni.Node)
				for _, p := range ni.Pods {
					ps = append(ps, p.Pod)
				}
			}
		})
		fresh := NewSnapshot(ns, ps,
			&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: c.snap.NamespaceLabels["default"]}},
			&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: c.snap.NamespaceLabels["other"]}})
		for _, p := range probes {
			for _, start := range []int{0, step % max(1, len(ns))} {
				var got Decision
				c.View(func(s *Snapshot) { got = Schedule(s, p, start) })
				want := Schedule(fresh, p, start)
				if fmt.Sprint(got.Node, got.Evaluated, got.Feasible, got.NextStart, errString(got.FitError)) !=
					fmt.Sprint(want.Node, want.Evaluated, want.Feasible, want.NextStart, errString(want.FitError)) {
					t.Fatalf("step %d, pod %s, start %d: got %s %v, want %s %v", step, p.Name, start,
						got.Node, errString(got.FitError), want.Node, errString(want.FitError))
				}
				var gotVerdicts string
				c.View(func(s *Snapshot) { gotVerdicts = filterVerdicts(s, p) })
				if wantVerdicts := filterVerdicts(fresh, p); gotVerdicts != wantVerdicts {
					t.Fatalf("step %d, pod %s: got %s, want %s", step, p.Name, gotVerdicts, wantVerdicts)
				}
			}
		}
	}
	next := 0
	for step := 0; step < 400; step++ {
		switch r := rng.Intn(20); {
		case r < 8: // a pod assumed, then maybe confirmed
			next++
			p := newPod(next)
			podObjs[p.Name] = p
			c.Assume(p)
			if rng.Intn(2) == 0 {
				c.SetPod(p)
			}
		case r < 11 && len(podObjs) > 0: // a pod deleted or its assumption dropped
			for name, p := range podObjs {
				if rng.Intn(2) == 0 {
					c.RemovePod(p)
				} else {
					c.Forget(p)
				}
				if !c.IsCounted(p.UID) {
					delete(podObjs, name)
				}
				break
			}
		case r < 13 && len(podObjs) > 0: // a pod relabelled
			for _, p := range podObjs {
				q := p.DeepCopy()
				q.Labels["app"] = apps[rng.Intn(3)]
				podObjs[q.Name] = q
				c.SetPod(q)
				break
			}
		case r < 15: // a node relabelled
			for name := range nodeObjs {
				n := newNode(name)
				nodeObjs[name] = n
				c.SetNode(n)
				break
			}
		case r < 16 && len(nodeObjs) > 2: // a node removed; its pods stay counted against it
			for name := range nodeObjs {
				delete(nodeObjs, name)
				c.RemoveNode(name)
				break
			}
		case r < 18: // a node added (or one that has pods comes back)
			name := fmt.Sprint("n", rng.Intn(20))
			n := newNode(name)
			nodeObjs[name] = n
			c.SetNode(n)
		default: // a namespace relabelled
			lbl := map[string]string{}
			if rng.Intn(2) == 0 {
				lbl["team"] = "x"
			}
			c.SetNamespace(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: []string{"default", "other"}[rng.Intn(2)], Labels: lbl}})
		}
		check(step)
	}
}

func errString(f *FitError) string {
	if f == nil {
		return ""
	}
	return f.Error()
}

func ptrInt32(v int32) *int32 { return &v }

// TestJournalReplaysOnlyChangedNodes checks that after a decision's
// assumption an aggregate is brought up to date from the journal, not
// rebuilt, and that a journal grown past the node count forces a rebuild.
func TestJournalReplaysOnlyChangedNodes(t *testing.T) {
	c := NewCache()
	for i := 0; i < 50; i++ {
		c.SetNode(node(fmt.Sprint("n", i)).obj())
	}
	p := pod("s").label("app", "a").spread(v1.LabelHostname, 1, v1.DoNotSchedule, map[string]string{"app": "a"}).obj()
	visits := 0
	get := func() *aggregate {
		var a *aggregate
		c.View(func(s *Snapshot) {
			a = s.aggregate("test", true, func(ni *NodeInfo) []topoCount {
				visits++
				return []topoCount{{topoPair{v1.LabelHostname, ni.Node.Name}, countMatching(ni, "default", labelsSelector("app", "a"))}}
			})
		})
		return a
	}
	get()
	mustEqual(t, "visits to build", visits, 50)
	visits = 0
	q := p.DeepCopy()
	q.Spec.NodeName = "n7"
	c.Assume(q)
	c.SetPod(q)
	a := get()
	mustEqual(t, "visits after one pod assumed and confirmed", visits, 1)
	mustEqual(t, "count on n7", a.counts[topoPair{v1.LabelHostname, "n7"}], 1)
	mustEqual(t, "smallest count", a.min(), 0)
	// A change to the node just read is recorded again, not merged.
	visits = 0
	r := q.DeepCopy()
	r.Labels["app"] = "b"
	c.SetPod(r)
	a = get()
	mustEqual(t, "visits after the pod was relabelled", visits, 1)
	mustEqual(t, "count on n7 after relabelling", a.counts[topoPair{v1.LabelHostname, "n7"}], 0)
	for i := 0; i < 3000; i++ {
		c.SetNode(node(fmt.Sprint("n", i%50)).obj())
	}
	visits = 0
	get()
	mustEqual(t, "visits after the journal overflowed", visits, 50)
}

func labelsSelector(k, v string) labels.Selector {
	s, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{k: v}})
	return s
}
