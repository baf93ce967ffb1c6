package nftables

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	nft "github.com/google/nftables"

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

func newBackend(t *testing.T, n *proxytest.Net, mode BridgeMode) *Backend {
	t.Helper()
	b, err := New(Config{
		NetNS:        proxytest.NSPath(n.Node),
		ClusterCIDR:  netip.MustParsePrefix("10.244.0.0/16"),
		LocalPodCIDR: netip.MustParsePrefix("10.244.0.0/24"),
		Bridge:       mode,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		_ = b.Cleanup()
		_ = b.Close()
	})
	return b
}

func dumpOnFailure(t *testing.T, n *proxytest.Net) {
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("ip", "netns", "exec", n.Node, "nft", "list", "table", "ip", DefaultTable).CombinedOutput()
			t.Logf("ruleset:\n%s", out)
		}
	})
}

// ruleHandles lists the handles of the rules of the given chains.
func ruleHandles(t *testing.T, b *Backend, chains []string) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, name := range chains {
		rules, err := b.conn.GetRules(b.table, &nft.Chain{Name: name, Table: b.table})
		if err != nil {
			t.Fatalf("list rules of %s: %v", name, err)
		}
		for _, r := range rules {
			out[name] = append(out[name], r.Handle)
		}
	}
	return out
}

func chainNames(p *plan) []string {
	var out []string
	for _, c := range p.chains {
		out = append(out, c.name)
	}
	return out
}

func TestBackendForwards(t *testing.T) {
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter)
	dumpOnFailure(t, n)
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
	rs := &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.77.1")}, Services: []*proxy.ServicePort{dns, local, noLocal, none, sticky, web}}

	res, err := b.Sync(ctx, rs)
	if err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	if !res.Full || res.Changed != 6 {
		t.Errorf("first Sync: got %+v, want a full sync of 6 service ports", res)
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
		// The other pod sees the client pod (no masquerade inside the
		// pod network); the pod reaching itself sees the bridge
		// (hairpin masquerade), or its reply would not come back.
		if want := map[string]bool{"10.244.0.2": true}; !maps.Equal(clientsOf["pod2"], want) {
			t.Errorf("client seen by pod2: got %v, want %v", clientsOf["pod2"], want)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clientsOf["pod1"], want) {
			t.Errorf("client seen by pod1 (hairpin): got %v, want %v", clientsOf["pod1"], want)
		}
	})
	t.Run("the nft tool lists the table", func(t *testing.T) {
		// What an administrator runs first when debugging a Service.
		out, err := exec.Command("ip", "netns", "exec", n.Node, "nft", "list", "table", "ip", DefaultTable).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "map endpoint-picks-") {
			t.Errorf("nft list table ip %s: %v\n%s", DefaultTable, err, out)
		}
	})
	t.Run("ClusterIP from outside the pod network is masqueraded", func(t *testing.T) {
		// The outside namespace routes the ClusterIP through the node;
		// the endpoints see the node, whose reply path they know.
		got, clients := proxytest.AskMany(t, n.Remote, "10.96.0.10:80", 20)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen by the endpoints: got %v, want %v (masqueraded to the bridge address)", clients, want)
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
		others := append(chainNames(b.applied[web.Name]), chainNames(b.applied[local.Name])...)
		before := ruleHandles(t, b, others)
		oldSticky := b.applied[sticky.Name]
		sticky2 := *sticky
		sticky2.ClusterEndpoints = []proxy.Endpoint{pod1}
		rs2 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dns, local, noLocal, none, &sticky2, web}}
		res, err := b.Sync(ctx, rs2)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if res.Full || res.Changed != 1 {
			t.Errorf("Sync: got %+v, want an incremental sync of 1 service port", res)
		}
		after := ruleHandles(t, b, others)
		for _, name := range others {
			if !equalHandles(before[name], after[name]) {
				t.Errorf("rules of %s: got handles %v, want unchanged %v", name, after[name], before[name])
			}
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.12:80", 10)
		if want := map[string]int{"pod1": 10}; !maps.Equal(got, want) {
			t.Errorf("backends after removing pod2: got %v, want %v", got, want)
		}
		// The removed endpoint's chain is flushed now and deleted by
		// the next sync.
		gone := endpointChainPrefix + endpointID(sticky.Name, pod2)
		if !slices.Contains(chainNames(oldSticky), gone) {
			t.Fatalf("test bug: %s is not a chain of sticky", gone)
		}
		if h := ruleHandles(t, b, []string{gone}); len(h[gone]) != 0 {
			t.Errorf("rules of removed endpoint chain: got %v, want none", h[gone])
		}
		if res, err := b.Sync(ctx, rs2); err != nil || res.Changed != 0 {
			t.Errorf("Sync without change: got %+v, %v, want nothing changed", res, err)
		}
		if _, err := b.conn.ListChain(b.table, gone); err == nil {
			t.Errorf("chain %s: still there after the next sync, want deleted", gone)
		}
	})
	t.Run("removing an endpoint stops traffic to it", func(t *testing.T) {
		web2 := *web
		web2.ClusterEndpoints = []proxy.Endpoint{pod1}
		rs3 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dns, local, noLocal, none, sticky, &web2}}
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
	t.Run("a new backend restarts with a full resync", func(t *testing.T) {
		b2 := newBackend(t, n, BridgeNetfilter)
		res, err := b2.Sync(ctx, rs)
		if err != nil || !res.Full {
			t.Fatalf("Sync: got %+v, %v, want a full sync", res, err)
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.10:80", 30)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
	})
	t.Run("Cleanup removes the table", func(t *testing.T) {
		if err := b.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if _, err := b.conn.ListTableOfFamily(DefaultTable, nft.TableFamilyIPv4); err == nil {
			t.Errorf("table %s: still there after Cleanup", DefaultTable)
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:80"); err == nil {
			t.Errorf("connect to the ClusterIP after Cleanup: got an answer, want none")
		}
	})
}

// TestBackendBridgeMasquerade: without br_netfilter, a pod reaching a pod
// on the same bridge through a Service needs the masquerade.
func TestBackendBridgeMasquerade(t *testing.T) {
	n := proxytest.New(t)
	// Per network namespace: the host's setting is untouched.
	_ = exec.Command("ip", "netns", "exec", n.Node, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0").Run()
	b := newBackend(t, n, BridgeMasquerade)
	dumpOnFailure(t, n)
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

func equalHandles(a, b []uint64) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBackendSharedPicks: ClusterIP-only Service ports without affinity
// have no chain of their own; they share one chain per protocol and
// number of endpoints, and behave as the others: spread, hairpin,
// masquerade from outside the pod network, incremental changes, refusal.
func TestBackendSharedPicks(t *testing.T) {
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter)
	dumpOnFailure(t, n)
	proxytest.Serve(t, n.Pod1, "pod1", 8080)
	proxytest.Serve(t, n.Pod2, "pod2", 8080)
	ctx := context.Background()
	plain := port("plain", "10.96.0.30", 0, pod1, pod2)
	other := port("other", "10.96.0.31", 0, pod1, pod2)
	solo := port("solo", "10.96.0.32", 0, pod2)
	rs := &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.77.1")}, Services: []*proxy.ServicePort{other, plain, solo}}
	if _, err := b.Sync(ctx, rs); err != nil {
		t.Fatalf("Sync: %v", err)
	}

	chains, err := b.conn.ListChainsOfTableFamily(nft.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	for _, c := range chains {
		if c.Table.Name == DefaultTable && (strings.HasPrefix(c.Name, servicePortChainPrefix) || strings.HasPrefix(c.Name, vipPickChainPrefix)) {
			own = append(own, c.Name)
		}
	}
	slices.Sort(own)
	if want := []string{"vip-pick-6-1", "vip-pick-6-2"}; !slices.Equal(own, want) {
		t.Errorf("service chains: got %v, want only the shared %v", own, want)
	}

	t.Run("spread, hairpin and the client's address", func(t *testing.T) {
		for _, vip := range []string{"10.96.0.30:80", "10.96.0.31:80"} {
			clientsOf := map[string]map[string]bool{"pod1": {}, "pod2": {}}
			for range 30 {
				name, client, err := proxytest.Ask(n.Pod1, vip)
				if err != nil {
					t.Fatalf("connect from pod1 to %s: %v", vip, err)
				}
				clientsOf[name][client] = true
			}
			if want := map[string]bool{"10.244.0.2": true}; !maps.Equal(clientsOf["pod2"], want) {
				t.Errorf("%s: client seen by pod2: got %v, want %v", vip, clientsOf["pod2"], want)
			}
			if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clientsOf["pod1"], want) {
				t.Errorf("%s: client seen by pod1 (hairpin): got %v, want %v", vip, clientsOf["pod1"], want)
			}
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.32:80", 10)
		if want := map[string]int{"pod2": 10}; !maps.Equal(got, want) {
			t.Errorf("solo: got %v, want %v", got, want)
		}
	})
	t.Run("from outside the pod network, masqueraded", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Remote, "10.96.0.30:80", 20)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both", got)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
	})
	t.Run("an incremental change moves one port to another shared chain", func(t *testing.T) {
		one := port("plain", "10.96.0.30", 0, pod1)
		rs2 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{other, one, solo}}
		res, err := b.Sync(ctx, rs2)
		if err != nil || res.Full || res.Changed != 1 {
			t.Fatalf("Sync: got %+v, %v, want one port changed", res, err)
		}
		if got, _ := proxytest.AskMany(t, n.Node, "10.96.0.30:80", 15); !maps.Equal(got, map[string]int{"pod1": 15}) {
			t.Errorf("plain with pod1 only: got %v", got)
		}
		if got, _ := proxytest.AskMany(t, n.Node, "10.96.0.31:80", 30); got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("other, unchanged: got %v, want both", got)
		}
	})
	t.Run("without endpoints, refused", func(t *testing.T) {
		gone := port("plain", "10.96.0.30", 0)
		rs3 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{other, gone, solo}}
		if _, err := b.Sync(ctx, rs3); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if _, _, err := proxytest.Ask(n.Pod1, "10.96.0.30:80"); !proxytest.IsRefused(err) {
			t.Errorf("connect to plain without endpoints: got %v, want refused", err)
		}
	})
}
