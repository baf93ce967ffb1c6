//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// TestRealStaticPod: a manifest dropped into the node's static pod
// directory runs as a pod named after the node, shown as a mirror pod;
// deleting the mirror pod does not stop it for long, removing the file
// does.
func TestRealStaticPod(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-static")
	if err := os.MkdirAll(c.StaticPodDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.StaticPodDir(), "static-web.yaml")
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: web, image: %s}
`, ns, c.Image("testserver:1"))
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(file) })
	name := "static-web-" + c.NodeName()
	p := waitPod(t, c, ns, name, 60*time.Second, phaseIs(corev1.PodRunning)) // the framework's node reads it every second
	if p.Annotations["kubernetes.io/config.mirror"] == "" || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" {
		t.Errorf("mirror pod: annotations %v owners %+v, want kubernetes.io/config.mirror and the Node as owner", p.Annotations, p.OwnerReferences)
	}
	uid := p.UID
	kubectlOK(t, c, "-n", ns, "delete", "pod", name, "--wait=false")
	waitPod(t, c, ns, name, 60*time.Second, func(p *corev1.Pod) string {
		if p.UID == uid || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("uid %s phase %s, want a new running mirror pod", p.UID, p.Status.Phase)
		}
		return ""
	})
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	frameworkWaitGone(t, c, ns, name, 60*time.Second)
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
