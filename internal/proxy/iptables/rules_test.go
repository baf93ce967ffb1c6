package iptables

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestRender")

var testConfig = renderConfig{
	clusterCIDR:  netip.MustParsePrefix("10.244.0.0/16"),
	localPodCIDR: netip.MustParsePrefix("10.244.0.0/24"),
	mark:         DefaultMasqueradeMark,
}

var nodeIPs = []netip.Addr{netip.MustParseAddr("192.168.77.1")}

// foundWithJumps is a kernel that already holds the jumps from the
// built-in chains (as iptables-save prints them) and no other chain.
func foundWithJumps() *found {
	f := &found{chains: map[string][]string{}, jumps: map[string][]string{}}
	for _, j := range builtinJumps {
		f.jumps[j.table] = append(f.jumps[j.table], "-A "+j.chain+" "+j.rule)
	}
	return f
}

func ruleset(ports ...*proxy.ServicePort) *proxy.Ruleset {
	return &proxy.Ruleset{NodeIPs: nodeIPs, Services: ports}
}

// TestRender compares the restore input of every layout case with its
// golden file (testdata/<name>.golden; go test -run TestRender -update
// rewrites them, to be reviewed in the diff).
func TestRender(t *testing.T) {
	web := port("web", "10.96.0.10", 0, pod1, pod2)
	none := port("none", "10.96.0.11", 30081)
	nodePort := port("np", "10.96.0.12", 30080, pod1, pod2)
	external := port("ext", "10.96.0.13", 0, pod1)
	external.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.10")}
	external.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.51.100.20")}
	etpLocal := port("etp", "10.96.0.14", 30082, pod1, pod2)
	etpLocal.ExternalLocal, etpLocal.LocalEndpoints = true, []proxy.Endpoint{pod2}
	etpLocal.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.51.100.30")}
	etpNoLocal := port("etpnone", "10.96.0.15", 30083, pod1)
	etpNoLocal.ExternalLocal = true
	etpNoLocal.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.51.100.40")}
	itpLocal := port("itp", "10.96.0.16", 0)
	itpLocal.HasEndpoints, itpLocal.InternalLocal, itpLocal.LocalEndpoints = true, true, []proxy.Endpoint{pod2}
	itpNoLocal := port("itpnone", "10.96.0.17", 0)
	itpNoLocal.HasEndpoints, itpNoLocal.InternalLocal = true, true
	sticky := port("sticky", "10.96.0.18", 0, pod1, pod2)
	sticky.Affinity = 3 * time.Hour
	udp := port("dns", "10.96.0.19", 0, proxy.Endpoint{IP: pod2.IP, Port: 5353})
	udp.Name.Protocol, udp.Protocol, udp.Port = proxy.UDP, proxy.UDP, 53
	udpNone := port("dnsnone", "10.96.0.20", 0)
	udpNone.Name.Protocol, udpNone.Protocol, udpNone.Port = proxy.UDP, proxy.UDP, 53

	// The incremental cases start from a full sync of three Services.
	three := ruleset(none, sticky, web)
	_, applied, _ := render(nil, foundWithJumps(), three, testConfig)
	web2 := *web
	web2.ClusterEndpoints = []proxy.Endpoint{pod1, {IP: netip.MustParseAddr("10.244.1.5"), Port: 8080}}

	bridge := testConfig
	bridge.masqSameBridge = true

	// A kernel left by an earlier proxy: a chain of a Service that is
	// gone, an unknown filter chain, and a jump to it.
	stale := foundWithJumps()
	stale.chains[tableNAT] = []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq, svcChain(sticky.Name), svcChain(web.Name)}
	stale.chains[tableFilter] = []string{chainServices, "SKIFF-OLD"}
	stale.jumps[tableFilter] = append(stale.jumps[tableFilter], `-A FORWARD -m comment --comment "old" -j SKIFF-OLD`)

	for _, c := range []struct {
		name        string
		prev        *state
		found       *found
		rs          *proxy.Ruleset
		cfg         renderConfig
		wantChanged int
	}{
		{name: "clusterip-two-endpoints", found: foundWithJumps(), rs: ruleset(web), wantChanged: 1},
		{name: "no-endpoints-reject", found: foundWithJumps(), rs: ruleset(none, udpNone), wantChanged: 2},
		{name: "nodeport", found: foundWithJumps(), rs: ruleset(nodePort), wantChanged: 1},
		{name: "external-and-lb-ips", found: foundWithJumps(), rs: ruleset(external), wantChanged: 1},
		{name: "etp-local", found: foundWithJumps(), rs: ruleset(etpLocal), wantChanged: 1},
		{name: "etp-local-no-local-endpoints", found: foundWithJumps(), rs: ruleset(etpNoLocal), wantChanged: 1},
		{name: "itp-local", found: foundWithJumps(), rs: ruleset(itpLocal, itpNoLocal), wantChanged: 2},
		{name: "session-affinity", found: foundWithJumps(), rs: ruleset(sticky), wantChanged: 1},
		{name: "udp", found: foundWithJumps(), rs: ruleset(udp), wantChanged: 1},
		{name: "bridge-masquerade", found: foundWithJumps(), rs: ruleset(web), cfg: bridge, wantChanged: 1},
		{name: "first-sync-inserts-jumps", found: &found{}, rs: ruleset(web), wantChanged: 1},
		{name: "full-sync-deletes-stale", found: stale, rs: ruleset(web), wantChanged: 1},
		{name: "incremental-change-of-one", prev: applied, rs: ruleset(none, sticky, &web2), wantChanged: 1},
		{name: "incremental-removal", prev: applied, rs: ruleset(none, web), wantChanged: 1},
		{name: "incremental-node-ips", prev: applied, rs: &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.77.9")}, Services: three.Services}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			if cfg.mark == 0 {
				cfg = testConfig
			}
			got, next, changed := render(c.prev, c.found, c.rs, cfg)
			if changed != c.wantChanged {
				t.Errorf("changed: got %d, want %d", changed, c.wantChanged)
			}
			if len(next.ports) != len(c.rs.Services) {
				t.Errorf("next state: got %d ports, want %d", len(next.ports), len(c.rs.Services))
			}
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("golden file: %v (go test -run TestRender -update writes it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("restore input:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestRenderIncremental checks what the golden files cannot show at a
// glance: an incremental sync declares only the chains of the changed
// port (plus the dispatch chains), reuses the state of the others, and a
// sync without change writes nothing.
func TestRenderIncremental(t *testing.T) {
	a := port("a", "10.96.0.1", 30001, pod1, pod2)
	b := port("b", "10.96.0.2", 30002, pod1, pod2)
	c := port("c", "10.96.0.3", 0, pod1)
	_, applied, changed := render(nil, foundWithJumps(), ruleset(a, b, c), testConfig)
	if changed != 3 {
		t.Fatalf("full sync: changed %d, want 3", changed)
	}

	out, next, changed := render(applied, nil, ruleset(a, b, c), testConfig)
	if len(out) != 0 || changed != 0 {
		t.Errorf("sync without change: got %d bytes, %d changed, want nothing", len(out), changed)
	}
	if next.ports[a.Name] != applied.ports[a.Name] {
		t.Errorf("sync without change: the state of a was rebuilt, want it reused")
	}

	b2 := *b
	b2.ClusterEndpoints = []proxy.Endpoint{pod1}
	out, next, changed = render(applied, nil, ruleset(a, &b2, c), testConfig)
	if changed != 1 {
		t.Errorf("changed: got %d, want 1", changed)
	}
	declared := declaredChains(string(out))
	want := []string{
		"nat " + chainServices, "nat " + chainNodePorts,
		"nat " + svcChain(b.Name), "nat " + extChain(b.Name), "nat " + sepChain(b.Name, pod1), "nat " + sepChain(b.Name, pod2),
		"filter " + chainServices, "filter " + chainExternalServices, "filter " + chainNodePorts,
	}
	if !slices.Equal(declared, want) {
		t.Errorf("declared chains:\ngot  %v\nwant %v", declared, want)
	}
	if want := "-X " + sepChain(b.Name, pod2) + "\n"; !strings.Contains(string(out), want) {
		t.Errorf("restore input: no %q in\n%s", want, out)
	}
	for _, name := range []string{svcChain(a.Name), svcChain(c.Name)} {
		if strings.Contains(string(out), "-A "+name+" ") {
			t.Errorf("restore input rewrites %s, a chain of an unchanged port", name)
		}
	}
	// Every port still has its dispatch rule.
	for _, p := range []*proxy.ServicePort{a, &b2, c} {
		if !strings.Contains(string(out), "-d "+p.ClusterIP.String()+"/32") {
			t.Errorf("restore input: no dispatch rule for %s", p.Name)
		}
	}
	if next.ports[a.Name] != applied.ports[a.Name] || next.ports[b.Name] == applied.ports[b.Name] {
		t.Errorf("next state: want a's plan reused and b's rebuilt")
	}
	// The applied state is a value: the next sync from it is unaffected
	// by what was computed from it since.
	if _, again, _ := render(applied, nil, ruleset(a, b, c), testConfig); again.ports[b.Name] != applied.ports[b.Name] {
		t.Errorf("applied state changed by a later render")
	}
}

func declaredChains(input string) []string {
	var out []string
	table := ""
	for _, line := range strings.Split(input, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			out = append(out, table+" "+name)
		}
	}
	return out
}

func TestProbabilities(t *testing.T) {
	var eps []proxy.Endpoint
	for i := range 3 {
		eps = append(eps, proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 244, 0, byte(2 + i)}), Port: 80})
	}
	p := planPort(port("web", "10.96.0.10", 0, eps...), testConfig)
	var got []string
	for _, r := range p.chains[0].rules {
		if _, prob, ok := strings.Cut(r, "--probability "); ok {
			got = append(got, strings.Fields(prob)[0])
		} else if strings.Contains(r, "-j "+sepPrefix) {
			got = append(got, "rest")
		}
	}
	if want := []string{"0.3333333333", "0.5000000000", "rest"}; !slices.Equal(got, want) {
		t.Errorf("probabilities: got %v, want %v", got, want)
	}
}

func TestChainNames(t *testing.T) {
	n := proxy.ServicePortName{Namespace: strings.Repeat("n", 63), Name: strings.Repeat("s", 63), Port: strings.Repeat("p", 15), Protocol: proxy.SCTP}
	other := n
	other.Protocol = proxy.TCP
	names := []string{svcChain(n), svlChain(n), extChain(n), sepChain(n, pod1), svcChain(other), sepChain(n, pod2)}
	seen := map[string]bool{}
	for _, name := range names {
		if len(name) > 28 {
			t.Errorf("chain %s: %d characters, want at most 28", name, len(name))
		}
		if seen[name] {
			t.Errorf("chain %s: named twice", name)
		}
		seen[name] = true
	}
	if svcChain(n) != svcChain(n) {
		t.Errorf("chain names are not stable")
	}
}

func TestParseSaveAndCleanup(t *testing.T) {
	saved := `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:SKIFF-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "skiff service portals" -j SKIFF-SERVICES
-A INPUT -j ACCEPT
-A SKIFF-SERVICES -d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:SKIFF-SERVICES - [0:0]
:SKIFF-SVC-AAAA - [0:0]
-A PREROUTING -m comment --comment "skiff service portals" -j SKIFF-SERVICES
-A PREROUTING -j OTHER
-A SKIFF-SERVICES -j SKIFF-SVC-AAAA
COMMIT
`
	f := parseSave(saved)
	want := `*nat
:SKIFF-SERVICES - [0:0]
:SKIFF-SVC-AAAA - [0:0]
-D PREROUTING -m comment --comment "skiff service portals" -j SKIFF-SERVICES
-X SKIFF-SERVICES
-X SKIFF-SVC-AAAA
COMMIT
*filter
:SKIFF-SERVICES - [0:0]
-D INPUT -m conntrack --ctstate NEW -m comment --comment "skiff service portals" -j SKIFF-SERVICES
-X SKIFF-SERVICES
COMMIT
`
	if got := string(cleanupInput(f)); got != want {
		t.Errorf("cleanup input:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if got := cleanupInput(parseSave("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")); len(got) != 0 {
		t.Errorf("cleanup of nothing: got %q, want no input", got)
	}
}
