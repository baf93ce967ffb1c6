package job

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func ix(list ...int) Indexes {
	out := Indexes{}
	for _, i := range list {
		out[i] = true
	}
	return out
}

func TestIndexesToCreate(t *testing.T) {
	tests := []struct {
		name              string
		completions, lim  int
		completed, failed Indexes
		running, waiting  Indexes
		want              []int
	}{
		{"all free", 4, 2, nil, nil, nil, nil, []int{0, 1}},
		{"skips completed and running", 5, 3, ix(0), nil, ix(1), nil, []int{2, 3, 4}},
		{"failed index is not retried", 3, 3, nil, ix(1), nil, nil, []int{0, 2}},
		{"index in backoff waits", 3, 3, nil, nil, nil, ix(0), []int{1, 2}},
		{"everything done", 3, 3, ix(0, 2), ix(1), nil, nil, nil},
		{"no room", 3, 0, nil, nil, nil, nil, nil},
	}
	for _, tc := range tests {
		got := IndexesToCreate(tc.completions, tc.lim, tc.completed, tc.failed, tc.running, tc.waiting)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIndexFailed(t *testing.T) {
	tests := []struct {
		prev      int
		limit     int32
		failIndex bool
		want      bool
	}{
		{0, 0, false, true},  // first failure over a limit of 0
		{0, 1, false, false}, // one retry allowed
		{1, 1, false, true},  // second failure over a limit of 1
		{2, 3, false, false},
		{0, 5, true, true}, // FailIndex fails at once
	}
	for _, tc := range tests {
		if got := IndexFailed(tc.prev, tc.limit, tc.failIndex); got != tc.want {
			t.Errorf("IndexFailed(%d, %d, %v) got %v, want %v", tc.prev, tc.limit, tc.failIndex, got, tc.want)
		}
	}
}

func TestFailedIndexesOutcome(t *testing.T) {
	tests := []struct {
		name              string
		completions       int
		completed, failed Indexes
		max               *int32
		want              string
	}{
		{"nothing failed", 3, ix(0, 1, 2), nil, nil, ""},
		{"failed but others pending", 3, ix(0), ix(1), nil, ""},
		{"all done, one failed", 3, ix(0, 2), ix(1), nil, ReasonFailedIndexes},
		{"at the max goes on", 4, ix(0), ix(1, 2), ptr.To(int32(2)), ""},
		{"over the max fails at once", 4, nil, ix(1, 2, 3), ptr.To(int32(2)), ReasonMaxFailedIndexesExceeded},
		{"max 0, one failed", 4, nil, ix(3), ptr.To(int32(0)), ReasonMaxFailedIndexesExceeded},
		{"all done within max still fails", 2, ix(0), ix(1), ptr.To(int32(1)), ReasonFailedIndexes},
	}
	for _, tc := range tests {
		if got, _ := FailedIndexesOutcome(tc.completions, tc.completed, tc.failed, tc.max); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestFailedIndexesFormat(t *testing.T) {
	for _, tc := range []struct {
		set  Indexes
		want string
	}{
		{ix(), ""}, {ix(3), "3"}, {ix(1, 2), "1,2"}, {ix(0, 1, 2, 5, 7, 8, 9), "0-2,5,7-9"},
	} {
		if got := tc.set.String(); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.set, got, tc.want)
		}
		if got := ParseIndexes(tc.want, 10).String(); got != tc.want {
			t.Errorf("round trip of %q got %q", tc.want, got)
		}
	}
}

func indexPod(name string, index, failCount int, phase corev1.PodPhase, exit int32, finished time.Time) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: map[string]string{
		batchv1.JobCompletionIndexAnnotation: fmt.Sprint(index),
	}}, Status: corev1.PodStatus{Phase: phase}}
	if failCount >= 0 {
		p.Annotations[IndexFailureCountAnnotation] = fmt.Sprint(failCount)
	}
	if phase == corev1.PodFailed {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, FinishedAt: metav1.NewTime(finished)}}}}
	}
	return p
}

func TestCountIndexFailures(t *testing.T) {
	t0 := time.Unix(5000, 0)
	job := testJob(4, 4)
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{7}},
	}}}
	pods := []*corev1.Pod{
		indexPod("a", 0, 0, corev1.PodFailed, 1, t0),
		indexPod("b", 0, 1, corev1.PodFailed, 1, t0.Add(time.Minute)),
		indexPod("c", 1, -1, corev1.PodFailed, 1, t0), // no annotation counts as 0
		indexPod("d", 2, 0, corev1.PodFailed, 7, t0),  // ignored by the policy
		indexPod("e", 3, 0, corev1.PodRunning, 0, t0),
	}
	got := CountIndexFailures(job, pods, t0.Add(time.Hour))
	want := map[int]IndexFailures{0: {2, t0.Add(time.Minute)}, 1: {1, t0}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if g := got[k]; g.Count != w.Count || !g.Last.Equal(w.Last) {
			t.Errorf("index %d: got %+v, want %+v", k, g, w)
		}
	}
}

func perIndexJob(completions, parallelism, perIndex int32) *batchv1.Job {
	j := testJob(completions, parallelism)
	j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	j.Spec.BackoffLimit = ptr.To(int32(math.MaxInt32))
	j.Spec.BackoffLimitPerIndex = ptr.To(perIndex)
	return j
}

// podsByIndex maps each index to its pods' names, oldest first.
func (fx *fixture) podsOfIndex(t *testing.T, index string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range fx.pods(t) {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == index {
			out = append(out, p)
		}
	}
	return out
}

func (fx *fixture) failPod(t *testing.T, name string, exit int32) {
	p, _ := fx.client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	p.Status.Phase = corev1.PodFailed
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, FinishedAt: metav1.NewTime(fx.clk.Now())}}}}
	if _, err := fx.client.CoreV1().Pods("ns").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSyncBackoffLimitPerIndex(t *testing.T) {
	fx := newFixture(t, perIndexJob(3, 3, 1))
	fakeNames(fx)
	job := fx.sync(t, "ns/pi")
	if fi(job) != "" {
		t.Fatalf("got failedIndexes %q, want \"\"", fi(job))
	}
	for _, p := range fx.pods(t) {
		if p.Annotations[IndexFailureCountAnnotation] != "0" {
			t.Errorf("pod %s: got failure count %q, want \"0\"", p.Name, p.Annotations[IndexFailureCountAnnotation])
		}
	}
	// First failure of index 0: retried after its backoff, count 1.
	fx.failPod(t, fx.podsOfIndex(t, "0")[0].Name, 1)
	job = fx.sync(t, "ns/pi")
	if fi(job) != "" || job.Status.Failed != 1 || len(fx.podsOfIndex(t, "0")) != 1 {
		t.Fatalf("got failedIndexes %q failed %d pods of 0 %d, want \"\", 1, 1 (backoff)", fi(job), job.Status.Failed, len(fx.podsOfIndex(t, "0")))
	}
	fx.clk.Step(11 * time.Second)
	fx.sync(t, "ns/pi")
	pods0 := fx.podsOfIndex(t, "0")
	if len(pods0) != 2 {
		t.Fatalf("after backoff: got %d pods of index 0, want a replacement", len(pods0))
	}
	var retry string
	for _, p := range pods0 {
		if p.Status.Phase != corev1.PodFailed {
			retry = p.Name
			if got := p.Annotations[IndexFailureCountAnnotation]; got != "1" {
				t.Errorf("replacement: got failure count %q, want \"1\"", got)
			}
		}
	}
	// Second failure exceeds backoffLimitPerIndex 1: the index fails for good.
	fx.failPod(t, retry, 1)
	job = fx.sync(t, "ns/pi")
	if fi(job) != "0" || job.Status.Failed != 2 {
		t.Fatalf("got failedIndexes %q failed %d, want \"0\" and 2", fi(job), job.Status.Failed)
	}
	if findCondition(job, batchv1.JobFailureTarget) != nil {
		t.Fatalf("got conditions %+v, want the job to go on with other indexes", job.Status.Conditions)
	}
	fx.clk.Step(time.Hour)
	fx.sync(t, "ns/pi")
	if n := len(fx.podsOfIndex(t, "0")); n != 2 {
		t.Fatalf("got %d pods of failed index 0, want no retry (2)", n)
	}
	for _, i := range []string{"1", "2"} {
		fx.setPhase(t, fx.podsOfIndex(t, i)[0].Name, corev1.PodSucceeded)
	}
	job = fx.sync(t, "ns/pi")
	job = fx.sync(t, "ns/pi")
	c := findCondition(job, batchv1.JobFailed)
	if c == nil || c.Reason != ReasonFailedIndexes || job.Status.CompletedIndexes != "1,2" || fi(job) != "0" {
		t.Fatalf("got conditions %+v completed %q failed %q, want Failed/FailedIndexes, \"1,2\", \"0\"",
			job.Status.Conditions, job.Status.CompletedIndexes, fi(job))
	}
}

func TestSyncMaxFailedIndexesExceeded(t *testing.T) {
	j := perIndexJob(4, 4, 0)
	j.Spec.MaxFailedIndexes = ptr.To(int32(1))
	fx := newFixture(t, j)
	fakeNames(fx)
	fx.sync(t, "ns/pi")
	fx.failPod(t, fx.podsOfIndex(t, "1")[0].Name, 1)
	job := fx.sync(t, "ns/pi")
	if fi(job) != "1" || findCondition(job, batchv1.JobFailureTarget) != nil {
		t.Fatalf("got failedIndexes %q conditions %+v, want \"1\" and still running (max 1)", fi(job), job.Status.Conditions)
	}
	fx.failPod(t, fx.podsOfIndex(t, "3")[0].Name, 1)
	job = fx.sync(t, "ns/pi")
	c := findCondition(job, batchv1.JobFailureTarget)
	if fi(job) != "1,3" || c == nil || c.Reason != ReasonMaxFailedIndexesExceeded {
		t.Fatalf("got failedIndexes %q conditions %+v, want \"1,3\" and FailureTarget/MaxFailedIndexesExceeded", fi(job), job.Status.Conditions)
	}
	job = fx.sync(t, "ns/pi") // remaining pods were deleted
	if c := findCondition(job, batchv1.JobFailed); c == nil || c.Reason != ReasonMaxFailedIndexesExceeded {
		t.Fatalf("got conditions %+v, want Failed/MaxFailedIndexesExceeded", job.Status.Conditions)
	}
}

func TestSyncFailIndexAction(t *testing.T) {
	j := perIndexJob(2, 2, 3)
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
	}}}
	fx := newFixture(t, j)
	fakeNames(fx)
	fx.sync(t, "ns/pi")
	fx.failPod(t, fx.podsOfIndex(t, "0")[0].Name, 42)
	fx.failPod(t, fx.podsOfIndex(t, "1")[0].Name, 1)
	job := fx.sync(t, "ns/pi")
	if fi(job) != "0" {
		t.Fatalf("got failedIndexes %q, want \"0\" (FailIndex) with index 1 retried", fi(job))
	}
	fx.clk.Step(11 * time.Second)
	fx.sync(t, "ns/pi")
	if n0, n1 := len(fx.podsOfIndex(t, "0")), len(fx.podsOfIndex(t, "1")); n0 != 1 || n1 != 2 {
		t.Fatalf("got %d pods of index 0 and %d of index 1, want 1 (not retried) and 2 (retried)", n0, n1)
	}
}

// fi is the job's status.failedIndexes, "<nil>" when unset.
func fi(job *batchv1.Job) string {
	return ptr.Deref(job.Status.FailedIndexes, "<nil>")
}
