package scheduler

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkSchedule measures the pure core: one decision per pod, with the
// decision applied to the snapshot as the scheduler's assume step does.
// Run: go test -run XXX -bench Schedule ./internal/scheduler/
func BenchmarkSchedule(b *testing.B) {
	zone := "topology.kubernetes.io/zone"
	kinds := []struct {
		name string
		pod  func(i int) *v1.Pod
	}{
		{"plain", func(i int) *v1.Pod {
			return pod(fmt.Sprint("p", i)).req("100m", "128Mi").label("app", fmt.Sprint("g", i%50)).obj()
		}},
		{"anti-affinity", func(i int) *v1.Pod {
			g := fmt.Sprint("g", i%50)
			return pod(fmt.Sprint("p", i)).req("100m", "128Mi").label("app", g).
				affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": g})).obj()
		}},
		{"spread", func(i int) *v1.Pod {
			g := fmt.Sprint("g", i%50)
			return pod(fmt.Sprint("p", i)).req("100m", "128Mi").label("app", g).
				spread(zone, 1, v1.DoNotSchedule, map[string]string{"app": g}).obj()
		}},
	}
	for _, n := range []int{1000, 5000} {
		for _, k := range kinds {
			b.Run(fmt.Sprintf("%s/%dnodes", k.name, n), func(b *testing.B) {
				var ns []*v1.Node
				var existing []*v1.Pod
				for i := 0; i < n; i++ {
					name := fmt.Sprint("node-", i)
					ns = append(ns, node(name).cpu("32").mem("128Gi").label(zone, fmt.Sprint("z", i%10)).obj())
					for j := 0; j < 2; j++ {
						existing = append(existing, pod(fmt.Sprint("e", i, "-", j)).on(name).req("200m", "256Mi").label("app", "existing").obj())
					}
				}
				snap := NewSnapshot(ns, existing)
				byName := map[string]*NodeInfo{}
				for _, ni := range snap.Nodes {
					byName[ni.Node.Name] = ni
				}
				podsToPlace := make([]*v1.Pod, b.N)
				for i := range podsToPlace {
					podsToPlace[i] = k.pod(i)
					podsToPlace[i].UID = types.UID(fmt.Sprint("bench-", i))
				}
				start := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := podsToPlace[i]
					d := Schedule(snap, p, start)
					if d.FitError != nil {
						b.Fatalf("pod %d: %v", i, d.FitError)
					}
					start = d.NextStart
					p.Spec.NodeName = d.Node
					byName[d.Node].AddPod(NewPodInfo(p))
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			})
		}
	}
}

// BenchmarkCacheSchedule is shaped as the end-to-end benchmark
// (bench/apibench, scheduler rows): 5,000 nodes in 10 zones holding one
// plain pod each, and pods of one group with hostname anti-affinity or
// hostname spreading; each decision goes through the Cache as the
// scheduling loop does it (View, Assume, then the informer's confirmation).
func BenchmarkCacheSchedule(b *testing.B) {
	const n = 5000
	zone := "topology.kubernetes.io/zone"
	kinds := []struct {
		name string
		pod  func(i int) *v1.Pod
	}{
		{"plain", func(i int) *v1.Pod {
			return pod(fmt.Sprint("p", i)).req("10m", "10Mi").label("app", "plain2").obj()
		}},
		{"anti-affinity", func(i int) *v1.Pod {
			return pod(fmt.Sprint("p", i)).req("10m", "10Mi").label("app", "anti").
				affinity(antiAffinity(v1.LabelHostname, map[string]string{"app": "anti"})).obj()
		}},
		{"spread", func(i int) *v1.Pod {
			return pod(fmt.Sprint("p", i)).req("10m", "10Mi").label("app", "spread").
				spread(v1.LabelHostname, 1, v1.DoNotSchedule, map[string]string{"app": "spread"}).obj()
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			c := NewCache()
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("node-%05d", i)
				c.SetNode(node(name).cpu("8").mem("32Gi").label(zone, fmt.Sprint("zone-", i%10)).obj())
				c.SetPod(pod(fmt.Sprint("e", i)).on(name).req("10m", "10Mi").label("app", "plain").obj())
			}
			// At most one pod per node for anti-affinity: start over
			// when the nodes are full.
			podsToPlace := make([]*v1.Pod, b.N)
			for i := range podsToPlace {
				podsToPlace[i] = k.pod(i)
				podsToPlace[i].UID = types.UID(fmt.Sprint("bench-", i))
				if k.name == "anti-affinity" {
					podsToPlace[i].Labels["round"] = fmt.Sprint(i / n)
					podsToPlace[i].Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels["round"] = fmt.Sprint(i / n)
				}
			}
			start := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := podsToPlace[i]
				var d Decision
				c.View(func(s *Snapshot) { d = Schedule(s, p, start) })
				if d.FitError != nil {
					b.Fatalf("pod %d: %v", i, d.FitError)
				}
				start = d.NextStart
				assumed := p.DeepCopy()
				assumed.Spec.NodeName = d.Node
				c.Assume(assumed)
				c.SetPod(assumed)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
		})
	}
}
