//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"

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
	t.Run("cp", func(t *testing.T) {
		// kubectl cp is tar over exec, both ways.
		src := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(src, []byte("copied\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		kubectlOK(t, c, "-n", ns, "cp", src, "shell:/tmp/in.txt")
		if out := kubectlOK(t, c, "-n", ns, "exec", "shell", "--", "cat", "/tmp/in.txt"); out != "copied\n" {
			t.Errorf("file copied into the pod: got %q, want %q", out, "copied\n")
		}
		dst := filepath.Join(t.TempDir(), "out.txt")
		kubectlOK(t, c, "-n", ns, "cp", "shell:/tmp/in.txt", dst)
		if b, err := os.ReadFile(dst); err != nil || string(b) != "copied\n" {
			t.Errorf("file copied out of the pod: got %q %v, want %q", b, err, "copied\n")
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
	t.Run("tty", func(t *testing.T) {
		// kubectl gives up the TTY when its stdin is no terminal, so this
		// speaks the protocol itself, as kubectl exec -ti would.
		q := url.Values{"command": {"sh", "-c", "tty; stty size"}, "stdin": {"true"}, "stdout": {"true"}, "tty": {"true"}}
		u, err := url.Parse(c.Endpoint() + "/api/v1/namespaces/" + ns + "/pods/shell/exec?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		for _, proto := range []string{"websocket", "spdy"} {
			var e remotecommand.Executor
			if proto == "websocket" {
				e, err = remotecommand.NewWebSocketExecutor(c.RESTConfig(), http.MethodGet, u.String())
			} else {
				e, err = remotecommand.NewSPDYExecutor(c.RESTConfig(), http.MethodPost, u)
			}
			if err != nil {
				t.Fatal(err)
			}
			sizes := make(oneSize, 1)
			sizes <- &remotecommand.TerminalSize{Width: 101, Height: 33}
			close(sizes)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			var out strings.Builder
			// Stdin stays open while the command runs, as a user's terminal
			// does: an end of input at once races the command's own reads of
			// its terminal.
			stdin, stdinW := io.Pipe()
			err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			_ = stdinW.Close()
			cancel()
			if err != nil || !strings.HasPrefix(out.String(), "/dev/pts/") || !strings.Contains(out.String(), "33 101") {
				t.Errorf("exec with a TTY over %s: got %q, %v, want a /dev/pts terminal of 33 rows and 101 columns", proto, out.String(), err)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"exec", "shell", "-c", "missing", "--", "true"}, "container missing is not valid for pod shell"},
			{[]string{"exec", "nope", "--", "true"}, `pods "nope" not found`},
			// As kubectl shows containerd's answer.
			{[]string{"exec", "shell", "--", "/no/such/command"}, `error: Internal error occurred: error executing command in container: failed to exec in container: OCI runtime exec failed: exec failed: unable to start container process: exec: "/no/such/command": stat /no/such/command: no such file or directory`},
			{[]string{"exec", "shell", "--", "nosuch"}, `exec: "nosuch": executable file not found in $PATH`},
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

// oneSize hands the terminal sizes it holds to an executor.
type oneSize chan *remotecommand.TerminalSize

func (s oneSize) Next() *remotecommand.TerminalSize { return <-s }

// webPod is TestRealPortForward's pod: busybox httpd serving "hello" on
// port 8080.
const webPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sh, -c, "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"]
`

// TestRealPortForward: kubectl port-forward reaches a real pod's port
// through the API server and the node's kubelet, over the WebSocket
// tunnel kubectl uses first and over SPDY. The pod listens on its own
// localhost only: the node connects from inside the pod's network
// namespace, as upstream's runtimes do.
func TestRealPortForward(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-portforward")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(webPod, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "web", podStartTimeout, phaseIs(corev1.PodRunning))
	for _, tc := range []struct{ name, websockets string }{{"websocket", "true"}, {"spdy", "false"}} {
		t.Run(tc.name, func(t *testing.T) {
			local := portForwardKubectl(t, c, ns, "web", tc.websockets)
			// Several requests, each a new forwarded connection.
			for i := range 3 {
				var body string
				framework.WaitFor(t, 10*time.Second, func() (bool, string) {
					body = httpGet(fmt.Sprintf("http://127.0.0.1:%s/index.html", local))
					return body == "hello\n", fmt.Sprintf("GET %d through port-forward: got %q, want %q", i, body, "hello\n")
				})
			}
		})
	}
}

// httpGet returns the body of url, or the error's text.
func httpGet(url string) string {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// portForwardKubectl starts `kubectl port-forward pod :8080` and returns
// the local port it listens on; kubectl is stopped at the test's end.
func portForwardKubectl(t *testing.T, c *framework.Cluster, ns, pod, websockets string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, suite.Binary(t), "kubectl", "--kubeconfig", c.KubeconfigPath(), "--server", c.Endpoint(),
		"-n", ns, "port-forward", "--address", "127.0.0.1", "pod/"+pod, ":8080")
	env := []string{"KUBECONFIG=" + c.KubeconfigPath(), "KUBECACHEDIR=" + filepath.Join(t.TempDir(), "kube-cache"), "KUBERC=off",
		"KUBECTL_PORT_FORWARD_WEBSOCKETS=" + websockets}
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "KUBECONFIG", "KUBECACHEDIR", "KUBERC", "KUBECTL_PORT_FORWARD_WEBSOCKETS":
		default:
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
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start kubectl port-forward: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kubectl port-forward stderr:\n%s", stderr.String())
		}
	})
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
		br := bufio.NewReader(stdout)
		for {
			l, err := br.ReadString('\n')
			if m := re.FindStringSubmatch(l); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case port := <-found:
		return port
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl port-forward printed no local port in 30s; stderr: %s", stderr.String())
	}
	return ""
}
