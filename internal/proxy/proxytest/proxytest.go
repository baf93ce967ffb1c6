// Package proxytest builds the network namespaces that the service proxy's
// backends are tested in: a node with a pod bridge, two pods on it and an
// outside host, all created by the test and removed when it ends, plus small
// TCP and UDP servers and clients that run inside them. Nothing leaves these
// namespaces. It is imported only by tests.
package proxytest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Net is a node network namespace with a bridge (10.244.0.1/24), two
// pod namespaces on it (10.244.0.2 and .3), and an "outside" namespace
// linked to the node by a veth (node 192.168.77.1, outside 192.168.77.2).
// Nothing leaves these namespaces.
type Net struct {
	// Prefix starts every namespace's name.
	Prefix string
	// Node, Pod1, Pod2 and Remote are the namespaces' names.
	Node, Pod1, Pod2, Remote string
}

// RequireRoot skips the test without root or the ip command, and fails it
// instead under CI=true, where a missing prerequisite must not pass.
func RequireRoot(t *testing.T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		missing = "the ip command"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing %s", missing)
	}
	t.Skipf("needs %s", missing)
}

// Run runs a command and fails the test when it fails.
func Run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// New creates the namespaces, removed when the test ends.
func New(t *testing.T) *Net {
	t.Helper()
	RequireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "skpx" + hex.EncodeToString(b)
	n := &Net{Prefix: p, Node: p + "-node", Pod1: p + "-pod1", Pod2: p + "-pod2", Remote: p + "-out"}
	for _, ns := range []string{n.Node, n.Pod1, n.Pod2, n.Remote} {
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	Run(t, "ip", "netns", "exec", n.Node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	Run(t, "ip", "-n", n.Node, "link", "add", "br0", "type", "bridge")
	Run(t, "ip", "-n", n.Node, "addr", "add", "10.244.0.1/24", "dev", "br0")
	Run(t, "ip", "-n", n.Node, "link", "set", "br0", "up")
	for i, pod := range []string{n.Pod1, n.Pod2} {
		host := fmt.Sprintf("veth%d", i+1)
		Run(t, "ip", "-n", n.Node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod)
		Run(t, "ip", "-n", n.Node, "link", "set", host, "master", "br0", "up")
		// As Skiff's CNI configuration does (hairpinMode): with
		// br_netfilter, a pod reaching itself through a Service is
		// DNATed at the bridge and sent back out of its own port.
		Run(t, "ip", "-n", n.Node, "link", "set", host, "type", "bridge_slave", "hairpin", "on")
		Run(t, "ip", "-n", pod, "addr", "add", fmt.Sprintf("10.244.0.%d/24", i+2), "dev", "eth0")
		Run(t, "ip", "-n", pod, "link", "set", "eth0", "up")
		Run(t, "ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
	}
	Run(t, "ip", "-n", n.Node, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", n.Remote)
	Run(t, "ip", "-n", n.Node, "addr", "add", "192.168.77.1/24", "dev", "up0")
	Run(t, "ip", "-n", n.Node, "link", "set", "up0", "up")
	Run(t, "ip", "-n", n.Remote, "addr", "add", "192.168.77.2/24", "dev", "eth0")
	Run(t, "ip", "-n", n.Remote, "link", "set", "eth0", "up")
	Run(t, "ip", "-n", n.Remote, "route", "add", "default", "via", "192.168.77.1")
	// Service addresses exist on no interface; the node's default route
	// (to the outside namespace) covers them, as on a real node.
	Run(t, "ip", "-n", n.Node, "route", "add", "default", "via", "192.168.77.2")
	return n
}

// NSPath is the file that pins the named network namespace.
func NSPath(name string) string { return "/var/run/netns/" + name }

// InNS runs f on a thread inside network namespace ns. The thread is
// discarded afterwards (it stays locked when the goroutine ends).
func InNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(NSPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
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

// Serve listens on port in ns and answers every connection with
// "<name> <client address>".
func Serve(t *testing.T, ns, name string, port int) {
	t.Helper()
	var ln net.Listener
	if err := InNS(ns, func() (err error) {
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
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// Ask connects from ns to addr and returns the answer's two words.
func Ask(ns, addr string) (name, client string, err error) {
	err = InNS(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read from %s: %w", addr, err)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("answer %q from %s", line, addr)
		}
		name, client = f[0], f[1]
		return nil
	})
	return name, client, err
}

// AskMany connects n times and counts the answering backends; it also
// returns the client addresses the backends saw.
func AskMany(t *testing.T, ns, addr string, n int) (backends map[string]int, clients map[string]bool) {
	t.Helper()
	backends, clients = map[string]int{}, map[string]bool{}
	for range n {
		name, client, err := Ask(ns, addr)
		if err != nil {
			t.Fatalf("connect from %s to %s: %v", ns, addr, err)
		}
		backends[name]++
		clients[client] = true
	}
	return backends, clients
}

// ServeUDP answers every datagram on port in ns with "<name> <client>".
func ServeUDP(t *testing.T, ns, name string, port int) {
	t.Helper()
	var pc net.PacketConn
	if err := InNS(ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen udp in %s: %v", ns, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s", name, from.(*net.UDPAddr).IP)), from)
		}
	}()
}

// AskUDP sends one datagram from ns to addr and returns the answer.
func AskUDP(ns, addr string) (answer string, err error) {
	err = InNS(ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("q")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		answer = string(buf[:n])
		return nil
	})
	return answer, err
}

// IsRefused reports whether a dial failed with connection refused.
func IsRefused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }

// WaitUntil polls cond every 50 ms for up to 10 s and fails the test,
// naming what, when it never holds.
func WaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
