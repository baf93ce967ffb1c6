//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// proxyModeObjects are TestProxyModes' objects: one test server and one
// busybox client pinned to each node (%[1]s, %[2]s, %[3]s), a NodePort
// Service over the three servers, a Service without endpoints, a
// LoadBalancer Service with externalTrafficPolicy Local over a single
// server on the first node, and Services carrying the userspace backend's
// scheduler annotation.
const proxyModeObjects = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports:
  - {port: 8082, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web-rr
  annotations: {skiff.sh/proxy-scheduler: rr}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: web-sh
  annotations: {skiff.sh/proxy-scheduler: sh}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  nodeName: %[1]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[4]s}
`

const proxyModePerNode = `---
apiVersion: v1
kind: Pod
metadata: {name: web-%[1]d, labels: {app: web}}
spec:
  nodeName: %[2]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[3]s, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client-%[1]d}
spec:
  nodeName: %[2]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[4]s, command: [sleep, "3600"]}
`

// TestProxyModes runs the three service proxy backends side by side, one
// per node (the server's node nftables, the agents iptables and
// userspace: --proxy-mode is a per-node flag, as kube-proxy's), and checks
// on each node with real traffic: a ClusterIP from a pod on the node
// reaches the backends on every node, the node's NodePort from outside
// reaches them all, a Service without endpoints refuses at once, and the
// healthCheckNodePort of a LoadBalancer Service with externalTrafficPolicy
// Local answers 200 only on the node with its endpoint. On the userspace
// node, the scheduler annotation picks rr (the backends in turn) or sh (a
// client keeps its backend).
func TestProxyModes(t *testing.T) {
	modes := []string{"nftables", "iptables", "userspace"}
	m := suite.StartMultiNode(t, framework.Options{}, framework.MultiNodeOptions{
		Agents:    2,
		AgentArgs: [][]string{{"--proxy-mode", modes[1]}, {"--proxy-mode", modes[2]}},
	})
	c := m.Cluster
	names, nodeIPs := m.NodeNames(), m.NodeIPs()
	for i := 1; i < len(modes); i++ {
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			log := m.AgentLog(i)
			return strings.Contains(log, "service proxy started") && strings.Contains(log, "mode="+modes[i]),
				fmt.Sprintf("agent %d log has no 'service proxy started' with mode=%s:\n%s", i, modes[i], tailString(log, 3000))
		})
	}
	ns := realNamespace(t, c, "proxy-modes")
	objs := fmt.Sprintf(proxyModeObjects, names[0], names[1], names[2], c.Image(framework.ImageTestServer))
	for i, n := range names {
		objs += fmt.Sprintf(proxyModePerNode, i, n, c.Image(framework.ImageTestServer), c.Image(framework.ImageBusybox))
	}
	if out, stderr, err := c.KubectlStdin(objs, "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	var webPods []string
	for i := range names {
		webPods = append(webPods, fmt.Sprintf("web-%d", i))
		waitPod(t, c, ns, fmt.Sprintf("web-%d", i), podStartTimeout, phaseIs(corev1.PodRunning))
		waitPod(t, c, ns, fmt.Sprintf("client-%d", i), podStartTimeout, phaseIs(corev1.PodRunning))
	}
	waitPod(t, c, ns, "solo", podStartTimeout, phaseIs(corev1.PodRunning))
	jsonpath := func(name, path string) string {
		t.Helper()
		return strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", "service", name, "-o", "jsonpath="+path))
	}
	get := func(pod, url string) (string, error) { return podGet(c, ns, pod)(url) }
	everyBackend := func(t *testing.T, what, url string, fetch func(string) (string, error)) {
		t.Helper()
		everyBackendAnswers(t, what, url, fetch, webPods)
	}
	clusterIP := jsonpath("web", "{.spec.clusterIP}")
	nodePort := jsonpath("web", "{.spec.ports[0].nodePort}")
	nobodyIP := jsonpath("nobody", "{.spec.clusterIP}")

	for i, mode := range modes {
		client := fmt.Sprintf("client-%d", i)
		t.Run(mode, func(t *testing.T) {
			t.Run("ClusterIP reaches every node's backend", func(t *testing.T) {
				everyBackend(t, "from "+client+" on "+names[i], "http://"+clusterIP+"/hostname",
					func(url string) (string, error) { return get(client, url) })
			})
			t.Run("NodePort from outside the nodes", func(t *testing.T) {
				everyBackend(t, "from the host to "+names[i], "http://"+nodeIPs[i]+":"+nodePort+"/hostname", hostGet)
			})
			t.Run("no endpoints refuses", func(t *testing.T) {
				framework.WaitFor(t, 30*time.Second, func() (bool, string) {
					start := time.Now()
					_, err := get(client, "http://"+nobodyIP+"/")
					ok := err != nil && strings.Contains(err.Error(), "refused") && time.Since(start) < 4*time.Second
					return ok, fmt.Sprintf("wget %s from %s: %v after %v, want a refusal at once", nobodyIP, client, err, time.Since(start))
				})
			})
		})
	}

	t.Run("healthCheckNodePort", func(t *testing.T) {
		port := jsonpath("solo", "{.spec.healthCheckNodePort}")
		if port == "" || port == "0" {
			t.Fatalf("service solo: no healthCheckNodePort allocated")
		}
		for i, ip := range nodeIPs {
			url := "http://" + ip + ":" + port + "/healthz"
			wantCode, wantLocal := http.StatusServiceUnavailable, 0.0
			if i == 0 {
				wantCode, wantLocal = http.StatusOK, 1
			}
			framework.WaitFor(t, 30*time.Second, func() (bool, string) {
				code, body, err := healthGet(url)
				return err == nil && code == wantCode && body["localEndpoints"] == wantLocal && body["serviceProxyHealthy"] == true,
					fmt.Sprintf("GET %s (%s node): %d %v, %v; want %d with localEndpoints %v", url, modes[i], code, body, err, wantCode, wantLocal)
			})
		}
	})

	t.Run("userspace schedulers", func(t *testing.T) {
		client := "client-2"
		fetch := func(url string) (string, error) { return get(client, url) }
		// rr: once the three endpoints are programmed, three requests in
		// a row meet three backends.
		rr := "http://" + jsonpath("web-rr", "{.spec.clusterIP}") + "/hostname"
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			seen := map[string]bool{}
			for range len(webPods) {
				body, err := fetch(rr)
				if err != nil {
					return false, fmt.Sprintf("GET %s: %v", rr, err)
				}
				seen[body] = true
			}
			return len(seen) == len(webPods), fmt.Sprintf("three requests in a row through %s (rr) met %v, want all of %v", rr, seen, webPods)
		})
		// sh: one client address, one backend.
		sh := "http://" + jsonpath("web-sh", "{.spec.clusterIP}") + "/hostname"
		var first string
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := fetch(sh)
			first = body
			return err == nil && body != "", fmt.Sprintf("GET %s: %q, %v", sh, body, err)
		})
		for i := range 8 {
			if body, err := fetch(sh); err != nil || body != first {
				t.Fatalf("request %d through %s (sh) from %s: got %q, %v; want %q again", i+1, sh, client, body, err, first)
			}
		}
	})
}

// healthGet is one GET of a health check from the host: the status code
// and the JSON body.
func healthGet(url string) (int, map[string]any, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("body %q: %w", raw, err)
	}
	return resp.StatusCode, body, nil
}
