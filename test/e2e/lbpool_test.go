//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// lbPoolAddress is the whole address pool of TestLBPool: one address of
// TEST-NET-1, which nothing else uses, so a reply can only come from the
// node that announces it.
const lbPoolAddress = "192.0.2.10"

// lbPoolObjects are TestLBPool's test server and first LoadBalancer
// Service (%[1]s: the test server image).
const lbPoolObjects = `apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[1]s, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb1}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {port: 8081, targetPort: http}
`

const lbPoolSecond = `apiVersion: v1
kind: Service
metadata: {name: lb2}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {port: 8082, targetPort: http}
`

// TestLBPool runs a 2-node cluster (the server's node and one agent, on one
// bridge) with `--lb-address-pool 192.0.2.10/32` and checks the built-in
// load balancer's pool end to end: a LoadBalancer Service gets the pool
// address as its EXTERNAL-IP; a client on the nodes' LAN (the bridge's
// namespace, not the host) reaches the Service's pod on it, which only
// works when one node answers ARP for it (internal/announce); a second
// Service finds the pool exhausted (<pending>, a Warning AllocationFailed
// event); once the first is deleted the second gets the address and
// answers on it.
//
// Two nodes, not three: the announcer's choice among nodes is covered by
// unit tests, and what the real cluster adds (the address appearing on
// whichever node wins, that node's kernel answering ARP and its proxy
// forwarding to a pod that may be on the other node) already shows with
// two, for less of the shared machine.
func TestLBPool(t *testing.T) {
	m := suite.StartMultiNode(t, framework.Options{ServerArgs: []string{"--lb-address-pool", lbPoolAddress + "/32"}},
		framework.MultiNodeOptions{Agents: 1})
	c := m.Cluster
	ctx := t.Context()
	ns := realNamespace(t, c, "lbpool")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(lbPoolObjects, c.Image(framework.ImageTestServer)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "web", podStartTimeout, phaseIs(corev1.PodRunning))

	// A client on the LAN: an address on the bridge in the LAN namespace,
	// and the pool's network on-link, so it ARPs for the pool address as
	// a router of that network would.
	nodeIP := m.NodeIPs()[0]
	clientIP := nodeIP[:strings.LastIndex(nodeIP, ".")] + ".250"
	for _, args := range [][]string{
		{"ip", "addr", "add", clientIP + "/24", "dev", "br0"},
		{"ip", "route", "add", "192.0.2.0/24", "dev", "br0"},
	} {
		if out, err := m.InLAN(ctx, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	lanGet := func(url string) (string, error) {
		out, err := m.InLAN(ctx, "curl", "-sS", "--max-time", "5", url)
		return strings.TrimSpace(out), err
	}
	announcers := func() string {
		var b strings.Builder
		for i, name := range m.NodeNames() {
			out, err := m.InNodeNS(ctx, i, "ip", "-br", "addr", "show")
			fmt.Fprintf(&b, "node %s: %s %v\n", name, strings.TrimSpace(out), err)
		}
		return b.String()
	}

	t.Run("a LoadBalancer Service gets the pool address and answers on the LAN", func(t *testing.T) {
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			row, _, _ := c.Kubectl("-n", ns, "get", "svc", "lb1")
			return strings.Contains(row, lbPoolAddress), "kubectl get svc lb1:\n" + row + "\nwant EXTERNAL-IP " + lbPoolAddress
		})
		url := "http://" + lbPoolAddress + ":8081/hostname"
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			body, err := lanGet(url)
			return err == nil && body == "web", fmt.Sprintf("GET %s from the LAN: %q, %v; want web\n%s", url, body, err, announcers())
		})
		// Exactly one node holds the address.
		holders := 0
		for i := range m.NodeNames() {
			if out, _ := m.InNodeNS(ctx, i, "ip", "-br", "addr", "show", "dev", "skiff-lb0"); strings.Contains(out, lbPoolAddress+"/32") {
				holders++
			}
		}
		if holders != 1 {
			t.Errorf("nodes holding %s: got %d, want 1\n%s", lbPoolAddress, holders, announcers())
		}
	})

	t.Run("an exhausted pool leaves the next Service pending with an event", func(t *testing.T) {
		if out, stderr, err := c.KubectlStdin(lbPoolSecond, "-n", ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
		}
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			out, _, _ := c.Kubectl("-n", ns, "describe", "svc", "lb2")
			return strings.Contains(out, "AllocationFailed") && strings.Contains(out, "no free address in the address pool"),
				"kubectl describe svc lb2:\n" + out + "\nwant a Warning AllocationFailed event"
		})
		events := kubectlOK(t, c, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=lb2")
		if !strings.Contains(events, "Warning") || !strings.Contains(events, "AllocationFailed") {
			t.Errorf("kubectl get events: got\n%s\nwant a Warning AllocationFailed for lb2", events)
		}
		if row := kubectlOK(t, c, "-n", ns, "get", "svc", "lb2"); !strings.Contains(row, "<pending>") {
			t.Errorf("kubectl get svc lb2: got\n%s\nwant EXTERNAL-IP <pending>", row)
		}
	})

	t.Run("deleting the first Service frees the address for the second", func(t *testing.T) {
		kubectlOK(t, c, "-n", ns, "delete", "svc", "lb1")
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			row, _, _ := c.Kubectl("-n", ns, "get", "svc", "lb2")
			return strings.Contains(row, lbPoolAddress), "kubectl get svc lb2:\n" + row + "\nwant EXTERNAL-IP " + lbPoolAddress
		})
		url := "http://" + lbPoolAddress + ":8082/hostname"
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			body, err := lanGet(url)
			return err == nil && body == "web", fmt.Sprintf("GET %s from the LAN: %q, %v; want web\n%s", url, body, err, announcers())
		})
	})
}
