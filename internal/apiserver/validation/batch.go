package validation

import (
	"fmt"
	"regexp"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
	maxParallelismIndexed    = 100000
	maxFailedIndexesIndexed  = 100_000
	maxManagedByLength       = 63
	maxPodFailurePolicyRules = 20
)

// jobWithGeneratedSelector returns the Job upstream validates: unless the
// user chose a manual selector, the selector and template labels are the
// generated ones (upstream generates them inside Validate). The input is not
// modified.
func jobWithGeneratedSelector(job *batchv1.Job) *batchv1.Job {
	if deref(job.Spec.ManualSelector, false) {
		return job
	}
	j := job.DeepCopy()
	if j.Spec.Template.Labels == nil {
		j.Spec.Template.Labels = map[string]string{}
	}
	for _, k := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := j.Spec.Template.Labels[k]; !ok {
			j.Spec.Template.Labels[k] = j.Name
		}
	}
	for _, k := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := j.Spec.Template.Labels[k]; !ok {
			j.Spec.Template.Labels[k] = string(j.UID)
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
	return j
}

// validateHasLabel is core's ValidateHasLabel.
func validateHasLabel(meta metav1.ObjectMeta, fldPath *field.Path, key, expected string) field.ErrorList {
	actual, ok := meta.Labels[key]
	if !ok {
		return field.ErrorList{field.Required(fldPath.Child("labels").Key(key), fmt.Sprintf("must be '%s'", expected))}
	}
	if actual != expected {
		return field.ErrorList{field.Invalid(fldPath.Child("labels").Key(key), meta.Labels, fmt.Sprintf("must be '%s'", expected))}
	}
	return nil
}

func validateGeneratedSelector(job *batchv1.Job) field.ErrorList {
	if deref(job.Spec.ManualSelector, false) || job.Spec.Selector == nil {
		return nil
	}
	var allErrs field.ErrorList
	if job.UID == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("metadata").Child("uid"), ""))
	}
	tmplMeta := field.NewPath("spec").Child("template").Child("metadata")
	allErrs = append(allErrs, validateHasLabel(job.Spec.Template.ObjectMeta, tmplMeta, legacyControllerUIDLabel, string(job.UID))...)
	allErrs = append(allErrs, validateHasLabel(job.Spec.Template.ObjectMeta, tmplMeta, legacyJobNameLabel, job.Name)...)
	allErrs = append(allErrs, validateHasLabel(job.Spec.Template.ObjectMeta, tmplMeta, batchv1.ControllerUidLabel, string(job.UID))...)
	allErrs = append(allErrs, validateHasLabel(job.Spec.Template.ObjectMeta, tmplMeta, batchv1.JobNameLabel, job.Name)...)
	expected := labels.Set{
		legacyControllerUIDLabel:   string(job.UID),
		legacyJobNameLabel:         job.Name,
		batchv1.ControllerUidLabel: string(job.UID),
		batchv1.JobNameLabel:       job.Name,
	}
	if selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !selector.Matches(expected) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec").Child("selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return allErrs
}

func validateJob(job *batchv1.Job) field.ErrorList {
	job = jobWithGeneratedSelector(job)
	allErrs := validateObjectMeta(&job.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateGeneratedSelector(job)...)
	allErrs = append(allErrs, validateJobSpecWithSelector(&job.Spec, field.NewPath("spec"))...)
	if deref(job.Spec.CompletionMode, "") == batchv1.IndexedCompletion && deref(job.Spec.Completions, 0) > 0 {
		// Indexed pods are named <job>-<index>; the largest must be a label.
		host := fmt.Sprintf("%s-%d", job.Name, *job.Spec.Completions-1)
		if len(validation.IsDNS1123Label(host)) > 0 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("metadata").Child("name"), job.Name,
				fmt.Sprintf("will not able to create pod with invalid DNS label: %s", host)))
		}
	}
	return allErrs
}

func validateJobSpecWithSelector(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateJobSpec(spec, fldPath)
	if spec.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	}
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, selectorMismatchMsg))
	}
	return allErrs
}

func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{
		{"parallelism", spec.Parallelism}, {"completions", spec.Completions},
	} {
		if f.v != nil {
			allErrs = append(allErrs, validateNonnegativeField(int64(*f.v), fldPath.Child(f.name))...)
		}
	}
	if spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegativeField(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	}
	for _, f := range []struct {
		name string
		v    *int32
	}{
		{"backoffLimit", spec.BackoffLimit}, {"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished},
		{"backoffLimitPerIndex", spec.BackoffLimitPerIndex},
	} {
		if f.v != nil {
			allErrs = append(allErrs, validateNonnegativeField(int64(*f.v), fldPath.Child(f.name))...)
		}
	}
	if spec.MaxFailedIndexes != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.MaxFailedIndexes), fldPath.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
	}
	if spec.ManagedBy != nil {
		allErrs = append(allErrs, validation.IsDomainPrefixedPath(fldPath.Child("managedBy"), *spec.ManagedBy)...)
		if len(*spec.ManagedBy) > maxManagedByLength {
			allErrs = append(allErrs, field.TooLong(fldPath.Child("managedBy"), "", maxManagedByLength))
		}
	}
	indexed := deref(spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
	if spec.CompletionMode != nil {
		if *spec.CompletionMode != batchv1.NonIndexedCompletion && *spec.CompletionMode != batchv1.IndexedCompletion {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("completionMode"), spec.CompletionMode,
				[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
		if indexed {
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
			if spec.Parallelism != nil && *spec.Parallelism > maxParallelismIndexed {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("parallelism"), *spec.Parallelism,
					fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismIndexed, batchv1.IndexedCompletion)))
			}
			if spec.Completions != nil && spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > *spec.Completions {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "must be less than or equal to completions"))
			}
			if spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > maxFailedIndexesIndexed {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexesIndexed)))
			}
		}
	}
	if !indexed {
		if spec.BackoffLimitPerIndex != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if spec.MaxFailedIndexes != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "requires indexed completion mode"))
		}
	}
	if spec.PodFailurePolicy != nil && len(spec.PodFailurePolicy.Rules) > maxPodFailurePolicyRules {
		allErrs = append(allErrs, field.TooMany(fldPath.Child("podFailurePolicy").Child("rules"), len(spec.PodFailurePolicy.Rules), maxPodFailurePolicyRules))
	}
	if spec.SuccessPolicy != nil && !indexed {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("successPolicy"), internalValue(*spec.SuccessPolicy), "requires indexed completion mode"))
	}
	if spec.PodReplacementPolicy != nil {
		p := fldPath.Child("podReplacementPolicy")
		if spec.PodFailurePolicy != nil {
			if *spec.PodReplacementPolicy != batchv1.Failed {
				allErrs = append(allErrs, field.NotSupported(p, *spec.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed}))
			}
		} else if *spec.PodReplacementPolicy != batchv1.Failed && *spec.PodReplacementPolicy != batchv1.TerminatingOrFailed {
			allErrs = append(allErrs, field.NotSupported(p, *spec.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}))
		}
	}
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, fldPath.Child("template"))...)
	rp := fldPath.Child("template", "spec", "restartPolicy")
	switch spec.Template.Spec.RestartPolicy {
	case corev1.RestartPolicyAlways, "":
		// Defaulting turns an omitted policy into Always, so both mean
		// the user did not pick one a Job can use.
		allErrs = append(allErrs, field.Required(rp, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		if spec.PodFailurePolicy != nil && spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			allErrs = append(allErrs, field.Invalid(rp, spec.Template.Spec.RestartPolicy, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(rp, spec.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	return allErrs
}

// validateJobUpdate: most of a Job's spec is fixed once created. The pod
// template's scheduling directives may change while the Job is suspended
// and has never started.
func validateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fldPath := field.NewPath("spec")
	allErrs = append(allErrs, validateJobSpecWithSelector(&job.Spec, fldPath)...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.Completions, old.Spec.Completions, fldPath.Child("completions"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.Selector, old.Spec.Selector, fldPath.Child("selector"))...)
	oldTemplate := &old.Spec.Template
	if deref(job.Spec.Suspend, false) && old.Status.StartTime == nil {
		t := old.Spec.Template.DeepCopy()
		nt := job.Spec.Template
		switch {
		case nt.Spec.Affinity == nil && t.Spec.Affinity != nil:
			t.Spec.Affinity.NodeAffinity = nil
			if semanticEqual(*t.Spec.Affinity, corev1.Affinity{}) {
				t.Spec.Affinity = nil
			}
		case nt.Spec.Affinity != nil && t.Spec.Affinity == nil:
			t.Spec.Affinity = &corev1.Affinity{NodeAffinity: nt.Spec.Affinity.NodeAffinity}
		case nt.Spec.Affinity != nil && t.Spec.Affinity != nil:
			t.Spec.Affinity.NodeAffinity = nt.Spec.Affinity.NodeAffinity
		}
		t.Spec.NodeSelector = nt.Spec.NodeSelector
		t.Spec.Tolerations = nt.Spec.Tolerations
		t.Annotations = nt.Annotations
		t.Labels = nt.Labels
		t.Spec.SchedulingGates = nt.Spec.SchedulingGates
		oldTemplate = t
	}
	allErrs = append(allErrs, validateImmutableField(&job.Spec.Template, oldTemplate, fldPath.Child("template"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.CompletionMode, old.Spec.CompletionMode, fldPath.Child("completionMode"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy, fldPath.Child("podFailurePolicy"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex, fldPath.Child("backoffLimitPerIndex"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.ManagedBy, old.Spec.ManagedBy, fldPath.Child("managedBy"))...)
	allErrs = append(allErrs, validateImmutableField(job.Spec.SuccessPolicy, old.Spec.SuccessPolicy, fldPath.Child("successPolicy"))...)
	return allErrs
}

func validateJobStatusUpdate(job, old *batchv1.Job) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := job.Status
	allErrs = append(allErrs, validateNonnegativeField(int64(s.Active), p.Child("active"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.Succeeded), p.Child("succeeded"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.Failed), p.Child("failed"))...)
	if s.Ready != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*s.Ready), p.Child("ready"))...)
	}
	if s.Terminating != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*s.Terminating), p.Child("terminating"))...)
	}
	readyChanged := deref(s.Ready, -1) != deref(old.Status.Ready, -1)
	if readyChanged && s.Ready != nil && *s.Ready > s.Active {
		allErrs = append(allErrs, field.Invalid(p.Child("ready"), *s.Ready, "cannot set more ready pods than active"))
	}
	if s.Failed < old.Status.Failed {
		allErrs = append(allErrs, field.Invalid(p.Child("failed"), s.Failed, "cannot decrease the failed counter"))
	}
	// An indexed Job whose completions track parallelism may be scaled down,
	// which lowers its succeeded count.
	indexed := deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
	scalable := indexed && deref(job.Spec.Completions, -1) == deref(job.Spec.Parallelism, -2)
	if !scalable && s.Succeeded < old.Status.Succeeded {
		allErrs = append(allErrs, field.Invalid(p.Child("succeeded"), s.Succeeded, "cannot decrease the succeeded counter"))
	}
	return allErrs
}

// CronJob

func validateCronJobCreate(cj *batchv1.CronJob) field.ErrorList {
	allErrs := validateObjectMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateCronJobSpec(&cj.Spec, nil, field.NewPath("spec"))...)
	// Jobs are named <cronjob>-<11 digit timestamp> and must stay a label.
	if len(cj.Name) > validation.DNS1035LabelMaxLength-11 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("metadata").Child("name"), cj.Name, "must be no more than 52 characters"))
	}
	return allErrs
}

func validateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateCronJobSpec(&cj.Spec, &old.Spec, field.NewPath("spec"))...)
}

func validateCronJobSpec(spec, oldSpec *batchv1.CronJobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	schedPath := fldPath.Child("schedule")
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(schedPath, ""))
	} else {
		allowTZ := oldSpec != nil && strings.Contains(oldSpec.Schedule, "TZ")
		if err := parseCronSchedule(spec.Schedule); err != nil {
			allErrs = append(allErrs, field.Invalid(schedPath, spec.Schedule, err.Error()))
		}
		switch {
		case allowTZ && strings.Contains(spec.Schedule, "TZ") && spec.TimeZone != nil:
			allErrs = append(allErrs, field.Invalid(schedPath, spec.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
		case !allowTZ && strings.Contains(spec.Schedule, "TZ"):
			allErrs = append(allErrs, field.Invalid(schedPath, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	if spec.StartingDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegativeField(*spec.StartingDeadlineSeconds, fldPath.Child("startingDeadlineSeconds"))...)
	}
	if oldSpec == nil || deref(oldSpec.TimeZone, "\x00") != deref(spec.TimeZone, "\x00") {
		allErrs = append(allErrs, validateTimeZone(spec.TimeZone, fldPath.Child("timeZone"))...)
	}
	allErrs = append(allErrs, validateEnum(spec.ConcurrencyPolicy,
		[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}, fldPath.Child("concurrencyPolicy"))...)
	allErrs = append(allErrs, validateJobTemplateSpec(&spec.JobTemplate, fldPath.Child("jobTemplate"))...)
	if spec.SuccessfulJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.SuccessfulJobsHistoryLimit), fldPath.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.FailedJobsHistoryLimit), fldPath.Child("failedJobsHistoryLimit"))...)
	}
	return allErrs
}

func validateJobTemplateSpec(spec *batchv1.JobTemplateSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateJobSpec(&spec.Spec, fldPath.Child("spec"))
	if spec.Spec.Selector != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("spec", "selector"), spec.Spec.Selector, "`selector` will be auto-generated"))
	}
	if deref(spec.Spec.ManualSelector, false) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "manualSelector"), spec.Spec.ManualSelector, []string{"nil", "false"}))
	}
	return allErrs
}

// validTimeZoneCharacters is the IANA name component rule.
var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

// validateTimeZone checks the shape of an IANA zone name. Upstream also
// loads the zone from the tz database; that is I/O this package avoids, so
// a well-formed but unknown name is accepted here.
func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(fldPath, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	return nil
}
