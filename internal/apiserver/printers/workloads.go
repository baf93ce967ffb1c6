package printers

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// replicas dereferences a replica count as conversion to the internal type
// does: unset is zero.
func replicas(r *int32) int64 {
	if r == nil {
		return 0
	}
	return int64(*r)
}

func deploymentRow(d *appsv1.Deployment, now time.Time) []interface{} {
	// Unlike the other workloads, upstream prints the deployment selector
	// without the "<none>" substitution.
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return []interface{}{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
		names, images, selector,
	}
}

func replicaSetRow(rs *appsv1.ReplicaSet, now time.Time) []interface{} {
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []interface{}{
		rs.Name, replicas(rs.Spec.Replicas), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

func statefulSetRow(s *appsv1.StatefulSet, now time.Time) []interface{} {
	names, images := containerCells(s.Spec.Template.Spec.Containers)
	return []interface{}{
		s.Name,
		fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, replicas(s.Spec.Replicas)),
		age(s.CreationTimestamp, now),
		names, images,
	}
}

func daemonSetRow(ds *appsv1.DaemonSet, now time.Time) []interface{} {
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	st := ds.Status
	return []interface{}{
		ds.Name,
		int64(st.DesiredNumberScheduled), int64(st.CurrentNumberScheduled), int64(st.NumberReady),
		int64(st.UpdatedNumberScheduled), int64(st.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		age(ds.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(ds.Spec.Selector),
	}
}

// controllerRevisionRow names the owning controller as "kind.group/name" in
// lower case, as `kubectl get` names resources.
func controllerRevisionRow(cr *appsv1.ControllerRevision, now time.Time) ([]interface{}, error) {
	controller := none
	if ref := metav1.GetControllerOf(cr); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("controllerrevision %q: owner apiVersion: %w", cr.Name, err)
		}
		gk := gv.WithKind(ref.Kind).GroupKind()
		controller = ref.Name
		if !gk.Empty() {
			controller = strings.ToLower(gk.String()) + "/" + ref.Name
		}
	}
	return []interface{}{cr.Name, controller, cr.Revision, age(cr.CreationTimestamp, now)}, nil
}

func jobRow(j *batchv1.Job, now time.Time) []interface{} {
	var completions string
	switch {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1:
		// A work-queue job: done once one pod succeeds, several run at once.
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}

	var jobDuration string
	switch {
	case j.Status.StartTime == nil:
	case j.Status.CompletionTime == nil:
		jobDuration = duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		jobDuration = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}

	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []interface{}{
		j.Name, jobStatus(j), completions, jobDuration, age(j.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(j.Spec.Selector),
	}
}

// jobStatus picks the STATUS cell in upstream's order of precedence.
func jobStatus(j *batchv1.Job) string {
	switch {
	case jobCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	case jobCondition(j, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

// jobCondition reports whether the first condition of the type is True.
func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func cronJobRow(cj *batchv1.CronJob, now time.Time) []interface{} {
	lastSchedule := none
	if cj.Status.LastScheduleTime != nil {
		lastSchedule = age(*cj.Status.LastScheduleTime, now)
	}
	timeZone := none
	if cj.Spec.TimeZone != nil {
		timeZone = *cj.Spec.TimeZone
	}
	tmpl := cj.Spec.JobTemplate.Spec
	names, images := containerCells(tmpl.Template.Spec.Containers)
	return []interface{}{
		cj.Name, cj.Spec.Schedule, timeZone, boolPtrString(cj.Spec.Suspend), int64(len(cj.Status.Active)),
		lastSchedule, age(cj.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(tmpl.Selector),
	}
}
