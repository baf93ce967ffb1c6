package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

var (
	pod1 = proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.2"), Port: 8080}
	pod2 = proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.3"), Port: 8080, Local: true}
	// hold1 and hold2 keep their connections open (holdServer).
	hold1 = proxy.Endpoint{IP: pod1.IP, Port: 9090}
	hold2 = proxy.Endpoint{IP: pod2.IP, Port: 9090, Local: true}
)

const nodeIP = "192.168.77.1"

func svcPort(name string, vip string, nodePort uint16, eps ...proxy.Endpoint) *proxy.ServicePort {
	return &proxy.ServicePort{
		Name:     proxy.ServicePortName{Namespace: "ns", Name: name, Port: "http", Protocol: proxy.TCP},
		Protocol: proxy.TCP, ClusterIP: netip.MustParseAddr(vip), Port: 80, NodePort: nodePort,
		ClusterEndpoints: eps, HasEndpoints: len(eps) > 0,
	}
}

func udpPort(name, vip string, nodePort uint16, eps ...proxy.Endpoint) *proxy.ServicePort {
	sp := svcPort(name, vip, nodePort, eps...)
	sp.Name.Protocol, sp.Protocol, sp.Port = proxy.UDP, proxy.UDP, 53
	return sp
}

func newBackend(t *testing.T, n *proxytest.Net) *Backend {
	t.Helper()
	b, err := New(Config{
		NetNS:       proxytest.NSPath(n.Node),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := Cleanup(proxytest.NSPath(n.Node)); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return b
}

func dumpOnFailure(t *testing.T, n *proxytest.Net) {
	t.Cleanup(func() {
		if t.Failed() {
			addrs, _ := exec.Command("ip", "-n", n.Node, "addr", "show", "dev", DefaultInterface).CombinedOutput()
			socks, _ := exec.Command("ip", "netns", "exec", n.Node, "ss", "-ltnup").CombinedOutput()
			t.Logf("device:\n%s\nsockets:\n%s", addrs, socks)
		}
	})
}

// holdServer answers every connection on port in ns with "<name>
// <client>" and then echoes what it receives until the client closes, so
// a test can keep a connection open and check it still works.
func holdServer(t *testing.T, ns, name string, port int) {
	t.Helper()
	var ln net.Listener
	if err := proxytest.InNS(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// held is a connection kept open through a Service.
type held struct {
	c    net.Conn
	r    *bufio.Reader
	name string
}

func hold(t *testing.T, ns, addr string) *held {
	t.Helper()
	var c net.Conn
	if err := proxytest.InNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect from %s to %s: %v", ns, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	h := &held{c: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := h.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	h.name = strings.Fields(line)[0]
	return h
}

// echo checks that the held connection still carries data both ways.
func (h *held) echo() error {
	_ = h.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := h.c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := h.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo: got %q, want ping", line)
	}
	return nil
}

// askSeq connects n times and returns the answering backends in order.
func askSeq(t *testing.T, ns, addr string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		name, _, err := proxytest.Ask(ns, addr)
		if err != nil {
			t.Fatalf("connect from %s to %s: %v", ns, addr, err)
		}
		out = append(out, name)
	}
	return out
}

func sameAll(names []string) bool {
	for _, n := range names {
		if n != names[0] {
			return false
		}
	}
	return len(names) > 0
}

// deviceAddrs lists the addresses of the backend's device.
func deviceAddrs(t *testing.T, b *Backend) map[netip.Addr]bool {
	t.Helper()
	own, _, err := b.addrs()
	if err != nil {
		t.Fatalf("list addresses: %v", err)
	}
	return own
}

// waitIdle waits until no connection of the Service port is active.
func waitIdle(t *testing.T, b *Backend, name proxy.ServicePortName) {
	t.Helper()
	proxytest.WaitUntil(t, "connections of "+name.String()+" to end", func() bool {
		for _, n := range b.ports[name].state.Load().internal.active {
			if n.Load() != 0 {
				return false
			}
		}
		return true
	})
}

func TestBackendForwards(t *testing.T) {
	n := proxytest.New(t)
	b := newBackend(t, n)
	dumpOnFailure(t, n)
	proxytest.Serve(t, n.Pod1, "pod1", 8080)
	proxytest.Serve(t, n.Pod2, "pod2", 8080)
	holdServer(t, n.Pod1, "pod1", 9090)
	holdServer(t, n.Pod2, "pod2", 9090)
	proxytest.ServeUDP(t, n.Pod2, "pod2", 5353)
	ctx := context.Background()

	web := svcPort("web", "10.96.0.10", 30080, pod1, pod2)
	web.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.10")}
	// 192.168.77.2 is another machine's address (the outside namespace's),
	// as the built-in load balancer lends other nodes' addresses: it must
	// not be captured.
	web.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("198.51.100.20"), netip.MustParseAddr("192.168.77.2")}
	// The external and load balancer addresses are this node's (an
	// administrator's route, the announcer's skiff-lb0): the backend
	// listens on them but does not make them local itself.
	for _, a := range []string{"198.51.100.10/32", "198.51.100.20/32"} {
		proxytest.Run(t, "ip", "-n", n.Node, "addr", "add", a, "dev", "lo")
	}
	proxytest.Serve(t, n.Remote, "outside", 7070)
	none := svcPort("none", "10.96.0.11", 30081)
	sticky := svcPort("sticky", "10.96.0.12", 0, pod1, pod2)
	sticky.Affinity = time.Minute
	local := svcPort("local", "10.96.0.13", 30082, pod1, pod2)
	local.ExternalLocal, local.LocalEndpoints = true, []proxy.Endpoint{pod2}
	dns := udpPort("dns", "10.96.0.14", 0, proxy.Endpoint{IP: pod2.IP, Port: 5353})
	noLocal := svcPort("nolocal", "10.96.0.15", 30083, pod1)
	noLocal.ExternalLocal = true
	sh := svcPort("sh", "10.96.0.16", 0, pod1, pod2)
	sh.Scheduler = proxy.SourceHashing
	dh := svcPort("dh", "10.96.0.17", 0, pod1, pod2)
	dh.Scheduler = proxy.DestinationHashing
	lc := svcPort("lc", "10.96.0.18", 0, hold1, hold2)
	lc.Scheduler = proxy.LeastConnection
	nq := svcPort("nq", "10.96.0.19", 0, hold1, hold2)
	nq.Scheduler = proxy.NeverQueue
	sed := svcPort("sed", "10.96.0.20", 0, hold1, hold2)
	sed.Scheduler = proxy.ShortestExpectedDelay
	dnsNoLocal := udpPort("dns-nolocal", "10.96.0.21", 30053, proxy.Endpoint{IP: pod2.IP, Port: 5353})
	dnsNoLocal.ExternalLocal = true
	dnsNone := udpPort("dns-none", "10.96.0.22", 0)
	holdWeb := svcPort("hold", "10.96.0.23", 0, hold1, hold2)
	// Nobody listens on pod1:9999: connections fail over to pod2.
	failover := svcPort("failover", "10.96.0.24", 0, proxy.Endpoint{IP: pod1.IP, Port: 9999}, pod2)
	services := []*proxy.ServicePort{dh, dns, dnsNoLocal, dnsNone, failover, holdWeb, lc, local, noLocal, none, nq, sed, sh, sticky, web}
	rs := &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr(nodeIP)}, Services: services}

	res, err := b.Sync(ctx, rs)
	if err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	if !res.Full || res.Changed != len(services) {
		t.Errorf("first Sync: got %+v, want a full sync of %d service ports", res, len(services))
	}
	if res, err := b.Sync(ctx, rs); err != nil || res.Full || res.Changed != 0 {
		t.Errorf("second Sync of the same ruleset: got %+v, %v, want nothing changed", res, err)
	}

	t.Run("the device holds the ClusterIPs, the node does not answer ARP for them", func(t *testing.T) {
		got := deviceAddrs(t, b)
		for _, a := range []string{"10.96.0.10", "10.96.0.11", "10.96.0.22"} {
			if !got[netip.MustParseAddr(a)] {
				t.Errorf("device addresses: %s missing from %v", a, got)
			}
		}
		for _, a := range []string{"198.51.100.10", "198.51.100.20", "192.168.77.2"} {
			if got[netip.MustParseAddr(a)] {
				t.Errorf("device addresses: got the external or load balancer address %s, want only ClusterIPs", a)
			}
		}
		if got[netip.MustParseAddr(nodeIP)] {
			t.Errorf("device addresses: got the node address %s, want it left to its interface", nodeIP)
		}
		for name, want := range map[string]string{"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"} {
			out, err := exec.Command("ip", "netns", "exec", n.Node, "sysctl", "-n", name).Output()
			if err != nil || strings.TrimSpace(string(out)) != want {
				t.Errorf("%s: got %q, %v, want %s", name, out, err, want)
			}
		}
	})
	t.Run("ClusterIP from the node reaches every endpoint, in turn", func(t *testing.T) {
		seq := askSeq(t, n.Node, "10.96.0.10:80", 20)
		for i := 1; i < len(seq); i++ {
			if seq[i] == seq[i-1] {
				t.Fatalf("rr: got %v, want the endpoints alternating", seq)
			}
		}
	})
	t.Run("ClusterIP from a pod reaches every endpoint, itself too", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Pod1, "10.96.0.10:80", 20)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
		// No NAT: the backend connects from the node (the bridge).
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
	})
	t.Run("a Service without endpoints refuses at once", func(t *testing.T) {
		for _, c := range []struct{ ns, addr string }{
			{n.Node, "10.96.0.11:80"}, {n.Pod1, "10.96.0.11:80"}, {n.Remote, nodeIP + ":30081"},
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
		if _, err := proxytest.AskUDP(n.Node, "10.96.0.22:53"); !proxytest.IsRefused(err) {
			t.Errorf("UDP without endpoints: got %v, want refused (ICMP port unreachable)", err)
		}
	})
	t.Run("NodePort on the node address, policy Cluster", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Remote, nodeIP+":30080", 20)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
	})
	t.Run("NodePort with policy Local: local endpoints, client address not kept", func(t *testing.T) {
		got, clients := proxytest.AskMany(t, n.Remote, nodeIP+":30082", 10)
		if want := map[string]int{"pod2": 10}; !maps.Equal(got, want) {
			t.Errorf("backends: got %v, want %v", got, want)
		}
		// Unlike the kernel backends (see the package documentation).
		if want := map[string]bool{"10.244.0.1": true}; !maps.Equal(clients, want) {
			t.Errorf("clients seen: got %v, want %v", clients, want)
		}
		// From the node and from a pod the short-circuit uses every endpoint.
		for _, ns := range []string{n.Node, n.Pod1} {
			got, _ = proxytest.AskMany(t, ns, nodeIP+":30082", 20)
			if got["pod1"] == 0 || got["pod2"] == 0 {
				t.Errorf("backends from %s: got %v, want both pod1 and pod2", ns, got)
			}
		}
	})
	t.Run("NodePort with policy Local and no local endpoint resets outside clients", func(t *testing.T) {
		start := time.Now()
		_, _, err := proxytest.Ask(n.Remote, nodeIP+":30083")
		var nerr net.Error
		if err == nil || errors.As(err, &nerr) && nerr.Timeout() {
			t.Errorf("connect from outside: got %v, want a reset", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("connect from outside: failed after %v, want at once", d)
		}
		got, _ := proxytest.AskMany(t, n.Node, nodeIP+":30083", 5)
		if want := map[string]int{"pod1": 5}; !maps.Equal(got, want) {
			t.Errorf("backends from the node: got %v, want %v", got, want)
		}
	})
	t.Run("external and load balancer IPs from outside", func(t *testing.T) {
		for _, addr := range []string{"198.51.100.10:80", "198.51.100.20:80"} {
			got, _ := proxytest.AskMany(t, n.Remote, addr, 10)
			if got["pod1"] == 0 || got["pod2"] == 0 {
				t.Errorf("backends of %s: got %v, want both pod1 and pod2", addr, got)
			}
		}
	})
	t.Run("another machine's address as a load balancer IP is not captured", func(t *testing.T) {
		name, _, err := proxytest.Ask(n.Node, "192.168.77.2:7070")
		if err != nil || name != "outside" {
			t.Errorf("from the node to 192.168.77.2:7070: got %q, %v; want the outside server", name, err)
		}
		if out, _ := exec.Command("ip", "-n", n.Node, "addr", "show", "dev", DefaultInterface).CombinedOutput(); strings.Contains(string(out), "192.168.77.2") {
			t.Errorf("%s holds 192.168.77.2:\n%s", DefaultInterface, out)
		}
	})
	t.Run("UDP", func(t *testing.T) {
		for _, ns := range []string{n.Node, n.Pod1, n.Remote} {
			got, err := proxytest.AskUDP(ns, "10.96.0.14:53")
			if err != nil || !strings.HasPrefix(got, "pod2 ") {
				t.Errorf("UDP from %s: got %q, %v, want an answer from pod2", ns, got, err)
			}
		}
		// Local policy without a local endpoint: dropped from outside,
		// served from the node.
		_, err := proxytest.AskUDP(n.Remote, nodeIP+":30053")
		var nerr net.Error
		if !errors.As(err, &nerr) || !nerr.Timeout() {
			t.Errorf("UDP from outside to a Local NodePort without local endpoint: got %v, want a timeout (dropped)", err)
		}
		if got, err := proxytest.AskUDP(n.Node, nodeIP+":30053"); err != nil || !strings.HasPrefix(got, "pod2 ") {
			t.Errorf("UDP from the node to the same NodePort: got %q, %v, want an answer from pod2", got, err)
		}
	})
	t.Run("an endpoint that refuses is skipped for the next", func(t *testing.T) {
		// rr's every other turn lands on the dead endpoint.
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.24:80", 6)
		if want := map[string]int{"pod2": 6}; !maps.Equal(got, want) {
			t.Errorf("backends: got %v, want %v", got, want)
		}
		if f := b.dialFailures.Load(); f != 0 {
			t.Errorf("connections no endpoint took: got %d, want 0", f)
		}
	})
	t.Run("session affinity keeps one backend", func(t *testing.T) {
		for _, ns := range []string{n.Node, n.Pod1} {
			if seq := askSeq(t, ns, "10.96.0.12:80", 10); !sameAll(seq) {
				t.Errorf("backends from %s: got %v, want one", ns, seq)
			}
		}
	})
	t.Run("sh keeps a client on one endpoint", func(t *testing.T) {
		seq := askSeq(t, n.Pod1, "10.96.0.16:80", 10)
		want := []string{"pod1", "pod2"}[shBucket(pod1.IP)%2]
		if !sameAll(seq) || seq[0] != want {
			t.Errorf("backends from pod1: got %v, want %s every time", seq, want)
		}
		if seq := askSeq(t, n.Node, "10.96.0.16:80", 10); !sameAll(seq) {
			t.Errorf("backends from the node: got %v, want one", seq)
		}
	})
	t.Run("dh sends one destination to one endpoint, whatever the client", func(t *testing.T) {
		want := []string{"pod1", "pod2"}[dhBucket(netip.MustParseAddr("10.96.0.17"))%2]
		for _, ns := range []string{n.Node, n.Pod1, n.Pod2} {
			if seq := askSeq(t, ns, "10.96.0.17:80", 5); !sameAll(seq) || seq[0] != want {
				t.Errorf("backends from %s: got %v, want %s every time", ns, seq, want)
			}
		}
	})
	for _, sp := range []*proxy.ServicePort{lc, nq, sed} {
		t.Run(string(sp.Scheduler)+" prefers the endpoint without open connections", func(t *testing.T) {
			addr := sp.ClusterIP.String() + ":80"
			h := hold(t, n.Pod1, addr)
			// Both idle: ties go to the first endpoint.
			if h.name != "pod1" {
				t.Errorf("first connection: got %s, want pod1", h.name)
			}
			// While pod1 holds a connection, every new one goes to pod2
			// (rr would alternate).
			for i := range 5 {
				if name, _, err := proxytest.Ask(n.Pod2, addr); err != nil || name != "pod2" {
					t.Fatalf("connection %d while pod1 is busy: got %q, %v, want pod2", i, name, err)
				}
				waitIdleExcept(t, b, sp.Name, 1)
			}
			h.c.Close()
			waitIdle(t, b, sp.Name)
		})
	}
	t.Run("an incremental change keeps listeners and established connections", func(t *testing.T) {
		h := hold(t, n.Node, "10.96.0.23:80")
		before := map[listenerKey]*listener{}
		for k, l := range b.listeners {
			before[k] = l
		}
		// The held connection's endpoint goes away, and the Service
		// switches scheduler; web moves its NodePort.
		holdWeb2 := *holdWeb
		if h.name == "pod1" {
			holdWeb2.ClusterEndpoints = []proxy.Endpoint{hold2}
		} else {
			holdWeb2.ClusterEndpoints = []proxy.Endpoint{hold1}
		}
		holdWeb2.Scheduler = proxy.LeastConnection
		web2 := *web
		web2.NodePort = 30090
		rs2 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: []*proxy.ServicePort{dh, dns, dnsNoLocal, dnsNone, failover, &holdWeb2, lc, local, noLocal, none, nq, sed, sh, sticky, &web2}}
		res, err := b.Sync(ctx, rs2)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if res.Full || res.Changed != 2 {
			t.Errorf("Sync: got %+v, want an incremental sync of 2 service ports", res)
		}
		moved := listenerKey{proxy.TCP, netip.MustParseAddrPort(nodeIP + ":30080")}
		for k, l := range before {
			if k == moved {
				if _, ok := b.listeners[k]; ok {
					t.Errorf("listener %v: still open after the NodePort moved", k.addr)
				}
				continue
			}
			if b.listeners[k] != l {
				t.Errorf("listener %s/%v: replaced, want kept", k.proto, k.addr)
			}
		}
		if err := h.echo(); err != nil {
			t.Errorf("established connection after its endpoint went away: %v", err)
		}
		if seq := askSeq(t, n.Node, "10.96.0.23:80", 4); !sameAll(seq) || seq[0] == h.name {
			t.Errorf("new connections: got %v, want only the remaining endpoint", seq)
		}
		if _, _, err := proxytest.Ask(n.Remote, nodeIP+":30080"); !proxytest.IsRefused(err) {
			t.Errorf("old NodePort: got %v, want refused", err)
		}
		if got, _ := proxytest.AskMany(t, n.Remote, nodeIP+":30090", 4); len(got) != 2 {
			t.Errorf("new NodePort: got %v, want both endpoints", got)
		}
		// Back to the first ruleset.
		if _, err := b.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("removing a Service port refuses it, its address goes with its last port", func(t *testing.T) {
		alt := svcPort("web-alt", "10.96.0.10", 0, pod1)
		alt.Name.Port, alt.Port = "alt", 81
		with := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: append([]*proxy.ServicePort{alt}, services...)}
		if res, err := b.Sync(ctx, with); err != nil || res.Changed != 1 {
			t.Fatalf("Sync: got %+v, %v, want 1 changed", res, err)
		}
		if name, _, err := proxytest.Ask(n.Node, "10.96.0.10:81"); err != nil || name != "pod1" {
			t.Fatalf("new port: got %q, %v, want pod1", name, err)
		}
		if res, err := b.Sync(ctx, rs); err != nil || res.Changed != 1 {
			t.Fatalf("Sync: got %+v, %v, want 1 changed", res, err)
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:81"); !proxytest.IsRefused(err) {
			t.Errorf("removed port: got %v, want refused", err)
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:80"); err != nil {
			t.Errorf("the other port of the address: %v", err)
		}
		var without []*proxy.ServicePort
		for _, sp := range services {
			if sp != web {
				without = append(without, sp)
			}
		}
		if _, err := b.Sync(ctx, &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: without}); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		got := deviceAddrs(t, b)
		for _, a := range []string{"10.96.0.10", "198.51.100.10", "198.51.100.20"} {
			if got[netip.MustParseAddr(a)] {
				t.Errorf("device addresses: %s still there after its Service went", a)
			}
		}
		if _, err := b.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("a taken port fails the sync but not the other Services, and is retried", func(t *testing.T) {
		var taken net.Listener
		if err := proxytest.InNS(n.Node, func() (err error) {
			taken, err = net.Listen("tcp4", nodeIP+":30099")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		busy := svcPort("busy", "10.96.0.30", 30099, pod1)
		fresh := svcPort("fresh", "10.96.0.31", 0, pod2)
		rs2 := &proxy.Ruleset{NodeIPs: rs.NodeIPs, Services: append([]*proxy.ServicePort{busy, fresh}, services...)}
		_, err := b.Sync(ctx, rs2)
		if err == nil || !strings.Contains(err.Error(), nodeIP+":30099") {
			t.Errorf("Sync: got %v, want an error naming %s:30099", err, nodeIP)
		}
		for _, addr := range []string{"10.96.0.30:80", "10.96.0.31:80", "10.96.0.10:80"} {
			if _, _, err := proxytest.Ask(n.Node, addr); err != nil {
				t.Errorf("%s after the failed sync: %v", addr, err)
			}
		}
		taken.Close()
		res, err := b.Sync(ctx, rs2)
		if err != nil || res.Changed != 1 {
			t.Errorf("retry: got %+v, %v, want the busy port applied", res, err)
		}
		if name, _, err := proxytest.Ask(n.Remote, nodeIP+":30099"); err != nil || name != "pod1" {
			t.Errorf("NodePort after the retry: got %q, %v, want pod1", name, err)
		}
		if _, err := b.Sync(ctx, rs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("Close cuts connections; a new backend takes over with a full sync", func(t *testing.T) {
		h := hold(t, n.Node, "10.96.0.23:80")
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := h.echo(); err == nil {
			t.Errorf("connection after Close: still carried, want cut")
		}
		b2 := newBackend(t, n)
		res, err := b2.Sync(ctx, rs)
		if err != nil || !res.Full {
			t.Fatalf("Sync: got %+v, %v, want a full sync", res, err)
		}
		got, _ := proxytest.AskMany(t, n.Node, "10.96.0.10:80", 10)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("backends: got %v, want both pod1 and pod2", got)
		}
	})
	t.Run("Cleanup removes the device", func(t *testing.T) {
		if err := Cleanup(proxytest.NSPath(n.Node)); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if out, err := exec.Command("ip", "-n", n.Node, "link", "show", DefaultInterface).CombinedOutput(); err == nil {
			t.Errorf("device %s: still there after Cleanup:\n%s", DefaultInterface, out)
		}
		if _, _, err := proxytest.Ask(n.Node, "10.96.0.10:80"); err == nil {
			t.Errorf("connect to the ClusterIP after Cleanup: got an answer, want none")
		}
	})
}

// waitIdleExcept waits until the port's active connections add up to want.
func waitIdleExcept(t *testing.T, b *Backend, name proxy.ServicePortName, want int64) {
	t.Helper()
	proxytest.WaitUntil(t, fmt.Sprintf("%s to have %d connections", name, want), func() bool {
		var sum int64
		for _, n := range b.ports[name].state.Load().internal.active {
			sum += n.Load()
		}
		return sum == want
	})
}
