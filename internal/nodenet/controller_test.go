package nodenet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// testNode is one network namespace standing for a node: eth0 on a shared
// veth link, and a "pods" bridge with the first address of its
// podCIDR, standing for the pod bridge.
type testNode struct {
	ns, name, ip, podCIDR, podIP string
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (network namespaces)")
		}
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "bridge", "busybox"} {
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

// twoNodes creates namespaces a and b joined by a veth pair, removed when
// the test ends.
func twoNodes(t *testing.T) (a, b testNode) {
	t.Helper()
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	id := hex.EncodeToString(buf)
	a = testNode{ns: "skiff-nn-" + id + "-a", name: "node-a", ip: "10.77.0.1", podCIDR: "10.244.1.0/24", podIP: "10.244.1.1"}
	b = testNode{ns: "skiff-nn-" + id + "-b", name: "node-b", ip: "10.77.0.2", podCIDR: "10.244.2.0/24", podIP: "10.244.2.1"}
	for _, n := range []testNode{a, b} {
		run(t, "ip", "netns", "add", n.ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.ns).Run() })
	}
	run(t, "ip", "-n", a.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.ns)
	for _, n := range []testNode{a, b} {
		run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", n.ns, "addr", "add", n.ip+"/24", "dev", "eth0")
		run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", n.ns, "link", "add", "pods", "type", "bridge")
		run(t, "ip", "-n", n.ns, "addr", "add", n.podIP+"/24", "dev", "pods")
		run(t, "ip", "-n", n.ns, "link", "set", "pods", "up")
	}
	return a, b
}

// startController runs a controller for n in its namespace until the test
// ends.
func startController(t *testing.T, client *fake.Clientset, n testNode, backend Backend) {
	t.Helper()
	f, err := os.Open("/run/netns/" + n.ns)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Client: client, NodeName: n.name, NodeIP: n.ip, Backend: backend, NetNS: int(f.Fd()), ResyncPeriod: time.Second,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)).With("node", n.name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller %s: %v", n.name, err)
		}
		f.Close()
	})
}

// tWriter sends a controller's log to the test's.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually polls check for up to 15 s.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, seen := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15 s; last seen:\n%s", what, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ipOut(n testNode, args ...string) string {
	out, err := exec.Command("ip", append([]string{"-n", n.ns}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("error %v: %s", err, out)
	}
	return string(out)
}

// pings reports whether from's pod address reaches to's.
func pings(from, to testNode) (bool, string) {
	out, err := exec.Command("ip", "netns", "exec", from.ns, "busybox", "ping", "-c1", "-W1", "-I", from.podIP, to.podIP).CombinedOutput()
	return err == nil, string(out) + "\nroutes:\n" + ipOut(from, "route")
}

func TestControllerRealNamespaces(t *testing.T) {
	requireRoot(t)
	for _, backend := range []Backend{HostGW, VXLAN} {
		t.Run(string(backend), func(t *testing.T) {
			a, b := twoNodes(t)
			// Somebody else's route must survive; a stale one of ours from
			// an earlier run must not.
			run(t, "ip", "-n", a.ns, "route", "add", "10.99.0.0/24", "via", b.ip, "proto", "static")
			run(t, "ip", "-n", a.ns, "route", "add", "10.244.9.0/24", "via", b.ip, "proto", fmt.Sprint(RouteProtocol))
			client := fake.NewClientset(node(a.name, a.podCIDR, a.ip), node(b.name, b.podCIDR, b.ip))
			startController(t, client, a, backend)
			startController(t, client, b, backend)

			eventually(t, "a's pods reach b's", func() (bool, string) { return pings(a, b) })
			eventually(t, "b's pods reach a's", func() (bool, string) { return pings(b, a) })
			routes := ipOut(a, "route", "show", "proto", fmt.Sprint(RouteProtocol))
			want := "10.244.2.0/24 via " + b.ip
			if backend == VXLAN {
				want = "10.244.2.0/24 via 10.244.2.0 dev " + VXLANDevice + " onlink"
			}
			if !strings.Contains(routes, want) || strings.Contains(routes, "10.244.9.0") {
				t.Errorf("a's routes of protocol %d: got\n%s\nwant %q and no stale 10.244.9.0/24", RouteProtocol, routes, want)
			}
			if other := ipOut(a, "route", "show", "10.99.0.0/24"); !strings.Contains(other, "10.99.0.0/24 via "+b.ip) {
				t.Errorf("somebody else's route: got %q, want it kept", other)
			}
			if backend == VXLAN {
				link := ipOut(a, "-d", "link", "show", VXLANDevice)
				for _, w := range []string{"mtu 1450", "vxlan id 1", "local " + a.ip, "dstport 8472", "nolearning"} {
					if !strings.Contains(link, w) {
						t.Errorf("vxlan device: got\n%s\nwant %q in it", link, w)
					}
				}
				nb, err := client.CoreV1().Nodes().Get(context.Background(), b.name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				bLink := ipOut(b, "link", "show", VXLANDevice)
				data := nb.Annotations[AnnotationBackendData]
				if !strings.Contains(data, `"VNI":1`) || !strings.Contains(bLink, strings.Split(strings.Split(data, `"VtepMAC":"`)[1], `"`)[0]) {
					t.Errorf("b's backend data %q: want VNI 1 and the MAC of b's device:\n%s", data, bLink)
				}
				if fdb := run(t, "ip", "netns", "exec", a.ns, "bridge", "fdb", "show", "dev", VXLANDevice); !strings.Contains(fdb, "dst "+b.ip) {
					t.Errorf("a's fdb: got %q, want an entry with dst %s", fdb, b.ip)
				}
				// a's podCIDR changes: its device's own VTEP address follows.
				na, err := client.CoreV1().Nodes().Get(context.Background(), a.name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				na.Spec.PodCIDR, na.Spec.PodCIDRs = "10.244.11.0/24", []string{"10.244.11.0/24"}
				if _, err := client.CoreV1().Nodes().Update(context.Background(), na, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				eventually(t, "a's VTEP address follows its podCIDR", func() (bool, string) {
					addrs := ipOut(a, "-4", "addr", "show", "dev", VXLANDevice)
					return strings.Contains(addrs, "inet 10.244.11.0/32") && !strings.Contains(addrs, "10.244.1.0"), addrs
				})
				eventually(t, "b routes a's new podCIDR", func() (bool, string) {
					r := ipOut(b, "route", "show", "proto", fmt.Sprint(RouteProtocol))
					return strings.Contains(r, "10.244.11.0/24 via 10.244.11.0") && !strings.Contains(r, "10.244.1.0/24"), r
				})
			}

			// b leaves the cluster: a forgets it.
			if err := client.CoreV1().Nodes().Delete(context.Background(), b.name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a's route to b's pods removed", func() (bool, string) {
				r := ipOut(a, "route", "show", "proto", fmt.Sprint(RouteProtocol))
				n := ""
				if backend == VXLAN {
					n = ipOut(a, "neigh", "show", "dev", VXLANDevice)
				}
				return strings.TrimSpace(r) == "" && !strings.Contains(n, "10.244.2.0"), r + n
			})
			if ok, out := pings(a, b); ok {
				t.Errorf("a's pods still reach b's after b was deleted:\n%s", out)
			}
		})
	}
}
