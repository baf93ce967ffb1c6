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

// serviceObjects are TestRealServiceProxy's objects: two test servers
// behind a ClusterIP Service (port 80 to the named port http), a Service
// whose selector matches nothing, and a busybox client.
const serviceObjects = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: testserver
        image: %[1]s
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: nobody
spec:
  selector: {app: nobody}
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[2]s
    command: [sleep, "3600"]
`

// TestRealServiceProxy: the node's service proxy forwards a ClusterIP to
// every ready backend, refuses a Service without endpoints at once, and
// carries pods' DNS queries to the cluster DNS behind 10.96.0.10.
func TestRealServiceProxy(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-service")
	objs := fmt.Sprintf(serviceObjects, c.Image(framework.ImageTestServer), c.Image(framework.ImageBusybox))
	if out, stderr, err := c.KubectlStdin(objs, "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "client", podStartTimeout, phaseIs(corev1.PodRunning))
	kubectlOK(t, c, "-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")
	clusterIP := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"))
	pods, err := listPods(c, ns, "app=web")
	if err != nil || len(pods) != 2 {
		t.Fatalf("web pods: got %d, %v, want 2", len(pods), err)
	}

	// Busybox's wget crashes with -T; timeout bounds each request.
	get := func(url string) (string, error) {
		out, stderr, err := c.Kubectl("-n", ns, "exec", "client", "--", "timeout", "5", "wget", "-qO-", url)
		if err != nil {
			return out, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr))
		}
		return out, nil
	}
	t.Run("every backend answers", func(t *testing.T) {
		seen := map[string]bool{}
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			body, err := get("http://" + clusterIP + "/hostname")
			if err == nil {
				seen[strings.TrimSpace(body)] = true
			}
			for _, p := range pods {
				if !seen[p.Name] {
					return false, fmt.Sprintf("backends seen through %s: %v (last error %v), want both of %s and %s", clusterIP, seen, err, pods[0].Name, pods[1].Name)
				}
			}
			return true, ""
		})
	})
	t.Run("no endpoints refuses", func(t *testing.T) {
		ip := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", "service", "nobody", "-o", "jsonpath={.spec.clusterIP}"))
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			start := time.Now()
			_, err := get("http://" + ip + "/")
			// Refused at once, not timed out by the 5 s bound.
			ok := err != nil && strings.Contains(err.Error(), "refused") && time.Since(start) < 4*time.Second
			return ok, fmt.Sprintf("wget %s: %v after %v, want a refusal at once", ip, err, time.Since(start))
		})
	})
	t.Run("Endpoints written by hand", func(t *testing.T) {
		// A Service without a selector and an Endpoints object naming
		// one backend: mirrored into an EndpointSlice, which the proxy
		// follows.
		manual := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: manual
subsets:
- addresses:
  - ip: %s
  ports:
  - {port: 8080}
`, pods[0].Status.PodIP)
		if out, stderr, err := c.KubectlStdin(manual, "-n", ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
		}
		ip := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "get", "service", "manual", "-o", "jsonpath={.spec.clusterIP}"))
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := get("http://" + ip + "/hostname")
			return err == nil && strings.TrimSpace(body) == pods[0].Name, fmt.Sprintf("wget %s: %q, %v, want %s", ip, body, err, pods[0].Name)
		})
		out := kubectlOK(t, c, "-n", ns, "get", "endpointslices", "-l", "kubernetes.io/service-name=manual",
			"-o", "jsonpath={.items[*].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}")
		if out != "endpointslicemirroring-controller.k8s.io" {
			t.Errorf("mirrored EndpointSlice managed-by: got %q, want endpointslicemirroring-controller.k8s.io", out)
		}
	})
	t.Run("cluster DNS through its Service", func(t *testing.T) {
		name := "web." + ns + ".svc.cluster.local"
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			out, stderr, err := c.Kubectl("-n", ns, "exec", "client", "--", "nslookup", name)
			return err == nil && strings.Contains(out, clusterIP), fmt.Sprintf("nslookup %s: %v %s %s, want %s", name, err, out, stderr, clusterIP)
		})
		// And a request by name.
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			body, err := get("http://web/hostname")
			return err == nil && strings.HasPrefix(body, "web-"), fmt.Sprintf("wget http://web/hostname: %q, %v", body, err)
		})
	})
}
