//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// TestNodeAgentSimulated joins a `skiff agent --runtime simulated` and three
// `skiff sim nodes` to the shared cluster and drives pods bound to them
// directly (spec.nodeName, no scheduler) through their lifecycle.
func TestNodeAgentSimulated(t *testing.T) {
	c := suite.Cluster(t)
	c.StartAgent(t, "e2e-agent", "--node-labels", "e2e=agent", "--register-with-taints", "e2e=x:PreferNoSchedule")
	c.StartSimNodes(t, "e2e-sim-", 3, "--node-labels", "e2e=sim")
	namespace(t, c, "node-e2e")

	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("get", "nodes", "-l", "e2e", "--no-headers")
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] == "Ready" {
				ready++
			}
		}
		return ready == 4, out
	})
	if out := run(t, c, "get", "node", "e2e-agent", "-o", "jsonpath={.spec.taints[0].key}={.spec.taints[0].effect} {.metadata.labels.kubernetes\\.io/hostname}"); out != "e2e=PreferNoSchedule e2e-agent" {
		t.Errorf("agent node taint and hostname label: got %q, want %q", out, "e2e=PreferNoSchedule e2e-agent")
	}
	if out := run(t, c, "get", "lease", "-n", "kube-node-lease", "e2e-sim-1", "-o", "jsonpath={.spec.holderIdentity}"); out != "e2e-sim-1" {
		t.Errorf("lease holder: got %q, want e2e-sim-1", out)
	}

	runIn(t, c, `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: node-e2e}
spec:
  nodeName: e2e-sim-0
  containers: [{name: nginx, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-agent, namespace: node-e2e}
spec:
  nodeName: e2e-agent
  containers: [{name: nginx, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: fails, namespace: node-e2e}
spec:
  nodeName: e2e-sim-1
  restartPolicy: Never
  containers: [{name: c, image: busybox, env: [{name: SKIFF_SIM_EXIT_CODE, value: "3"}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: completes, namespace: node-e2e}
spec:
  nodeName: e2e-sim-2
  restartPolicy: OnFailure
  initContainers: [{name: init, image: busybox, env: [{name: SKIFF_SIM_RUN_SECONDS, value: "0.5"}]}]
  containers: [{name: c, image: busybox, env: [{name: SKIFF_SIM_RUN_SECONDS, value: "1"}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: crashes, namespace: node-e2e}
spec:
  nodeName: e2e-sim-2
  containers: [{name: c, image: busybox, env: [{name: SKIFF_SIM_EXIT_CODE, value: "1"}]}]
`, "apply", "-f", "-")

	// podColumns returns READY, STATUS and RESTARTS of a pod as kubectl
	// prints them, and its IP.
	podColumns := func(name string) (ready, status, restarts, ip string, raw string) {
		out, _, err := c.Kubectl("get", "pod", "-n", "node-e2e", name, "-o", "wide", "--no-headers")
		if err != nil {
			return "", "", "", "", err.Error()
		}
		f := strings.Fields(out)
		if len(f) < 6 {
			return "", "", "", "", out
		}
		// RESTARTS may read "2 (5s ago)".
		i := 3
		if strings.HasPrefix(f[4], "(") {
			i = 5
		}
		return f[1], f[2], f[3], f[i+2], out
	}
	for _, name := range []string{"web", "on-agent"} {
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			ready, status, _, ip, raw := podColumns(name)
			return ready == "1/1" && status == "Running" && ip != "<none>" && ip != "", raw
		})
	}
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		_, status, _, _, raw := podColumns("fails")
		return status == "Error", raw
	})
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		_, status, _, _, raw := podColumns("completes")
		return status == "Completed", raw
	})
	if out := run(t, c, "get", "pod", "-n", "node-e2e", "fails", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.terminated.exitCode}"); out != "Failed 3" {
		t.Errorf("failed pod: got %q, want %q", out, "Failed 3")
	}
	// Always: the container is restarted (the first time at once, the
	// second after a 10 s back-off) and waits in CrashLoopBackOff between.
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		_, status, restarts, _, raw := podColumns("crashes")
		n, _ := strconv.Atoi(restarts)
		return status == "CrashLoopBackOff" && n >= 1, raw
	})
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		_, _, restarts, _, raw := podColumns("crashes")
		n, _ := strconv.Atoi(restarts)
		return n >= 2, raw
	})

	// Graceful deletion completes: the node stops the pod and removes it.
	run(t, c, "delete", "pod", "-n", "node-e2e", "web", "on-agent", "crashes", "--timeout=60s")
	if out := run(t, c, "get", "pods", "-n", "node-e2e", "-o", "name"); strings.Contains(out, "web") || strings.Contains(out, "crashes") {
		t.Errorf("pods left after delete: %s", out)
	}
}

// TestNodeAgentWrongToken checks that a node with a wrong token is refused
// with a clear message and does not register.
func TestNodeAgentWrongToken(t *testing.T) {
	c := suite.Cluster(t)
	token, _, err := c.JoinToken()
	if err != nil {
		t.Fatal(err)
	}
	// The right cluster (the CA hash checks out), the wrong secret.
	hash, _, ok := strings.Cut(token, "::")
	if !ok {
		t.Fatalf("join token %q has no CA hash", token)
	}
	args := []string{"agent", "--runtime", "simulated", "--node-name", "e2e-bad", "--server", c.Endpoint(), "--token", hash + "::not-the-secret"}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, suite.Binary(t), args...).CombinedOutput()
	if err == nil {
		t.Fatalf("agent with a wrong token exited 0; output:\n%s", out)
	}
	if !strings.Contains(string(out), "the server refused the join token") {
		t.Errorf("output: got %q, want it to say the server refused the join token", out)
	}
	if _, _, err := c.Kubectl("get", "node", "e2e-bad"); err == nil {
		t.Error("node e2e-bad registered with a wrong token")
	}
}
