package cni

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/internal/cri"
)

type portSpec struct{ host, container int32 }

func criPorts(ps []portSpec) []cri.PortMapping {
	var out []cri.PortMapping
	for _, p := range ps {
		out = append(out, cri.PortMapping{Protocol: "TCP", HostPort: p.host, ContainerPort: p.container})
	}
	return out
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	m, err := New(Config{StateDir: t.TempDir(), PluginDirs: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(ctx); err == nil || !strings.Contains(err.Error(), `plugin "bridge" not found`) {
		t.Errorf("Status with an empty plugin dir: got %v, want plugin not found", err)
	}

	dir := t.TempDir()
	for _, p := range pluginTypes() {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err = New(Config{StateDir: t.TempDir(), PluginDirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Status(ctx); !errors.Is(err, ErrNoPodCIDR) {
		t.Errorf("Status without a pod CIDR: got %v, want ErrNoPodCIDR", err)
	}
	if _, err := m.Setup(ctx, "abc", "/run/netns/none", nil); !errors.Is(err, ErrNoPodCIDR) {
		t.Errorf("Setup without a pod CIDR: got %v, want ErrNoPodCIDR", err)
	}
	if err := m.SetPodCIDR("10.9.0.0/24"); err == nil {
		t.Errorf("SetPodCIDR outside the cluster CIDR: got no error")
	}
	if err := m.SetPodCIDR("10.244.7.0/24"); err != nil {
		t.Fatalf("SetPodCIDR: %v", err)
	}
	if err := m.Status(ctx); err != nil {
		t.Errorf("Status with plugins and a pod CIDR: got %v, want nil", err)
	}
	if got := m.PodCIDR(); got != "10.244.7.0/24" {
		t.Errorf("PodCIDR: got %q, want 10.244.7.0/24", got)
	}
}

// TestPodToPod: two pods get distinct IPs from the podCIDR, reach each other
// with their own addresses (no masquerade), and the node reaches a pod
// through the bridge.
func TestPodToPod(t *testing.T) {
	node := newTestNode(t, 24)
	ctx := testContext(t)
	m := node.manager(t, node.podCIDR)
	a, b := newNetns(t, "skiffcni-"), newNetns(t, "skiffcni-")

	ipsA, err := node.setup(ctx, m, "pod-a-"+a.name, a)
	if err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-a-"+a.name, a.path) })
	ipsB, err := node.setup(ctx, m, "pod-b-"+b.name, b)
	if err != nil {
		t.Fatalf("Setup B: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-b-"+b.name, b.path) })

	cidr := netip.MustParsePrefix(node.podCIDR)
	for _, ips := range [][]string{ipsA, ipsB} {
		if len(ips) != 1 {
			t.Fatalf("got IPs %v, want one", ips)
		}
		ip := netip.MustParseAddr(ips[0])
		if !cidr.Contains(ip) || ips[0] == node.gateway {
			t.Fatalf("got IP %s, want one in %s other than the gateway %s", ip, cidr, node.gateway)
		}
	}
	if ipsA[0] == ipsB[0] {
		t.Fatalf("both pods got %s", ipsA[0])
	}

	// The pod's eth0 carries the address, lo is up, the default route is
	// the bridge.
	out, err := a.exec("ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, ipsA[0]+"/24") {
		t.Errorf("pod A eth0: got %q (%v), want %s/24", out, err, ipsA[0])
	}
	out, err = a.exec("ip", "route", "show", "default")
	if err != nil || !strings.Contains(out, "via "+node.gateway) {
		t.Errorf("pod A default route: got %q (%v), want via %s", out, err, node.gateway)
	}
	out, err = a.exec("ip", "-o", "link", "show", "lo")
	if err != nil || !strings.Contains(out, "UP") {
		t.Errorf("pod A lo: got %q (%v), want UP", out, err)
	}

	// A repeated Setup reports the same address and allocates no other.
	again, err := node.setup(ctx, m, "pod-b-"+b.name, b)
	if err != nil || len(again) != 1 || again[0] != ipsB[0] {
		t.Fatalf("second Setup B: got %v, %v, want [%s]", again, err, ipsB[0])
	}
	entries, err := os.ReadDir(filepath.Join(node.stateDir, "ipam", networkName))
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			held = append(held, e.Name())
		}
	}
	if len(held) != 2 {
		t.Errorf("host-local holds %v, want exactly the two pods' addresses", held)
	}

	b.listen(t, "0.0.0.0:8080")
	src, err := waitDial(a, ipsB[0]+":8080")
	if err != nil {
		t.Fatalf("pod A -> pod B %s:8080: %v", ipsB[0], err)
	}
	if src != ipsA[0] {
		t.Errorf("pod B saw pod A as %s, want its own address %s (pod-to-pod must not be masqueraded)", src, ipsA[0])
	}
	// A pod reaches itself by its own IP (hairpin is only needed through NAT,
	// but the pod's own address must work too).
	a.listen(t, "0.0.0.0:8081")
	if _, err := waitDial(a, ipsA[0]+":8081"); err != nil {
		t.Errorf("pod A -> itself: %v", err)
	}

	src, err = waitDial(node.ns, ipsB[0]+":8080")
	if err != nil {
		t.Fatalf("node -> pod B %s:8080: %v", ipsB[0], err)
	}
	if src != node.gateway {
		t.Errorf("pod B saw the node as %s, want the bridge address %s", src, node.gateway)
	}
}

// TestMasquerade: the table holds the rule; a pod reaching an address
// outside the cluster range appears with the node's address, and Cleanup
// removes the table.
func TestMasquerade(t *testing.T) {
	node := newTestNode(t, 24)
	ctx := testContext(t)
	m := node.manager(t, node.podCIDR)
	a := newNetns(t, "skiffcni-")
	if _, err := node.setup(ctx, m, "pod-a-"+a.name, a); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-a-"+a.name, a.path) })

	out, err := node.ns.exec("nft", "list", "table", "ip", "skiff-nat")
	if err != nil {
		t.Fatalf("nft list table ip skiff-nat: %v: %s", err, out)
	}
	for _, want := range []string{
		"type nat hook postrouting priority srcnat; policy accept;",
		"ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("nft table:\n%s\nwant a line %q", out, want)
		}
	}
	if n := strings.Count(out, "masquerade"); n != 1 {
		t.Errorf("got %d masquerade rules, want 1:\n%s", n, out)
	}
	fwd, err := node.ns.exec("cat", "/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(fwd) != "1" {
		t.Errorf("node ip_forward: got %q (%v), want 1", fwd, err)
	}

	// An "outside" network: a veth from the node to a namespace with a
	// TEST-NET-1 address, outside the cluster range.
	outside := newNetns(t, "skiffcni-out-")
	veth := "sko" + randHex(t, 4)
	run(t, "ip", "-n", node.ns.name, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", outside.name)
	run(t, "ip", "-n", node.ns.name, "addr", "add", "192.0.2.1/24", "dev", veth)
	run(t, "ip", "-n", node.ns.name, "link", "set", veth, "up")
	run(t, "ip", "-n", outside.name, "addr", "add", "192.0.2.2/24", "dev", "eth0")
	run(t, "ip", "-n", outside.name, "link", "set", "eth0", "up")
	outside.listen(t, "192.0.2.2:9000")

	src, err := waitDial(a, "192.0.2.2:9000")
	if err != nil {
		t.Fatalf("pod -> outside 192.0.2.2:9000: %v", err)
	}
	if src != "192.0.2.1" {
		t.Errorf("outside saw the pod as %s, want the node's address 192.0.2.1 (masqueraded)", src)
	}

	// Setup again (a new Manager re-applies the table): still one rule.
	m2 := node.manager(t, node.podCIDR)
	b := newNetns(t, "skiffcni-")
	if _, err := node.setup(ctx, m2, "pod-b-"+b.name, b); err != nil {
		t.Fatalf("Setup B: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m2, "pod-b-"+b.name, b.path) })
	out, _ = node.ns.exec("nft", "list", "table", "ip", "skiff-nat")
	if n := strings.Count(out, "masquerade"); n != 1 {
		t.Errorf("after a second Manager: got %d masquerade rules, want 1:\n%s", n, out)
	}

	if err := node.in(func() error { return m.Cleanup(ctx) }); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if out, err := node.ns.exec("nft", "list", "table", "ip", "skiff-nat"); err == nil {
		t.Errorf("after Cleanup the table is still there:\n%s", out)
	}
	if err := node.in(func() error { return m.Cleanup(ctx) }); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
	if out, err := node.ns.exec("ip", "link", "show", node.bridge); err != nil {
		t.Errorf("Cleanup removed the bridge %s: %v %s", node.bridge, err, out)
	}
}

// TestTeardownReleases: with a /30 podCIDR there is exactly one pod
// address, so each Setup proves the previous Teardown released it.
func TestTeardownReleases(t *testing.T) {
	node := newTestNode(t, 30)
	ctx := testContext(t)
	m := node.manager(t, node.podCIDR)
	only := node.prefix + "2"

	a := newNetns(t, "skiffcni-")
	ips, err := node.setup(ctx, m, "pod-a", a)
	if err != nil || len(ips) != 1 || ips[0] != only {
		t.Fatalf("Setup A: got %v, %v, want [%s]", ips, err, only)
	}
	if !node.ipamHolds(only) {
		t.Fatalf("host-local holds no allocation for %s after Setup", only)
	}

	b := newNetns(t, "skiffcni-")
	if ips, err := node.setup(ctx, m, "pod-b", b); err == nil {
		t.Fatalf("Setup B with the range exhausted: got %v, want an error", ips)
	}
	if err := node.teardown(ctx, m, "pod-b", b.path); err != nil {
		t.Errorf("Teardown of the failed pod B: %v", err)
	}

	if err := node.teardown(ctx, m, "pod-a", a.path); err != nil {
		t.Fatalf("Teardown A: %v", err)
	}
	if node.ipamHolds(only) {
		t.Errorf("host-local still holds %s after Teardown", only)
	}
	if out, err := a.exec("ip", "link", "show", "eth0"); err == nil {
		t.Errorf("pod A still has eth0 after Teardown: %s", out)
	}
	if err := node.teardown(ctx, m, "pod-a", a.path); err != nil {
		t.Errorf("second Teardown A: got %v, want nil", err)
	}
	if err := node.teardown(ctx, m, "never-set-up", ""); err != nil {
		t.Errorf("Teardown of a sandbox never set up: got %v, want nil", err)
	}

	ips, err = node.setup(ctx, m, "pod-b", b)
	if err != nil || len(ips) != 1 || ips[0] != only {
		t.Fatalf("Setup B after A's Teardown: got %v, %v, want [%s]", ips, err, only)
	}

	// The namespace goes first (a crashed sandbox); Teardown still
	// releases the address.
	b.delete(t)
	if err := node.teardown(ctx, m, "pod-b", b.path); err != nil {
		t.Fatalf("Teardown B after its netns was deleted: %v", err)
	}
	if node.ipamHolds(only) {
		t.Errorf("host-local still holds %s after Teardown of a deleted netns", only)
	}
	c := newNetns(t, "skiffcni-")
	ips, err = node.setup(ctx, m, "pod-c", c)
	if err != nil || len(ips) != 1 || ips[0] != only {
		t.Fatalf("Setup C: got %v, %v, want [%s]", ips, err, only)
	}
	if err := node.teardown(ctx, m, "pod-c", c.path); err != nil {
		t.Fatalf("Teardown C: %v", err)
	}
}

// TestHostPort: hostPort 31080 -> containerPort 8080 reaches the pod's
// listener from the node, via the bridge address and via 127.0.0.1, and
// from another pod; after Teardown the port is gone.
func TestHostPort(t *testing.T) {
	node := newTestNode(t, 24)
	ctx := testContext(t)
	m := node.manager(t, node.podCIDR)
	a, b := newNetns(t, "skiffcni-"), newNetns(t, "skiffcni-")
	_, err := node.setup(ctx, m, "pod-a", a)
	if err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-a", a.path) })
	port := portSpec{host: 31080, container: 8080}
	ipsB, err := node.setup(ctx, m, "pod-b", b, port)
	if err != nil {
		t.Fatalf("Setup B: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-b", b.path, port) })
	b.listen(t, "0.0.0.0:8080")

	for _, tc := range []struct {
		name, addr string
		from       *netns
		wantSrc    string
	}{
		// The bridge address is a local address of the node: portmap's
		// DNAT in OUTPUT (addrtype LOCAL) catches it.
		{name: "node via the bridge address", from: node.ns, addr: node.gateway + ":31080", wantSrc: node.gateway},
		// 127.0.0.1 works because portmap (snat) sets route_localnet on
		// the bridge and masquerades 127.0.0.1 -> pod to the bridge address.
		{name: "node via 127.0.0.1", from: node.ns, addr: "127.0.0.1:31080", wantSrc: node.gateway},
		// Another pod on the bridge: DNAT in PREROUTING, and portmap's
		// snat masquerades connections from the pod subnet to the bridge
		// address, so B's reply goes back through the node (where the DNAT
		// is undone) rather than straight to A over the bridge.
		{name: "pod A via the node address", from: a, addr: node.gateway + ":31080", wantSrc: node.gateway},
	} {
		src, err := waitDial(tc.from, tc.addr)
		if err != nil {
			t.Errorf("%s (%s): %v", tc.name, tc.addr, err)
			continue
		}
		if src != tc.wantSrc {
			t.Errorf("%s: pod B (%s) saw %s, want %s", tc.name, ipsB[0], src, tc.wantSrc)
		}
	}

	if out, err := node.ns.exec("iptables-save", "-t", "nat"); err == nil {
		t.Logf("portmap rules:\n%s", out)
	}
	if err := node.teardown(ctx, m, "pod-b", b.path, port); err != nil {
		t.Fatalf("Teardown B: %v", err)
	}
	if src, err := node.ns.dial(node.gateway + ":31080"); err == nil {
		t.Errorf("hostPort 31080 still reaches a listener (saw %s) after Teardown", src)
	}
	if out, err := node.ns.exec("iptables-save", "-t", "nat"); err != nil || strings.Contains(out, "31080") {
		t.Errorf("portmap rules after Teardown (%v):\n%s\nwant none for 31080", err, out)
	}
}

// TestRestart: a new Manager over the same StateDir, not yet knowing the
// podCIDR, tears down a pod the previous one set up, from libcni's cache.
func TestRestart(t *testing.T) {
	node := newTestNode(t, 24)
	ctx := testContext(t)
	m1 := node.manager(t, node.podCIDR)
	a := newNetns(t, "skiffcni-")
	port := portSpec{host: 31081, container: 8080}
	ips, err := node.setup(ctx, m1, "pod-a", a, port)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	cache := filepath.Join(node.stateDir, "cache", "results", "skiff-pod-a-eth0")
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no libcni cache entry after Setup: %v", err)
	}

	if out, err := node.ns.exec("iptables-save", "-t", "nat"); err != nil || !strings.Contains(out, "--dport 31081") {
		t.Fatalf("portmap rules after Setup (%v):\n%s\nwant a DNAT for 31081", err, out)
	}

	m2 := node.manager(t, "")
	if err := node.teardown(ctx, m2, "pod-a", a.path, port); err != nil {
		t.Fatalf("Teardown by the new Manager: %v", err)
	}
	if node.ipamHolds(ips[0]) {
		t.Errorf("host-local still holds %s", ips[0])
	}
	if out, err := a.exec("ip", "link", "show", "eth0"); err == nil {
		t.Errorf("pod still has eth0: %s", out)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("libcni cache entry still there after Teardown: %v", err)
	}
	if out, err := node.ns.exec("iptables-save", "-t", "nat"); err != nil || strings.Contains(out, "31081") || strings.Contains(out, `id: \"pod-a\"`) {
		t.Errorf("portmap rules after Teardown (%v):\n%s\nwant none for pod-a's 31081", err, out)
	}
}

// TestSetupRepairs: a repeated Setup of a sandbox whose interface vanished
// tears the broken setup down and sets it up again; with a /30 podCIDR the
// new address can only be the released one.
func TestSetupRepairs(t *testing.T) {
	node := newTestNode(t, 30)
	ctx := testContext(t)
	m := node.manager(t, node.podCIDR)
	only := node.prefix + "2"
	a := newNetns(t, "skiffcni-")
	if ips, err := node.setup(ctx, m, "pod-a", a); err != nil || len(ips) != 1 || ips[0] != only {
		t.Fatalf("Setup: got %v, %v, want [%s]", ips, err, only)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-a", a.path) })
	run(t, "ip", "-n", a.name, "link", "del", "eth0")

	ips, err := node.setup(ctx, m, "pod-a", a)
	if err != nil || len(ips) != 1 || ips[0] != only {
		t.Fatalf("Setup after eth0 vanished: got %v, %v, want [%s]", ips, err, only)
	}
	if out, err := a.exec("ip", "-4", "-o", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(out, only+"/30") {
		t.Errorf("eth0 after the repair: got %q (%v), want %s/30", out, err, only)
	}
	if _, err := waitDial(node.ns, only+":1"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("node -> repaired pod: got %v, want connection refused (reachable, nothing listening)", err)
	}
}

// TestRuntimeBringsUpLoopback: with the option, Setup runs no loopback
// plugin (the test namespaces have lo up already, as the runtime's do), and
// Teardown still releases the loopback entry of a pod set up by a Manager
// without the option.
func TestRuntimeBringsUpLoopback(t *testing.T) {
	node := newTestNode(t, 24)
	ctx := testContext(t)
	withPlugin := node.manager(t, node.podCIDR)
	m := node.manager(t, node.podCIDR)
	m.loopback = false // as New sets it for RuntimeBringsUpLoopback

	a, b := newNetns(t, "skiffcni-"), newNetns(t, "skiffcni-")
	if _, err := node.setup(ctx, m, "pod-a-"+a.name, a); err != nil {
		t.Fatalf("Setup A: %v", err)
	}
	t.Cleanup(func() { _ = node.teardown(context.Background(), m, "pod-a-"+a.name, a.path) })
	// The plugin leaves its result in libcni's cache when it ran.
	if m.cachedLoopback("pod-a-" + a.name) {
		t.Errorf("pod A: got a cached loopback attachment, want the plugin not run")
	}

	// Set up by the old way, torn down by the new.
	if _, err := node.setup(ctx, withPlugin, "pod-b-"+b.name, b); err != nil {
		t.Fatalf("Setup B: %v", err)
	}
	if !m.cachedLoopback("pod-b-" + b.name) {
		t.Fatalf("pod B: no cached loopback attachment after a Setup with the plugin")
	}
	if err := node.teardown(ctx, m, "pod-b-"+b.name, b.path); err != nil {
		t.Fatalf("Teardown B: %v", err)
	}
	if m.cachedLoopback("pod-b-" + b.name) {
		t.Errorf("pod B: loopback attachment still cached after Teardown")
	}
}
