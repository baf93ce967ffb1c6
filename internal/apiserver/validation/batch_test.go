package validation

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// newJob is a Job as a user submits it: no selector, which the server
// generates from the uid.
func newJob() *batchv1.Job {
	t := podTemplate(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: objMeta("pi"),
		Spec: batchv1.JobSpec{
			Parallelism:    ptr(int32(1)),
			Completions:    ptr(int32(1)),
			BackoffLimit:   ptr(int32(6)),
			CompletionMode: ptr(batchv1.NonIndexedCompletion),
			Suspend:        ptr(false),
			Template:       t,
		},
	}
}

// storedJob is a Job after create: selector and labels generated.
func storedJob() *batchv1.Job {
	return jobWithGeneratedSelector(newJob())
}

func TestJobCreate(t *testing.T) {
	runCreate(t, newJob, []createCase[*batchv1.Job]{
		{name: "valid, selector generated"},
		{name: "valid, already generated", mutate: func(j *batchv1.Job) { *j = *storedJob() }},
		{name: "valid manual selector", mutate: func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"job": "pi"}}
			j.Spec.Template.Labels = map[string]string{"job": "pi"}
		}},
		{name: "restartPolicy Always", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			want: []fe{required("spec.template.spec.restartPolicy")}},
		{name: "unknown restartPolicy", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "Sometimes" },
			// The pod spec check and the Job check both reject it.
			want: []fe{notSupported("spec.template.spec.restartPolicy"), notSupported("spec.template.spec.restartPolicy")}},
		{name: "negative completions", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(-1)) },
			want: []fe{invalid("spec.completions")}},
		{name: "negative parallelism", mutate: func(j *batchv1.Job) { j.Spec.Parallelism = ptr(int32(-2)) },
			want: []fe{invalid("spec.parallelism")}},
		{name: "negative backoffLimit", mutate: func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr(int32(-1)) },
			want: []fe{invalid("spec.backoffLimit")}},
		{name: "manual selector not matching", mutate: func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"job": "pi"}}
		}, want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "manual mode without selector", mutate: func(j *batchv1.Job) { j.Spec.ManualSelector = ptr(true) },
			want: []fe{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{name: "conflicting job-name label", mutate: func(j *batchv1.Job) {
			j.Spec.Template.Labels = map[string]string{"batch.kubernetes.io/job-name": "other"}
		}, want: []fe{invalid("spec.template.metadata.labels[batch.kubernetes.io/job-name]")}},
		{name: "indexed without completions", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions = nil
		}, want: []fe{required("spec.completions")}},
		{name: "missing image", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "" },
			want: []fe{required("spec.template.spec.containers[0].image")}},
	})
	j := newJob()
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	expectMessage(t, ValidateCreate(j), `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`)
}

func TestJobCreateDoesNotMutate(t *testing.T) {
	j := newJob()
	ValidateCreate(j)
	if j.Spec.Selector != nil || j.Spec.Template.Labels != nil {
		t.Errorf("got selector %v, labels %v after validation, want the input untouched", j.Spec.Selector, j.Spec.Template.Labels)
	}
}

func TestJobUpdate(t *testing.T) {
	runUpdate(t, storedJob, false, []updateCase[*batchv1.Job]{
		{name: "no change"},
		{name: "parallelism may change", mutate: func(j *batchv1.Job) { j.Spec.Parallelism = ptr(int32(3)) }},
		{name: "suspend may change", mutate: func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) }},
		{name: "template immutable", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:6" },
			want: []fe{invalid("spec.template")}},
		{name: "completions immutable", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(5)) },
			want: []fe{invalid("spec.completions")}},
		{name: "selector immutable", mutate: func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["extra"] = "x"
			j.Spec.Template.Labels["extra"] = "x"
		}, want: []fe{invalid("spec.selector"), invalid("spec.template")}},
		{name: "suspended job may change node selector", mutate: func(j *batchv1.Job) {
			j.Spec.Suspend = ptr(true)
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
		}},
	})
	runUpdate(t, storedJob, true, []updateCase[*batchv1.Job]{
		{name: "progress", mutate: func(j *batchv1.Job) { j.Status.Active = 1; j.Status.Ready = ptr(int32(1)) }},
		{name: "negative active", mutate: func(j *batchv1.Job) { j.Status.Active = -1 },
			want: []fe{invalid("status.active")}},
		{name: "more ready than active", mutate: func(j *batchv1.Job) { j.Status.Ready = ptr(int32(2)) },
			want: []fe{invalid("status.ready")}},
	})
}

func newCronJob() *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: objMeta("nightly"),
		Spec: batchv1.CronJobSpec{
			Schedule:                   "0 3 * * *",
			ConcurrencyPolicy:          batchv1.AllowConcurrent,
			Suspend:                    ptr(false),
			SuccessfulJobsHistoryLimit: ptr(int32(3)),
			FailedJobsHistoryLimit:     ptr(int32(1)),
			JobTemplate:                batchv1.JobTemplateSpec{Spec: newJob().Spec},
		},
	}
}

func TestCronJob(t *testing.T) {
	runCreate(t, newCronJob, []createCase[*batchv1.CronJob]{
		{name: "valid"},
		{name: "macro schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }},
		{name: "time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Europe/Berlin") }},
		{name: "missing schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "" },
			want: []fe{required("spec.schedule")}},
		{name: "bad schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "every day" },
			want: []fe{invalid("spec.schedule")}},
		{name: "minute out of range", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" },
			want: []fe{invalid("spec.schedule")}},
		{name: "TZ in schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 3 * * *" },
			want: []fe{invalid("spec.schedule")}},
		{name: "bad concurrency policy", mutate: func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" },
			want: []fe{notSupported("spec.concurrencyPolicy")}},
		{name: "job template with selector", mutate: func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}, want: []fe{invalid("spec.jobTemplate.spec.selector")}},
		{name: "job template restartPolicy Always", mutate: func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, want: []fe{required("spec.jobTemplate.spec.template.spec.restartPolicy")}},
		{name: "negative history limit", mutate: func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = ptr(int32(-1)) },
			want: []fe{invalid("spec.failedJobsHistoryLimit")}},
		{name: "name longer than 52", mutate: func(c *batchv1.CronJob) { c.Name = "a234567890123456789012345678901234567890123456789012x" },
			want: []fe{invalid("metadata.name")}},
		{name: "local time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Local") },
			want: []fe{invalid("spec.timeZone")}},
	})
	c := newCronJob()
	c.Spec.Schedule = "61 * * * *"
	expectMessage(t, ValidateCreate(c), `spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61`)
	c.Spec.Schedule = "* * *"
	expectMessage(t, ValidateCreate(c), `spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]`)
}

func TestParseCronSchedule(t *testing.T) {
	for _, tc := range []struct {
		spec, err string
	}{
		{"*/5 * * * *", ""},
		{"0 0 1 jan mon-fri", ""},
		{"0 0 1,15 * *", ""},
		{"5-10/2 * * * SUN", ""},
		{"@every 90m", ""},
		{"@daily", ""},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", ""},
		{"", "empty spec string"},
		{"@fortnightly", "unrecognized descriptor: @fortnightly"},
		{"@every forever", `failed to parse duration @every forever: time: invalid duration "forever"`},
		{"0 24 * * *", "end of range (24) above maximum (23): 24"},
		{"0 0 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"0 0 * 13 *", "end of range (13) above maximum (12): 13"},
		{"10-5 * * * *", "beginning of range (10) beyond end of range (5): 10-5"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
		{"x * * * *", `failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax`},
		{"0 0 * * * *", "expected exactly 5 fields, found 6: [0 0 * * * *]"},
	} {
		err := parseCronSchedule(tc.spec)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("parseCronSchedule(%q): got %q, want %q", tc.spec, got, tc.err)
		}
	}
}
