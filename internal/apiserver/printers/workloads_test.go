package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func template(names ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers(names...)}}
}

func TestDeploymentRow(t *testing.T) {
	tests := []struct {
		name string
		d    appsv1.Deployment
		want []interface{}
	}{
		{
			name: "rolling",
			d: appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Template: template("nginx", "sidecar"),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
			},
			want: []interface{}{"web", "2/3", int64(3), int64(2), "7m30s", "nginx,sidecar", "nginx:1,sidecar:1", "app=web"},
		},
		{
			name: "selector with expressions",
			d: appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(1)), Template: template("app"),
					Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"fe", "be"}},
					}}},
			},
			want: []interface{}{"web", "0/1", int64(0), int64(0), "7m30s", "app", "app:1", "tier in (be,fe)"},
		},
		{
			name: "no selector and no replicas",
			d:    appsv1.Deployment{},
			want: []interface{}{"web", "0/0", int64(0), int64(0), "7m30s", "", "", ""},
		},
		{
			name: "invalid selector",
			d: appsv1.Deployment{Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "tier", Operator: "Near"},
			}}}},
			want: []interface{}{"web", "0/0", int64(0), int64(0), "7m30s", "", "", "<invalid>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.d
			d.ObjectMeta = objMeta("web", 7*time.Minute+30*time.Second)
			checkRow(t, &d, tt.want)
		})
	}
}

func TestReplicaSetStatefulSetDaemonSetRows(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	checkRow(t, &appsv1.ReplicaSet{
		ObjectMeta: objMeta("web-5d4f", time.Hour),
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr(int32(3)), Selector: sel, Template: template("nginx")},
		Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
	}, []interface{}{"web-5d4f", int64(3), int64(3), int64(1), "60m", "nginx", "nginx:1", "app=web"})
	checkRow(t, &appsv1.ReplicaSet{ObjectMeta: objMeta("empty", time.Hour)},
		[]interface{}{"empty", int64(0), int64(0), int64(0), "60m", "", "", "<none>"})

	checkRow(t, &appsv1.StatefulSet{
		ObjectMeta: objMeta("db", time.Hour),
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(3)), Template: template("postgres")},
		Status:     appsv1.StatefulSetStatus{ReadyReplicas: 2},
	}, []interface{}{"db", "2/3", "60m", "postgres", "postgres:1"})

	ds := &appsv1.DaemonSet{
		ObjectMeta: objMeta("proxy", time.Hour),
		Spec:       appsv1.DaemonSetSpec{Selector: sel, Template: template("proxy")},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2,
			UpdatedNumberScheduled: 1, NumberAvailable: 2},
	}
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	checkRow(t, ds, []interface{}{"proxy", int64(3), int64(3), int64(2), int64(1), int64(2), "kubernetes.io/os=linux", "60m",
		"proxy", "proxy:1", "app=web"})
	checkRow(t, &appsv1.DaemonSet{ObjectMeta: objMeta("bare", time.Hour)},
		[]interface{}{"bare", int64(0), int64(0), int64(0), int64(0), int64(0), "<none>", "60m", "", "", "<none>"})
}

func TestControllerRevisionRow(t *testing.T) {
	owned := &appsv1.ControllerRevision{ObjectMeta: objMeta("web-7c9d", time.Hour), Revision: 2}
	owned.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "Pod", Name: "not-controller"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", Controller: ptr(true)},
	}
	checkRow(t, owned, []interface{}{"web-7c9d", "statefulset.apps/web", int64(2), "60m"})

	core := &appsv1.ControllerRevision{ObjectMeta: objMeta("r", time.Hour), Revision: 1}
	core.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Widget", Name: "w", Controller: ptr(true)}}
	checkRow(t, core, []interface{}{"r", "widget/w", int64(1), "60m"})

	checkRow(t, &appsv1.ControllerRevision{ObjectMeta: objMeta("orphan", time.Hour), Revision: 5},
		[]interface{}{"orphan", "<none>", int64(5), "60m"})
}

func TestJobRow(t *testing.T) {
	cond := func(t batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: s}
	}
	tests := []struct {
		name                                      string
		deleting                                  bool
		spec                                      batchv1.JobSpec
		status                                    batchv1.JobStatus
		wantStatus, wantCompletions, wantDuration string
	}{
		{
			name:       "complete",
			spec:       batchv1.JobSpec{Completions: ptr(int32(1)), Parallelism: ptr(int32(1))},
			status:     batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(10 * time.Minute), CompletionTime: agoPtr(5 * time.Minute), Conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)}},
			wantStatus: "Complete", wantCompletions: "1/1", wantDuration: "5m",
		},
		{
			name:       "running, duration up to now",
			spec:       batchv1.JobSpec{Completions: ptr(int32(3))},
			status:     batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(90 * time.Second)},
			wantStatus: "Running", wantCompletions: "1/3", wantDuration: "90s",
		},
		{
			name:       "work queue with parallelism",
			spec:       batchv1.JobSpec{Parallelism: ptr(int32(2))},
			status:     batchv1.JobStatus{StartTime: agoPtr(3 * time.Hour)},
			wantStatus: "Running", wantCompletions: "0/1 of 2", wantDuration: "3h",
		},
		{
			name:       "not started",
			spec:       batchv1.JobSpec{Parallelism: ptr(int32(1))},
			wantStatus: "Running", wantCompletions: "0/1", wantDuration: "",
		},
		{
			name:       "failed",
			spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			status:     batchv1.JobStatus{StartTime: agoPtr(time.Hour), Conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue), cond(batchv1.JobFailed, corev1.ConditionTrue)}},
			wantStatus: "Failed", wantCompletions: "0/1", wantDuration: "60m",
		},
		{
			name:       "failure target only",
			spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue)}},
			wantStatus: "FailureTarget", wantCompletions: "0/1",
		},
		{
			name:       "success criteria met only",
			spec:       batchv1.JobSpec{Completions: ptr(int32(2))},
			status:     batchv1.JobStatus{Succeeded: 2, Conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)}},
			wantStatus: "SuccessCriteriaMet", wantCompletions: "2/2",
		},
		{
			name:       "suspended",
			spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}},
			wantStatus: "Suspended", wantCompletions: "0/1",
		},
		{
			name:       "terminating beats suspended",
			deleting:   true,
			spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}},
			wantStatus: "Terminating", wantCompletions: "0/1",
		},
		{
			name:       "condition not true",
			spec:       batchv1.JobSpec{Completions: ptr(int32(1))},
			status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionFalse)}},
			wantStatus: "Running", wantCompletions: "0/1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &batchv1.Job{ObjectMeta: objMeta("pi", 4*time.Hour), Spec: tt.spec, Status: tt.status}
			j.Spec.Template = template("pi")
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "abc"}}
			if tt.deleting {
				j.DeletionTimestamp = agoPtr(time.Second)
			}
			checkRow(t, j, []interface{}{"pi", tt.wantStatus, tt.wantCompletions, tt.wantDuration, "4h",
				"pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"})
		})
	}
}

func TestCronJobRow(t *testing.T) {
	cj := &batchv1.CronJob{
		ObjectMeta: objMeta("backup", 3*24*time.Hour),
		Spec: batchv1.CronJobSpec{
			Schedule: "*/5 * * * *", TimeZone: ptr("Etc/UTC"), Suspend: ptr(false),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("backup")}},
		},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "backup-1"}}, LastScheduleTime: agoPtr(2 * time.Minute)},
	}
	checkRow(t, cj, []interface{}{"backup", "*/5 * * * *", "Etc/UTC", "False", int64(1), "2m", "3d", "backup", "backup:1", "<none>"})

	fresh := &batchv1.CronJob{ObjectMeta: objMeta("nightly", time.Minute), Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: ptr(true)}}
	checkRow(t, fresh, []interface{}{"nightly", "@daily", "<none>", "True", int64(0), "<none>", "60s", "", "", "<none>"})

	unset := &batchv1.CronJob{ObjectMeta: objMeta("raw", time.Minute), Spec: batchv1.CronJobSpec{Schedule: "0 * * * *"}}
	checkRow(t, unset, []interface{}{"raw", "0 * * * *", "<none>", "<unset>", int64(0), "<none>", "60s", "", "", "<none>"})
}
