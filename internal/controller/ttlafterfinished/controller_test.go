package ttlafterfinished

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestSync(t *testing.T) {
	done := time.Unix(5000, 0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", UID: "u"},
		Spec:       batchv1.JobSpec{TTLSecondsAfterFinished: ptr.To(int32(100))},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(done)}}},
	}
	client := fake.NewClientset(job)
	f := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(done.Add(40 * time.Second))
	c := New(f.Batch().V1().Jobs(), client, slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	_ = f.Batch().V1().Jobs().Informer().GetIndexer().Add(job)
	left, err := c.Sync(context.Background(), "ns/j")
	if err != nil || left != 60*time.Second {
		t.Fatalf("before expiry: got %v, %v, want 60s", left, err)
	}
	clk.Step(61 * time.Second)
	if _, err := c.Sync(context.Background(), "ns/j"); err != nil {
		t.Fatal(err)
	}
	var deleted bool
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && d.Name == "j" {
			deleted = true
			if p := d.DeleteOptions.PropagationPolicy; p == nil || *p != metav1.DeletePropagationForeground {
				t.Errorf("got propagation %v, want Foreground", p)
			}
		}
	}
	if !deleted {
		t.Errorf("job not deleted after its ttl")
	}
}
