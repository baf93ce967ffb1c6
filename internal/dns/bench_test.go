package dns

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// benchFill adds 10,000 Services in 100 namespaces, each with one
// EndpointSlice of 5 endpoints.
func benchFill(ix *Index) *Index {
	for n := range 100 {
		ns := fmt.Sprintf("ns%d", n)
		ix.SetNamespace(ns)
		for i := range 100 {
			name := fmt.Sprintf("svc%d", i)
			ix.SetService(svc(ns, name, "ClusterIP", fmt.Sprintf("10.%d.%d.%d", 96+n/50, n%50, i+1), sport("http", "TCP", 80)))
			var eps []discoveryv1.Endpoint
			for e := range 5 {
				eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d", n, i*5+e%250), ptr(true), ""))
			}
			ix.SetEndpointSlice(eslice(ns, name+"-1", name, []discoveryv1.EndpointPort{eport("http", 8080)}, eps...))
		}
	}
	return ix
}

// BenchmarkLookup is the answer logic alone for a Service's A record.
func BenchmarkLookup(b *testing.B) {
	ix := benchFill(NewIndex())
	q := dns.Question{Name: "svc42.ns17.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := ix.Lookup(testZone, q); len(r.Answer) != 1 {
				b.Fatalf("got %d answers", len(r.Answer))
			}
		}
	})
}

// BenchmarkServerUDP is queries per second over real UDP sockets on
// loopback, from 16 concurrent clients, for cluster names (10,000
// Services); it reports the p99 latency.
//
//	go test -run '^$' -bench BenchmarkServerUDP -benchtime 200000x ./internal/dns/
func BenchmarkServerUDP(b *testing.B) {
	s, _ := startServer(b, nil, testObjects(5)...)
	// Straight into the index: the informers have synced, and the fake
	// clientset would only slow the set-up.
	benchFill(s.Index())

	const clients = 8
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / clients
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", s.Addr())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			dc := &dns.Conn{Conn: conn}
			m := new(dns.Msg)
			local := make([]time.Duration, 0, per)
			for i := range per {
				m.SetQuestion(fmt.Sprintf("svc%d.ns%d.svc.cluster.local.", i%100, (c+i)%100), dns.TypeA)
				start := time.Now()
				_ = dc.SetDeadline(start.Add(2 * time.Second))
				if err := dc.WriteMsg(m); err != nil {
					b.Error(err)
					return
				}
				r, err := dc.ReadMsg()
				if err != nil || len(r.Answer) != 1 {
					b.Errorf("query %d: %v %v", i, err, r)
					return
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "queries/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
