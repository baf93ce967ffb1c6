//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// logPods are the pods of TestRealLogs: fixed prints five lines and, a
// second later, one on stderr, then sleeps; ticker prints a line a second;
// twice fails its first run and keeps running the second (an emptyDir
// remembers the first); crasher fails every run; two has two containers;
// noimage never starts.
const logPods = `apiVersion: v1
kind: Pod
metadata:
  name: fixed
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "for i in 1 2 3 4 5; do echo line $i; done; sleep 1; echo oops >&2; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: twice
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  volumes:
  - name: state
    emptyDir: {}
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "if [ -f /state/ran ]; then echo second run; sleep 3600; fi; touch /state/ran; echo first run; exit 1"]
    volumeMounts:
    - name: state
      mountPath: /state
---
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "echo run; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: %[1]s
    command: [sh, -c, "echo from a; sleep 3600"]
  - name: b
    image: %[1]s
    command: [sh, -c, "echo from b; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: noimage
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[2]s
`

// TestRealLogs: kubectl logs reads a real container's output through the
// API server from the node's kubelet, with --tail, --timestamps,
// --limit-bytes, -f, --previous and -c, and fails as upstream does for
// containers that have no such log.
func TestRealLogs(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-logs")
	manifest := fmt.Sprintf(logPods, c.Image(framework.ImageBusybox), c.Registry()+"/nope:1")
	if out, stderr, err := c.KubectlStdin(manifest, "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	for _, name := range []string{"fixed", "ticker", "two"} {
		waitPod(t, c, ns, name, podStartTimeout, phaseIs(corev1.PodRunning))
	}

	const all = "line 1\nline 2\nline 3\nline 4\nline 5\noops\n"
	t.Run("whole log", func(t *testing.T) {
		var out string
		framework.WaitFor(t, 20*time.Second, func() (bool, string) {
			out, _, _ = c.Kubectl("-n", ns, "logs", "fixed")
			return out == all, fmt.Sprintf("kubectl logs fixed: got %q, want %q", out, all)
		})
	})
	t.Run("tail", func(t *testing.T) {
		if out := kubectlOK(t, c, "-n", ns, "logs", "fixed", "--tail=2"); out != "line 5\noops\n" {
			t.Errorf("kubectl logs --tail=2: got %q, want %q", out, "line 5\noops\n")
		}
	})
	t.Run("limit bytes", func(t *testing.T) {
		if out := kubectlOK(t, c, "-n", ns, "logs", "fixed", "--limit-bytes=8"); out != "line 1\nl" {
			t.Errorf("kubectl logs --limit-bytes=8: got %q, want %q", out, "line 1\nl")
		}
	})
	t.Run("timestamps", func(t *testing.T) {
		out := kubectlOK(t, c, "-n", ns, "logs", "fixed", "--timestamps")
		re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (.*)$`)
		var texts []string
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("kubectl logs --timestamps: line %q has no RFC 3339 timestamp with nanoseconds; output:\n%s", l, out)
			}
			texts = append(texts, m[1])
		}
		if got := strings.Join(texts, "\n") + "\n"; got != all {
			t.Errorf("kubectl logs --timestamps without the timestamps: got %q, want %q", got, all)
		}
	})
	t.Run("container", func(t *testing.T) {
		if out := kubectlOK(t, c, "-n", ns, "logs", "two", "-c", "b"); out != "from b\n" {
			t.Errorf("kubectl logs two -c b: got %q, want %q", out, "from b\n")
		}
		// Through the API without a container: upstream's 400.
		// (kubectl logs itself defaults to the first container.)
		_, stderr, err := c.Kubectl("get", "--raw", "/api/v1/namespaces/"+ns+"/pods/two/log")
		want := "Error from server (BadRequest): a container name must be specified for pod two, choose one of: [a b]"
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("pods/log of two without a container: got %v %q, want %q", err, stderr, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"logs", "nope"}, `pods "nope" not found`},
			{[]string{"logs", "fixed", "-c", "nope"}, "container nope is not valid for pod fixed"},
			{[]string{"logs", "fixed", "--previous"}, `previous terminated container "main" in pod "fixed" not found`},
		} {
			_, stderr, err := c.Kubectl(append([]string{"-n", ns}, tc.args...)...)
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("kubectl %s: got %v, stderr %q, want a failure saying %q", strings.Join(tc.args, " "), err, stderr, tc.want)
			}
		}
		// A container that never started.
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			_, stderr, err := c.Kubectl("-n", ns, "logs", "noimage")
			want := `container "main" in pod "noimage" is waiting to start`
			return err != nil && strings.Contains(stderr, want), fmt.Sprintf("kubectl logs noimage: got %v, stderr %q, want a failure saying %q", err, stderr, want)
		})
	})
	t.Run("follow", func(t *testing.T) {
		followKubectl(t, c, ns, "ticker")
	})
	t.Run("previous", func(t *testing.T) {
		waitPod(t, c, ns, "twice", podStartTimeout, func(p *corev1.Pod) string {
			if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 1 || p.Status.ContainerStatuses[0].State.Running == nil {
				return "want restarted once and running: " + statusText(p)
			}
			return ""
		})
		if out := kubectlOK(t, c, "-n", ns, "logs", "twice"); out != "second run\n" {
			t.Errorf("kubectl logs twice: got %q, want the running attempt's %q", out, "second run\n")
		}
		if out := kubectlOK(t, c, "-n", ns, "logs", "twice", "--previous"); out != "first run\n" {
			t.Errorf("kubectl logs twice --previous: got %q, want the failed attempt's %q", out, "first run\n")
		}

		waitPod(t, c, ns, "crasher", podStartTimeout, func(p *corev1.Pod) string {
			if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 1 {
				return "want restarted: " + statusText(p)
			}
			return ""
		})
		if out := kubectlOK(t, c, "-n", ns, "logs", "crasher", "--previous"); out != "run\n" {
			t.Errorf("kubectl logs crasher --previous: got %q, want %q", out, "run\n")
		}
	})
}

// followKubectl runs `kubectl logs -f` of a pod printing "tick N" every
// second, reads until a line written after kubectl started arrives, then
// stops kubectl.
func followKubectl(t *testing.T, c *framework.Cluster, ns, pod string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.Binary(t), "kubectl", "--kubeconfig", c.KubeconfigPath(), "--server", c.Endpoint(),
		"-n", ns, "logs", "-f", "--tail=1", pod)
	env := []string{"KUBECONFIG=" + c.KubeconfigPath(), "KUBECACHEDIR=" + filepath.Join(t.TempDir(), "kube-cache"), "KUBERC=off"}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "KUBECONFIG" && name != "KUBECACHEDIR" && name != "KUBERC" {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubectl logs -f: %v", err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		br := bufio.NewReader(stdout)
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				lines <- l
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	tick := func(l string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(l), "tick "))
		if err != nil || !strings.HasPrefix(l, "tick ") {
			t.Fatalf("kubectl logs -f: got line %q, want \"tick N\"", l)
		}
		return n
	}
	var got []string
	first := -1
	deadline := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("kubectl logs -f ended after %q; stderr: %s", got, stderr.String())
			}
			got = append(got, l)
			n := tick(l)
			if first < 0 {
				first = n
			} else if n != first+len(got)-1 {
				t.Errorf("kubectl logs -f: lines %q, want consecutive ticks", got)
			}
		case <-deadline:
			t.Fatalf("kubectl logs -f: got %q after 30 s, want three ticks as they are printed; stderr: %s", got, stderr.String())
		}
	}
	// The lines kept coming while kubectl ran; stopping it ends the stream.
	cancel()
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) && !errors.Is(err, context.Canceled) {
			t.Errorf("kubectl logs -f after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("kubectl logs -f did not end 10 s after it was killed")
	}
}
