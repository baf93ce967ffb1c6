package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The root tests run the node itself in a network namespace of their own
// ("skiffcni-node-<rand>"): the bridge, the nftables table, portmap's
// iptables rules and the forwarding sysctls all live there and vanish with
// it, so the host's own firewall and sysctls are never touched. Pods are
// further namespaces ("skiffcni-<rand>"). Manager calls run on a thread
// that entered the node namespace, and the plugins, forked from that
// thread, inherit it.

// requireNode skips (fails under CI=true) unless we are root with the CNI
// plugins, ip and nft.
func requireNode(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"ip", "nft", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	for _, p := range pluginTypes() {
		found := false
		for _, d := range DefaultPluginDirs() {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			missing = append(missing, "CNI plugin "+p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + " (hack/setup.sh installs the packages)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randByte(t *testing.T, lo, hi int64) int64 {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(hi-lo+1))
	if err != nil {
		t.Fatal(err)
	}
	return lo + n.Int64()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns is a network namespace a test created.
type netns struct {
	name string
	path string
}

// newNetns creates a namespace with lo up, removed when the test ends.
func newNetns(t *testing.T, prefix string) *netns {
	t.Helper()
	name := prefix + randHex(t, 4)
	run(t, "ip", "netns", "add", name)
	n := &netns{name: name, path: "/run/netns/" + name}
	t.Cleanup(func() { n.delete(t) })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return n
}

// delete removes the namespace; removing a removed one is no error.
func (n *netns) delete(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(n.path); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil {
		t.Errorf("ip netns delete %s: %v: %s", n.name, err, out)
	}
}

// do runs fn on a fresh OS thread that entered the namespace. The thread is
// discarded afterwards (the goroutine exits locked), so no other goroutine
// ever runs in the namespace by accident.
func (n *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(n.path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// exec runs a command inside the namespace and returns its output.
func (n *netns) exec(name string, args ...string) (string, error) {
	var out []byte
	err := n.do(func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	return string(out), err
}

// listen opens a TCP listener in the namespace that answers every
// connection with the peer address it saw, then closes it.
func (n *netns) listen(t *testing.T, addr string) string {
	t.Helper()
	var l net.Listener
	if err := n.do(func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, n.name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for i := 0; i < 100; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String())
			c.Close()
		}
	}()
	return l.Addr().String()
}

// dial connects from the namespace and returns the source address the
// listener saw.
func (n *netns) dial(addr string) (string, error) {
	var c net.Conn
	if err := n.do(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return string(b), nil
}

// testNode is one node's network under test.
type testNode struct {
	ns       *netns
	stateDir string
	bridge   string
	podCIDR  string
	gateway  string // the bridge's address, .1 of the podCIDR
	prefix   string // "10.244.N."
}

// newTestNode creates a node namespace and a unique bridge name, state dir
// and podCIDR (10.244.N.0/bits).
func newTestNode(t *testing.T, bits int) *testNode {
	t.Helper()
	requireNode(t)
	n := randByte(t, 1, 254)
	prefix := fmt.Sprintf("10.244.%d.", n)
	return &testNode{
		ns:       newNetns(t, "skiffcni-node-"),
		stateDir: filepath.Join(t.TempDir(), "cni"),
		bridge:   "sk" + randHex(t, 4),
		podCIDR:  fmt.Sprintf("%s0/%d", prefix, bits),
		gateway:  prefix + "1",
		prefix:   prefix,
	}
}

// manager returns a Manager for the node; podCIDR may be "" for none.
func (n *testNode) manager(t *testing.T, podCIDR string) *Manager {
	t.Helper()
	m, err := New(Config{
		StateDir:    n.stateDir,
		BridgeName:  n.bridge,
		PodCIDR:     podCIDR,
		ClusterCIDR: "10.244.0.0/16",
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// in runs fn on a thread inside the node namespace.
func (n *testNode) in(fn func() error) error { return n.ns.do(fn) }

// setup runs Manager.Setup inside the node namespace.
func (n *testNode) setup(ctx context.Context, m *Manager, id string, pod *netns, ports ...portSpec) ([]string, error) {
	var ips []string
	err := n.in(func() error {
		var err error
		ips, err = m.Setup(ctx, id, pod.path, criPorts(ports))
		return err
	})
	return ips, err
}

// teardown runs Manager.Teardown inside the node namespace.
func (n *testNode) teardown(ctx context.Context, m *Manager, id, netnsPath string, ports ...portSpec) error {
	return n.in(func() error { return m.Teardown(ctx, id, netnsPath, criPorts(ports)) })
}

// ipamHolds reports whether host-local holds an allocation for ip.
func (n *testNode) ipamHolds(ip string) bool {
	_, err := os.Stat(filepath.Join(n.stateDir, "ipam", networkName, ip))
	return err == nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitDial dials until it succeeds or the deadline passes (a fresh veth
// or bridge port may take a moment to forward).
func waitDial(from *netns, addr string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	var lastErr error
	for i := 0; i < 50 && time.Now().Before(deadline); i++ {
		got, err := from.dial(addr)
		if err == nil {
			return got, nil
		}
		lastErr = err
		if errors.Is(err, unix.ECONNREFUSED) {
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", lastErr
}
