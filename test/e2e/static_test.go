//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// TestRealStaticPod: a manifest dropped into the node's static pod
// directory runs as a pod named after the node, shown as a mirror pod.
// The node runs it from the file: deleting the mirror pod brings a new one
// showing the same container, not restarted; a changed manifest replaces
// the pod; removing the file stops it.
func TestRealStaticPod(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-static")
	if err := os.MkdirAll(c.StaticPodDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.StaticPodDir(), "static-web.yaml")
	write := func(version string) {
		t.Helper()
		manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    env: [{name: VERSION, value: "%s"}]
`, ns, c.Image("testserver:1"), version)
		if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	t.Cleanup(func() { _ = os.Remove(file) })
	name := "static-web-" + c.NodeName()
	running := func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].ContainerID == "" {
			return "want Running with its container; got " + statusText(p)
		}
		return ""
	}
	p := waitPod(t, c, ns, name, 60*time.Second, running) // the framework's node reads it every second
	if p.Annotations["kubernetes.io/config.mirror"] == "" || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" {
		t.Errorf("mirror pod: annotations %v owners %+v, want kubernetes.io/config.mirror and the Node as owner", p.Annotations, p.OwnerReferences)
	}
	before := p.Status.ContainerStatuses[0]

	kubectlOK(t, c, "-n", ns, "delete", "pod", name)
	p = waitPod(t, c, ns, name, 60*time.Second, func(q *corev1.Pod) string {
		if q.UID == p.UID {
			return "still the deleted mirror pod"
		}
		return running(q)
	})
	if after := p.Status.ContainerStatuses[0]; after.ContainerID != before.ContainerID || after.RestartCount != 0 {
		t.Errorf("after the mirror pod was deleted: container %s restartCount %d, want %s untouched", after.ContainerID, after.RestartCount, before.ContainerID)
	}

	write("2")
	p = waitPod(t, c, ns, name, 60*time.Second, func(q *corev1.Pod) string {
		if q.Annotations["kubernetes.io/config.mirror"] == p.Annotations["kubernetes.io/config.mirror"] || q.Spec.Containers[0].Env[0].Value != "2" {
			return "still the first version"
		}
		return running(q)
	})
	if p.Status.ContainerStatuses[0].ContainerID == before.ContainerID {
		t.Errorf("after the manifest changed: still container %s", before.ContainerID)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	frameworkWaitGone(t, c, ns, name, 60*time.Second)

	// As upstream, a mirror pod may not use a Secret: a static pod runs
	// without the API.
	_, errOut, err := c.KubectlStdin(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: fake-mirror
  namespace: %s
  annotations: {kubernetes.io/config.mirror: "0123"}
spec:
  nodeName: %s
  containers: [{name: c, image: x}]
  volumes: [{name: s, secret: {secretName: s}}]
`, ns, c.NodeName()), "create", "-f", "-")
	if want := `pods "fake-mirror" is forbidden: a mirror pod may not reference secrets`; err == nil || !strings.Contains(errOut, want) {
		t.Errorf("creating a mirror pod with a secret volume: err %v, stderr %q, want %q", err, errOut, want)
	}
}

// frameworkWaitGone waits until the pod no longer exists.
func frameworkWaitGone(t *testing.T, c *framework.Cluster, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, _, err := c.Kubectl("-n", ns, "get", "pod", name); err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s still exists after %s", ns, name, timeout)
}
