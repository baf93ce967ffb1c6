//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

const gcDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 2
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
      - name: c
        image: nginx:1.7
`

func count(t *testing.T, c *framework.Cluster, args ...string) int {
	t.Helper()
	return len(strings.Fields(jsonpath(t, c, append(args, "-o", "jsonpath={.items[*].metadata.name}")...)))
}

// TestCascadingAndOrphanDelete: deleting a Deployment removes its
// ReplicaSets and Pods; --cascade=orphan keeps them without owners.
func TestCascadingAndOrphanDelete(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	for _, name := range []string{"cascade", "orphan"} {
		applyYAML(t, c, fmt.Sprintf(gcDeployment, name, name, name))
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			n := count(t, c, "get", "pods", "-l", "app="+name)
			return n == 2, fmt.Sprintf("%d pods of %s", n, name)
		})
	}
	kubectlOK(t, c, "delete", "deployment", "cascade")
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		rs, pods := count(t, c, "get", "rs", "-l", "app=cascade"), count(t, c, "get", "pods", "-l", "app=cascade")
		return rs == 0 && pods == 0, fmt.Sprintf("%d replicasets, %d pods left", rs, pods)
	})

	kubectlOK(t, c, "delete", "deployment", "orphan", "--cascade=orphan")
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		_, _, err := c.Kubectl("get", "deployment", "orphan")
		return err != nil, "deployment orphan still exists"
	})
	// Give the collector time to do the wrong thing, then check it did not.
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		owners := jsonpath(t, c, "get", "rs", "-l", "app=orphan", "-o", "jsonpath={.items[*].metadata.ownerReferences}")
		return owners == "", "replicaset owners: " + owners
	})
	time.Sleep(3 * time.Second)
	if rs, pods := count(t, c, "get", "rs", "-l", "app=orphan"), count(t, c, "get", "pods", "-l", "app=orphan"); rs != 1 || pods != 2 {
		t.Errorf("after --cascade=orphan: got %d replicasets and %d pods, want 1 and 2", rs, pods)
	}
}

// TestForegroundDelete: with propagationPolicy=Foreground the Deployment
// stays (with the foregroundDeletion finalizer) until its ReplicaSet is
// gone.
func TestForegroundDelete(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	applyYAML(t, c, fmt.Sprintf(gcDeployment, "fg", "fg", "fg"))
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		n := count(t, c, "get", "pods", "-l", "app=fg")
		return n == 2, fmt.Sprintf("%d pods", n)
	})
	kubectlOK(t, c, "delete", "deployment", "fg", "--cascade=foreground", "--timeout=90s")
	if rs, pods := count(t, c, "get", "rs", "-l", "app=fg"), count(t, c, "get", "pods", "-l", "app=fg"); rs != 0 {
		t.Errorf("after foreground delete returned: got %d replicasets (%d pods), want none", rs, pods)
	}
}

// TestNamespaceDeletion: kubectl delete ns returns once the namespace and
// everything in it are gone.
func TestNamespaceDeletion(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	kubectlOK(t, c, "create", "namespace", "doomed")
	kubectlOK(t, c, "-n", "doomed", "create", "configmap", "cfg", "--from-literal=a=b")
	kubectlOK(t, c, "-n", "doomed", "create", "secret", "generic", "s", "--from-literal=a=b")
	applyYAML(t, c, strings.Replace(fmt.Sprintf(gcDeployment, "web", "web", "web"), "metadata:\n  name: web", "metadata:\n  name: web\n  namespace: doomed", 1))
	kubectlOK(t, c, "delete", "namespace", "doomed", "--timeout=120s")
	if out, _, err := c.Kubectl("get", "namespace", "doomed"); err == nil {
		t.Errorf("namespace still exists after kubectl delete returned:\n%s", out)
	}
	if out := jsonpath(t, c, "get", "configmaps,secrets,deployments,pods", "-n", "doomed", "-o", "name"); out != "" {
		t.Errorf("objects left in the deleted namespace:\n%s", out)
	}
}

// TestDefaultServiceAccount: every namespace gets "default", recreated
// when deleted.
func TestDefaultServiceAccount(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	kubectlOK(t, c, "create", "namespace", "team")
	waitSA := func() {
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			_, errOut, err := c.Kubectl("-n", "team", "get", "serviceaccount", "default")
			return err == nil, errOut
		})
	}
	waitSA()
	kubectlOK(t, c, "-n", "team", "delete", "serviceaccount", "default")
	waitSA()
}

// TestEndpointsFromPods: a Service's Endpoints and EndpointSlice list the
// ready pods matching its selector, with named ports resolved.
func TestEndpointsFromPods(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	applyYAML(t, c, `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
`)
	cs := c.Client()
	ctx := context.Background()
	for i, ready := range []bool{true, false} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: "somewhere", Containers: []corev1.Container{{Name: "c", Image: "nginx",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
		created, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		created.Status.Phase = corev1.PodRunning
		created.Status.PodIP = fmt.Sprintf("10.244.0.%d", 10+i)
		created.Status.PodIPs = []corev1.PodIP{{IP: created.Status.PodIP}}
		created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[*].ip}|{.subsets[0].notReadyAddresses[*].ip}|{.subsets[0].ports[0].port}")
		return got == "10.244.0.10|10.244.0.11|8080", got
	})
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
			`jsonpath={range .items[*]}{.metadata.labels.endpointslice\.kubernetes\.io/managed-by}|{.endpoints[*].addresses[0]}|{.endpoints[*].conditions.ready}|{.ports[0].port};{end}`)
		return got == "endpointslice-controller.k8s.io|10.244.0.10 10.244.0.11|true false|8080;", got
	})
	if got := jsonpath(t, c, "get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].ports[0].name}"); got != "https" {
		t.Errorf("kubernetes endpoints port: got %q, want https (written by the API server)", got)
	}
}

// TestQuotaAndLimitRange: a LimitRange defaults container resources; a
// ResourceQuota tracks usage and refuses what would exceed it.
func TestQuotaAndLimitRange(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	kubectlOK(t, c, "create", "namespace", "q")
	applyYAML(t, c, `apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: q}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: q}
spec:
  hard: {pods: "1", requests.cpu: "1"}
`)
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "-n", "q", "get", "resourcequota", "compute", "-o", "jsonpath={.status.hard.pods}/{.status.used.pods}")
		return got == "1/0", got
	})
	kubectlOK(t, c, "-n", "q", "run", "one", "--image=nginx")
	if got := jsonpath(t, c, "-n", "q", "get", "pod", "one", "-o", "jsonpath={.spec.containers[0].resources.requests.cpu}/{.spec.containers[0].resources.limits.memory}"); got != "100m/128Mi" {
		t.Errorf("LimitRange defaults: got %q, want 100m/128Mi", got)
	}
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "-n", "q", "get", "resourcequota", "compute", "-o", "jsonpath={.status.used.pods}/{.status.used.requests\\.cpu}")
		return got == "1/100m", got
	})
	_, errOut, err := c.Kubectl("-n", "q", "run", "two", "--image=nginx")
	if err == nil || !strings.Contains(errOut, "exceeded quota: compute, requested: pods=1, used: pods=1, limited: pods=1") {
		t.Errorf("second pod: got err=%v %q, want refused with exceeded quota", err, errOut)
	}

	// An update is charged for what it adds: a ClusterIP Service fits a
	// quota of no NodePorts, turning it into a NodePort Service does not.
	applyYAML(t, c, `apiVersion: v1
kind: ResourceQuota
metadata: {name: ports, namespace: q}
spec:
  hard: {services.nodeports: "0"}
`)
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "-n", "q", "get", "resourcequota", "ports", "-o", "jsonpath={.status.hard.services\\.nodeports}")
		return got == "0", got
	})
	kubectlOK(t, c, "-n", "q", "create", "service", "clusterip", "web", "--tcp=80:8080")
	_, errOut, err = c.Kubectl("-n", "q", "patch", "service", "web", "-p", `{"spec":{"type":"NodePort"}}`)
	if err == nil || !strings.Contains(errOut, "exceeded quota: ports, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0") {
		t.Errorf("service to NodePort: got err=%v %q, want refused with exceeded quota", err, errOut)
	}
	if got := jsonpath(t, c, "-n", "q", "get", "service", "web", "-o", "jsonpath={.spec.type}"); got != "ClusterIP" {
		t.Errorf("service type after the refused patch: got %q, want ClusterIP", got)
	}
}

// TestNodeLoss: a node whose heartbeats stop goes NotReady (Unknown) with
// the unreachable taints, and its pods are evicted when their toleration
// runs out.
func TestNodeLoss(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{ServerArgs: []string{"--node-monitor-grace-period=10s"}})
	tok, err := os.ReadFile(filepath.Join(c.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(suite.Binary(t), "sim", "nodes", "--server", c.Endpoint(), "--token", strings.TrimSpace(string(tok)),
		"--count", "1", "--name-prefix", "lost")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	var node string
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out := jsonpath(t, c, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "lost") && strings.HasSuffix(f, "=True") {
				node = strings.TrimSuffix(f, "=True")
				return true, out
			}
		}
		return false, out
	})
	applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: short}
spec:
  nodeName: %s
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
  containers:
  - {name: c, image: nginx}
`, node))
	if got := jsonpath(t, c, "get", "pod", "short", "-o", `jsonpath={.spec.tolerations[?(@.key=="node.kubernetes.io/not-ready")].tolerationSeconds}`); got != "300" {
		t.Errorf("default not-ready toleration: got %q, want 300", got)
	}
	// The node stops: no more lease renewals nor status updates.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}/{.spec.taints[*].key}`)
		return strings.HasPrefix(got, "Unknown/NodeStatusUnknown/") && strings.Contains(got, "node.kubernetes.io/unreachable"), got
	})
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("get", "pod", "short", "-o", "jsonpath={.metadata.deletionTimestamp}")
		return err != nil || strings.TrimSpace(out) != "", "pod short not evicted yet"
	})
}
