package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testZone = Zone{Name: "cluster.local.", TTL: 5, Nameservers: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}

func ptr[T any](v T) *T { return &v }

func svc(ns, name, typ, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceType(typ), ClusterIP: clusterIP, Ports: ports}}
	if clusterIP != "" {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	return s
}

func sport(name string, proto corev1.Protocol, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: p}
}

func eslice(ns, name, service string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps,
	}
}

func ep(addr string, ready *bool, hostname string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	if hostname != "" {
		e.Hostname = &hostname
	}
	return e
}

func eport(name string, p int32) discoveryv1.EndpointPort {
	tcp := corev1.ProtocolTCP
	return discoveryv1.EndpointPort{Name: &name, Port: &p, Protocol: &tcp}
}

// fixture is a small cluster: a ClusterIP Service with two named ports, a
// dual-stack one, a headless one with a hostname endpoint, an unnamed one
// and a not-ready one, a headless one without endpoints, one without
// ports, and an ExternalName.
func fixture() *Index {
	ix := NewIndex()
	for _, ns := range []string{"default", "kube-system"} {
		ix.SetNamespace(ns)
	}
	ix.SetService(svc("default", "web", "ClusterIP", "10.96.0.20", sport("http", "TCP", 80), sport("dns", "UDP", 53)))
	v6 := svc("default", "v6", "ClusterIP", "10.96.0.21", sport("http", "TCP", 80))
	v6.Spec.ClusterIPs = []string{"10.96.0.21", "fd00::21"}
	ix.SetService(v6)
	ix.SetService(svc("default", "db", "ClusterIP", "None", sport("pg", "TCP", 5432)))
	ix.SetEndpointSlice(eslice("default", "db-abc", "db", []discoveryv1.EndpointPort{eport("pg", 5432)},
		ep("10.244.0.5", ptr(true), "db-0"), ep("10.244.0.6", nil, ""), ep("10.244.0.7", ptr(false), "db-2")))
	ix.SetService(svc("default", "empty", "ClusterIP", "None"))
	ix.SetService(svc("default", "noports", "ClusterIP", "None"))
	ix.SetEndpointSlice(eslice("default", "noports-1", "noports", nil, ep("10.244.1.1", ptr(true), "")))
	ext := svc("default", "ext", "ExternalName", "")
	ext.Spec.ExternalName = "example.com"
	ix.SetService(ext)
	return ix
}

// flat renders records one per string, fields separated by one space.
func flat(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

const (
	nodata   = "NOERROR"
	nxdomain = "NXDOMAIN"
	forward  = "FORWARD"
	refused  = "REFUSED"
)

func outcome(r Result) string {
	switch {
	case r.Forward:
		return forward
	case r.Rcode == dns.RcodeNameError:
		return nxdomain
	case r.Rcode == dns.RcodeRefused:
		return refused
	}
	return nodata
}

func TestLookup(t *testing.T) {
	ix := fixture()
	const z = ".cluster.local."
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  string
		answer []string
		extra  []string
	}{
		{"service A", "web.default.svc" + z, dns.TypeA, nodata,
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}, nil},
		{"query case kept in the owner", "Web.Default.SVC" + z, dns.TypeA, nodata,
			[]string{"Web.Default.SVC.cluster.local. 5 IN A 10.96.0.20"}, nil},
		{"IPv4-only service has no AAAA: NODATA", "web.default.svc" + z, dns.TypeAAAA, nodata, nil, nil},
		{"dual-stack A", "v6.default.svc" + z, dns.TypeA, nodata, []string{"v6.default.svc.cluster.local. 5 IN A 10.96.0.21"}, nil},
		{"dual-stack AAAA", "v6.default.svc" + z, dns.TypeAAAA, nodata, []string{"v6.default.svc.cluster.local. 5 IN AAAA fd00::21"}, nil},
		{"headless: ready endpoints only", "db.default.svc" + z, dns.TypeA, nodata,
			[]string{"db.default.svc.cluster.local. 5 IN A 10.244.0.5", "db.default.svc.cluster.local. 5 IN A 10.244.0.6"}, nil},
		{"endpoint by hostname", "db-0.db.default.svc" + z, dns.TypeA, nodata,
			[]string{"db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.5"}, nil},
		{"endpoint by dashed IP", "10-244-0-6.db.default.svc" + z, dns.TypeA, nodata,
			[]string{"10-244-0-6.db.default.svc.cluster.local. 5 IN A 10.244.0.6"}, nil},
		{"not-ready endpoint has no name", "db-2.db.default.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"headless SRV: one per endpoint", "_pg._tcp.db.default.svc" + z, dns.TypeSRV, nodata,
			[]string{"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
				"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 10-244-0-6.db.default.svc.cluster.local."},
			[]string{"db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.5", "10-244-0-6.db.default.svc.cluster.local. 5 IN A 10.244.0.6"}},
		{"ClusterIP SRV of a named port", "_http._tcp.web.default.svc" + z, dns.TypeSRV, nodata,
			[]string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"UDP port", "_dns._udp.web.default.svc" + z, dns.TypeSRV, nodata,
			[]string{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"SRV of the service name: every port", "web.default.svc" + z, dns.TypeSRV, nodata,
			[]string{"web.default.svc.cluster.local. 5 IN SRV 0 50 80 web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN SRV 0 50 53 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"wrong protocol", "_http._udp.web.default.svc" + z, dns.TypeSRV, nxdomain, nil, nil},
		{"unknown port name", "_nope._tcp.web.default.svc" + z, dns.TypeSRV, nxdomain, nil, nil},
		{"A of a port name", "_http._tcp.web.default.svc" + z, dns.TypeA, nodata,
			[]string{"_http._tcp.web.default.svc.cluster.local. 5 IN A 10.96.0.20"}, nil},
		{"ExternalName A is its CNAME", "ext.default.svc" + z, dns.TypeA, nodata,
			[]string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}, nil},
		{"ExternalName CNAME", "ext.default.svc" + z, dns.TypeCNAME, nodata,
			[]string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}, nil},
		{"ExternalName has no SRV", "ext.default.svc" + z, dns.TypeSRV, nodata, nil, nil},
		{"ExternalName has no endpoints", "x.ext.default.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"ClusterIP service has no CNAME", "web.default.svc" + z, dns.TypeCNAME, nodata, nil, nil},
		{"TXT of an existing name", "web.default.svc" + z, dns.TypeTXT, nodata, nil, nil},
		{"MX of an existing name", "web.default.svc" + z, dns.TypeMX, nodata, nil, nil},
		{"headless without endpoints", "empty.default.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"headless without ports: A", "noports.default.svc" + z, dns.TypeA, nodata,
			[]string{"noports.default.svc.cluster.local. 5 IN A 10.244.1.1"}, nil},
		{"headless without ports: no SRV", "noports.default.svc" + z, dns.TypeSRV, nodata, nil, nil},
		{"missing service", "nope.default.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"missing service, AAAA", "nope.default.svc" + z, dns.TypeAAAA, nxdomain, nil, nil},
		{"missing namespace", "web.nope.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"namespace is NODATA", "default.svc" + z, dns.TypeA, nodata, nil, nil},
		{"namespace TXT is NXDOMAIN, as CoreDNS", "default.svc" + z, dns.TypeTXT, nxdomain, nil, nil},
		{"missing namespace is NXDOMAIN", "nope.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"svc is NODATA", "svc" + z, dns.TypeA, nodata, nil, nil},
		{"pod is NODATA", "pod" + z, dns.TypeA, nodata, nil, nil},
		{"other first label", "foo" + z, dns.TypeA, nxdomain, nil, nil},
		{"too many labels", "a.b.c.web.default.svc" + z, dns.TypeA, nxdomain, nil, nil},
		{"apex A", "cluster.local.", dns.TypeA, nodata, nil, nil},
		{"apex SOA", "cluster.local.", dns.TypeSOA, nodata,
			[]string{"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"}, nil},
		{"SOA below the apex", "web.default.svc" + z, dns.TypeSOA, nodata, nil, nil},
		{"apex NS", "cluster.local.", dns.TypeNS, nodata,
			[]string{"cluster.local. 5 IN NS ns.dns.cluster.local."}, []string{"ns.dns.cluster.local. 5 IN A 10.96.0.10"}},
		{"NS address", "ns.dns" + z, dns.TypeA, nodata, []string{"ns.dns.cluster.local. 5 IN A 10.96.0.10"}, nil},
		{"dns-version", "dns-version" + z, dns.TypeTXT, nodata, []string{`dns-version.cluster.local. 28800 IN TXT "1.1.0"`}, nil},
		{"pod A", "10-244-0-9.default.pod" + z, dns.TypeA, nodata, []string{"10-244-0-9.default.pod.cluster.local. 5 IN A 10.244.0.9"}, nil},
		{"pod AAAA of an IPv4 pod", "10-244-0-9.default.pod" + z, dns.TypeAAAA, nodata, nil, nil},
		{"IPv6 pod", "fd00--9.default.pod" + z, dns.TypeAAAA, nodata, []string{"fd00--9.default.pod.cluster.local. 5 IN AAAA fd00::9"}, nil},
		{"malformed pod name", "10-244-0.default.pod" + z, dns.TypeA, nxdomain, nil, nil},
		{"pod in a missing namespace", "10-244-0-9.nope.pod" + z, dns.TypeA, nxdomain, nil, nil},
		{"zone transfer", "cluster.local.", dns.TypeAXFR, refused, nil, nil},
		{"outside the zone", "example.org.", dns.TypeA, forward, nil, nil},
		{"suffix is not the zone", "notcluster.local.", dns.TypeA, forward, nil, nil},
		{"PTR of a cluster IP", "20.0.96.10.in-addr.arpa.", dns.TypePTR, nodata,
			[]string{"20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}, nil},
		{"PTR of an endpoint", "5.0.244.10.in-addr.arpa.", dns.TypePTR, nodata,
			[]string{"5.0.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."}, nil},
		{"PTR of a not-ready endpoint", "7.0.244.10.in-addr.arpa.", dns.TypePTR, forward, nil, nil},
		{"PTR of an IPv6 cluster IP", "1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, nodata,
			[]string{"1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR v6.default.svc.cluster.local."}, nil},
		{"PTR of an unknown address", "9.9.9.9.in-addr.arpa.", dns.TypePTR, forward, nil, nil},
		{"other types of reverse names", "20.0.96.10.in-addr.arpa.", dns.TypeA, forward, nil, nil},
		{"partial reverse name", "96.10.in-addr.arpa.", dns.TypePTR, forward, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ix.Lookup(testZone, dns.Question{Name: tt.qname, Qtype: tt.qtype, Qclass: dns.ClassINET})
			if got := outcome(r); got != tt.rcode {
				t.Fatalf("outcome: got %s, want %s (answer %v)", got, tt.rcode, flat(r.Answer))
			}
			want := tt.answer
			if want == nil {
				want = []string{}
			}
			if got := flat(r.Answer); !slices.Equal(sorted(got), sorted(want)) {
				t.Errorf("answer:\n got %q\nwant %q", got, want)
			}
			wantExtra := tt.extra
			if wantExtra == nil {
				wantExtra = []string{}
			}
			if got := flat(r.Extra); !slices.Equal(sorted(got), sorted(wantExtra)) {
				t.Errorf("extra:\n got %q\nwant %q", got, wantExtra)
			}
			if neg := r.Negative(); neg != (tt.rcode == nxdomain || tt.rcode == nodata && len(tt.answer) == 0) {
				t.Errorf("negative (SOA in authority): got %t", neg)
			}
		})
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// The index follows changes: a deleted slice takes its names and PTRs
// with it, a changed cluster IP moves its PTR, a slice moving to another
// Service moves its names.
func TestIndexUpdates(t *testing.T) {
	ix := fixture()
	q := func(name string, qt uint16) Result {
		return ix.Lookup(testZone, dns.Question{Name: name, Qtype: qt, Qclass: dns.ClassINET})
	}
	ix.DeleteEndpointSlice("default", "db-abc")
	if got := outcome(q("db.default.svc.cluster.local.", dns.TypeA)); got != nxdomain {
		t.Errorf("headless after its slice is deleted: got %s, want %s", got, nxdomain)
	}
	if got := outcome(q("5.0.244.10.in-addr.arpa.", dns.TypePTR)); got != forward {
		t.Errorf("PTR after the slice is deleted: got %s, want %s", got, forward)
	}

	ix.SetService(svc("default", "web", "ClusterIP", "10.96.0.30", sport("http", "TCP", 80)))
	if got := outcome(q("20.0.96.10.in-addr.arpa.", dns.TypePTR)); got != forward {
		t.Errorf("PTR of the old cluster IP: got %s, want %s", got, forward)
	}
	if got := flat(q("30.0.96.10.in-addr.arpa.", dns.TypePTR).Answer); len(got) != 1 || !strings.HasSuffix(got[0], "PTR web.default.svc.cluster.local.") {
		t.Errorf("PTR of the new cluster IP: got %q", got)
	}

	// A slice relabelled to another Service.
	ix.SetService(svc("default", "other", "ClusterIP", "None"))
	ix.SetEndpointSlice(eslice("default", "noports-1", "other", nil, ep("10.244.1.1", ptr(true), "")))
	if got := outcome(q("noports.default.svc.cluster.local.", dns.TypeA)); got != nxdomain {
		t.Errorf("old service of a moved slice: got %s, want %s", got, nxdomain)
	}
	if got := flat(q("other.default.svc.cluster.local.", dns.TypeA).Answer); len(got) != 1 {
		t.Errorf("new service of a moved slice: got %q, want one A", got)
	}

	ix.DeleteService("default", "web")
	if got := outcome(q("web.default.svc.cluster.local.", dns.TypeA)); got != nxdomain {
		t.Errorf("deleted service: got %s, want %s", got, nxdomain)
	}
	if got := outcome(q("30.0.96.10.in-addr.arpa.", dns.TypePTR)); got != forward {
		t.Errorf("PTR of a deleted service: got %s, want %s", got, forward)
	}
	ix.DeleteNamespace("default")
	if got := outcome(q("default.svc.cluster.local.", dns.TypeA)); got != nxdomain {
		t.Errorf("deleted namespace: got %s, want %s", got, nxdomain)
	}
	// v6's two cluster IPs and other's endpoint.
	if n := len(ix.reverse); n != 3 {
		t.Errorf("reverse entries left: got %d, want 3", n)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		base string
		want request
		ok   bool
	}{
		{"", request{}, true},
		{"svc", request{}, true},
		{"web.default.svc", request{service: "web", namespace: "default", kind: "svc"}, true},
		{"db-0.db.default.svc", request{endpoint: "db-0", service: "db", namespace: "default", kind: "svc"}, true},
		{"_http._tcp.web.default.svc", request{port: "http", protocol: "tcp", service: "web", namespace: "default", kind: "svc"}, true},
		{"http.tcp.web.default.svc", request{port: "http", protocol: "tcp", service: "web", namespace: "default", kind: "svc"}, true},
		{"default.pod", request{namespace: "default", kind: "pod"}, true},
		{"x.default.foo", request{kind: "foo"}, false},
		{"a.b.c.d.e.svc", request{}, false},
	}
	for _, tt := range tests {
		got, ok := parse(tt.base)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parse(%q): got %+v %t, want %+v %t", tt.base, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReverseAddr(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"3.2.1.in-addr.arpa.", ""},
		{"x.3.2.1.in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "fd00::1"},
		{"1.0.0.ip6.arpa.", ""},
		{"example.org.", ""},
	}
	for _, tt := range tests {
		a, ok := reverseAddr(tt.name)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("reverseAddr(%q): got %q, want %q", tt.name, got, tt.want)
		}
		// Round trip with miekg's forward function.
		if ok {
			if back, _ := dns.ReverseAddr(got); back != tt.name {
				t.Errorf("ReverseAddr(%s): got %q, want %q", got, back, tt.name)
			}
		}
	}
}
