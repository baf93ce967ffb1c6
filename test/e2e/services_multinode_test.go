//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// svcMultiNodeObjects are TestServicesMultiNode's objects: one test server
// pinned to each node (%[1]s, %[2]s, %[3]s) behind several Services, and a
// busybox client on the server's node.
const svcMultiNodeObjects = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-aff}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {port: 8081, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: web.%[6]s.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata: {name: sel}
spec:
  selector: {app: sel, tier: backend}
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec:
  nodeName: %[1]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[4]s, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec:
  nodeName: %[2]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[4]s, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec:
  nodeName: %[3]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[4]s, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: sel-pod, labels: {app: sel}}
spec:
  nodeName: %[3]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: srv, image: %[4]s}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: %[1]s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[5]s, command: [sleep, "3600"]}
`

// TestServicesMultiNode builds one 3-node cluster (host-gw) and checks,
// through kubectl and real traffic, issue 5's Service flows: a ClusterIP
// reaching the backends on every node from a pod, NodePorts reached from
// outside the nodes on every node's address, externalTrafficPolicy and
// internalTrafficPolicy Local keeping traffic on the node, sessionAffinity
// ClientIP,
// endpoints that appear only once a pod's labels fully match the
// selector, DNS names (Service, headless, ExternalName), the Service
// environment variables, a Service without a selector fed by hand, the
// built-in LoadBalancer's EXTERNAL-IPs, and an established connection
// through a ClusterIP surviving a restart of the server's node (and with
// it, its proxy), and last the load balancer's addresses following a node
// leaving the cluster.
func TestServicesMultiNode(t *testing.T) {
	m := suite.StartMultiNode(t, framework.Options{}, framework.MultiNodeOptions{Agents: 2})
	c := m.Cluster
	names, nodeIPs := m.NodeNames(), m.NodeIPs()
	ns := realNamespace(t, c, "svc-multinode")
	objs := fmt.Sprintf(svcMultiNodeObjects, names[0], names[1], names[2],
		c.Image(framework.ImageTestServer), c.Image(framework.ImageBusybox), ns)
	if out, stderr, err := c.KubectlStdin(objs, "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	podIPs := map[string]string{}
	for _, p := range []string{"web-0", "web-1", "web-2", "sel-pod", "client"} {
		podIPs[p] = waitPod(t, c, ns, p, podStartTimeout, phaseIs(corev1.PodRunning)).Status.PodIP
	}
	jsonpath := func(kind, name, path string) string {
		t.Helper()
		return strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", kind, name, "-o", "jsonpath="+path))
	}
	clusterIP := jsonpath("service", "web", "{.spec.clusterIP}")
	webPods := []string{"web-0", "web-1", "web-2"}
	everyBackend := func(t *testing.T, what, url string, fetch func(string) (string, error)) {
		t.Helper()
		everyBackendAnswers(t, what, url, fetch, webPods)
	}
	fromClient := podGet(c, ns, "client")

	t.Run("ClusterIP reaches every node's backend", func(t *testing.T) {
		everyBackend(t, "from client on "+names[0], "http://"+clusterIP+"/hostname", fromClient)
	})

	t.Run("NodePort from outside the nodes", func(t *testing.T) {
		port := jsonpath("service", "web-np", "{.spec.ports[0].nodePort}")
		for i, ip := range nodeIPs {
			everyBackend(t, "from the host to node "+names[i], "http://"+ip+":"+port+"/hostname", hostGet)
		}
	})

	t.Run("traffic policies Local keep traffic on the node", func(t *testing.T) {
		// externalTrafficPolicy Local: each node's NodePort, reached from
		// the host, answers with that node's pod only.
		port := jsonpath("service", "web-local", "{.spec.ports[0].nodePort}")
		for i, ip := range nodeIPs {
			url := "http://" + ip + ":" + port + "/hostname"
			framework.WaitFor(t, 30*time.Second, func() (bool, string) {
				body, err := hostGet(url)
				return err == nil && body == webPods[i], fmt.Sprintf("GET %s: %q, %v; want %s", url, body, err, webPods[i])
			})
			for range 5 {
				if body, err := hostGet(url); err != nil || body != webPods[i] {
					t.Fatalf("GET %s (externalTrafficPolicy Local): got %q, %v; want only the node's own %s", url, body, err, webPods[i])
				}
			}
		}
		// internalTrafficPolicy Local: the ClusterIP from the client on
		// node 0 answers with web-0 only.
		ip := jsonpath("service", "web-local", "{.spec.clusterIP}")
		for i := range 5 {
			body, err := fromClient("http://" + ip + "/hostname")
			if err != nil || body != "web-0" {
				t.Fatalf("request %d to %s (internalTrafficPolicy Local) from %s: got %q, %v; want web-0", i+1, ip, names[0], body, err)
			}
		}
	})

	t.Run("sessionAffinity ClientIP keeps one backend", func(t *testing.T) {
		ip := jsonpath("service", "web-aff", "{.spec.clusterIP}")
		var first string
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := fromClient("http://" + ip + "/hostname")
			first = body
			return err == nil && slices.Contains(webPods, body), fmt.Sprintf("GET %s: %q, %v", ip, body, err)
		})
		for i := range 10 {
			body, err := fromClient("http://" + ip + "/hostname")
			if err != nil || body != first {
				t.Fatalf("request %d through %s: got %q (%v), want %q again (affinity)", i+1, ip, body, err, first)
			}
		}
	})

	t.Run("endpoints only when the labels fully match", func(t *testing.T) {
		wide := kubectlOK(t, c, "-n", ns, "get", "svc", "sel", "-o", "wide")
		if !strings.Contains(wide, "app=sel,tier=backend") {
			t.Errorf("kubectl get svc sel -o wide: got\n%s\nwant the SELECTOR app=sel,tier=backend", wide)
		}
		// app=sel only: no endpoint, for a while.
		for range 3 {
			if ep := endpointsColumn(t, c, ns, "sel"); ep != "<none>" {
				t.Fatalf("kubectl get ep sel with pod labels {app: sel}: ENDPOINTS %q, want <none>", ep)
			}
			time.Sleep(time.Second)
		}
		if d := kubectlOK(t, c, "-n", ns, "describe", "svc", "sel"); !strings.Contains(d, "Endpoints:") || strings.Contains(d, podIPs["sel-pod"]) {
			t.Errorf("describe svc sel before the label matches: got\n%s\nwant an Endpoints line without %s", d, podIPs["sel-pod"])
		}
		kubectlOK(t, c, "-n", ns, "label", "pod", "sel-pod", "tier=backend")
		want := podIPs["sel-pod"] + ":8080"
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			ep := endpointsColumn(t, c, ns, "sel")
			return ep == want, fmt.Sprintf("kubectl get ep sel: ENDPOINTS %q, want %q", ep, want)
		})
		framework.WaitFor(t, 10*time.Second, func() (bool, string) {
			d := kubectlOK(t, c, "-n", ns, "describe", "svc", "sel")
			return strings.Contains(d, want), "describe svc sel:\n" + d
		})
		ip := jsonpath("service", "sel", "{.spec.clusterIP}")
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := fromClient("http://" + ip + "/hostname")
			return err == nil && body == "sel-pod", fmt.Sprintf("GET %s: %q, %v", ip, body, err)
		})
	})

	t.Run("DNS names", func(t *testing.T) {
		nslookup := func(name string, wants ...string) {
			t.Helper()
			framework.WaitFor(t, 30*time.Second, func() (bool, string) {
				// Exit status ignored: busybox fails when one of A/AAAA
				// has no answer.
				out, stderr, err := c.Kubectl("-n", ns, "exec", "client", "--", "nslookup", name)
				for _, w := range wants {
					if !strings.Contains(out, w) {
						return false, fmt.Sprintf("nslookup %s: %v\n%s%s\nwant %q", name, err, out, stderr, w)
					}
				}
				return true, ""
			})
		}
		nslookup("web."+ns+".svc.cluster.local", clusterIP)
		nslookup("web-headless."+ns+".svc.cluster.local", podIPs["web-0"], podIPs["web-1"], podIPs["web-2"])
		nslookup("ext."+ns+".svc.cluster.local", "web."+ns+".svc.cluster.local")
	})

	t.Run("service environment variables", func(t *testing.T) {
		pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: env}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %s, command: [sleep, "3600"]}
`, names[1], c.Image(framework.ImageBusybox))
		if out, stderr, err := c.KubectlStdin(pod, "-n", ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
		}
		waitPod(t, c, ns, "env", podStartTimeout, phaseIs(corev1.PodRunning))
		env := kubectlOK(t, c, "-n", ns, "exec", "env", "--", "env")
		for _, want := range []string{"WEB_SERVICE_HOST=" + clusterIP, "WEB_SERVICE_PORT=80", "WEB_NP_SERVICE_PORT=80",
			"KUBERNETES_SERVICE_HOST="} {
			if !strings.Contains(env, want) {
				t.Errorf("env of a pod started after the Services: no %q in\n%s", want, env)
			}
		}
	})

	t.Run("Service without a selector and manual endpoints", func(t *testing.T) {
		objs := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
- addresses: [{ip: %[1]s}]
  ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-1
  labels: {kubernetes.io/service-name: manual}
addressType: IPv4
endpoints:
- addresses: [%[1]s]
  conditions: {ready: true}
ports:
- {name: http, port: 8080, protocol: TCP}
`, podIPs["web-1"])
		if out, stderr, err := c.KubectlStdin(objs, "-n", ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
		}
		if ep := endpointsColumn(t, c, ns, "manual"); ep != podIPs["web-1"]+":8080" {
			t.Errorf("kubectl get ep manual: ENDPOINTS %q, want %s:8080", ep, podIPs["web-1"])
		}
		ip := jsonpath("service", "manual", "{.spec.clusterIP}")
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := fromClient("http://" + ip + "/hostname")
			return err == nil && body == "web-1", fmt.Sprintf("GET %s: %q, %v; want web-1", ip, body, err)
		})
	})

	t.Run("LoadBalancer reachable on its EXTERNAL-IP", func(t *testing.T) {
		want := slices.Clone(nodeIPs)
		slices.Sort(want)
		var got []string
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			got = strings.Fields(jsonpath("service", "web-lb", "{.status.loadBalancer.ingress[*].ip}"))
			slices.Sort(got)
			return slices.Equal(got, want), fmt.Sprintf("status.loadBalancer.ingress: %v, want the nodes' %v", got, want)
		})
		row := kubectlOK(t, c, "-n", ns, "get", "svc", "web-lb")
		for _, ip := range nodeIPs {
			if !strings.Contains(row, ip) || strings.Contains(row, "<pending>") {
				t.Errorf("kubectl get svc web-lb: got\n%s\nwant the EXTERNAL-IPs %v", row, nodeIPs)
				break
			}
		}
		for _, ip := range got {
			everyBackend(t, "from the host", "http://"+ip+":8081/hostname", hostGet)
		}
		// No longer a LoadBalancer: the addresses go.
		kubectlOK(t, c, "-n", ns, "patch", "svc", "web-lb", "-p", `{"spec":{"type":"ClusterIP"}}`)
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			ing := jsonpath("service", "web-lb", "{.status.loadBalancer.ingress}")
			return ing == "", "status.loadBalancer.ingress after the type became ClusterIP: " + ing
		})
		// And the proxies stop forwarding them.
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := hostGet("http://" + got[0] + ":8081/hostname")
			return err != nil, fmt.Sprintf("GET %s:8081 after the type became ClusterIP: %q, want an error", got[0], body)
		})
	})

	t.Run("established connection survives a node's proxy restart", func(t *testing.T) {
		livedConnection(t, m, ns, clusterIP)
	})

	// Last, as it takes a node away.
	t.Run("LoadBalancer addresses follow the nodes", func(t *testing.T) {
		svc := `apiVersion: v1
kind: Service
metadata: {name: web-lb2}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {port: 8082, targetPort: http}
`
		if out, stderr, err := c.KubectlStdin(svc, "-n", ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
		}
		waitLB := func(what string, want []string) {
			t.Helper()
			want = slices.Sorted(slices.Values(want))
			framework.WaitFor(t, 60*time.Second, func() (bool, string) {
				got := strings.Fields(jsonpath("service", "web-lb2", "{.status.loadBalancer.ingress[*].ip}"))
				slices.Sort(got)
				return slices.Equal(got, want), fmt.Sprintf("%s: status.loadBalancer.ingress %v, want %v", what, got, want)
			})
		}
		waitLB("three nodes", nodeIPs)
		gone := len(names) - 1
		if err := m.RemoveNode(t.Context(), gone); err != nil {
			t.Fatalf("remove node %s: %v", names[gone], err)
		}
		waitLB("node "+names[gone]+" removed", nodeIPs[:gone])
	})
}

// livedConnection opens one HTTP/1.1 keep-alive connection through the
// ClusterIP from a pod on the server's node (busybox nc sending a request
// a second), restarts the server (its node's kubelet and service proxy
// with it), and checks that the same connection goes on being answered.
func livedConnection(t *testing.T, m *framework.MultiNode, ns, clusterIP string) {
	c := m.Cluster
	script := fmt.Sprintf(`i=0; (while [ $i -lt 900 ]; do printf 'GET /hostname HTTP/1.1\r\nHost: lived\r\n\r\n'; i=$((i+1)); sleep 1; done) | nc %s 80 > /tmp/out 2>&1; echo "nc exited $?" >> /tmp/out; exec sleep 3600`, clusterIP)
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: lived}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %s, command: [sh, -c, %q]}
`, m.NodeNames()[0], c.Image(framework.ImageBusybox), script)
	if out, stderr, err := c.KubectlStdin(pod, "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "lived", podStartTimeout, phaseIs(corev1.PodRunning))
	// answers is how many responses the connection has carried, or -1
	// once nc has exited.
	answers := func() (int, string) {
		out, stderr, err := c.Kubectl("-n", ns, "exec", "lived", "--", "cat", "/tmp/out")
		if err != nil {
			return 0, fmt.Sprintf("%v: %s", err, stderr)
		}
		if strings.Contains(out, "nc exited") {
			return -1, out
		}
		return strings.Count(out, "HTTP/1.1 200 OK"), out
	}
	var before int
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		n, out := answers()
		before = n
		return n >= 3, fmt.Sprintf("%d responses on the connection so far; output:\n%s", n, out)
	})
	pid, logBefore := c.ServerPID(), len(c.Logs())
	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("restart the server's node: %v", err)
	}
	if c.ServerPID() == pid {
		t.Fatalf("the server's PID is %d after the restart, as before", pid)
	}
	framework.WaitFor(t, 90*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("get", "node", c.NodeName(), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True", fmt.Sprintf("node %s Ready: %q (%v)", c.NodeName(), out, err)
	})
	// The restarted proxy's first, full sync.
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		since := c.Logs()[logBefore:]
		for _, line := range strings.Split(since, "\n") {
			if strings.Contains(line, `msg="proxy: synced"`) && strings.Contains(line, "full=true") {
				return true, ""
			}
		}
		return false, "no full proxy sync in the server's log since the restart:\n" + tailString(since, 3000)
	})
	synced, out := answers()
	if synced < 0 {
		t.Fatalf("the connection through %s broke across the restart:\n%s", clusterIP, out)
	}
	var after int
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		n, out := answers()
		after = n
		if n < 0 {
			t.Fatalf("the connection through %s broke after the restarted proxy synced:\n%s", clusterIP, out)
		}
		return n >= synced+3, fmt.Sprintf("%d responses, %d when the restarted proxy had synced; output:\n%s", n, synced, tailString(out, 2000))
	})
	t.Logf("one connection through %s: %d responses before the restart, %d when the restarted proxy had synced, %d after", clusterIP, before, synced, after)
}

// podGet returns a fetch that GETs a URL from pod in ns with busybox's
// wget, bounded by timeout (busybox's wget crashes with -T), and returns
// the trimmed body.
func podGet(c *framework.Cluster, ns, pod string) func(url string) (string, error) {
	return func(url string) (string, error) {
		out, stderr, err := c.Kubectl("-n", ns, "exec", pod, "--", "timeout", "5", "wget", "-qO-", url)
		if err != nil {
			return out, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr))
		}
		return strings.TrimSpace(out), nil
	}
}

// everyBackendAnswers requests url through fetch until each of want (the
// backends' names, which they answer with) has answered, for up to 60 s.
func everyBackendAnswers(t *testing.T, what, url string, fetch func(string) (string, error), want []string) {
	t.Helper()
	seen := map[string]bool{}
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		body, err := fetch(url)
		if err == nil {
			seen[body] = true
		}
		for _, p := range want {
			if !seen[p] {
				return false, fmt.Sprintf("%s: backends seen through %s: %v (last error %v), want all of %v", what, url, seen, err, want)
			}
		}
		return true, ""
	})
}

// hostGet is one GET from the test process (the host, outside every
// node), on a fresh connection, returning the trimmed body.
func hostGet(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// endpointsColumn is the ENDPOINTS column of `kubectl get ep name`.
func endpointsColumn(t *testing.T, c *framework.Cluster, ns, name string) string {
	t.Helper()
	rows := table(kubectlOK(t, c, "-n", ns, "get", "ep", name))
	if len(rows) != 2 || len(rows[1]) < 2 {
		t.Fatalf("kubectl get ep %s: got rows %q, want a header and one row", name, rows)
	}
	return rows[1][1]
}
