package kubelet

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// noRuntime is a Runtime for tests that never run a pod.
type noRuntime struct{ Runtime }

func (noRuntime) Info(context.Context) (RuntimeInfo, error) { return RuntimeInfo{Name: "none"}, nil }

func TestStaticPods(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system}\nspec:\n  containers: [{name: c, image: nginx}]\n")
	write("notes.txt", "not a manifest")
	write("broken.yaml", "kind: Deployment\nmetadata: {name: x}\n")

	cs := fake.NewClientset()
	k, err := New(Config{Client: cs, NodeName: "n1", Runtime: noRuntime{}, StaticPodPath: dir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	k.setNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}})
	ctx := context.Background()
	sync := func() {
		t.Helper()
		pods, errs := readStaticPods(dir, "n1")
		if len(errs) != 1 {
			t.Errorf("manifest errors: got %v, want one for broken.yaml", errs)
		}
		if err := k.syncMirrorPods(ctx, pods); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	p, err := cs.CoreV1().Pods("kube-system").Get(ctx, "web-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("mirror pod: %v", err)
	}
	if p.Spec.NodeName != "n1" || p.Annotations[annotationMirror] == "" || p.Annotations[annotationSource] != "file" {
		t.Errorf("mirror pod: got nodeName %q annotations %v", p.Spec.NodeName, p.Annotations)
	}
	if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" || p.OwnerReferences[0].UID != "node-uid" {
		t.Errorf("mirror pod owner: got %+v, want the Node", p.OwnerReferences)
	}
	hash := p.Annotations[annotationHash]

	// Deleted by a user: created again.
	if err := cs.CoreV1().Pods("kube-system").Delete(ctx, "web-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, err := cs.CoreV1().Pods("kube-system").Get(ctx, "web-n1", metav1.GetOptions{}); err != nil {
		t.Errorf("mirror pod after deletion: %v, want it created again", err)
	}

	// A changed manifest replaces the pod (deleted, then created).
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system}\nspec:\n  containers: [{name: c, image: nginx:2}]\n")
	sync()
	sync()
	p, err = cs.CoreV1().Pods("kube-system").Get(ctx, "web-n1", metav1.GetOptions{})
	if err != nil || p.Annotations[annotationHash] == hash || p.Spec.Containers[0].Image != "nginx:2" {
		t.Errorf("after the manifest changed: got %v %v, want the new pod", err, p)
	}

	// The file removed: the mirror pod goes.
	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, err := cs.CoreV1().Pods("kube-system").Get(ctx, "web-n1", metav1.GetOptions{}); err == nil {
		t.Error("mirror pod still there after its manifest was removed")
	}
}
