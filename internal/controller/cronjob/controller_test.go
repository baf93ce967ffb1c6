package cronjob

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
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)

func testCronJob(policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "ns", UID: "cj-uid", CreationTimestamp: metav1.NewTime(t0)},
		Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *", TimeZone: ptr.To("UTC"), ConcurrencyPolicy: policy,
			SuccessfulJobsHistoryLimit: ptr.To(int32(1)), FailedJobsHistoryLimit: ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "hello"}}}},
	}
}

func run(t *testing.T, client *fake.Clientset, clk *clocktesting.FakeClock) (time.Duration, *batchv1.CronJob, []batchv1.Job) {
	t.Helper()
	ctx := context.Background()
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Batch().V1().CronJobs(), f.Batch().V1().Jobs(), client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	cjs, _ := client.BatchV1().CronJobs("ns").List(ctx, metav1.ListOptions{})
	for i := range cjs.Items {
		_ = f.Batch().V1().CronJobs().Informer().GetIndexer().Add(&cjs.Items[i])
	}
	jobs, _ := client.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{})
	for i := range jobs.Items {
		_ = f.Batch().V1().Jobs().Informer().GetIndexer().Add(&jobs.Items[i])
	}
	wait, err := c.Sync(ctx, "ns/hello")
	if err != nil {
		t.Fatal(err)
	}
	cj, _ := client.BatchV1().CronJobs("ns").Get(ctx, "hello", metav1.GetOptions{})
	jobs, _ = client.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{})
	return wait, cj, jobs.Items
}

func TestSyncStartsJobAndRequeuesForNext(t *testing.T) {
	client := fake.NewClientset(testCronJob(batchv1.AllowConcurrent))
	clk := clocktesting.NewFakeClock(t0.Add(10 * time.Second)) // 10:00:40, nothing due yet
	wait, _, jobs := run(t, client, clk)
	if len(jobs) != 0 || wait < 19*time.Second || wait > 21*time.Second {
		t.Fatalf("before first activation: got %d jobs wait %v, want none and ~20s", len(jobs), wait)
	}
	clk.SetTime(t0.Add(35 * time.Second)) // 10:01:05
	wait, cj, jobs := run(t, client, clk)
	sched := time.Date(2024, 5, 1, 10, 1, 0, 0, time.UTC)
	if len(jobs) != 1 || jobs[0].Name != JobName(cj, sched) || jobs[0].Name != "hello-28575961" {
		t.Fatalf("got jobs %v, want hello-28575961", jobs)
	}
	if got := jobs[0].Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2024-05-01T10:01:00Z" {
		t.Errorf("got scheduled-timestamp %q, want 2024-05-01T10:01:00Z", got)
	}
	if len(cj.Status.Active) != 1 || cj.Status.LastScheduleTime == nil || !cj.Status.LastScheduleTime.Time.Equal(sched) {
		t.Errorf("got status %+v, want one active and lastScheduleTime 10:01", cj.Status)
	}
	if wait < 54*time.Second || wait > 56*time.Second {
		t.Errorf("got wait %v, want ~55s", wait)
	}
}

func TestSyncForbidAndReplace(t *testing.T) {
	for _, tc := range []struct {
		policy   batchv1.ConcurrencyPolicy
		wantJobs int
	}{{batchv1.ForbidConcurrent, 1}, {batchv1.ReplaceConcurrent, 1}, {batchv1.AllowConcurrent, 2}} {
		client := fake.NewClientset(testCronJob(tc.policy))
		clk := clocktesting.NewFakeClock(t0.Add(35 * time.Second))
		_, _, first := run(t, client, clk)
		clk.Step(time.Minute)
		_, cj, jobs := run(t, client, clk)
		if len(jobs) != tc.wantJobs {
			t.Errorf("%s: got %d jobs, want %d", tc.policy, len(jobs), tc.wantJobs)
		}
		if tc.policy == batchv1.ReplaceConcurrent && (jobs[0].Name == first[0].Name || len(cj.Status.Active) != 1) {
			t.Errorf("Replace: got jobs %s active %v, want the new job only", jobs[0].Name, cj.Status.Active)
		}
	}
}

func TestSyncSuspendAndDeadline(t *testing.T) {
	cj := testCronJob(batchv1.AllowConcurrent)
	cj.Spec.Suspend = ptr.To(true)
	client := fake.NewClientset(cj)
	_, _, jobs := run(t, client, clocktesting.NewFakeClock(t0.Add(35*time.Second)))
	if len(jobs) != 0 {
		t.Errorf("suspended: got %d jobs, want 0", len(jobs))
	}
	cj = testCronJob(batchv1.AllowConcurrent)
	cj.Spec.StartingDeadlineSeconds = ptr.To(int64(3))
	client = fake.NewClientset(cj)
	_, _, jobs = run(t, client, clocktesting.NewFakeClock(t0.Add(35*time.Second))) // 5 s late
	if len(jobs) != 0 {
		t.Errorf("past startingDeadlineSeconds: got %d jobs, want 0", len(jobs))
	}
}

func TestSyncHistoryLimit(t *testing.T) {
	cj := testCronJob(batchv1.AllowConcurrent)
	var objs = []runtimeObject{cj}
	for i, cond := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailed} {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "old-" + string(rune('a'+i)), Namespace: "ns", UID: typesUID(i),
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(i) * time.Second)),
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)}},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}}}
		objs = append(objs, j)
	}
	client := fake.NewClientset(objs...)
	_, _, jobs := run(t, client, clocktesting.NewFakeClock(t0.Add(10*time.Second)))
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	if len(names) != 2 || names[0] != "old-b" || names[1] != "old-d" {
		t.Errorf("got jobs %v, want the newest of each kind: old-b old-d", names)
	}
}
