//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// dnsFreePort returns a loopback port free for both UDP and TCP when
// asked.
func dnsFreePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for UDP and TCP")
	return 0
}

// dnsUpstream is a resolver on 127.0.0.1 standing in for the node's:
// it answers upstream.example.org A with 192.0.2.7, db.example.org A with
// 192.0.2.8 and NXDOMAIN otherwise,
// and counts what it was asked.
func dnsUpstream(t *testing.T) (addr string, queries *atomic.Int32) {
	t.Helper()
	queries = &atomic.Int32{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		answers := map[string]net.IP{"upstream.example.org.": net.IPv4(192, 0, 2, 7), "db.example.org.": net.IPv4(192, 0, 2, 8)}
		if ip, ok := answers[strings.ToLower(r.Question[0].Name)]; ok && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip}}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), queries
}

// dnsAsk sends one question to the cluster DNS server.
func dnsAsk(addr, network, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// dnsRecords renders an answer section one record a string, with single
// spaces, for comparisons and messages.
func dnsRecords(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

const dnsObjects = `apiVersion: v1
kind: Namespace
metadata: {name: dns-e2e}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dns-e2e}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: syslog, port: 514, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: dns-e2e}
spec:
  clusterIP: None
  ports:
  - {name: pg, port: 5432}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-manual
  namespace: dns-e2e
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports:
- {name: pg, port: 5432, protocol: TCP}
endpoints:
- addresses: [10.244.77.5]
  hostname: db-0
  conditions: {ready: true}
- addresses: [10.244.77.6]
  conditions: {ready: true}
- addresses: [10.244.77.7]
  hostname: db-2
  conditions: {ready: false}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: dns-e2e}
spec:
  type: ExternalName
  externalName: db.example.org
`

// TestClusterDNS runs `skiff server` with its DNS server on a loopback
// port and a fake upstream, and queries it as a pod's resolver would:
// the kube-dns Service and its endpoints, A/SRV/CNAME/PTR for Services,
// headless endpoints and pods, NXDOMAIN versus NODATA, over UDP and TCP,
// and a name forwarded to the upstream.
func TestClusterDNS(t *testing.T) {
	port := dnsFreePort(t)
	upstream, upstreamQueries := dnsUpstream(t)
	c := suite.NewCluster(t, framework.Options{ServerArgs: []string{
		"--dns-port", strconv.Itoa(port), "--dns-upstreams", upstream}})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// The kube-dns Service, as kubeadm's for CoreDNS, points at the server.
	var svc corev1.Service
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, errOut, err := c.Kubectl("-n", "kube-system", "get", "service", "kube-dns", "-o", "json")
		if err != nil {
			return false, errOut
		}
		return json.Unmarshal([]byte(out), &svc) == nil, out
	})
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Labels["k8s-app"] != "kube-dns" || svc.Labels["kubernetes.io/name"] != "CoreDNS" || len(svc.Spec.Selector) != 0 {
		t.Errorf("kube-dns Service: got clusterIP %s labels %v selector %v, want 10.96.0.10, k8s-app=kube-dns, kubernetes.io/name=CoreDNS, no selector",
			svc.Spec.ClusterIP, svc.Labels, svc.Spec.Selector)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol))
	}
	if want := []string{"dns 53/UDP", "dns-tcp 53/TCP", "metrics 9153/TCP"}; !slices.Equal(ports, want) {
		t.Errorf("kube-dns ports: got %q, want %q", ports, want)
	}
	var slice discoveryv1.EndpointSlice
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, errOut, err := c.Kubectl("-n", "kube-system", "get", "endpointslice", "kube-dns", "-o", "json")
		if err != nil {
			return false, errOut
		}
		return json.Unmarshal([]byte(out), &slice) == nil, out
	})
	if len(slice.Endpoints) != 1 || !slices.Equal(slice.Endpoints[0].Addresses, []string{"127.0.0.1"}) ||
		len(slice.Ports) != 2 || slice.Ports[0].Port == nil || int(*slice.Ports[0].Port) != port {
		t.Errorf("kube-dns EndpointSlice: got endpoints %+v ports %+v, want 127.0.0.1 port %d", slice.Endpoints, slice.Ports, port)
	}
	if out := kubectlOK(t, c, "-n", "kube-system", "get", "endpoints", "kube-dns", "-o", "jsonpath={.subsets[0].addresses[0].ip} {.subsets[0].ports[*].port}"); out != fmt.Sprintf("127.0.0.1 %d %d", port, port) {
		t.Errorf("kube-dns Endpoints: got %q", out)
	}

	applyYAML(t, c, dnsObjects)
	t.Cleanup(func() { _, _, _ = c.Kubectl("delete", "namespace", "dns-e2e", "--wait=false") })
	webIP := strings.TrimSpace(kubectlOK(t, c, "-n", "dns-e2e", "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"))

	const zone = ".dns-e2e.svc.cluster.local."
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{"ClusterIP A", "web" + zone, dns.TypeA, dns.RcodeSuccess, []string{"web" + zone + " 5 IN A " + webIP}},
		{"SRV of a named port", "_http._tcp.web" + zone, dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_http._tcp.web" + zone + " 5 IN SRV 0 100 80 web" + zone}},
		{"SRV of a UDP port", "_syslog._udp.web" + zone, dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_syslog._udp.web" + zone + " 5 IN SRV 0 100 514 web" + zone}},
		{"headless A: ready endpoints", "db" + zone, dns.TypeA, dns.RcodeSuccess,
			[]string{"db" + zone + " 5 IN A 10.244.77.5", "db" + zone + " 5 IN A 10.244.77.6"}},
		{"headless endpoint by hostname", "db-0.db" + zone, dns.TypeA, dns.RcodeSuccess, []string{"db-0.db" + zone + " 5 IN A 10.244.77.5"}},
		{"headless endpoint by dashed IP", "10-244-77-6.db" + zone, dns.TypeA, dns.RcodeSuccess,
			[]string{"10-244-77-6.db" + zone + " 5 IN A 10.244.77.6"}},
		{"not-ready endpoint", "db-2.db" + zone, dns.TypeA, dns.RcodeNameError, nil},
		{"headless SRV", "_pg._tcp.db" + zone, dns.TypeSRV, dns.RcodeSuccess, []string{
			"_pg._tcp.db" + zone + " 5 IN SRV 0 50 5432 10-244-77-6.db" + zone,
			"_pg._tcp.db" + zone + " 5 IN SRV 0 50 5432 db-0.db" + zone}},
		{"ExternalName CNAME", "ext" + zone, dns.TypeCNAME, dns.RcodeSuccess, []string{"ext" + zone + " 5 IN CNAME db.example.org."}},
		{"ExternalName A: its CNAME and the target's address", "ext" + zone, dns.TypeA, dns.RcodeSuccess,
			[]string{"ext" + zone + " 5 IN CNAME db.example.org.", "db.example.org. 60 IN A 192.0.2.8"}},
		{"PTR of a cluster IP", mustReverse(t, webIP), dns.TypePTR, dns.RcodeSuccess,
			[]string{mustReverse(t, webIP) + " 5 IN PTR web" + zone}},
		{"PTR of a headless endpoint", "5.77.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess,
			[]string{"5.77.244.10.in-addr.arpa. 5 IN PTR db-0.db" + zone}},
		{"pod record", "10-244-1-9.dns-e2e.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"10-244-1-9.dns-e2e.pod.cluster.local. 5 IN A 10.244.1.9"}},
		{"the kubernetes Service", "kubernetes.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"}},
		{"missing Service: NXDOMAIN", "nope" + zone, dns.TypeA, dns.RcodeNameError, nil},
		{"missing namespace: NXDOMAIN", "web.nope.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"existing name, no AAAA: NODATA", "web" + zone, dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"namespace: NODATA", "dns-e2e.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"forwarded to the upstream", "upstream.example.org.", dns.TypeA, dns.RcodeSuccess,
			[]string{"upstream.example.org. 60 IN A 192.0.2.7"}},
	}
	// The first name tells when the informers have caught up.
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		r, err := dnsAsk(addr, "udp", "_pg._tcp.db"+zone, dns.TypeSRV)
		if err != nil {
			return false, err.Error()
		}
		return len(r.Answer) == 2, fmt.Sprint(dnsRecords(r.Answer))
	})
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r, err := dnsAsk(addr, network, tt.qname, tt.qtype)
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != tt.rcode {
					t.Errorf("rcode: got %s, want %s (answer %q)", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], dnsRecords(r.Answer))
				}
				want := tt.answer
				if want == nil {
					want = []string{}
				}
				slices.Sort(want)
				for _, rr := range r.Answer {
					// The upstream's records come from the cache the second
					// time, with their TTL counted down.
					if h := rr.Header(); strings.HasSuffix(h.Name, ".example.org.") && h.Ttl > 50 && h.Ttl <= 60 {
						h.Ttl = 60
					}
				}
				got := dnsRecords(r.Answer)
				if !slices.Equal(got, want) {
					t.Errorf("answer:\n got %q\nwant %q", got, want)
				}
				inZone := strings.HasSuffix(tt.qname, ".cluster.local.") || strings.HasSuffix(tt.qname, ".in-addr.arpa.")
				if inZone && !r.Authoritative {
					t.Errorf("answer for the cluster zone without the AA bit")
				}
				if inZone && len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
					t.Errorf("negative answer: authority %q, want the zone's SOA", dnsRecords(r.Ns))
				}
			})
		}
	}
	// Two lookups each (UDP, TCP) of the forwarded name and of the
	// ExternalName's target, one upstream query each.
	if n := upstreamQueries.Load(); n != 2 {
		t.Errorf("upstream queries: got %d, want 2 (the second answers from the cache)", n)
	}
}

func mustReverse(t *testing.T, ip string) string {
	t.Helper()
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatalf("reverse of %q: %v", ip, err)
	}
	return r
}

// TestRealClusterDNS: on a real node, a pod's resolv.conf names the
// cluster DNS IP, and a pod asking the server's DNS address (the kube-dns
// endpoint, the node IP, until the service proxy carries 10.96.0.10)
// resolves a Service's name to its cluster IP.
func TestRealClusterDNS(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-dns")
	kubectlOK(t, c, "-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
	webIP := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"))

	var dnsAddr string
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, errOut, err := c.Kubectl("-n", "kube-system", "get", "endpointslice", "kube-dns", "-o", "jsonpath={.endpoints[0].addresses[0]} {.ports[0].port}")
		if err != nil {
			return false, errOut
		}
		dnsAddr = out
		return true, out
	})
	if want := c.NodeIP() + " 53"; dnsAddr != want {
		t.Fatalf("kube-dns endpoint: got %q, want %q (the node IP, port 53)", dnsAddr, want)
	}

	name := "web." + ns + ".svc.cluster.local"
	kubectlOK(t, c, "-n", ns, "run", "ask", "--image="+c.Image(framework.ImageBusybox), "--restart=Never", "--",
		"sh", "-c", "cat /etc/resolv.conf; nslookup "+name+" "+c.NodeIP())
	waitPod(t, c, ns, "ask", podStartTimeout, func(p *corev1.Pod) string {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return ""
		}
		return "phase " + string(p.Status.Phase)
	})
	logs := kubectlOK(t, c, "-n", ns, "logs", "ask")
	t.Logf("pod output:\n%s", logs)
	if !strings.Contains(logs, "nameserver 10.96.0.10") {
		t.Errorf("pod resolv.conf: want nameserver 10.96.0.10 in:\n%s", logs)
	}
	if !strings.Contains(logs, "Address: "+webIP) {
		t.Errorf("nslookup %s from a pod: want Address: %s in:\n%s", name, webIP, logs)
	}
}

// TestRealStatefulSetDNS: the pods of a StatefulSet behind its headless
// Service are named <pod>.<service>.<ns>.svc.cluster.local with their pod
// IPs, the Service's name has every ready pod's address, and its SRV
// records name each pod, as upstream's cluster DNS answers them.
func TestRealStatefulSetDNS(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-dns-sts")
	applyYAML(t, c, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: `+ns+`}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 80}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: `+ns+`}
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: `+c.Image(framework.ImageBusybox)+`
        command: [sleep, "3600"]
        ports:
        - {name: http, containerPort: 80}
`)
	ips := map[string]string{}
	for _, pod := range []string{"web-0", "web-1"} {
		p := waitPod(t, c, ns, pod, podStartTimeout, func(p *corev1.Pod) string {
			ready := slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			})
			if p.Status.PodIP == "" || !ready {
				return "not ready with an IP: " + statusText(p)
			}
			return ""
		})
		ips[pod] = p.Status.PodIP
	}
	addr := net.JoinHostPort(c.NodeIP(), "53")
	svcName := "web." + ns + ".svc.cluster.local."
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		r, err := dnsAsk(addr, "udp", svcName, dns.TypeA)
		if err != nil {
			return false, err.Error()
		}
		got := dnsRecords(r.Answer)
		return len(got) == 2, fmt.Sprintf("web A: %q", got)
	})
	for pod, ip := range ips {
		r, err := dnsAsk(addr, "udp", pod+"."+svcName, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dnsRecords(r.Answer), []string{pod + "." + svcName + " 5 IN A " + ip}; !slices.Equal(got, want) {
			t.Errorf("%s A: got %q, want %q", pod, got, want)
		}
	}
	r, err := dnsAsk(addr, "tcp", "_http._tcp."+svcName, dns.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"_http._tcp." + svcName + " 5 IN SRV 0 50 80 web-0." + svcName,
		"_http._tcp." + svcName + " 5 IN SRV 0 50 80 web-1." + svcName,
	}
	if got := dnsRecords(r.Answer); !slices.Equal(got, want) {
		t.Errorf("SRV: got %q, want %q", got, want)
	}
	// PTR of a pod IP names the pod under its Service.
	rev, _ := dns.ReverseAddr(ips["web-0"])
	r, err = dnsAsk(addr, "udp", rev, dns.TypePTR)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dnsRecords(r.Answer), []string{rev + " 5 IN PTR web-0." + svcName}; !slices.Equal(got, want) {
		t.Errorf("PTR of web-0's IP: got %q, want %q", got, want)
	}
}
