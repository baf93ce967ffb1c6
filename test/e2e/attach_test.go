//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// attachPods are TestRealAttach's pods: one that reads a line from its
// stdin and answers it, one that counts on its stdout.
const attachPods = `apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    stdin: true
    command: [sh, -c, 'read line; echo "got:$line"; echo "err:$line" >&2']
---
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    stdin: true
    stdinOnce: true
    command: [cat]
---
apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, 'sleep 2; for i in 1 2 3 4 5; do echo "line$i"; sleep 1; done']
`

// TestRealAttach: kubectl attach connects to a running container's main
// process through the API server and the kubelet: its stdin reaches the
// process, and the output from then on comes back, on stdout and stderr
// apart, until the container ends.
func TestRealAttach(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-attach")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(attachPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	waitPod(t, c, ns, "reader", podStartTimeout, phaseIs(corev1.PodRunning))
	waitPod(t, c, ns, "counter", podStartTimeout, phaseIs(corev1.PodRunning))
	waitPod(t, c, ns, "once", podStartTimeout, phaseIs(corev1.PodRunning))

	t.Run("stdin", func(t *testing.T) {
		out, stderr, err := c.KubectlStdin("hello\n", "-n", ns, "attach", "-i", "reader", "-c", "main")
		if err != nil || !strings.Contains(out, "got:hello") || !strings.Contains(stderr, "err:hello") {
			t.Errorf("kubectl attach -i reader: got %v, stdout %q, stderr %q, want got:hello on stdout and err:hello on stderr", err, out, stderr)
		}
		waitPod(t, c, ns, "reader", podStartTimeout, phaseIs(corev1.PodSucceeded))
	})
	t.Run("stdinOnce", func(t *testing.T) {
		// cat echoes until its stdin closes, which stdinOnce does when
		// the first client detaches: the pod then completes.
		out, stderr, err := c.KubectlStdin("first\n", "-n", ns, "attach", "-i", "once")
		if err != nil || !strings.Contains(out, "first") {
			t.Errorf("kubectl attach -i once: got %v, stdout %q, stderr %q, want first echoed", err, out, stderr)
		}
		waitPod(t, c, ns, "once", podStartTimeout, phaseIs(corev1.PodSucceeded))
	})
	t.Run("output", func(t *testing.T) {
		out, stderr, err := c.Kubectl("-n", ns, "attach", "counter")
		if err != nil || !strings.Contains(out, "line5\n") {
			t.Errorf("kubectl attach counter: got %v, stdout %q, stderr %q, want the lines up to line5", err, out, stderr)
		}
	})
	t.Run("not running", func(t *testing.T) {
		// The reader has ended: upstream's kubectl refuses before it
		// connects.
		_, stderr, err := c.Kubectl("-n", ns, "attach", "reader")
		if err == nil || !strings.Contains(stderr, "cannot attach a container in a completed pod; current phase is Succeeded") {
			t.Errorf("kubectl attach to a completed pod: got %v, stderr %q, want kubectl's refusal", err, stderr)
		}
	})
}
