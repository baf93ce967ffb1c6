package iptables

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

var (
	pod1 = proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.2"), Port: 8080}
	pod2 = proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.3"), Port: 8080, Local: true}
)

func port(name string, vip string, nodePort uint16, eps ...proxy.Endpoint) *proxy.ServicePort {
	return &proxy.ServicePort{
		Name:     proxy.ServicePortName{Namespace: "ns", Name: name, Port: "http", Protocol: proxy.TCP},
		Protocol: proxy.TCP, ClusterIP: netip.MustParseAddr(vip), Port: 80, NodePort: nodePort,
		ClusterEndpoints: eps, HasEndpoints: len(eps) > 0,
	}
}

// programs are the iptables variants the backend is tested with: the
// default, and iptables-legacy (what older kernels have) when installed.
func programs() []string {
	out := []string{DefaultProgram}
	if _, err := exec.LookPath("iptables-legacy-restore"); err == nil {
		out = append(out, "iptables-legacy")
	}
	return out
}

// requireIptables skips without the iptables programs (fails under
// CI=true, like a missing root).
func requireIptables(t *testing.T) {
	t.Helper()
	proxytest.RequireRoot(t)
	for _, p := range []string{"iptables-restore", "iptables-save", "nsenter"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("missing %s", p)
			}
			t.Skipf("needs %s", p)
		}
	}
}

func newBackend(t *testing.T, n *proxytest.Net, mode BridgeMode, program string) *Backend {
	t.Helper()
	b, err := New(Config{
		Program:      program,
		NetNS:        proxytest.NSPath(n.Node),
		ClusterCIDR:  netip.MustParsePrefix("10.244.0.0/16"),
		LocalPodCIDR: netip.MustParsePrefix("10.244.0.0/24"),
		Bridge:       mode,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		_ = cleanup(context.Background(), proxytest.NSPath(n.Node), b.cfg.Program)
		_ = b.Close()
	})
	return b
}

// save returns iptables-save of the node namespace, with the counters of
// every rule: a chain the backend rewrites starts again from zero.
func save(t *testing.T, n *proxytest.Net, program string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.Node, program+"-save", "-c").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	return string(out)
}

func dumpOnFailure(t *testing.T, n *proxytest.Net, program string) {
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("ip", "netns", "exec", n.Node, program+"-save").CombinedOutput()
			t.Logf("rules:\n%s", out)
		}
	})
}

// chainRulesOf returns the saved rules of the named chain of table.
func chainRulesOf(saved, table, chain string) []string {
	var out []string
	cur := ""
	for _, line := range strings.Split(saved, "\n") {
		if strings.HasPrefix(line, "*") {
			cur = line[1:]
		}
		// With -c, a rule line starts with its counters.
		if cur == table && strings.HasPrefix(line, "[") {
			if _, rest, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(rest, "-A "+chain+" ") {
				out = append(out, line)
				continue
			}
		}
		if cur == table && strings.HasPrefix(line, "-A "+chain+" ") {
			out = append(out, line)
		}
	}
	return out
}

func hasChain(saved, table, chain string) bool {
	cur := ""
	for _, line := range strings.Split(saved, "\n") {
		if strings.HasPrefix(line, "*") {
			cur = line[1:]
		}
		if cur == table && strings.HasPrefix(line, ":"+chain+" ") {
			return true
		}
	}
	return false
}

func TestBackendForwards(t *testing.T) {
	requireIptables(t)
	for _, prog := range programs() {
		t.Run(prog, func(t *testing.T) { testBackendForwards(t, prog) })
	}
}

func testBackendForwards(t *testing.T, prog string) {
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter, prog)
	dumpOnFailure(t, n, prog)
	proxytest.Serve(t, n.Pod1, "pod1", 8080)
	proxytest.Serve(t, n.Pod2, "pod2", 8080)
	proxytest.ServeUDP(t, n.Pod2, "pod2", 5353)
	ctx := context.Background()

	web := port("web", "10.96.0.10", 30080, pod1, pod2)
	none := port("none", "10.96.0.11", 30081)
	sticky := port("sticky", "10.96.0.12", 0, pod1, pod2)
	sticky.Affinity = time.Minute
	local := port("local", "10.96.0.13", 30082, pod1, pod2)
	local.ExternalLocal, local.LocalEndpoints = true, []proxy.Endpoint{pod2}
	web.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.10")}
	web.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.51.100.20")}
	dns := port("dns", "10.96.0.14", 0, proxy.Endpoint{IP: pod2.IP, Port: 5353})
	dns.Name.Protocol, dns.Protocol, dns.Port = proxy.UDP, proxy.UDP, 53
	noLocal := port("nolocal", "10.96.0.15", 30083, pod1)
	noLocal.ExternalLocal = true
	internal := port("internal", "10.96.0.16", 0, pod2)
	internal.InternalLocal, internal.ClusterEndpoints, internal.LocalEndpoints = true, nil, []proxy.Endpoint{pod2}
	internalNone := port("internalnone", "10.96.0.17", 0, pod1)
	internalNone.InternalLocal, internalNone.ClusterEndpoints = true, nil
	rs := &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.77.1")},
		Services: []*proxy.ServicePort{dns, internal, internalNone, local, noLocal, none, sticky, web}}

	res, err := b.Sync(ctx, rs)
	if err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	if !res.Full || res.Changed != 8 {
		t.Errorf("first Sync: got %+v, want a full sync of 8 service ports", res)
	}
	if b.MasqueradesSameBridge() {
		t.Errorf("MasqueradesSameBridge: got true, want false (br_netfilter is loaded here)")
	}

	t.Run("ClusterIP from the node reaches every endpoint", func(t *testing.T) {
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.10:80", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
	})
	t.Run("ClusterIP from a pod reaches every endpoint, itself through hairpin", func(t *testing.T) {
		clientsOf := map[string]map[string]bool{"pod1": {}, "pod2": {}}
		for range 30 {
			name, client, err := proxytest.Ask(n.Pod1, "10.96.0.10:80")
			if err != nil {
				t.Fatalf("connect from pod1: %v", err)
			}
			clientsOf[name][client] = true
		}
		if len(clientsOf["pod1"]) == 0 || len(clientsOf["pod2"]) == 0 {
			t.Fatalf("backends: got %v, want both pod1 and pod2", clientsOf)
		}
		if want := map[string]bool{"10.244.0.2": true}; !maps.Equal(clientsOf["pod2"], want) {
			t.Errorf("client seen by pod2: got %v, want %v", clientsOf["pod2"], want)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clientsOf["pod1"], want) {
			t.Errorf("client seen by pod1 (hairpin): got %v, want %v", clientsOf["pod1"], want)
		}
	})
	t.Run("a Service without endpoints refuses at once", func(t *testing.T) {
		for _, c := range []struct{ ns, addr string }{
			{n.Node, "10.96.0.11:80"}, {n.Pod1, "10.96.0.11:80"}, {n.Remote, "192.168.77.1:30081"},
		} {
			start := time.Now()
			_, _, err := proxytest.Ask(c.ns, c.addr)
			if !proxytest.IsRefused(err) {
				t.Errorf("connect from %s to %s: got %v, want connection refused", c.ns, c.addr, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("connect from %s to %s: refused after %v, want at once", c.ns, c.addr, d)
			}
		}
	})
	t.Run("NodePort on the node address, policy Cluster masquerades", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Remote, "192.168.77.1:30080", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
	})
	t.Run("NodePort is not captured on loopback", func(t *testing.T) {
		_, _, err := proxytest.Ask(n.Node, "127.0.0.1:30080")
		if !proxytest.IsRefused(err) {
			t.Errorf("connect to 127.0.0.1:30080: got %v, want connection refused (nothing listens)", err)
		}
	})
	t.Run("NodePort with policy Local: local endpoints, client address kept", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Remote, "192.168.77.1:30082", 10)
		if want := map[string]int{"pod2": 10}; !maps.Equal(got, want) {
			t.Errorf("backends: got %v, want %v", got, want)
		}
		if want := map[string]bool{"192.168.77.2": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
		// From the node itself the short-circuit uses every endpoint.
		got, _ = proxytest.AskMany(t, n.Node, "192.168.77.1:30082", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends from the node: got %v, want both pod1 and pod2", got)
		}
		// From a pod too (short-circuit of the pod network).
		got, _ = proxytest.AskMany(t, n.Pod1, "192.168.77.1:30082", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends from a pod: got %v, want both pod1 and pod2", got)
		}
	})
	t.Run("NodePort with policy Local and no local endpoint drops outside traffic", func(t *testing.T) {
		_, _, err := proxytest.Ask(n.Remote, "192.168.77.1:30083")
		var nerr net.Error
		if !errors.As(err, &nerr) || !nerr.Timeout() {
			t.Errorf("connect from outside: got %v, want a timeout (dropped)", err)
		}
		got, _ := proxytest.AskMany(t, n.Node, "192.168.77.1:30083", 5)
		if want := map[string]int{"pod1": 5}; !maps.Equal(got, want) {
			t.Errorf("backends from the node: got %v, want %v", got, want)
		}
	})
	t.Run("internalTrafficPolicy Local", func(t *testing.T) {
		got, _ := proxytest.AskMany(t, n.Pod1, "10.96.0.16:80", 10)
		if want := map[string]int{"pod2": 10}; !maps.Equal(got, want) {
			t.Errorf("backends: got %v, want %v", got, want)
		}
		_, _, err := proxytest.Ask(n.Pod1, "10.96.0.17:80")
		var nerr net.Error
		if !errors.As(err, &nerr) || !nerr.Timeout() {
			t.Errorf("connect without a local endpoint: got %v, want a timeout (dropped)", err)
		}
	})
	t.Run("external and load balancer IPs from outside", func(t *testing.T) {
		for _, addr := range []string{"198.51.100.10:80", "198.51.100.20:80"} {
			got, _ := proxytest.AskMany(t, n.Remote, addr, 30)
			if got["pod1"] == 0 || got["pod2"] == 0 {
				t.Errorf("backends of %s: got %v, want both pod1 and pod2", addr, got)
			}
		}
	})
	t.Run("UDP ClusterIP", func(t *testing.T) {
		for _, ns := range []string{n.Node, n.Pod1} {
			got, err := proxytest.AskUDP(ns, "10.96.0.14:53")
			if err != nil || !strings.HasPrefix(got, "pod2 ") {
				t.Errorf("UDP from %s: got %q, %v, want an answer from pod2", ns, got, err)
			}
		}
	})
	t.Run("session affinity keeps one backend", func(t *testing.T) {
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.12:80", 15)
		if len(got) != 1 {
			t.Errorf("backends: got %v, want one", got)
		}
	})
	t.Run("an incremental change touches only its service", func(t *testing.T) {
		// Counters of untouched chains survive; a rewritten chain
		// starts from zero. Make them non-zero first.
		proxytest.AskMany(t, n.Node, "10.96.0.10:80", 5)
		before := save(t, n, prog)
		var others []string
		for _, p := range []*proxy.ServicePort{web, local} {
			for _, c := range b.applied.ports[p.Name].chains {
				others = append(others, c.name)
			}
		}
		oldSticky := b.applied.ports[sticky.Name]
		sticky2 := *sticky
		sticky2.ClusterEndpoints = []proxy.Endpoint{pod1}
		rs2 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dns, internal, internalNone, local, noLocal, none, &sticky2, web}}
		res, err := b.Sync(ctx, rs2)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if res.Full || res.Changed != 1 {
			t.Errorf("Sync: got %+v, want an incremental sync of 1 service port", res)
		}
		after := save(t, n, prog)
		counted := false
		for _, name := range others {
			for _, r := range chainRulesOf(before, tableNAT, name) {
				counted = counted || !strings.HasPrefix(r, "[0:0]")
			}
			if b, a := chainRulesOf(before, tableNAT, name), chainRulesOf(after, tableNAT, name); len(b) == 0 || strings.Join(b, "\n") != strings.Join(a, "\n") {
				t.Errorf("rules of %s: got %q, want unchanged %q", name, a, b)
			}
		}
		if !counted {
			t.Errorf("test bug: no rule of %v has counted a packet", others)
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.12:80", 10)
		if want := map[string]int{"pod1": 10}; !maps.Equal(got, want) {
			t.Errorf("backends after removing pod2: got %v, want %v", got, want)
		}
		// The removed endpoint's chain is gone in the same sync.
		gone := sepChain(sticky.Name, pod2)
		if !containsChain(oldSticky, gone) {
			t.Fatalf("test bug: %s is not a chain of sticky", gone)
		}
		if !hasChain(before, tableNAT, gone) || hasChain(after, tableNAT, gone) {
			t.Errorf("chain %s: present before %v, after %v; want deleted by the sync", gone, hasChain(before, tableNAT, gone), hasChain(after, tableNAT, gone))
		}
		if res, err := b.Sync(ctx, rs2); err != nil || res.Changed != 0 || res.Full {
			t.Errorf("Sync without change: got %+v, %v, want nothing changed", res, err)
		}
	})
	t.Run("removing an endpoint stops traffic to it", func(t *testing.T) {
		web2 := *web
		web2.ClusterEndpoints = []proxy.Endpoint{pod1}
		rs3 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dns, internal, internalNone, local, noLocal, none, sticky, &web2}}
		if _, err := b.Sync(ctx, rs3); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.10:80", 15)
		if want := map[string]int{"pod1": 15}; !maps.Equal(got, want) {
			t.Errorf("backends after removing pod2: got %v, want %v", got, want)
		}
		// Back to both, for the next steps.
		if _, err := b.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("removing a Service deletes its chains", func(t *testing.T) {
		rs4 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dns, internal, internalNone, local, noLocal, none, sticky}}
		res, err := b.Sync(ctx, rs4)
		if err != nil || res.Full || res.Changed != 1 {
			t.Fatalf("Sync: got %+v, %v, want an incremental sync of 1 service port", res, err)
		}
		saved := save(t, n, prog)
		for _, c := range []string{svcChain(web.Name), extChain(web.Name), sepChain(web.Name, pod1)} {
			if hasChain(saved, tableNAT, c) {
				t.Errorf("chain %s of the removed Service: still there", c)
			}
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:80"); err == nil {
			t.Errorf("connect to the removed ClusterIP: got an answer, want none")
		}
		if _, err := b.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("a new backend restarts with a full resync, removing stale chains", func(t *testing.T) {
		b2 := newBackend(t, n, BridgeNetfilter, prog)
		rs5 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{web}}
		res, err := b2.Sync(ctx, rs5)
		if err != nil || !res.Full {
			t.Fatalf("Sync: got %+v, %v, want a full sync", res, err)
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.10:80", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
		saved := save(t, n, prog)
		if hasChain(saved, tableNAT, svcChain(sticky.Name)) {
			t.Errorf("chain of sticky (not in the new Ruleset): still there after a full sync")
		}
		// The jumps from the built-in chains are there once.
		for _, j := range builtinJumps {
			if got := countJumps(saved, j); got != 1 {
				t.Errorf("jumps from %s %s to %s: got %d, want 1", j.table, j.chain, j.target, got)
			}
		}
		if _, err := b2.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("Cleanup removes every chain and jump", func(t *testing.T) {
		clean := Cleanup
		if prog != DefaultProgram {
			clean = func(ns string) error { return cleanup(ctx, ns, prog) }
		}
		if err := clean(proxytest.NSPath(n.Node)); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if saved := save(t, n, prog); strings.Contains(saved, chainPrefix) {
			t.Errorf("after Cleanup: got rules naming %s:\n%s", chainPrefix, saved)
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:80"); err == nil {
			t.Errorf("connect to the ClusterIP after Cleanup: got an answer, want none")
		}
		if err := clean(proxytest.NSPath(n.Node)); err != nil {
			t.Errorf("Cleanup of nothing: %v", err)
		}
	})
}

// TestBackendBridgeMasquerade: without br_netfilter, a pod reaching a pod
// on the same bridge through a Service needs the masquerade.
func TestBackendBridgeMasquerade(t *testing.T) {
	requireIptables(t)
	n := proxytest.New(t)
	// Per network namespace: the host's setting is untouched.
	_ = exec.Command("ip", "netns", "exec", n.Node, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0").Run()
	b := newBackend(t, n, BridgeMasquerade, "")
	dumpOnFailure(t, n, DefaultProgram)
	proxytest.Serve(t, n.Pod2, "pod2", 8080)
	rs := &proxy.Ruleset{Services: []*proxy.ServicePort{port("web", "10.96.0.10", 0, pod2)}}
	if _, err := b.Sync(context.Background(), rs); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if !b.MasqueradesSameBridge() {
		t.Fatalf("MasqueradesSameBridge: got false, want true")
	}
	got, clients := proxytest.AskMany(t, n.Pod1, "10.96.0.10:80", 5)
	if want := map[string]int{"pod2": 5}; !maps.Equal(got, want) {
		t.Errorf("backends: got %v, want %v", got, want)
	}
	if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
		t.Errorf("clients seen: got %v, want %v", clients, want)
	}
	// Hairpin: pod2 reaching itself.
	if name, client, err := proxytest.Ask(n.Pod2, "10.96.0.10:80"); err != nil || name != "pod2" || client != "10.244.0.1" {
		t.Errorf("pod2 through its own Service: got %q %q %v, want pod2 seeing 10.244.0.1", name, client, err)
	}
}

// TestSyncFailureNamesTheLine: a restore that fails reports the line, and
// the next Sync starts over with a full sync.
func TestSyncFailureNamesTheLine(t *testing.T) {
	requireIptables(t)
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeMasquerade, "")
	ctx := context.Background()
	rs := &proxy.Ruleset{Services: []*proxy.ServicePort{port("web", "10.96.0.10", 0, pod2)}}
	if _, err := b.Sync(ctx, rs); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	err := b.restore(ctx, []byte("*nat\n-A SKIFF-NO-SUCH-CHAIN -j ACCEPT\nCOMMIT\n"))
	if err == nil || !strings.Contains(err.Error(), "input line 2: -A SKIFF-NO-SUCH-CHAIN") {
		t.Errorf("restore of a bad input: got %v, want an error quoting input line 2", err)
	}
	t.Logf("error: %v", err)
	_ = b.fail(err)
	if res, err := b.Sync(ctx, rs); err != nil || !res.Full {
		t.Errorf("Sync after a failure: got %+v, %v, want a full sync", res, err)
	}
}

func countJumps(saved string, j jump) int {
	c := 0
	for _, line := range chainRulesOf(saved, j.table, j.chain) {
		if _, target := jumpOf(line); target == j.target {
			c++
		}
	}
	return c
}

func containsChain(p *portPlan, name string) bool {
	for _, c := range p.chains {
		if c.name == name {
			return true
		}
	}
	return false
}
