//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// schedHeartbeat renews the nodes' Leases every 5s until the test ends, as
// a node agent would, so the node lifecycle controller keeps them Ready.
func schedHeartbeat(t *testing.T, c *framework.Cluster, names ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, n := range names {
				l, err := c.Client().CoordinationV1().Leases("kube-node-lease").Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					continue
				}
				now := metav1.NewMicroTime(time.Now())
				l.Spec.RenewTime = &now
				_, _ = c.Client().CoordinationV1().Leases("kube-node-lease").Update(ctx, l, metav1.UpdateOptions{})
			}
		}
	}()
}

// schedNode is a Node object the test creates directly (no node agent),
// with capacity, a Ready condition and a fresh Lease.
func schedNode(t *testing.T, c *framework.Cluster, name, cpu, labels, taints string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: %s
  labels: {kubernetes.io/hostname: %s, %s}
spec:
  taints: [%s]
`, name, name, labels, taints)
	if out, errOut, err := c.KubectlStdin(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("create node %s: %v\n%s%s", name, err, out, errOut)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status := fmt.Sprintf(`{"status":{"capacity":{"cpu":"%[1]s","memory":"8Gi","pods":"110","ephemeral-storage":"100Gi"},`+
		`"allocatable":{"cpu":"%[1]s","memory":"8Gi","pods":"110","ephemeral-storage":"100Gi"},`+
		`"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test node","lastHeartbeatTime":"%[2]s","lastTransitionTime":"%[2]s"}]}}`, cpu, now)
	schedKubectl(t, c, "patch", "node", name, "--subresource=status", "--type=merge", "-p", status)
	// A lease keeps the node lifecycle controller from declaring it lost
	// while the test runs.
	lease := fmt.Sprintf(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: %s, namespace: kube-node-lease}
spec: {holderIdentity: %s, leaseDurationSeconds: 600, renewTime: "%s"}
`, name, name, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
	if out, errOut, err := c.KubectlStdin(lease, "apply", "-f", "-"); err != nil {
		t.Fatalf("create lease %s: %v\n%s%s", name, err, out, errOut)
	}
}

func schedKubectl(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := c.Kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func schedPod(t *testing.T, c *framework.Cluster, name, cpu, labels, extraSpec string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: sched
  labels: {%s}
spec:
  containers:
  - name: c
    image: nginx
    resources: {requests: {cpu: %s}}
%s`, name, labels, cpu, extraSpec)
	if out, errOut, err := c.KubectlStdin(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("create pod %s: %v\n%s%s", name, err, out, errOut)
	}
}

// schedNodeOf waits until `kubectl get pods -o wide` shows a node for pod
// and returns it.
func schedNodeOf(t *testing.T, c *framework.Cluster, pod string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		out, _, _ := c.Kubectl("get", "pods", "-n", "sched", "-o", "wide")
		last = out
		rows := table(out)
		if len(rows) > 0 {
			col := -1
			for i, h := range rows[0] {
				if h == "NODE" && col < 0 { // not "NOMINATED NODE"
					col = i
				}
			}
			for _, r := range rows[1:] {
				if col >= 0 && len(r) > col && r[0] == pod && r[col] != "<none>" {
					return r[col]
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	desc, _, _ := c.Kubectl("describe", "pod", "-n", "sched", pod)
	t.Fatalf("pod %s was not scheduled within 60s\n%s\n%s", pod, last, desc)
	return ""
}

// TestSchedulerPlacement drives the scheduler through kubectl on nodes
// created as plain objects: taints, node affinity, spreading and a pod
// that fits nowhere, whose FailedScheduling event reads as upstream's.
func TestSchedulerPlacement(t *testing.T) {
	// A private cluster, so that the node count in messages is ours.
	c := suite.NewCluster(t, framework.Options{})
	schedNode(t, c, "sched-cp", "4", "topology.kubernetes.io/zone: z1", "{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}")
	schedNode(t, c, "sched-a", "2", "topology.kubernetes.io/zone: z1, disk: ssd", "")
	schedNode(t, c, "sched-b", "2", "topology.kubernetes.io/zone: z2", "")
	schedHeartbeat(t, c, "sched-cp", "sched-a", "sched-b")
	if got := strings.Fields(schedKubectl(t, c, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")); len(got) != 3 {
		t.Fatalf("the cluster has nodes %v, want only the 3 this test made", got)
	}
	schedKubectl(t, c, "create", "namespace", "sched")

	t.Run("taints keep plain pods off the control plane", func(t *testing.T) {
		schedPod(t, c, "plain", "100m", "app: plain", "")
		if n := schedNodeOf(t, c, "plain"); n == "sched-cp" {
			t.Errorf("got node %s, want sched-a or sched-b", n)
		}
		schedPod(t, c, "tolerant", "100m", "app: tolerant", `  nodeSelector: {kubernetes.io/hostname: sched-cp}
  tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
`)
		if n := schedNodeOf(t, c, "tolerant"); n != "sched-cp" {
			t.Errorf("got node %s, want sched-cp", n)
		}
	})

	t.Run("required node affinity", func(t *testing.T) {
		schedPod(t, c, "ssd", "100m", "app: ssd", `  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: disk, operator: In, values: [ssd]}]
`)
		if n := schedNodeOf(t, c, "ssd"); n != "sched-a" {
			t.Errorf("got node %s, want sched-a", n)
		}
	})

	t.Run("topology spreading across zones", func(t *testing.T) {
		spread := `  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}}
`
		zone := map[string]string{"sched-cp": "z1", "sched-a": "z1", "sched-b": "z2"}
		schedPod(t, c, "spread-1", "100m", "app: spread", spread)
		first := schedNodeOf(t, c, "spread-1")
		schedPod(t, c, "spread-2", "100m", "app: spread", spread)
		second := schedNodeOf(t, c, "spread-2")
		if zone[first] == zone[second] {
			t.Errorf("got spread-1 on %s and spread-2 on %s, both in zone %s; want different zones", first, second, zone[first])
		}
	})

	t.Run("insufficient cpu reads as upstream", func(t *testing.T) {
		schedPod(t, c, "huge", "3", "app: huge", "")
		want := "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. " +
			"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
		deadline := time.Now().Add(60 * time.Second)
		var desc string
		for time.Now().Before(deadline) {
			desc, _, _ = c.Kubectl("describe", "pod", "-n", "sched", "huge")
			if strings.Contains(desc, "FailedScheduling") && strings.Contains(desc, want) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !strings.Contains(desc, want) {
			t.Fatalf("kubectl describe pod huge does not show the FailedScheduling message\nwant: %s\ngot:\n%s", want, desc)
		}
		if !strings.Contains(desc, "default-scheduler") {
			t.Errorf("the event does not come from default-scheduler:\n%s", desc)
		}
		cond := schedKubectl(t, c, "get", "pod", "-n", "sched", "huge", "-o",
			`jsonpath={.status.conditions[?(@.type=="PodScheduled")].status}/{.status.conditions[?(@.type=="PodScheduled")].reason}/{.status.conditions[?(@.type=="PodScheduled")].message}`)
		if wantCond := "False/Unschedulable/" + want; cond != wantCond {
			t.Errorf("PodScheduled condition: got %q, want %q", cond, wantCond)
		}
		wide := schedKubectl(t, c, "get", "pod", "-n", "sched", "huge", "-o", "wide")
		if rows := table(wide); len(rows) != 2 || !strings.Contains(strings.Join(rows[1], " "), "Pending") {
			t.Errorf("got\n%s\nwant huge Pending with no node", wide)
		}
	})

	t.Run("scheduled events", func(t *testing.T) {
		desc := schedKubectl(t, c, "describe", "pod", "-n", "sched", "ssd")
		if !strings.Contains(desc, "Successfully assigned sched/ssd to sched-a") {
			t.Errorf("no Scheduled event in\n%s", desc)
		}
	})
}
