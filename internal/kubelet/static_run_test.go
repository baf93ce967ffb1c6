package kubelet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
)

// TestStaticPodsRunFromFiles: a static pod on the host network runs from
// its manifest while the API server cannot be reached (one on the pod
// network waits for the Node and its pod range); once it can, the pod
// shows as a mirror pod with the running container's status. Deleting the
// mirror pod does not restart the container; a changed manifest replaces
// it; a removed one stops it and deletes the mirror pod.
func TestStaticPodsRunFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	manifest := func(image string) {
		t.Helper()
		body := "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers: [{name: c, image: " + image + "}]\n"
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest("busybox:1")
	podNet := filepath.Join(dir, "net.yaml")
	if err := os.WriteFile(podNet, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: net}\nspec:\n  containers: [{name: netc, image: busybox}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cs := fake.NewClientset()
	var down atomic.Bool
	down.Store(true)
	refuse := func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	}
	cs.PrependReactor("*", "*", refuse)
	cs.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		handled, _, err := refuse(a)
		return handled, nil, err
	})
	rt := sim.New(sim.Options{})
	start(t, cs, func(c *kubelet.Config) {
		c.Runtime = rt
		c.StaticPodPath = dir
		c.FileCheckFrequency = 50 * time.Millisecond
	})
	ctx := context.Background()

	// runningAs returns the runtime's running containers called name, as
	// "uid/id".
	runningAs := func(name string) []string {
		cs, err := rt.ListContainers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			if c.State == kubelet.ContainerRunning && c.Name == name {
				out = append(out, string(c.PodUID)+"/"+c.ID)
			}
		}
		return out
	}
	running := func() []string { return runningAs("c") }
	var first string
	eventually(t, "static pod running without an API server", func() (bool, string) {
		r := running()
		if len(r) == 1 {
			first = r[0]
		}
		return len(r) == 1, fmt.Sprint(r)
	})
	uid, id, _ := strings.Cut(first, "/")
	if r := runningAs("netc"); len(r) != 0 {
		t.Errorf("pod-network static pod running before the Node is known: %v", r)
	}

	down.Store(false)
	eventually(t, "pod-network static pod running once the Node is known", func() (bool, string) {
		r := runningAs("netc")
		return len(r) == 1, fmt.Sprint(r)
	})
	mirror := waitMirror(t, cs, func(p *corev1.Pod) string {
		if p.Annotations["kubernetes.io/config.mirror"] != uid {
			return "annotations " + fmt.Sprint(p.Annotations)
		}
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" {
			return "owners " + fmt.Sprint(p.OwnerReferences)
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || !strings.HasSuffix(p.Status.ContainerStatuses[0].ContainerID, id) {
			return fmt.Sprintf("phase %s statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		return ""
	})

	// Deleted by a user: created again, the container left running. (The
	// fake API gives no UIDs: the old mirror pod is told by a label.)
	mirror.Labels = map[string]string{"old": "yes"}
	if _, err := cs.CoreV1().Pods("default").Update(ctx, mirror, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "web-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitMirror(t, cs, func(p *corev1.Pod) string {
		if p.Labels["old"] != "" || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("labels %v phase %s, want a new running mirror pod", p.Labels, p.Status.Phase)
		}
		return ""
	})
	if r := running(); len(r) != 1 || r[0] != first {
		t.Errorf("containers after the mirror pod was deleted: %v, want %s untouched", r, first)
	}

	// A changed manifest: the old container stops, a new pod starts.
	manifest("busybox:2")
	var second string
	eventually(t, "pod replaced", func() (bool, string) {
		r := running()
		if len(r) == 1 && r[0] != first {
			second = r[0]
			return true, ""
		}
		return false, fmt.Sprint(r)
	})
	uid2, _, _ := strings.Cut(second, "/")
	waitMirror(t, cs, func(p *corev1.Pod) string {
		if p.Annotations["kubernetes.io/config.mirror"] != uid2 || p.Spec.Containers[0].Image != "busybox:2" || p.Status.Phase != corev1.PodRunning {
			return fmt.Sprintf("mirror of %s with %s, phase %s", p.Annotations["kubernetes.io/config.mirror"], p.Spec.Containers[0].Image, p.Status.Phase)
		}
		return ""
	})

	// Removed: the pod stops and its mirror pod goes.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod stopped and mirror pod deleted", func() (bool, string) {
		r := running()
		_, err := cs.CoreV1().Pods("default").Get(ctx, "web-n1", metav1.GetOptions{})
		return len(r) == 0 && err != nil, fmt.Sprintf("containers %v, mirror pod lookup: %v", r, err)
	})
}

// waitMirror waits until default/web-n1 exists and bad finds nothing wrong
// with it.
func waitMirror(t *testing.T, cs *fake.Clientset, bad func(*corev1.Pod) string) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	eventually(t, "mirror pod", func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), "web-n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got = p
		msg := bad(p)
		return msg == "", msg
	})
	return got
}
