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
