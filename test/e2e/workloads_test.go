//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// kubectlOK runs kubectl and fails the test on error.
func kubectlOK(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := c.Kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func applyYAML(t *testing.T, c *framework.Cluster, yaml string) {
	t.Helper()
	if out, errOut, err := c.KubectlStdin(yaml, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}
}

func jsonpath(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	out, _, _ := c.Kubectl(args...)
	return strings.TrimSpace(out)
}

const webStatefulSet = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: %s
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

// TestStatefulSetOrdering: pods come up 0,1,2 each after the previous is
// Ready, go away 2,1, keep their claims, and roll out with kubectl.
func TestStatefulSetOrdering(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 2, "sts")
	applyYAML(t, c, fmt.Sprintf(webStatefulSet, "nginx:1.7"))
	// Creation order: record each pod's creationTimestamp and Ready time.
	framework.WaitFor(t, 90*time.Second, func() (bool, string) {
		out := jsonpath(t, c, "get", "statefulset", "web", "-o", "jsonpath={.status.readyReplicas}")
		return out == "3", "readyReplicas=" + out
	})
	out := kubectlOK(t, c, "get", "pods", "-l", "app=web", "--sort-by=.metadata.creationTimestamp", "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.metadata.creationTimestamp} {.status.conditions[?(@.type=="Ready")].lastTransitionTime}{"\n"}{end}`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got pods:\n%s\nwant web-0..2", out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if f[0] != fmt.Sprintf("web-%d", i) {
			t.Errorf("creation order: got %s at position %d, want web-%d", f[0], i, i)
		}
		if i > 0 {
			prevReady := strings.Fields(lines[i-1])[2]
			if f[1] < prevReady {
				t.Errorf("%s created at %s before web-%d was Ready at %s", f[0], f[1], i-1, prevReady)
			}
		}
	}
	if got := jsonpath(t, c, "get", "pod", "web-1", "-o", "jsonpath={.spec.hostname}/{.spec.subdomain}/{.metadata.labels.apps\\.kubernetes\\.io/pod-index}"); got != "web-1/nginx/1" {
		t.Errorf("web-1 hostname/subdomain/pod-index: got %q, want web-1/nginx/1", got)
	}
	kubectlOK(t, c, "rollout", "status", "statefulset/web", "--timeout=60s")

	// Rolling update, then history and undo.
	applyYAML(t, c, fmt.Sprintf(webStatefulSet, "nginx:1.8"))
	kubectlOK(t, c, "rollout", "status", "statefulset/web", "--timeout=90s")
	if got := jsonpath(t, c, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}"); got != "nginx:1.8 nginx:1.8 nginx:1.8" {
		t.Errorf("after rolling update: images %q, want nginx:1.8 everywhere", got)
	}
	hist := kubectlOK(t, c, "rollout", "history", "statefulset/web")
	if !strings.Contains(hist, "1 ") || !strings.Contains(hist, "2 ") {
		t.Errorf("rollout history:\n%s\nwant revisions 1 and 2", hist)
	}
	kubectlOK(t, c, "rollout", "undo", "statefulset/web", "--to-revision=1")
	kubectlOK(t, c, "rollout", "status", "statefulset/web", "--timeout=90s")
	if got := jsonpath(t, c, "get", "statefulset", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != "nginx:1.7" {
		t.Errorf("after undo: image %q, want nginx:1.7", got)
	}

	// Scale down: web-2 goes before web-1; claims stay.
	kubectlOK(t, c, "scale", "statefulset/web", "--replicas=1")
	sawOneWithoutTwo := false
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		names := jsonpath(t, c, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")
		has := func(n string) bool { return strings.Contains(" "+names+" ", " "+n+" ") }
		if has("web-2") && !has("web-1") {
			t.Fatalf("web-1 removed before web-2: pods %q", names)
		}
		if has("web-1") && !has("web-2") {
			sawOneWithoutTwo = true
		}
		return names == "web-0", names
	})
	_ = sawOneWithoutTwo
	if got := jsonpath(t, c, "get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"); got != "www-web-0 www-web-1 www-web-2" {
		t.Errorf("claims after scale-down: got %q, want all three kept", got)
	}
}

// TestDaemonSetFollowsNodes: one pod per matching node, added when a node
// joins or starts matching, removed when it stops matching.
func TestDaemonSetFollowsNodes(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 2, "dsa")
	applyYAML(t, c, `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox
`)
	waitDS := func(want int) {
		t.Helper()
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			got := jsonpath(t, c, "get", "ds", "agent", "-o", "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}")
			return got == fmt.Sprintf("%d/%d", want, want), "desired/ready=" + got
		})
	}
	waitDS(2)
	kubectlOK(t, c, "rollout", "status", "ds/agent", "--timeout=60s")
	startSimNodes(t, c, 1, "dsb")
	waitDS(3)
	// Restrict to labelled nodes: only the labelled one keeps its pod.
	nodes := strings.Fields(jsonpath(t, c, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"))
	kubectlOK(t, c, "label", "node", nodes[0], "agent=yes")
	kubectlOK(t, c, "patch", "ds", "agent", "-p", `{"spec":{"template":{"spec":{"nodeSelector":{"agent":"yes"}}}}}`)
	waitDS(1)
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "get", "pods", "-l", "app=agent", "-o", "jsonpath={.items[*].spec.nodeName}")
		return got == nodes[0], "pods on " + got
	})
	kubectlOK(t, c, "label", "node", nodes[1], "agent=yes")
	waitDS(2)
}

// TestJobCompletionsParallelismBackoff: a job of 4 completions, 2 at a
// time, completes; a job whose pods exit 1 fails after backoffLimit.
func TestJobCompletionsParallelismBackoff(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 2, "job")
	applyYAML(t, c, `apiVersion: batch/v1
kind: Job
metadata:
  name: work
spec:
  completions: 4
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        env:
        - {name: SKIFF_SIM_RUN_SECONDS, value: "1"}
`)
	maxActive := 0
	framework.WaitFor(t, 90*time.Second, func() (bool, string) {
		st := jsonpath(t, c, "get", "job", "work", "-o", "jsonpath={.status.active}/{.status.succeeded}/{.status.conditions[?(@.type==\"Complete\")].status}")
		var a int
		fmt.Sscanf(st, "%d/", &a)
		maxActive = max(maxActive, a)
		return strings.HasSuffix(st, "/4/True"), "active/succeeded/complete=" + st
	})
	if maxActive > 2 {
		t.Errorf("saw %d active pods, want at most parallelism 2", maxActive)
	}
	kubectlOK(t, c, "wait", "--for=condition=complete", "job/work", "--timeout=5s")

	applyYAML(t, c, `apiVersion: batch/v1
kind: Job
metadata:
  name: fail
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        env:
        - {name: SKIFF_SIM_EXIT_CODE, value: "1"}
`)
	// Two failures (the second after a 10 s backoff) exceed backoffLimit 1.
	framework.WaitFor(t, 90*time.Second, func() (bool, string) {
		st := jsonpath(t, c, "get", "job", "fail", "-o", "jsonpath={.status.failed}/{.status.conditions[?(@.type==\"Failed\")].reason}")
		return st == "2/BackoffLimitExceeded", "failed/reason=" + st
	})
}

// TestCronJobFires: a every-minute CronJob starts a job named
// <cronjob>-<minutes since epoch> within about a minute, and records it.
func TestCronJobFires(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 1, "cron")
	applyYAML(t, c, `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: main
            image: busybox
            env:
            - {name: SKIFF_SIM_RUN_SECONDS, value: "1"}
`)
	framework.WaitFor(t, 80*time.Second, func() (bool, string) {
		st := jsonpath(t, c, "get", "cronjob", "tick", "-o", "jsonpath={.status.lastScheduleTime}")
		return st != "", "lastScheduleTime=" + st
	})
	jobs := jsonpath(t, c, "get", "jobs", "-o", "jsonpath={.items[*].metadata.name}")
	if !strings.HasPrefix(jobs, "tick-") {
		t.Fatalf("got jobs %q, want tick-<minutes>", jobs)
	}
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		st := jsonpath(t, c, "get", "cronjob", "tick", "-o", "jsonpath={.status.lastSuccessfulTime}")
		return st != "", "lastSuccessfulTime=" + st
	})
}
