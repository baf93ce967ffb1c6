package job

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

func TestRemainingBackoff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		failures int
		since    time.Duration
		want     time.Duration
	}{
		{0, 0, 0},
		{1, 0, 10 * time.Second},
		{1, 4 * time.Second, 6 * time.Second},
		{2, 0, 20 * time.Second},
		{3, 0, 40 * time.Second},
		{6, 0, 320 * time.Second},
		{7, 0, 6 * time.Minute},
		{30, 0, 6 * time.Minute},
		{2, time.Minute, 0},
	}
	for _, tc := range tests {
		if got := RemainingBackoff(tc.failures, t0, t0.Add(tc.since)); got != tc.want {
			t.Errorf("RemainingBackoff(%d, +%v) got %v, want %v", tc.failures, tc.since, got, tc.want)
		}
	}
}

func failedPod(exit int32, conds ...corev1.PodConditionType) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit}}}}}}
	for _, c := range conds {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue})
	}
	return p
}

func TestMatchPodFailurePolicy(t *testing.T) {
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}},
	}}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"exit 42 fails the job", failedPod(42), "FailJob"},
		{"disruption ignored", failedPod(1, corev1.DisruptionTarget), "Ignore"},
		{"exit 5 counted by NotIn", failedPod(5), "Count"},
		{"exit 1 matches nothing", failedPod(1), ""},
	}
	for _, tc := range tests {
		got, _ := MatchPodFailurePolicy(policy, tc.pod)
		gs := ""
		if got != nil {
			gs = string(*got)
		}
		if gs != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, gs, tc.want)
		}
	}
}

func TestIndexes(t *testing.T) {
	for in, want := range map[string]string{"": "", "0": "0", "0,1": "0,1", "0-2": "0-2", "3,1,2,7,8,9,5": "1-3,5,7-9", "0-20": "0-9"} {
		if got := ParseIndexes(in, 10).String(); got != want {
			t.Errorf("ParseIndexes(%q) got %q, want %q", in, got, want)
		}
	}
}

type fixture struct {
	c      *Controller
	client *fake.Clientset
	f      informers.SharedInformerFactory
	clk    *clocktesting.FakeClock
}

func newFixture(t *testing.T, job *batchv1.Job) *fixture {
	client := fake.NewClientset(job)
	f := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(time.Unix(10000, 0))
	c := New(f.Batch().V1().Jobs(), f.Core().V1().Pods(), client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	return &fixture{c: c, client: client, f: f, clk: clk}
}

// resync loads the fake API's jobs and pods into the informers' caches and syncs.
func (fx *fixture) sync(t *testing.T, key string) *batchv1.Job {
	t.Helper()
	ctx := context.Background()
	jobs, _ := fx.client.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{})
	ji := fx.f.Batch().V1().Jobs().Informer().GetIndexer()
	for i := range jobs.Items {
		_ = ji.Update(&jobs.Items[i])
	}
	pods, _ := fx.client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	pi := fx.f.Core().V1().Pods().Informer().GetIndexer()
	for _, o := range pi.List() {
		_ = pi.Delete(o)
	}
	for i := range pods.Items {
		_ = pi.Add(&pods.Items[i])
	}
	fx.c.expect.Delete(key)
	if err := fx.c.Sync(ctx, key); err != nil {
		t.Fatal(err)
	}
	got, _ := fx.client.BatchV1().Jobs("ns").Get(ctx, "pi", metav1.GetOptions{})
	return got
}

func (fx *fixture) pods(t *testing.T) []corev1.Pod {
	l, _ := fx.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	return l.Items
}

func (fx *fixture) setPhase(t *testing.T, name string, phase corev1.PodPhase) {
	p, _ := fx.client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	p.Status.Phase = phase
	if _, err := fx.client.CoreV1().Pods("ns").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testJob(completions, parallelism int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "ns", UID: "job-uid", Generation: 1},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), BackoffLimit: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "job-uid"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"batch.kubernetes.io/controller-uid": "job-uid"}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}},
		},
	}
}

// fakeNames gives generateName'd pods names, which the fake clientset does not.
func fakeNames(fx *fixture) {
	n := 0
	fx.client.PrependReactor("create", "pods", func(a k8stestingAction) (bool, runtimeObject, error) {
		p := a.(createAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			n++
			p.Name = p.GenerateName + string(rune('a'+n))
			p.UID = typesUID(p.Name)
		}
		return false, nil, nil
	})
}

func TestSyncCountsExactlyOnceAndCompletes(t *testing.T) {
	fx := newFixture(t, testJob(2, 2))
	fakeNames(fx)
	job := fx.sync(t, "ns/pi")
	pods := fx.pods(t)
	if len(pods) != 2 || job.Status.Active != 0 || job.Status.StartTime == nil {
		t.Fatalf("got %d pods startTime %v, want 2 pods and a startTime", len(pods), job.Status.StartTime)
	}
	for _, p := range pods {
		if len(p.Finalizers) != 1 || p.Finalizers[0] != batchv1.JobTrackingFinalizer {
			t.Errorf("pod %s finalizers %v, want the job tracking finalizer", p.Name, p.Finalizers)
		}
	}
	fx.setPhase(t, pods[0].Name, corev1.PodSucceeded)
	job = fx.sync(t, "ns/pi")
	if job.Status.Succeeded != 1 || len(job.Status.UncountedTerminatedPods.Succeeded) != 0 || job.Status.Active != 1 {
		t.Fatalf("got succeeded %d uncounted %v active %d, want 1, none, 1", job.Status.Succeeded, job.Status.UncountedTerminatedPods, job.Status.Active)
	}
	job = fx.sync(t, "ns/pi")
	if job.Status.Succeeded != 1 {
		t.Fatalf("second sync: got succeeded %d, want still 1", job.Status.Succeeded)
	}
	fx.setPhase(t, pods[1].Name, corev1.PodSucceeded)
	job = fx.sync(t, "ns/pi")
	job = fx.sync(t, "ns/pi")
	if job.Status.Succeeded != 2 || !finished(job) || job.Status.CompletionTime == nil {
		t.Fatalf("got succeeded %d conditions %+v, want 2 and Complete", job.Status.Succeeded, job.Status.Conditions)
	}
	if c := findCondition(job, batchv1.JobSuccessCriteriaMet); c == nil {
		t.Errorf("got conditions %+v, want SuccessCriteriaMet too", job.Status.Conditions)
	}
	for _, p := range fx.pods(t) {
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s still has finalizers %v", p.Name, p.Finalizers)
		}
	}
}

func TestSyncBackoffLimitAndBackoffDelay(t *testing.T) {
	fx := newFixture(t, testJob(1, 1))
	fakeNames(fx)
	fx.sync(t, "ns/pi")
	first := fx.pods(t)[0].Name
	fx.setPhase(t, first, corev1.PodFailed)
	job := fx.sync(t, "ns/pi")
	if job.Status.Failed != 1 || len(fx.pods(t)) != 1 {
		t.Fatalf("got failed %d pods %d, want 1 failed and no replacement during backoff", job.Status.Failed, len(fx.pods(t)))
	}
	fx.clk.Step(11 * time.Second)
	fx.sync(t, "ns/pi")
	pods := fx.pods(t)
	if len(pods) != 2 {
		t.Fatalf("after backoff: got %d pods, want a replacement", len(pods))
	}
	for _, p := range pods {
		if p.Name != first {
			fx.setPhase(t, p.Name, corev1.PodFailed)
		}
	}
	job = fx.sync(t, "ns/pi")
	job = fx.sync(t, "ns/pi")
	c := findCondition(job, batchv1.JobFailed)
	if job.Status.Failed != 2 || c == nil || c.Reason != reasonBackoffLimitExceeded {
		t.Fatalf("got failed %d conditions %+v, want 2 and Failed/BackoffLimitExceeded", job.Status.Failed, job.Status.Conditions)
	}
}

func TestSyncIndexed(t *testing.T) {
	j := testJob(3, 2)
	j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	fx := newFixture(t, j)
	fakeNames(fx)
	fx.sync(t, "ns/pi")
	pods := fx.pods(t)
	if len(pods) != 2 {
		t.Fatalf("got %d pods, want 2 (parallelism)", len(pods))
	}
	var idx0 string
	for _, p := range pods {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		if ix == "0" {
			idx0 = p.Name
		}
		if p.Spec.Hostname != "pi-"+ix || p.Spec.Containers[0].Env[0].Name != "JOB_COMPLETION_INDEX" {
			t.Errorf("pod %s: hostname %s env %v, want pi-%s and JOB_COMPLETION_INDEX", p.Name, p.Spec.Hostname, p.Spec.Containers[0].Env, ix)
		}
	}
	fx.setPhase(t, idx0, corev1.PodSucceeded)
	job := fx.sync(t, "ns/pi")
	if job.Status.CompletedIndexes != "0" || job.Status.Succeeded != 1 {
		t.Fatalf("got completedIndexes %q succeeded %d, want \"0\" and 1", job.Status.CompletedIndexes, job.Status.Succeeded)
	}
	fx.sync(t, "ns/pi")
	found := false
	for _, p := range fx.pods(t) {
		found = found || p.Annotations[batchv1.JobCompletionIndexAnnotation] == "2"
	}
	if !found {
		t.Errorf("want a pod for index 2 after index 0 succeeded")
	}
}

func TestSyncSuspend(t *testing.T) {
	j := testJob(1, 1)
	j.Spec.Suspend = ptr.To(true)
	fx := newFixture(t, j)
	job := fx.sync(t, "ns/pi")
	if len(fx.pods(t)) != 0 || findCondition(job, batchv1.JobSuspended) == nil || job.Status.StartTime != nil {
		t.Fatalf("suspended: got %d pods conditions %+v, want none and Suspended", len(fx.pods(t)), job.Status.Conditions)
	}
}

func TestSyncActiveDeadline(t *testing.T) {
	j := testJob(1, 1)
	j.Spec.ActiveDeadlineSeconds = ptr.To(int64(30))
	fx := newFixture(t, j)
	fakeNames(fx)
	fx.sync(t, "ns/pi")
	fx.clk.Step(31 * time.Second)
	job := fx.sync(t, "ns/pi")
	if c := findCondition(job, batchv1.JobFailureTarget); c == nil || c.Reason != reasonDeadlineExceeded {
		t.Fatalf("got conditions %+v, want FailureTarget DeadlineExceeded", job.Status.Conditions)
	}
}
