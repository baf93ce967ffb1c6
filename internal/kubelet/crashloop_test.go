package kubelet_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
)

// TestCrashLoopBackOffEvent: a container waiting out its crash-loop delay
// gets upstream's BackOff event, naming the container and the pod as
// "name_namespace(uid)".
func TestCrashLoopBackOffEvent(t *testing.T) {
	cs := fake.NewClientset()
	rec := record.NewFakeRecorder(10000)
	start(t, cs, func(c *kubelet.Config) { c.Recorder = rec })
	crash := pod("crash", corev1.RestartPolicyAlways, corev1.EnvVar{Name: sim.EnvExitCode, Value: "3"})
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), crash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "Warning BackOff Back-off restarting failed container c in pod crash_default(uid-crash)"
	var seen []string
	eventually(t, "BackOff event", func() (bool, string) {
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
}
