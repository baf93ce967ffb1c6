//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// The pod lifecycle flows of the issue on real containers: init
// containers and sidecars, crash loops and liveness restarts, configMaps
// and secrets (with updates), OOM kills, and pods that outlive a restart
// of skiff.

// statusColumn keeps, in order, the distinct STATUS cells `kubectl get
// pod` showed for one pod, polled from a goroutine until stop is called.
type statusColumn struct {
	mu   sync.Mutex
	seen []string
	stop func()
}

// watchStatusColumn starts polling the STATUS column of pod ns/name; the
// poller ends when the test does or stop is called.
func watchStatusColumn(t *testing.T, c *framework.Cluster, ns, name string) *statusColumn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	s := &statusColumn{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			out, _, err := c.Kubectl("-n", ns, "get", "pod", name, "--no-headers")
			if f := strings.Fields(out); err == nil && len(f) >= 3 {
				s.mu.Lock()
				if len(s.seen) == 0 || s.seen[len(s.seen)-1] != f[2] {
					s.seen = append(s.seen, f[2])
				}
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(s.stop)
	return s
}

func (s *statusColumn) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// statusCell is the STATUS column of `kubectl get pod`.
func statusCell(t *testing.T, c *framework.Cluster, ns, name string) string {
	t.Helper()
	out, _, err := c.Kubectl("-n", ns, "get", "pod", name, "--no-headers")
	if f := strings.Fields(out); err == nil && len(f) >= 3 {
		return f[2]
	}
	return ""
}

// waitEvents waits until `kubectl describe` of the object shows every one
// of wants (its Events section lists reason and message).
func waitEvents(t *testing.T, c *framework.Cluster, ns, kind, name string, timeout time.Duration, wants ...string) {
	t.Helper()
	framework.WaitFor(t, timeout, func() (bool, string) {
		out := describe(c, ns, kind, name)
		for _, want := range wants {
			if !strings.Contains(out, want) {
				return false, fmt.Sprintf("no %q in the events;\n%s", want, out)
			}
		}
		return true, ""
	})
}

const initPods = `apiVersion: v1
kind: Pod
metadata: {name: ordered}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: %[1]s
    command: [sh, -c, "echo first >> /work/order; sleep 3"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: %[1]s
    command: [sh, -c, "echo second >> /work/order; sleep 3"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "echo main >> /work/order; cat /work/order; sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - {name: work, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: initfails}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: setup
    image: %[1]s
    command: [sh, -c, "exit 2"]
  containers:
  - name: main
    image: %[1]s
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: sidecar}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: side
    image: %[1]s
    restartPolicy: Always
    command: [sh, -c, "echo side > /work/side; sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "cat /work/side; sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - {name: work, emptyDir: {}}
`

// TestRealInitContainers: init containers run one after the other before
// the containers (kubectl shows Init:N/M meanwhile); a failing one fails a
// Never pod (Init:Error) without starting its containers; a sidecar init
// container keeps running beside the containers.
func TestRealInitContainers(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-init")
	col := watchStatusColumn(t, c, ns, "ordered")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(initPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}

	t.Run("in order", func(t *testing.T) {
		p := waitPod(t, c, ns, "ordered", podStartTimeout, phaseIs(corev1.PodRunning))
		// The column is polled with kubectl: give the poll that sees
		// Running time to come back before stopping it.
		framework.WaitFor(t, 10*time.Second, func() (bool, string) {
			seen := col.get()
			return len(seen) > 0 && seen[len(seen)-1] == "Running", fmt.Sprintf("STATUS column so far: %q", seen)
		})
		col.stop()
		seen := col.get()
		i, j := slices.Index(seen, "Init:0/2"), slices.Index(seen, "Init:1/2")
		if i < 0 || j < i || seen[len(seen)-1] != "Running" {
			t.Errorf("STATUS column over time: got %q, want Init:0/2, then Init:1/2, then Running", seen)
		}
		for _, cs := range p.Status.InitContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || cs.State.Terminated.ExitCode != 0 {
				t.Errorf("init container %s: got state %+v, want terminated Completed exit 0", cs.Name, cs.State)
			}
		}
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			out, _, err := c.Kubectl("-n", ns, "logs", "ordered")
			return err == nil && out == "first\nsecond\nmain\n", fmt.Sprintf("kubectl logs ordered: got %q (%v), want %q", out, err, "first\nsecond\nmain\n")
		})
		// The first init container's run ended before the second's began.
		first, second := p.Status.InitContainerStatuses[0].State.Terminated, p.Status.InitContainerStatuses[1].State.Terminated
		if first != nil && second != nil && second.StartedAt.Before(&first.FinishedAt) {
			t.Errorf("init container second started at %v, before first finished at %v", second.StartedAt, first.FinishedAt)
		}
	})

	t.Run("failing init container", func(t *testing.T) {
		p := waitPod(t, c, ns, "initfails", podStartTimeout, phaseIs(corev1.PodFailed))
		if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Terminated == nil ||
			p.Status.InitContainerStatuses[0].State.Terminated.ExitCode != 2 || p.Status.InitContainerStatuses[0].State.Terminated.Reason != "Error" {
			t.Errorf("init container status: got %+v, want terminated Error exit 2", p.Status.InitContainerStatuses)
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].ContainerID != "" ||
			p.Status.ContainerStatuses[0].State.Waiting == nil || p.Status.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
			t.Errorf("container status: got %s, want main never started, waiting PodInitializing", statusText(p))
		}
		if got := statusCell(t, c, ns, "initfails"); got != "Init:Error" {
			t.Errorf("kubectl get pod initfails: got STATUS %q, want Init:Error", got)
		}
	})

	t.Run("sidecar", func(t *testing.T) {
		p := waitPod(t, c, ns, "sidecar", podStartTimeout, func(p *corev1.Pod) string {
			if p.Status.Phase != corev1.PodRunning || len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Running == nil {
				return fmt.Sprintf("phase %s, init statuses %+v; want Running with the sidecar running", p.Status.Phase, p.Status.InitContainerStatuses)
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionTrue {
					return "pod not Ready: " + cond.Message
				}
			}
			return ""
		})
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready {
			t.Errorf("container: got %s, want main running and ready", statusText(p))
		}
		rows := table(kubectlOK(t, c, "-n", ns, "get", "pod", "sidecar"))
		if len(rows) != 2 || len(rows[1]) < 3 || rows[1][1] != "2/2" || rows[1][2] != "Running" {
			t.Errorf("kubectl get pod sidecar: got %q, want READY 2/2 STATUS Running", rows)
		}
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			out, _, err := c.Kubectl("-n", ns, "logs", "sidecar", "-c", "main")
			return err == nil && out == "side\n", fmt.Sprintf("kubectl logs sidecar -c main: got %q (%v), want the sidecar's file", out, err)
		})
	})
}

const crashPods = `apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "echo dying; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    command: [sleep, "3600"]
    livenessProbe:
      exec: {command: [cat, /tmp/nope]}
      periodSeconds: 1
      failureThreshold: 2
`

// TestRealCrashLoop: a container that keeps exiting 1 under restartPolicy
// Always goes into CrashLoopBackOff with a growing restart count and
// upstream's BackOff event; a failing liveness probe restarts a container
// with upstream's Unhealthy and Killing events.
func TestRealCrashLoop(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-crashloop")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(crashPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}

	t.Run("CrashLoopBackOff", func(t *testing.T) {
		// Restarts at 0 s and 10 s: the second back-off is 20 s long.
		var first int32
		p := waitPod(t, c, ns, "crasher", 90*time.Second, func(p *corev1.Pod) string {
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].RestartCount < 2 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CrashLoopBackOff" {
				return "want restartCount >= 2 and waiting CrashLoopBackOff; got " + statusText(p)
			}
			first = cs[0].RestartCount
			return ""
		})
		cs := p.Status.ContainerStatuses[0]
		if !strings.Contains(cs.State.Waiting.Message, "back-off") || !strings.Contains(cs.State.Waiting.Message, "restarting failed container=main pod=crasher_"+ns) {
			t.Errorf("waiting message: got %q, want upstream's \"back-off 20s restarting failed container=main pod=crasher_%s(<uid>)\"", cs.State.Waiting.Message, ns)
		}
		if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
			t.Errorf("lastState: got %+v, want terminated Error exit 1", cs.LastTerminationState)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("phase: got %s, want Running (the container restarts)", p.Status.Phase)
		}
		rows := table(kubectlOK(t, c, "-n", ns, "get", "pod", "crasher"))
		if len(rows) != 2 || len(rows[1]) < 4 || rows[1][2] != "CrashLoopBackOff" {
			t.Errorf("kubectl get pod crasher: got %q, want STATUS CrashLoopBackOff", rows)
		}
		waitEvents(t, c, ns, "pod", "crasher", 30*time.Second,
			"BackOff", "Back-off restarting failed container main in pod crasher_"+ns)
		// The count keeps growing.
		waitPod(t, c, ns, "crasher", 60*time.Second, func(p *corev1.Pod) string {
			if n := p.Status.ContainerStatuses[0].RestartCount; n <= first {
				return fmt.Sprintf("restartCount %d, want more than %d", n, first)
			}
			return ""
		})
	})

	t.Run("liveness", func(t *testing.T) {
		waitPod(t, c, ns, "unhealthy", 60*time.Second, func(p *corev1.Pod) string {
			if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount < 1 {
				return "want restartCount >= 1; got " + statusText(p)
			}
			return ""
		})
		waitEvents(t, c, ns, "pod", "unhealthy", 30*time.Second,
			"Unhealthy", "Liveness probe failed: cat: can't open '/tmp/nope': No such file or directory",
			"Killing", "Container app failed liveness probe, will be restarted")
	})
}

const configPods = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {color: blue, size: large}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {user: admin, token: t0ps3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: consumer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sleep, "3600"]
    envFrom:
    - configMapRef: {name: cfg}
      prefix: CFG_
    - secretRef: {name: creds}
    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: cfg, key: color}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: cfg, mountPath: /etc/pinned/color, subPath: color}
    - {name: creds, mountPath: /etc/creds, readOnly: true}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
`

// TestRealConfigMapAndSecret: configMap and secret keys reach a container
// as variables (envFrom, valueFrom) and files; an update to the ConfigMap
// reaches its mounted file without a restart, but not a subPath mount of
// it, as upstream.
func TestRealConfigMapAndSecret(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-config")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(configPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "consumer", podStartTimeout, phaseIs(corev1.PodRunning))
	exec := func(args ...string) string {
		t.Helper()
		out, stderr, err := c.Kubectl(append([]string{"-n", ns, "exec", "consumer", "--"}, args...)...)
		if err != nil {
			t.Fatalf("kubectl exec %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
		return out
	}

	env := map[string]string{}
	for _, line := range strings.Split(exec("env"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	for k, want := range map[string]string{"CFG_color": "blue", "CFG_size": "large", "user": "admin", "token": "t0ps3cret", "COLOR": "blue", "TOKEN": "t0ps3cret"} {
		if env[k] != want {
			t.Errorf("env %s: got %q, want %q", k, env[k], want)
		}
	}
	files := exec("sh", "-c", "cat /etc/cfg/color /etc/cfg/size /etc/pinned/color /etc/creds/user /etc/creds/token; echo; stat -L -c %a /etc/creds/token")
	if want := "bluelargeblueadmint0ps3cret\n400\n"; files != want {
		t.Errorf("mounted files: got %q, want %q", files, want)
	}

	applyYAML(t, c, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: %s}\ndata: {color: green, size: large}\n", ns))
	// The kubelet refreshes the files within its sync period (upstream's
	// minute; the framework's nodes use --sync-frequency 5s).
	framework.WaitFor(t, 90*time.Second, func() (bool, string) {
		got := exec("cat", "/etc/cfg/color")
		return got == "green", fmt.Sprintf("/etc/cfg/color: got %q, want green after the update", got)
	})
	if got := exec("cat", "/etc/pinned/color"); got != "blue" {
		t.Errorf("subPath mount /etc/pinned/color: got %q, want blue (subPath mounts do not follow updates)", got)
	}
	p, err := getPod(c, ns, "consumer")
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].State.Running == nil {
		t.Errorf("container after the update: got %s restarts %v, want the same run (restartCount 0)", statusText(p), cs)
	}
	if got := exec("sh", "-c", "echo $COLOR"); got != "blue\n" {
		t.Errorf("$COLOR after the update: got %q, want blue (variables are fixed at start)", got)
	}
}

// TestRealOOMKilled: a container that allocates past its memory limit is
// killed by the kernel and reported as upstream does: terminated, reason
// OOMKilled, exit code 137.
func TestRealOOMKilled(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-oom")
	applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: %s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    # tail keeps the endless "line" of /dev/zero in memory.
    command: [tail, /dev/zero]
    resources: {limits: {memory: 32Mi}}
`, ns, c.Image(framework.ImageBusybox)))
	p := waitPod(t, c, ns, "hog", podStartTimeout, phaseIs(corev1.PodFailed))
	cs := p.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Terminated == nil {
		t.Fatalf("container: got %s, want terminated", statusText(p))
	}
	if term := cs[0].State.Terminated; term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated: got reason %q exit code %d, want OOMKilled 137", term.Reason, term.ExitCode)
	}
	if got := statusCell(t, c, ns, "hog"); got != "OOMKilled" {
		t.Errorf("kubectl get pod hog: got STATUS %q, want OOMKilled", got)
	}
}

// startDedicatedRealCluster starts a real-node cluster of this test's own,
// waits for its node and pushes busybox to its registry.
func startDedicatedRealCluster(t *testing.T) *framework.Cluster {
	t.Helper()
	suite.RealCluster(t) // skips when the machine cannot run a real node
	c := suite.NewCluster(t, framework.Options{RealNode: true})
	waitNodeReady(t, c, 90*time.Second)
	imagetest.Push(t, c.Image(framework.ImageBusybox), imagetest.Busybox(t))
	return c
}

// waitNodeReady waits until the cluster's real node is Ready.
func waitNodeReady(t *testing.T, c *framework.Cluster, timeout time.Duration) {
	t.Helper()
	framework.WaitFor(t, timeout, func() (bool, string) {
		out, _, err := c.Kubectl("get", "node", c.NodeName(), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True", fmt.Sprintf("node %s Ready: %q (%v)", c.NodeName(), out, err)
	})
}

// mainPID is the PID of the first process in a container's cgroup
// running want, or 0.
func mainPID(c *framework.Cluster, containerID, want string) int {
	id := strings.TrimPrefix(containerID, "runc://")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(cg), "/"+c.CgroupRoot()+"/") || !strings.Contains(string(cg), "/"+id+"\n") {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), want) {
			return pid
		}
	}
	return 0
}

// TestRealPodSurvivesRestart: on a cluster of its own (the shared one
// stays up), a running pod keeps its container, its process and its
// restart count across a restart of skiff, stays Ready, and its logs stay
// readable.
func TestRealPodSurvivesRestart(t *testing.T) {
	c := startDedicatedRealCluster(t)
	ns := realNamespace(t, c, "real-survivor")
	applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: survivor, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sh, -c, "echo started; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
`, ns, c.Image(framework.ImageBusybox)))
	ready := func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
			return "want Running and ready; got " + statusText(p)
		}
		return ""
	}
	before := waitPod(t, c, ns, "survivor", podStartTimeout, ready).Status.ContainerStatuses[0]
	// A static pod is adopted too: the same manifest is the same pod.
	static := filepath.Join(c.StaticPodDir(), "survivor.yaml")
	if err := os.MkdirAll(c.StaticPodDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(static, []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: static-survivor, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: %s, command: [sleep, "3600"]}]
`, ns, c.Image(framework.ImageBusybox))), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(static) })
	staticName := "static-survivor-" + c.NodeName()
	staticBefore := waitPod(t, c, ns, staticName, podStartTimeout, ready).Status.ContainerStatuses[0]
	var pid int
	framework.WaitFor(t, 10*time.Second, func() (bool, string) {
		pid = mainPID(c, before.ContainerID, "sleep 3600")
		return pid != 0, fmt.Sprintf("no \"sleep 3600\" in the cgroup of %s: %q", before.ContainerID, containerProcesses(c, before.ContainerID))
	})

	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("restart skiff: %v", err)
	}
	waitNodeReady(t, c, 90*time.Second)
	if got := mainPID(c, before.ContainerID, "sleep 3600"); got != pid {
		t.Errorf("after the restart: the container's sleep is PID %d, want the same process %d; processes %q",
			got, pid, containerProcesses(c, before.ContainerID))
	}
	// The kubelet has had a look once the node is Ready; give it a moment
	// to report, then the status must be what it was.
	after := waitPod(t, c, ns, "survivor", 30*time.Second, ready).Status.ContainerStatuses[0]
	if after.ContainerID != before.ContainerID || after.RestartCount != before.RestartCount {
		t.Errorf("after the restart: got container %s restartCount %d, want %s %d", after.ContainerID, after.RestartCount, before.ContainerID, before.RestartCount)
	}
	if !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Errorf("after the restart: startedAt %v, want %v", after.State.Running.StartedAt, before.State.Running.StartedAt)
	}
	// For some seconds more the adopted pod is not restarted either (the
	// kubelet's first syncs after adopting it are where that would go
	// wrong).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		p, err := getPod(c, ns, "survivor")
		if err != nil {
			t.Fatal(err)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].ContainerID != before.ContainerID || cs[0].RestartCount != before.RestartCount || !cs[0].Ready ||
			mainPID(c, before.ContainerID, "sleep 3600") != pid {
			t.Fatalf("after the restart: got %s (%v), want container %s ready with restartCount %d and PID %d",
				statusText(p), cs, before.ContainerID, before.RestartCount, pid)
		}
	}
	if out, stderr, err := c.Kubectl("-n", ns, "logs", "survivor"); err != nil || out != "started\n" {
		t.Errorf("kubectl logs survivor after the restart: got %q (%v: %s), want \"started\\n\"", out, err, stderr)
	}
	if after := waitPod(t, c, ns, staticName, 30*time.Second, ready).Status.ContainerStatuses[0]; after.ContainerID != staticBefore.ContainerID || after.RestartCount != 0 {
		t.Errorf("static pod after the restart: container %s restartCount %d, want %s untouched", after.ContainerID, after.RestartCount, staticBefore.ContainerID)
	}
}
