//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// execPod is TestRealExec's pod: a busybox that sleeps.
const execPod = `apiVersion: v1
kind: Pod
metadata:
  name: shell
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sleep, "3600"]
`

// TestRealExec: kubectl exec runs commands in a real container through the
// API server and the node's kubelet: output, stdin, the command's exit
// code as kubectl's, and upstream's errors.
func TestRealExec(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-exec")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(execPod, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "shell", podStartTimeout, phaseIs(corev1.PodRunning))

	t.Run("output", func(t *testing.T) {
		if out := kubectlOK(t, c, "-n", ns, "exec", "shell", "--", "echo", "hi"); out != "hi\n" {
			t.Errorf("kubectl exec shell -- echo hi: got %q, want %q", out, "hi\n")
		}
		out, stderr, err := c.Kubectl("-n", ns, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2")
		if err != nil || out != "out\n" || !strings.Contains(stderr, "err\n") {
			t.Errorf("kubectl exec with stderr: got %v, stdout %q, stderr %q, want out and err apart", err, out, stderr)
		}
		// The command runs in the container, not on the node.
		if out := kubectlOK(t, c, "-n", ns, "exec", "shell", "--", "cat", "/etc/hostname"); out != "shell\n" {
			t.Errorf("kubectl exec shell -- cat /etc/hostname: got %q, want %q", out, "shell\n")
		}
	})
	t.Run("exit code", func(t *testing.T) {
		_, stderr, err := c.Kubectl("-n", ns, "exec", "shell", "--", "sh", "-c", "exit 3")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(stderr, "command terminated with exit code 3") {
			t.Errorf("kubectl exec -- sh -c 'exit 3': got %v, stderr %q, want kubectl to exit 3 saying %q", err, stderr, "command terminated with exit code 3")
		}
	})
	t.Run("stdin", func(t *testing.T) {
		out, stderr, err := c.KubectlStdin("abc", "-n", ns, "exec", "-i", "shell", "--", "cat")
		if err != nil || out != "abc" {
			t.Errorf("kubectl exec -i shell -- cat <<< abc: got %v, %q (stderr %q), want %q", err, out, stderr, "abc")
		}
		out, stderr, err = c.KubectlStdin("one\ntwo\n", "-n", ns, "exec", "-i", "shell", "--", "wc", "-l")
		if err != nil || strings.TrimSpace(out) != "2" {
			t.Errorf("kubectl exec -i shell -- wc -l: got %v, %q (stderr %q), want 2", err, out, stderr)
		}
	})
	t.Run("spdy", func(t *testing.T) {
		// kubectl's fallback transport, as older kubectls use.
		t.Setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
		if out := kubectlOK(t, c, "-n", ns, "exec", "shell", "--", "echo", "hi"); out != "hi\n" {
			t.Errorf("kubectl exec over SPDY: got %q, want %q", out, "hi\n")
		}
		out, stderr, err := c.KubectlStdin("abc", "-n", ns, "exec", "-i", "shell", "--", "cat")
		if err != nil || out != "abc" {
			t.Errorf("kubectl exec -i over SPDY: got %v, %q (stderr %q), want %q", err, out, stderr, "abc")
		}
		_, stderr, err = c.Kubectl("-n", ns, "exec", "shell", "--", "sh", "-c", "exit 3")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(stderr, "command terminated with exit code 3") {
			t.Errorf("kubectl exec over SPDY -- sh -c 'exit 3': got %v, stderr %q, want exit 3", err, stderr)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"exec", "shell", "-c", "missing", "--", "true"}, "container missing is not valid for pod shell"},
			{[]string{"exec", "nope", "--", "true"}, `pods "nope" not found`},
			{[]string{"exec", "shell", "--", "/no/such/command"}, "no such file or directory"},
		} {
			_, stderr, err := c.Kubectl(append([]string{"-n", ns}, tc.args...)...)
			t.Logf("kubectl %s: %v: %s", strings.Join(tc.args, " "), err, strings.TrimSpace(stderr))
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("kubectl %s: got %v, stderr %q, want a failure saying %q", strings.Join(tc.args, " "), err, stderr, tc.want)
			}
		}
		// Through the API without a command: upstream's 400.
		_, stderr, err := c.Kubectl("create", "--raw", "/api/v1/namespaces/"+ns+"/pods/shell/exec?stdout=true", "-f", "/dev/null")
		want := "you must specify at least one command for the container"
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("pods/exec without a command: got %v %q, want %q", err, stderr, want)
		}
	})
}
