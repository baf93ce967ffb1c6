//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// topPods are the pods of TestRealTop: busy spins a CPU; idle sleeps,
// beside a sleeping sidecar. Both hold about 4 MB in a shell variable so
// their memory shows in kubectl top's whole MiB (the shell stays: a last
// command alone would be exec'd in its place).
const topPods = `apiVersion: v1
kind: Pod
metadata:
  name: busy
  labels: {app: busy}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: burn
    image: %[1]s
    command: [sh, -c, "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
  labels: {app: idle}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do sleep 3600; done"]
  - name: side
    image: %[1]s
    command: [sleep, "3600"]
`

// topTimeout bounds the wait for metrics: the kubelet needs two samples
// (1 s apart, then every 10 s) and the API server keeps a node's summary
// for 15 s.
const topTimeout = 90 * time.Second

// topRows parses `kubectl top` output into its header and the rows keyed
// by their first column.
func topRows(out string) (header []string, rows map[string][]string) {
	rows = map[string][]string{}
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if i == 0 {
			header = f
			continue
		}
		if len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return header, rows
}

// quantity parses a kubectl top cell ("250m", "12Mi"); unparsable is -1.
func quantity(s string) int64 {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return -1
	}
	return q.MilliValue()
}

// TestRealTop: `kubectl top pods` and `kubectl top nodes` show real
// cgroup figures through metrics.k8s.io: a spinning pod uses more than
// 100m of CPU, every pod and the node use memory, --containers breaks a
// pod down, a label selector filters, and a missing pod is an error.
func TestRealTop(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-top")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(topPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	for _, name := range []string{"busy", "idle"} {
		waitPod(t, c, ns, name, podStartTimeout, phaseIs(corev1.PodRunning))
	}

	t.Run("pods", func(t *testing.T) {
		framework.WaitFor(t, topTimeout, func() (bool, string) {
			out, stderr, err := c.Kubectl("-n", ns, "top", "pods")
			if err != nil {
				return false, fmt.Sprintf("kubectl top pods: %v: %s%s", err, out, stderr)
			}
			header, rows := topRows(out)
			if strings.Join(header, " ") != "NAME CPU(cores) MEMORY(bytes)" {
				return false, fmt.Sprintf("kubectl top pods: header %q, want NAME CPU(cores) MEMORY(bytes):\n%s", header, out)
			}
			busy, idle := rows["busy"], rows["idle"]
			if len(busy) != 3 || len(idle) != 3 {
				return false, "kubectl top pods: want rows busy and idle:\n" + out
			}
			if quantity(busy[1]) <= 100 || quantity(busy[2]) <= 0 || quantity(idle[2]) <= 0 {
				return false, "kubectl top pods: want busy above 100m CPU and both above 0 memory:\n" + out
			}
			t.Logf("kubectl top pods:\n%s", out)
			return true, ""
		})
	})

	t.Run("raw", func(t *testing.T) {
		out := kubectlOK(t, c, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods/idle")
		var m struct {
			Kind       string `json:"kind"`
			Containers []struct {
				Name  string                       `json:"name"`
				Usage map[string]resource.Quantity `json:"usage"`
			} `json:"containers"`
		}
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("decode PodMetrics: %v\n%s", err, out)
		}
		if m.Kind != "PodMetrics" || len(m.Containers) != 2 {
			t.Fatalf("got %s, want PodMetrics with containers main and side", out)
		}
		for _, ct := range m.Containers {
			mem := ct.Usage["memory"]
			if mem.Value() <= 0 {
				t.Errorf("container %s: got memory %s, want above 0", ct.Name, mem.String())
			}
		}
	})

	t.Run("containers", func(t *testing.T) {
		out := kubectlOK(t, c, "-n", ns, "top", "pod", "idle", "--containers")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "POD NAME CPU(cores) MEMORY(bytes)" {
			t.Fatalf("kubectl top pod idle --containers: got\n%s\nwant a POD NAME CPU(cores) MEMORY(bytes) header and two rows", out)
		}
		got := strings.Fields(lines[1])[1] + "," + strings.Fields(lines[2])[1]
		if got != "main,side" {
			t.Errorf("kubectl top pod idle --containers: got containers %s, want main,side:\n%s", got, out)
		}
		if mem := quantity(strings.Fields(lines[1])[3]); mem <= 0 {
			t.Errorf("container main: got memory %s, want above 0Mi (it holds 4 MB):\n%s", strings.Fields(lines[1])[3], out)
		}
	})

	t.Run("selector", func(t *testing.T) {
		_, rows := topRows(kubectlOK(t, c, "-n", ns, "top", "pods", "-l", "app=busy"))
		if len(rows) != 1 || rows["busy"] == nil {
			t.Errorf("kubectl top pods -l app=busy: got rows %v, want only busy", rows)
		}
	})

	t.Run("all namespaces", func(t *testing.T) {
		out := kubectlOK(t, c, "top", "pods", "-A")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if strings.Join(strings.Fields(lines[0]), " ") != "NAMESPACE NAME CPU(cores) MEMORY(bytes)" {
			t.Fatalf("kubectl top pods -A: got header %q, want NAMESPACE NAME CPU(cores) MEMORY(bytes)", lines[0])
		}
		found := 0
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) == 4 && f[0] == ns && (f[1] == "busy" || f[1] == "idle") {
				found++
			}
		}
		if found != 2 {
			t.Errorf("kubectl top pods -A: got %d of %s's pods, want busy and idle:\n%s", found, ns, out)
		}
	})

	t.Run("get podmetrics", func(t *testing.T) {
		// The Table metrics-server answers: name, cpu, memory, window.
		out := kubectlOK(t, c, "-n", ns, "get", "podmetrics", "busy")
		header, rows := topRows(out)
		if strings.Join(header, " ") != "NAME CPU MEMORY WINDOW" || len(rows["busy"]) != 4 || rows["busy"][3] != "10s" {
			t.Errorf("kubectl get podmetrics busy: got\n%s\nwant NAME CPU MEMORY WINDOW and busy's row with window 10s", out)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		var node string
		framework.WaitFor(t, topTimeout, func() (bool, string) {
			nodes, err := c.Client().CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
			if err != nil || len(nodes.Items) == 0 {
				return false, fmt.Sprintf("list nodes: %v", err)
			}
			node = nodes.Items[0].Name
			out, stderr, err := c.Kubectl("top", "nodes")
			if err != nil {
				return false, fmt.Sprintf("kubectl top nodes: %v: %s%s", err, out, stderr)
			}
			header, rows := topRows(out)
			if strings.Join(header, " ") != "NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)" {
				return false, fmt.Sprintf("kubectl top nodes: header %q, want NAME CPU(cores) CPU(%%) MEMORY(bytes) MEMORY(%%):\n%s", header, out)
			}
			r := rows[node]
			if len(r) != 5 || quantity(r[1]) <= 0 || quantity(r[3]) <= 0 || r[2] == "<unknown>" {
				return false, fmt.Sprintf("kubectl top nodes: want node %s with CPU and memory above 0:\n%s", node, out)
			}
			t.Logf("kubectl top nodes:\n%s", out)
			return true, ""
		})
	})

	t.Run("missing pod", func(t *testing.T) {
		_, stderr, err := c.Kubectl("-n", ns, "top", "pod", "missing")
		want := `podmetrics.metrics.k8s.io "missing" not found`
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("kubectl top pod missing: got %v, stderr %q, want a failure saying %q", err, stderr, want)
		}
	})
}

// TestTopSimulatedNodes: simulated nodes serve no summary API; the
// metrics API reports no metrics for them, promptly, and kubectl top says
// so instead of hanging.
func TestTopSimulatedNodes(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 2, "topsim")

	start := time.Now()
	_, stderr, err := c.Kubectl("top", "nodes")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("kubectl top nodes with simulated nodes: took %v, want an answer well within the 10 s scrape wait", took)
	}
	if want := "metrics not available yet"; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("kubectl top nodes with simulated nodes: got %v, stderr %q, want a failure saying %q", err, stderr, want)
	}

	out := kubectlOK(t, c, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "NodeMetricsList" || len(list.Items) != 0 {
		t.Errorf("GET metrics.k8s.io nodes: got %s (%v), want an empty NodeMetricsList", out, err)
	}

	// The OpenAPI documents describe the metrics types.
	out = kubectlOK(t, c, "explain", "podmetrics.containers")
	if !strings.Contains(out, "KIND:       PodMetrics") || !strings.Contains(out, "VERSION:    v1beta1") || !strings.Contains(out, "usage") {
		t.Errorf("kubectl explain podmetrics.containers: got\n%s\nwant PodMetrics v1beta1 with the usage field", out)
	}

	_, stderr, err = c.Kubectl("top", "node", "topsim0")
	if want := `nodemetrics.metrics.k8s.io "topsim0" not found`; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("kubectl top node topsim0: got %v, stderr %q, want a failure saying %q", err, stderr, want)
	}
}
