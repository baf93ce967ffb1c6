package kubelet_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

// fakeImages is an image store whose pulls fail until allowed.
type fakeImages struct {
	mu      sync.Mutex
	present map[string]bool
	fail    bool
	pulls   []string
	auth    []kubelet.RegistryAuth
}

func (f *fakeImages) PullImage(_ context.Context, image string, auth []kubelet.RegistryAuth, _ func(string)) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, image)
	f.auth = auth
	if f.fail {
		return "", errors.New("manifest unknown")
	}
	f.present[image] = true
	return image + "@sha256:0", nil
}

func (f *fakeImages) ImageStatus(_ context.Context, image string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return image + "@sha256:0", f.present[image], nil
}

func (f *fakeImages) set(fail bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *fakeImages) pulled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.pulls...)
}

func waitingReason(p *corev1.Pod) string {
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
		return ""
	}
	return p.Status.ContainerStatuses[0].State.Waiting.Reason
}

func TestImagePulls(t *testing.T) {
	cs := fake.NewClientset()
	images := &fakeImages{present: map[string]bool{"cached:1": true}, fail: true}
	rec := record.NewFakeRecorder(100)
	start(t, cs, func(c *kubelet.Config) { c.Images = images; c.Recorder = rec })
	ctx := context.Background()

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "default"},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://reg.example:5000/v2/":{"auth":"dTpw"}}}`)}}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := pod("pull", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].Image = "reg.example:5000/app:1"
	p.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ErrImagePull then ImagePullBackOff", func() (bool, string) {
		p, err := getPod(t, cs, "pull")
		if err != nil {
			return false, err.Error()
		}
		return waitingReason(p) == "ImagePullBackOff", fmt.Sprintf("%+v", p.Status.ContainerStatuses)
	})
	images.mu.Lock()
	auth := images.auth
	images.mu.Unlock()
	if len(auth) != 1 || auth[0].Server != "reg.example:5000" || auth[0].Username != "u" || auth[0].Password != "p" {
		t.Errorf("pull credentials: got %+v, want u/p for reg.example:5000", auth)
	}
	if n := len(images.pulled()); n != 1 {
		t.Errorf("pulls during the back-off: got %d, want 1", n)
	}

	// The pull works once the registry has the image: the retry after the
	// 10 s back-off starts the container.
	images.set(false)
	running := func() (bool, string) {
		p, err := getPod(t, cs, "pull")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
	}
	eventuallyQuiet(running) // the back-off is 10 s, as long as eventually waits
	eventually(t, "running after the back-off", func() (bool, string) {
		p, err := getPod(t, cs, "pull")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
	})

	// Never with the image absent is ErrImageNeverPull, without a pull;
	// IfNotPresent with the image present pulls nothing.
	never := pod("never", corev1.RestartPolicyAlways)
	never.Spec.Containers[0].Image = "absent:1"
	never.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	cached := pod("cached", corev1.RestartPolicyAlways)
	cached.Spec.Containers[0].Image = "cached:1"
	cached.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	for _, p := range []*corev1.Pod{never, cached} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "never and cached pods", func() (bool, string) {
		n, err1 := getPod(t, cs, "never")
		c, err2 := getPod(t, cs, "cached")
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return waitingReason(n) == "ErrImageNeverPull" && c.Status.Phase == corev1.PodRunning,
			fmt.Sprintf("never %+v cached %s", n.Status.ContainerStatuses, c.Status.Phase)
	})
	for _, img := range images.pulled() {
		if img != "reg.example:5000/app:1" {
			t.Errorf("pulled %q; only reg.example:5000/app:1 needed pulling", img)
		}
	}
	// Deleting a running pod stops its containers with upstream's event.
	c, _ := getPod(t, cs, "cached")
	now := metav1.Now()
	c.DeletionTimestamp, c.DeletionGracePeriodSeconds = &now, new(int64)
	if _, err := cs.CoreV1().Pods("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cached pod deleted by the kubelet", func() (bool, string) {
		_, err := getPod(t, cs, "cached")
		return err != nil, fmt.Sprint(err)
	})
	var reasons []string
	for len(rec.Events) > 0 {
		reasons = append(reasons, <-rec.Events)
	}
	for _, want := range []string{
		`Normal Pulling Pulling image "reg.example:5000/app:1"`,
		`Warning Failed Failed to pull image "reg.example:5000/app:1": manifest unknown`,
		`Warning Failed Error: ErrImagePull`,
		`Normal BackOff Back-off pulling image "reg.example:5000/app:1"`,
		`Warning ErrImageNeverPull Container image "absent:1" is not present with pull policy of Never`,
		`Normal Pulled Container image "cached:1" already present on machine`,
		`Normal Killing Stopping container c`,
	} {
		found := false
		for _, r := range reasons {
			if r == want {
				found = true
			}
		}
		if !found {
			t.Errorf("no event %q among %q", want, reasons)
		}
	}
}

// eventuallyQuiet polls cond for up to 10 s without failing.
func eventuallyQuiet(cond func() (bool, string)) {
	for range 500 {
		if ok, _ := cond(); ok {
			return
		}
		sleep20ms()
	}
}

func sleep20ms() { <-time.After(20 * time.Millisecond) }
