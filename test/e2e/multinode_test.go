//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/nodenet"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// clientIPServer is a busybox httpd whose /cgi-bin/ip answers the address
// the request came from, as the receiving pod sees it.
const clientIPServer = `mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www`

// TestMultiNodePodNetwork builds 3 real nodes (the server's and two
// `skiff agent` processes, each in its own network namespace on one
// bridge) per backend, and checks that a pod on every node reaches the
// pods on the others by pod IP, that the receiver sees the sender's own
// pod IP (no NAT), that a wrong join token is refused, and that a removed
// node's routes disappear from the others.
func TestMultiNodePodNetwork(t *testing.T) {
	for _, backend := range []nodenet.Backend{nodenet.HostGW, nodenet.VXLAN} {
		t.Run(string(backend), func(t *testing.T) {
			m := suite.StartMultiNode(t, framework.Options{}, framework.MultiNodeOptions{Agents: 2, FlannelBackend: string(backend)})
			names := m.NodeNames()
			ctx := t.Context()

			// Every node Ready (StartMultiNode waited) with its own podCIDR.
			cidrs := map[string]string{}
			for _, name := range names {
				n, err := m.Client().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if other, dup := cidrs[n.Spec.PodCIDR]; dup {
					t.Fatalf("nodes %s and %s share podCIDR %s", other, name, n.Spec.PodCIDR)
				}
				cidrs[n.Spec.PodCIDR] = name
				if backend == nodenet.VXLAN && !strings.Contains(n.Annotations[nodenet.AnnotationBackendData], "VtepMAC") {
					t.Errorf("node %s: annotation %s = %q, want the VTEP MAC", name, nodenet.AnnotationBackendData, n.Annotations[nodenet.AnnotationBackendData])
				}
			}

			ns := realNamespace(t, m.Cluster, "multinode")
			podIPs := make([]string, len(names))
			for i, name := range names {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i)},
					Spec: corev1.PodSpec{
						NodeName:                      name,
						TerminationGracePeriodSeconds: new(int64),
						Containers: []corev1.Container{{Name: "web", Image: m.Image(framework.ImageBusybox),
							Command: []string{"sh", "-c", clientIPServer}}},
					},
				}
				if _, err := m.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range names {
				p := waitPod(t, m.Cluster, ns, fmt.Sprintf("pod-%d", i), 90*time.Second, phaseIs(corev1.PodRunning))
				if p.Spec.NodeName != names[i] || p.Status.PodIP == "" {
					t.Fatalf("pod-%d: node %q, IP %q; want node %s and an IP", i, p.Spec.NodeName, p.Status.PodIP, names[i])
				}
				podIPs[i] = p.Status.PodIP
			}

			for from := range names {
				for to := range names {
					if from == to {
						continue
					}
					var got string
					err := framework.Poll(ctx, 30*time.Second, func() (bool, string) {
						out, stderr, err := m.Kubectl("-n", ns, "exec", fmt.Sprintf("pod-%d", from), "--",
							"timeout", "5", "wget", "-qO-", "http://"+podIPs[to]+":8080/cgi-bin/ip")
						if err != nil {
							return false, err.Error() + stderr
						}
						got = strings.TrimSpace(out)
						return true, ""
					})
					if err != nil {
						t.Fatalf("pod-%d on %s cannot reach pod-%d (%s) on %s: %v\nroutes on %s:\n%s", from, names[from], to, podIPs[to], names[to], err,
							names[from], routes(m, from))
					}
					// (busybox wget -T crashes without /etc in the image; timeout bounds it.)
					// busybox httpd gives an IPv4-mapped IPv6 address: [::ffff:a.b.c.d].
					if strings.TrimPrefix(strings.Trim(got, "[]"), "::ffff:") != podIPs[from] {
						t.Errorf("pod-%d saw pod-%d's request come from %q, want its pod IP %s (no masquerade)", to, from, got, podIPs[from])
					}
				}
			}
			if t.Failed() {
				return
			}

			if backend == nodenet.HostGW {
				wrongToken(t, m)
			}

			// The last agent leaves: the others lose their routes to it.
			gone := len(names) - 1
			goneCIDR := ""
			for cidr, name := range cidrs {
				if name == names[gone] {
					goneCIDR = cidr
				}
			}
			if !strings.Contains(routes(m, 0), goneCIDR) {
				t.Fatalf("server's node has no route to %s before removal:\n%s", goneCIDR, routes(m, 0))
			}
			if err := m.RemoveNode(ctx, gone); err != nil {
				t.Fatal(err)
			}
			for i := range gone {
				err := framework.Poll(ctx, 30*time.Second, func() (bool, string) {
					r := routes(m, i)
					return !strings.Contains(r, goneCIDR), r
				})
				if err != nil {
					t.Errorf("node %s keeps its route to removed node %s's %s: %v", names[i], names[gone], goneCIDR, err)
				}
			}
		})
	}
}

// routes is node i's routes of nodenet's protocol, plus the VXLAN device's
// forwarding table when there is one.
func routes(m *framework.MultiNode, i int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := m.InNodeNS(ctx, i, "ip", "route", "show", "proto", fmt.Sprint(nodenet.RouteProtocol))
	if err != nil {
		return err.Error()
	}
	if fdb, err := m.InNodeNS(ctx, i, "bridge", "fdb", "show", "dev", nodenet.VXLANDevice); err == nil {
		out += "fdb " + nodenet.VXLANDevice + ":\n" + fdb
	}
	return out
}

// wrongToken checks that a real (runc) agent with the right CA hash but a
// wrong secret is refused with a clear message and registers no node.
func wrongToken(t *testing.T, m *framework.MultiNode) {
	t.Helper()
	token, _, err := m.JoinToken()
	if err != nil {
		t.Fatal(err)
	}
	hash, _, ok := strings.Cut(token, "::")
	if !ok {
		t.Fatalf("join token %q has no CA hash", token)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+m.NetNS(), "--", suite.Binary(t), "agent", "--runtime", "runc",
		"--node-name", "e2e-multinode-bad", "--data-dir", t.TempDir(), "--server", m.Endpoint(), "--token", hash+"::not-the-secret").CombinedOutput()
	if err == nil {
		t.Fatalf("agent with a wrong token exited 0; output:\n%s", out)
	}
	if !strings.Contains(string(out), "the server refused the join token") {
		t.Errorf("output: got %q, want it to say the server refused the join token", out)
	}
	if _, _, err := m.Kubectl("get", "node", "e2e-multinode-bad"); err == nil {
		t.Error("node e2e-multinode-bad registered with a wrong token")
	}
}
