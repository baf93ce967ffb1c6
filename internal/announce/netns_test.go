package announce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
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

// TestAnnouncerNetNS runs an Announcer in a namespace "node" joined by a
// veth pair to a namespace "client" on 10.78.0.0/24: the pool address of a
// Service appears on skiff-lb0, a gratuitous ARP teaches the client its
// MAC, the client's ping is answered, and it is withdrawn (and the
// interface deleted) when the node stops being Ready; Cleanup deletes the
// interface.
func TestAnnouncerNetNS(t *testing.T) {
	requireRoot(t)
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	id := hex.EncodeToString(buf)
	nodeNS, clientNS := "skiff-ann-"+id+"-n", "skiff-ann-"+id+"-c"
	for _, ns := range []string{nodeNS, clientNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", nodeNS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", clientNS)
	run(t, "ip", "-n", nodeNS, "addr", "add", "10.78.0.1/24", "dev", "eth0")
	run(t, "ip", "-n", clientNS, "addr", "add", "10.78.0.2/24", "dev", "eth0")
	// The client learns addresses from gratuitous ARPs (by default only
	// known entries are updated), so the test can see the announcement.
	run(t, "ip", "netns", "exec", clientNS, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/arp_accept")
	for _, ns := range []string{nodeNS, clientNS} {
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	nodeMAC := strings.Fields(run(t, "ip", "-n", nodeNS, "-br", "link", "show", "eth0"))[2]

	f, err := os.Open("/run/netns/" + nodeNS)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const pool = "10.78.0.100"
	n := node("node-a", "10.78.0.1", true, nil)
	client := fake.NewClientset(n, lbService("web", nil, false, pool))
	a, err := New(Config{Client: client, NodeName: "node-a", NodeIP: "10.78.0.1", NetNS: int(f.Fd()),
		GARPInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	waitFor := func(what string, cond func() (bool, string)) {
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
	dummy := func() (string, bool) {
		out, err := exec.Command("ip", "-n", nodeNS, "-br", "addr", "show", "dev", DefaultInterface).CombinedOutput()
		return string(out), err == nil
	}
	waitFor("the pool address on "+DefaultInterface, func() (bool, string) {
		out, ok := dummy()
		return ok && strings.Contains(out, pool+"/32"), out
	})
	waitFor("the client learning the address from a gratuitous ARP", func() (bool, string) {
		out := run(t, "ip", "-n", clientNS, "neigh", "show", pool)
		return strings.Contains(out, nodeMAC), out
	})
	if out, err := exec.Command("ip", "netns", "exec", clientNS, "busybox", "ping", "-c1", "-W2", pool).CombinedOutput(); err != nil {
		t.Fatalf("ping %s from the client: %v: %s", pool, err, out)
	}

	// The node stops being Ready: nobody may announce; the address and
	// then the empty interface go.
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the interface deleted once empty", func() (bool, string) {
		out, ok := dummy()
		return !ok, out
	})

	// Ready again: it comes back; Cleanup deletes it.
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the address back", func() (bool, string) {
		out, ok := dummy()
		return ok && strings.Contains(out, pool+"/32"), out
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the cleanup
	if out, ok := dummy(); !ok || !strings.Contains(out, pool) {
		t.Errorf("after Run returned: got %q, want the address left in place", out)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if out, ok := dummy(); ok {
		t.Errorf("after Cleanup: got %q, want no %s", out, DefaultInterface)
	}
}
