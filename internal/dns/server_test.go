package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeUpstream is a resolver on 127.0.0.1 that answers example.org A with
// 192.0.2.1 (TTL 60) and anything else NXDOMAIN, and counts its queries.
type fakeUpstream struct {
	addr    string
	queries atomic.Int32
}

func startUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if r.Question[0].Name == "example.org." && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: hdr("example.org.", dns.TypeA, 60), A: net.IPv4(192, 0, 2, 1)}}
		} else {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{&dns.SOA{Hdr: hdr("org.", dns.TypeSOA, 900), Ns: "a.org.", Mbox: "b.org.", Minttl: 60}}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return u
}

// startServer runs a Server on 127.0.0.1 with a fake clientset holding
// objs, and returns it once ready.
func startServer(t testing.TB, upstreams []string, objs ...runtime.Object) (*Server, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	s, err := New(Config{Client: cs, Addr: "127.0.0.1:0", ClusterDNS: []string{"10.96.0.10"}, Upstreams: upstreams,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready after 10 s")
	}
	return s, cs
}

func query(t *testing.T, addr, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return resp
}

func testObjects(endpoints int) []runtime.Object {
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		svc("default", "web", "ClusterIP", "10.96.0.20", sport("http", "TCP", 80)),
		svc("default", "big", "ClusterIP", "None", sport("http", "TCP", 80)),
	}
	var eps []discoveryv1.Endpoint
	for i := range endpoints {
		eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d", i/200, i%200+1), ptr(true), ""))
	}
	objs = append(objs, eslice("default", "big-1", "big", []discoveryv1.EndpointPort{eport("http", 8080)}, eps...))
	return objs
}

func TestServerUDPAndTCP(t *testing.T) {
	s, _ := startServer(t, nil, testObjects(3)...)
	for _, network := range []string{"udp", "tcp"} {
		r := query(t, s.Addr(), network, "web.default.svc.cluster.local.", dns.TypeA, 0)
		if got := flat(r.Answer); !slices.Equal(got, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}) {
			t.Errorf("%s A: got %q", network, got)
		}
		if !r.Authoritative || r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s A: got aa=%t rcode=%s, want aa rcode NOERROR", network, r.Authoritative, dns.RcodeToString[r.Rcode])
		}

		nx := query(t, s.Addr(), network, "nope.default.svc.cluster.local.", dns.TypeA, 0)
		if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 1 || nx.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s missing name: got rcode %s authority %q, want NXDOMAIN with the SOA", network, dns.RcodeToString[nx.Rcode], flat(nx.Ns))
		}
		nodata := query(t, s.Addr(), network, "web.default.svc.cluster.local.", dns.TypeAAAA, 0)
		if nodata.Rcode != dns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) != 1 {
			t.Errorf("%s NODATA: got rcode %s answer %q authority %q", network, dns.RcodeToString[nodata.Rcode], flat(nodata.Answer), flat(nodata.Ns))
		}
		if soa, ok := nodata.Ns[0].(*dns.SOA); !ok || soa.Serial == 0 {
			t.Errorf("%s NODATA: SOA %v, want a serial from the last change", network, nodata.Ns)
		}
	}
}

// Over UDP an answer is cut to 512 bytes, or to the client's EDNS0 size,
// with TC set; over TCP it is whole.
func TestServerTruncation(t *testing.T) {
	s, _ := startServer(t, nil, testObjects(100)...)
	name := "big.default.svc.cluster.local."
	plain := query(t, s.Addr(), "udp", name, dns.TypeA, 0)
	if !plain.Truncated || len(plain.Answer) == 0 || len(plain.Answer) >= 100 {
		t.Errorf("UDP without EDNS0: got tc=%t and %d records, want tc and fewer than 100", plain.Truncated, len(plain.Answer))
	}
	// Len counts compressed names only when told; the reply was compressed.
	small := query(t, s.Addr(), "udp", name, dns.TypeA, 1232)
	plain.Compress, small.Compress = true, true
	if n := plain.Len(); n > 512 {
		t.Errorf("UDP without EDNS0: got %d bytes, want <= 512", n)
	}
	edns := query(t, s.Addr(), "udp", name, dns.TypeA, 4096)
	if edns.Truncated || len(edns.Answer) != 100 || edns.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0 4096: got tc=%t, %d records, opt %v; want all 100 and an OPT", edns.Truncated, len(edns.Answer), edns.IsEdns0())
	}
	if !small.Truncated || small.Len() > 1232 {
		t.Errorf("UDP with EDNS0 1232: got tc=%t, %d bytes", small.Truncated, small.Len())
	}
	tcp := query(t, s.Addr(), "tcp", name, dns.TypeA, 0)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("TCP: got tc=%t and %d records, want all 100", tcp.Truncated, len(tcp.Answer))
	}
	srvAns := query(t, s.Addr(), "tcp", "_http._tcp."+name, dns.TypeSRV, 0)
	if len(srvAns.Answer) != 100 || srvAns.Answer[0].(*dns.SRV).Weight != 1 || srvAns.Answer[0].(*dns.SRV).Port != 8080 {
		t.Errorf("TCP SRV: got %d records, first %v; want 100 of weight 1 port 8080", len(srvAns.Answer), srvAns.Answer[:min(1, len(srvAns.Answer))])
	}
}

// Changes reach the answers through the informers.
func TestServerFollowsChanges(t *testing.T) {
	s, cs := startServer(t, nil, testObjects(1)...)
	ctx := context.Background()
	_, err := cs.CoreV1().Services("default").Create(ctx, svc("default", "late", "ClusterIP", "10.96.0.99", sport("http", "TCP", 80)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := "late.default.svc.cluster.local."
	waitFor(t, func() bool { return len(query(t, s.Addr(), "udp", name, dns.TypeA, 0).Answer) == 1 }, "new service answered")
	if err := cs.CoreV1().Services("default").Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return query(t, s.Addr(), "udp", name, dns.TypeA, 0).Rcode == dns.RcodeNameError }, "deleted service NXDOMAIN")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Names outside the zone go to the upstream, once per TTL; its NXDOMAIN
// comes back as it is; an unreachable upstream is SERVFAIL.
func TestServerForwards(t *testing.T) {
	up := startUpstream(t)
	s, _ := startServer(t, []string{up.addr}, testObjects(1)...)
	for i := range 3 {
		r := query(t, s.Addr(), "udp", "example.org.", dns.TypeA, 0)
		if got := flat(r.Answer); len(got) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Fatalf("query %d: got %q, want example.org A 192.0.2.1", i, got)
		}
	}
	if n := up.queries.Load(); n != 1 {
		t.Errorf("upstream queries for three asks: got %d, want 1 (cached)", n)
	}
	tcp := query(t, s.Addr(), "tcp", "example.org.", dns.TypeA, 0)
	if len(tcp.Answer) != 1 {
		t.Errorf("TCP forwarded answer: got %q", flat(tcp.Answer))
	}
	nx := query(t, s.Addr(), "udp", "missing.example.org.", dns.TypeA, 0)
	if nx.Rcode != dns.RcodeNameError || nx.Authoritative {
		t.Errorf("upstream NXDOMAIN: got rcode %s aa=%t, want NXDOMAIN not authoritative", dns.RcodeToString[nx.Rcode], nx.Authoritative)
	}
	// A reverse name the cluster does not know is the upstream's.
	before := up.queries.Load()
	query(t, s.Addr(), "udp", "9.9.9.9.in-addr.arpa.", dns.TypePTR, 0)
	if up.queries.Load() != before+1 {
		t.Errorf("unknown PTR was not forwarded")
	}
	// In-zone names never reach the upstream.
	before = up.queries.Load()
	query(t, s.Addr(), "udp", "nope.default.svc.cluster.local.", dns.TypeA, 0)
	if up.queries.Load() != before {
		t.Errorf("an in-zone name was forwarded")
	}

	// No reachable upstream: a closed port on loopback.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s2, _ := startServer(t, []string{dead}, testObjects(1)...)
	if r := query(t, s2.Addr(), "udp", "example.org.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("dead upstream: got rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func externalName(ns, name, target string) *corev1.Service {
	s := svc(ns, name, "ExternalName", "")
	s.Spec.ExternalName = target
	return s
}

// An ExternalName's CNAME comes with its target's addresses, from the
// upstream or from the zone, as CoreDNS answers it.
func TestServerChasesExternalNames(t *testing.T) {
	up := startUpstream(t)
	objs := append(testObjects(1),
		externalName("default", "ext", "example.org"),
		externalName("default", "alias", "web.default.svc.cluster.local"),
		externalName("default", "chain", "alias.default.svc.cluster.local"),
		externalName("default", "dangling", "nope.default.svc.cluster.local"),
		externalName("default", "gone", "missing.example.org"))
	s, _ := startServer(t, []string{up.addr}, objs...)
	tests := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"ext", dns.TypeA, []string{"ext.default.svc.cluster.local. 5 IN CNAME example.org.", "example.org. 60 IN A 192.0.2.1"}},
		{"alias", dns.TypeA, []string{"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"chain", dns.TypeA, []string{"chain.default.svc.cluster.local. 5 IN CNAME alias.default.svc.cluster.local.",
			"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"dangling", dns.TypeA, []string{}},
		{"gone", dns.TypeA, []string{"gone.default.svc.cluster.local. 5 IN CNAME missing.example.org."}},
		{"ext", dns.TypeCNAME, []string{"ext.default.svc.cluster.local. 5 IN CNAME example.org."}},
	}
	for _, tt := range tests {
		r := query(t, s.Addr(), "udp", tt.name+".default.svc.cluster.local.", tt.qtype, 0)
		if got := flat(r.Answer); !slices.Equal(got, tt.want) || r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s %s: got %s %q, want NOERROR %q", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], got, tt.want)
		}
	}
}

func TestReadResolvConf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver fd00::53\nnameserver bogus\noptions ndots:5\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResolvConf(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[fd00::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := ReadResolvConf(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("missing file: got no error")
	}
}
