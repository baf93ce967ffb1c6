package nftables

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

// testNet is a node network namespace with a bridge (10.244.0.1/24), two
// pod namespaces on it (10.244.0.2 and .3), and an "outside" namespace
// linked to the node by a veth (node 192.168.77.1, outside 192.168.77.2).
// Nothing leaves these namespaces.
type testNet struct {
	prefix                   string
	node, pod1, pod2, remote string
}

func requireRoot(t *testing.T) {
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

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "skpx" + hex.EncodeToString(b)
	n := &testNet{prefix: p, node: p + "-node", pod1: p + "-pod1", pod2: p + "-pod2", remote: p + "-out"}
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
		// As Skiff's CNI configuration does (hairpinMode): with
		// br_netfilter, a pod reaching itself through a Service is
		// DNATed at the bridge and sent back out of its own port.
		run(t, "ip", "-n", n.node, "link", "set", host, "type", "bridge_slave", "hairpin", "on")
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
	// Service addresses exist on no interface; the node's default route
	// (to the outside namespace) covers them, as on a real node.
	run(t, "ip", "-n", n.node, "route", "add", "default", "via", "192.168.77.2")
	return n
}

func nsPath(name string) string { return "/var/run/netns/" + name }

// inNS runs f on a thread inside network namespace ns. The thread is
// discarded afterwards (it stays locked when the goroutine ends).
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

// serve listens on port in ns and answers every connection with
// "<name> <client address>".
func serve(t *testing.T, ns, name string, port int) {
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
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// ask connects from ns to addr and returns the answer's two words.
func ask(ns, addr string) (name, client string, err error) {
	err = inNS(ns, func() error {
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

// askMany connects n times and counts the answering backends; it also
// returns the client addresses the backends saw.
func askMany(t *testing.T, ns, addr string, n int) (backends map[string]int, clients map[string]bool) {
	t.Helper()
	backends, clients = map[string]int{}, map[string]bool{}
	for range n {
		name, client, err := ask(ns, addr)
		if err != nil {
			t.Fatalf("connect from %s to %s: %v", ns, addr, err)
		}
		backends[name]++
		clients[client] = true
	}
	return backends, clients
}

// serveUDP answers every datagram on port in ns with "<name> <client>".
func serveUDP(t *testing.T, ns, name string, port int) {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) {
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

// askUDP sends one datagram from ns to addr and returns the answer.
func askUDP(ns, addr string) (answer string, err error) {
	err = inNS(ns, func() error {
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

func isRefused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }
