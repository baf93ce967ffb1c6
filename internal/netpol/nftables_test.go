package netpol

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testNet is a node network namespace with a bridge (10.244.0.1/24) and
// two pod namespaces on it (10.244.0.2 and .3), and a "remote" namespace
// (192.168.77.2) routed through the node, standing for another node's
// pods. Nothing leaves these namespaces.
type testNet struct {
	node, pod1, pod2, remote string
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "sknp" + hex.EncodeToString(b)
	n := &testNet{node: p + "-node", pod1: p + "-pod1", pod2: p + "-pod2", remote: p + "-rem"}
	for _, ns := range []string{n.node, n.pod1, n.pod2, n.remote} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "netns", "exec", n.node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	run(t, "ip", "-n", n.node, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", n.node, "addr", "add", "10.244.0.1/24", "dev", "br0")
	run(t, "ip", "-n", n.node, "link", "set", "br0", "up")
	for i, pod := range []string{n.pod1, n.pod2} {
		host := fmt.Sprintf("veth%d", i+1)
		run(t, "ip", "-n", n.node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod)
		run(t, "ip", "-n", n.node, "link", "set", host, "master", "br0", "up")
		run(t, "ip", "-n", pod, "addr", "add", fmt.Sprintf("10.244.0.%d/24", i+2), "dev", "eth0")
		run(t, "ip", "-n", pod, "link", "set", "eth0", "up")
		run(t, "ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
	}
	run(t, "ip", "-n", n.node, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", n.remote)
	run(t, "ip", "-n", n.node, "addr", "add", "192.168.77.1/24", "dev", "up0")
	run(t, "ip", "-n", n.node, "link", "set", "up0", "up")
	run(t, "ip", "-n", n.remote, "addr", "add", "192.168.77.2/24", "dev", "eth0")
	run(t, "ip", "-n", n.remote, "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.remote, "route", "add", "default", "via", "192.168.77.1")
	return n
}

func nsPath(name string) string { return "/var/run/netns/" + name }

// inNS runs f on a thread inside network namespace ns; the thread is
// discarded afterwards.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// serve accepts TCP connections on port in ns and answers "ok".
func serve(t *testing.T, ns string, port int) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
}

// reach reports whether a TCP connection from ns to addr gets "ok".
func reach(ns, addr string) error {
	return inNS(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2)
		if _, err := c.Read(buf); err != nil {
			return err
		}
		return nil
	})
}

func mustRange(p string) Range {
	r, _ := prefixRange(netip.MustParsePrefix(p))
	return r
}

// TestBackend programs rulesets into a real network namespace and checks
// real TCP connections: between two pods of the bridge, from another
// node's address, and from the node itself.
func TestBackend(t *testing.T) {
	n := newTestNet(t)
	for _, ns := range []string{n.pod1, n.pod2, n.remote} {
		serve(t, ns, 8080)
		serve(t, ns, 9090)
	}
	b, err := NewBackend(BackendConfig{NetNS: nsPath(n.node)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Cleanup(); _ = b.Close() })

	pod1, pod2 := netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.244.0.3")
	type check struct {
		from, to string
		ok       bool
	}
	steps := []struct {
		name   string
		rs     *Ruleset
		checks []check
	}{
		{"no policies", &Ruleset{}, []check{
			{n.pod1, "10.244.0.3:8080", true}, {n.remote, "10.244.0.3:9090", true}, {n.pod1, "192.168.77.2:8080", true},
		}},
		{"pod2 ingress: from pod1 on 8080 only", &Ruleset{Pods: []PodRules{{IP: pod2, Ingress: &Direction{Allows: []Allow{
			{Proto: ProtoTCP, PortLo: 8080, PortHi: 8080, Peers: []Range{addrRange(pod1)}},
		}}}}}, []check{
			{n.pod1, "10.244.0.3:8080", true}, {n.pod1, "10.244.0.3:9090", false},
			{n.remote, "10.244.0.3:8080", false}, {n.node, "10.244.0.3:9090", true},
			{n.pod2, "10.244.0.2:9090", true}, {n.remote, "10.244.0.2:9090", true},
		}},
		{"pod2 ingress deny all: the node still reaches it", &Ruleset{Pods: []PodRules{{IP: pod2, Ingress: &Direction{}}}}, []check{
			{n.pod1, "10.244.0.3:8080", false}, {n.remote, "10.244.0.3:8080", false}, {n.node, "10.244.0.3:8080", true},
		}},
		{"pod2 ingress from a port range, any peer", &Ruleset{Pods: []PodRules{{IP: pod2, Ingress: &Direction{Allows: []Allow{
			{Proto: ProtoTCP, PortLo: 9000, PortHi: 9999, AnyPeer: true},
		}}}}}, []check{
			{n.pod1, "10.244.0.3:8080", false}, {n.remote, "10.244.0.3:9090", true},
		}},
		{"pod1 egress: everything but pod2 (ipBlock 0.0.0.0/0 except)", &Ruleset{Pods: []PodRules{{IP: pod1, Egress: &Direction{Allows: []Allow{
			{Peers: subtract([]Range{mustRange("0.0.0.0/0")}, []Range{addrRange(pod2)})},
		}}}}}, []check{
			{n.pod1, "10.244.0.3:8080", false}, {n.pod1, "192.168.77.2:8080", true}, {n.pod2, "10.244.0.2:8080", true},
		}},
		{"pod1 egress deny all, pod2 ingress open", &Ruleset{Pods: []PodRules{{IP: pod1, Egress: &Direction{}}}}, []check{
			{n.pod1, "10.244.0.3:8080", false}, {n.pod1, "192.168.77.2:8080", false}, {n.remote, "10.244.0.2:8080", true},
		}},
		{"both directions: pod1 egress to pod2:9090, pod2 ingress from pod1 any port", &Ruleset{Pods: []PodRules{
			{IP: pod1, Egress: &Direction{Allows: []Allow{{Proto: ProtoTCP, PortLo: 9090, PortHi: 9090, Peers: []Range{addrRange(pod2)}}}}},
			{IP: pod2, Ingress: &Direction{Allows: []Allow{{Peers: []Range{addrRange(pod1)}}}}},
		}}, []check{
			{n.pod1, "10.244.0.3:9090", true}, {n.pod1, "10.244.0.3:8080", false}, {n.remote, "10.244.0.3:9090", false},
		}},
	}
	for _, s := range steps {
		changed, err := b.Sync(s.rs, false)
		if err != nil {
			t.Fatalf("%s: sync: %v", s.name, err)
		}
		if !changed {
			t.Errorf("%s: sync did not write a changed ruleset", s.name)
		}
		for _, c := range s.checks {
			err := reach(c.from, c.to)
			if c.ok && err != nil {
				t.Errorf("%s: %s -> %s: got %v, want a connection", s.name, c.from, c.to, err)
			}
			if !c.ok && err == nil {
				t.Errorf("%s: %s -> %s: connected, want refused", s.name, c.from, c.to)
			}
		}
	}
	if changed, err := b.Sync(steps[len(steps)-1].rs, false); err != nil || changed {
		t.Errorf("same ruleset again: got changed=%v err=%v, want no write", changed, err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", n.node, "nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), DefaultTable) {
		t.Errorf("after Cleanup: nft list tables = %q (%v), want no %s", out, err, DefaultTable)
	}
	if err := reach(n.pod1, "10.244.0.3:8080"); err != nil {
		t.Errorf("after Cleanup: pod1 -> pod2: %v", err)
	}
}

// TestBackendManyPods programs 500 isolated pods, each with rules over
// many peers, in one transaction, and checks the maps hold every pod.
func TestBackendManyPods(t *testing.T) {
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := "sknp" + hex.EncodeToString(b) + "-many"
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	be, err := NewBackend(BackendConfig{NetNS: nsPath(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Cleanup(); _ = be.Close() })
	rs := &Ruleset{}
	for i := range 500 {
		ip := addr(u32(netip.MustParseAddr("10.244.0.2")) + uint32(i))
		var peers []Range
		for j := range 50 {
			peers = append(peers, addrRange(addr(u32(netip.MustParseAddr("10.245.0.0"))+uint32(3*j+i))))
		}
		d := &Direction{Allows: []Allow{
			{Proto: ProtoTCP, PortLo: 80, PortHi: 80, Peers: peers},
			{Proto: ProtoUDP, PortLo: 53, PortHi: 53, AnyPeer: true},
			{Peers: []Range{mustRange("192.168.0.0/16")}},
		}}
		rs.Pods = append(rs.Pods, PodRules{IP: ip, Ingress: d, Egress: d})
	}
	start := time.Now()
	if _, err := be.Sync(rs, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("500 pods synced in %v", time.Since(start))
	for _, m := range []string{mapIngress, mapEgress} {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "map", "ip", DefaultTable, m).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list map %s: %v: %s", m, err, out)
		}
		if got := strings.Count(string(out), "jump "); got != 500 {
			t.Errorf("map %s: got %d elements, want 500", m, got)
		}
	}
}
