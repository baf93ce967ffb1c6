package kubelet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

// TestMissingConfigMapVolume: a pod whose configMap volume names a
// ConfigMap that does not exist waits in ContainerCreating with upstream's
// FailedMount event (not CreateContainerConfigError, which is for env
// sources), and starts once the ConfigMap is created.
func TestMissingConfigMapVolume(t *testing.T) {
	cs := fake.NewClientset()
	rec := record.NewFakeRecorder(10000)
	start(t, cs, func(c *kubelet.Config) { c.Recorder = rec; c.PodsDir = t.TempDir() })
	ctx := context.Background()
	p := pod("novol", corev1.RestartPolicyAlways)
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "late"}}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const want = `Warning FailedMount MountVolume.SetUp failed for volume "cfg" : configmap "late" not found`
	var seen []string
	eventually(t, "FailedMount event", func() (bool, string) {
		for len(rec.Events) > 0 {
			seen = append(seen, <-rec.Events)
		}
		for _, e := range seen {
			if e == want {
				return true, ""
			}
		}
		return false, "events " + strings.Join(seen, "; ") + "; want " + want
	})
	eventually(t, "container waiting ContainerCreating", func() (bool, string) {
		p, err := getPod(t, cs, "novol")
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(p.Status, err)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return p.Status.Phase == corev1.PodPending && w != nil && w.Reason == "ContainerCreating",
			fmt.Sprintf("phase %s state %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})
	for _, e := range seen {
		if strings.HasPrefix(e, "Warning Failed ") {
			t.Errorf("got event %q; a volume that cannot be set up is only FailedMount", e)
		}
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod running once the ConfigMap exists", func() (bool, string) {
		for len(rec.Events) > 0 {
			<-rec.Events
		}
		p, err := getPod(t, cs, "novol")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
}
