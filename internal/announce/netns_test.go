package announce

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (network namespaces)")
		}
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("needs %s on PATH", tool)
			}
			t.Skipf("needs %s on PATH", tool)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lan is a namespace "node" joined by a veth pair (eth0 on both sides) to
// a namespace "client" on 10.78.0.0/24, the node at .1, the client at .2.
type lan struct {
	node, client string
	nodeMAC      string
	// nodeNS is the node namespace's file, for Config.NetNS.
	nodeNS *os.File
}

// newLAN creates a lan, removed when the test ends.
func newLAN(t *testing.T) *lan {
	t.Helper()
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	id := hex.EncodeToString(buf)
	l := &lan{node: "skiff-ann-" + id + "-n", client: "skiff-ann-" + id + "-c"}
	for _, ns := range []string{l.node, l.client} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// The client learns addresses from gratuitous ARPs (by default only
	// known entries are updated), so the test can see the announcement.
	run(t, "ip", "netns", "exec", l.client, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/arp_accept")
	l.connect(t)
	f, err := os.Open("/run/netns/" + l.node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l.nodeNS = f
	return l
}

// connect creates the veth pair, its addresses and sets it up.
func (l *lan) connect(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", l.node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", l.client)
	run(t, "ip", "-n", l.node, "addr", "add", "10.78.0.1/24", "dev", "eth0")
	run(t, "ip", "-n", l.client, "addr", "add", "10.78.0.2/24", "dev", "eth0")
	for _, ns := range []string{l.node, l.client} {
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	l.nodeMAC = strings.Fields(run(t, "ip", "-n", l.node, "-br", "link", "show", "eth0"))[2]
}

// dummy is the node's DefaultInterface as "ip -br addr" shows it; ok is
// false when there is none.
func (l lan) dummy() (out string, ok bool) {
	b, err := exec.Command("ip", "-n", l.node, "-br", "addr", "show", "dev", DefaultInterface).CombinedOutput()
	return string(b), err == nil
}

// ping reports whether the client's ping of ip is answered.
func (l lan) ping(ip string) (string, bool) {
	out, err := exec.Command("ip", "netns", "exec", l.client, "busybox", "ping", "-c1", "-W3", ip).CombinedOutput()
	return string(out), err == nil
}

// waitFor polls cond until it holds, failing the test after 10 s with what
// cond saw last.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var seen string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, seen = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: timed out; last seen:\n%s", what, seen)
}

// startAnnouncer runs a until the test ends, failing it if Run errs; the
// returned stop ends Run and waits for it.
func startAnnouncer(t *testing.T, a *Announcer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestAnnouncerNetNS runs an Announcer in a lan: the pool address of a
// Service appears on skiff-lb0, a gratuitous ARP teaches the client its
// MAC, the client's ping is answered, and it is withdrawn (and the
// interface deleted) when the node stops being Ready; Cleanup deletes the
// interface.
func TestAnnouncerNetNS(t *testing.T) {
	requireRoot(t)
	l := newLAN(t)
	const pool = "10.78.0.100"
	n := node("node-a", "10.78.0.1", true, nil)
	client := fake.NewClientset(n, lbService("web", nil, false, pool))
	a, err := New(Config{Client: client, NodeName: "node-a", NodeIP: "10.78.0.1", NetNS: int(l.nodeNS.Fd()),
		GARPInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop := startAnnouncer(t, a)
	ctx := context.Background()

	waitFor(t, "the pool address on "+DefaultInterface, func() (bool, string) {
		out, ok := l.dummy()
		return ok && strings.Contains(out, pool+"/32"), out
	})
	waitFor(t, "the client learning the address from a gratuitous ARP", func() (bool, string) {
		out := run(t, "ip", "-n", l.client, "neigh", "show", pool)
		return strings.Contains(out, l.nodeMAC), out
	})
	if out, ok := l.ping(pool); !ok {
		t.Fatalf("ping %s from the client: %s", pool, out)
	}

	// The node stops being Ready: nobody may announce; the address and
	// then the empty interface go.
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the interface deleted once empty", func() (bool, string) {
		out, ok := l.dummy()
		return !ok, out
	})

	// Ready again: it comes back; Cleanup deletes it.
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the address back", func() (bool, string) {
		out, ok := l.dummy()
		return ok && strings.Contains(out, pool+"/32"), out
	})
	stop()
	if out, ok := l.dummy(); !ok || !strings.Contains(out, pool) {
		t.Errorf("after Run returned: got %q, want the address left in place", out)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out, ok := l.dummy(); ok {
		t.Errorf("after Cleanup: got %q, want no %s", out, DefaultInterface)
	}
}

// TestARPResponderNetNS sets arp_ignore=1 in the node namespace, as the
// userspace proxy does on a node, so that the kernel no longer answers ARP
// on eth0 for the pool address on skiff-lb0. Once the client has learnt the
// address from the gratuitous ARP and then forgotten it, its ping is
// answered only because the Announcer answers the client's ARP request
// itself: with the responder off, the same steps leave the address
// unreachable, which shows that the first case depends on the responder.
func TestARPResponderNetNS(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		name      string
		answerARP bool
	}{
		{name: "responder", answerARP: true},
		{name: "kernel alone", answerARP: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLAN(t)
			run(t, "ip", "netns", "exec", l.node, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1")
			const pool = "10.78.0.100"
			client := fake.NewClientset(node("node-a", "10.78.0.1", true, nil), lbService("web", nil, false, pool))
			// One gratuitous ARP, so that none arrives after the flush
			// below to teach the client the address again.
			a, err := New(Config{Client: client, NodeName: "node-a", NodeIP: "10.78.0.1", NetNS: int(l.nodeNS.Fd()),
				GARPs: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			a.answerARP = tt.answerARP
			startAnnouncer(t, a)

			waitFor(t, "the pool address on "+DefaultInterface, func() (bool, string) {
				out, ok := l.dummy()
				return ok && strings.Contains(out, pool+"/32"), out
			})
			waitFor(t, "the client learning the address from the gratuitous ARP", func() (bool, string) {
				out := run(t, "ip", "-n", l.client, "neigh", "show", pool)
				return strings.Contains(out, l.nodeMAC), out
			})
			// The neighbour cache expires: the client must ask.
			run(t, "ip", "-n", l.client, "neigh", "flush", "all")
			if out := run(t, "ip", "-n", l.client, "neigh", "show", pool); strings.Contains(out, l.nodeMAC) {
				t.Fatalf("after the flush: got %q, want no entry for %s", out, pool)
			}

			out, ok := l.ping(pool)
			neigh := run(t, "ip", "-n", l.client, "neigh", "show", pool)
			switch {
			case tt.answerARP && !ok:
				t.Fatalf("ping %s from the client with arp_ignore=1: got no answer, want one from the responder; neighbour: %q\n%s", pool, neigh, out)
			case tt.answerARP && !strings.Contains(neigh, l.nodeMAC):
				t.Errorf("client's neighbour entry for %s: got %q, want %s", pool, neigh, l.nodeMAC)
			case !tt.answerARP && ok:
				t.Fatalf("ping %s from the client with arp_ignore=1 and no responder: got an answer, want none (the kernel answers after all, so the responder case proves nothing); neighbour: %q", pool, neigh)
			}
		})
	}
}

// logBuffer collects log lines for a test to read while they are written.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count is how many lines contain s.
func (l *logBuffer) count(s string) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s), l.b.String()
}

// TestARPResponderRecoversNetNS deletes the node's LAN interface under a
// running responder: it says once that it stopped answering, Run goes on,
// and once the interface is back (a new one, with a new index and MAC) it
// answers there again.
func TestARPResponderRecoversNetNS(t *testing.T) {
	requireRoot(t)
	l := newLAN(t)
	run(t, "ip", "netns", "exec", l.node, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1")
	const pool = "10.78.0.100"
	var logs logBuffer
	client := fake.NewClientset(node("node-a", "10.78.0.1", true, nil), lbService("web", nil, false, pool))
	a, err := New(Config{Client: client, NodeName: "node-a", NodeIP: "10.78.0.1", NetNS: int(l.nodeNS.Fd()),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	startAnnouncer(t, a)
	const answering, stopped = "msg=\"answering ARP", "msg=\"not answering ARP"
	waitFor(t, "the responder answering", func() (bool, string) {
		n, all := logs.count(answering)
		return n == 1, all
	})

	run(t, "ip", "-n", l.node, "link", "del", "eth0")
	waitFor(t, "the responder saying it stopped", func() (bool, string) {
		n, all := logs.count(stopped)
		return n == 1, all
	})
	l.connect(t)
	waitFor(t, "the responder answering again", func() (bool, string) {
		n, all := logs.count(answering)
		return n == 2, all
	})
	if n, all := logs.count(stopped); n != 1 {
		t.Errorf("got %d lines saying the responder stopped, want 1:\n%s", n, all)
	}
	// No gratuitous ARP follows the new interface (the address did not
	// change): the client's answer comes from the responder.
	run(t, "ip", "-n", l.client, "neigh", "flush", "all")
	if out, ok := l.ping(pool); !ok {
		t.Fatalf("ping %s from the client on the new interface: %s", pool, out)
	}
	if neigh := run(t, "ip", "-n", l.client, "neigh", "show", pool); !strings.Contains(neigh, l.nodeMAC) {
		t.Errorf("client's neighbour entry for %s: got %q, want the new MAC %s", pool, neigh, l.nodeMAC)
	}
}
