package defaults

import (
	"math"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var appLabels = map[string]string{"app": "web"}

func TestAppsDefaults(t *testing.T) {
	labeled := func(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
		t.Labels = appLabels
		return t
	}
	sel := &metav1.LabelSelector{MatchLabels: appLabels}

	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(int32(0)),
		Strategy: appsv1.DeploymentStrategy{Type: "Recreate"},
		Template: template("nginx:1"),
	}}
	recreateWant := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas:                ptr.To(int32(0)),
		Strategy:                appsv1.DeploymentStrategy{Type: "Recreate"},
		RevisionHistoryLimit:    ptr.To(int32(10)),
		ProgressDeadlineSeconds: ptr.To(int32(600)),
		Template:                defaultedTemplate("nginx:1", "IfNotPresent"),
	}}

	onDelete := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
		UpdateStrategy:                       appsv1.StatefulSetUpdateStrategy{Type: "OnDelete"},
		PodManagementPolicy:                  "Parallel",
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Delete"},
		Template:                             template("nginx:1"),
	}}
	onDeleteWant := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
		Replicas:             ptr.To(int32(1)),
		RevisionHistoryLimit: ptr.To(int32(10)),
		UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: "OnDelete"},
		PodManagementPolicy:  "Parallel",
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: "Delete", WhenScaled: "Retain",
		},
		Template: defaultedTemplate("nginx:1", "IfNotPresent"),
	}}

	runCases(t, []defaultCase{
		{
			"deployment",
			&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       appsv1.DeploymentSpec{Selector: sel, Template: labeled(template("nginx"))},
			},
			&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To(int32(1)),
					Selector: sel,
					Template: labeled(defaultedTemplate("nginx", "Always")),
					Strategy: appsv1.DeploymentStrategy{
						Type: "RollingUpdate",
						RollingUpdate: &appsv1.RollingUpdateDeployment{
							MaxUnavailable: ptr.To(intstr.FromString("25%")),
							MaxSurge:       ptr.To(intstr.FromString("25%")),
						},
					},
					RevisionHistoryLimit:    ptr.To(int32(10)),
					ProgressDeadlineSeconds: ptr.To(int32(600)),
				},
			},
		},
		{"deployment recreate keeps replicas 0 and gets no rollingUpdate", recreate, recreateWant},
		{
			"deployment partial rollingUpdate",
			&appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(3))}},
				Template: template("nginx:1"),
			}},
			&appsv1.Deployment{Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Strategy: appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromString("25%")),
					MaxSurge:       ptr.To(intstr.FromInt32(3)),
				}},
				RevisionHistoryLimit:    ptr.To(int32(10)),
				ProgressDeadlineSeconds: ptr.To(int32(600)),
				Template:                defaultedTemplate("nginx:1", "IfNotPresent"),
			}},
		},
		{
			"replicaset",
			&appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: labeled(template("nginx:1"))}},
			&appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{
				Replicas: ptr.To(int32(1)),
				Selector: sel,
				Template: labeled(defaultedTemplate("nginx:1", "IfNotPresent")),
			}},
		},
		{
			"statefulset",
			&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				ServiceName: "web",
				Template:    template("nginx:1"),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
					},
				}},
			}},
			&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				ServiceName:          "web",
				Replicas:             ptr.To(int32(1)),
				RevisionHistoryLimit: ptr.To(int32(10)),
				PodManagementPolicy:  "OrderedReady",
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
					Type: "RollingUpdate",
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{
						Partition:      ptr.To(int32(0)),
						MaxUnavailable: ptr.To(intstr.FromInt32(1)),
					},
				},
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: "Retain", WhenScaled: "Retain",
				},
				Template: defaultedTemplate("nginx:1", "IfNotPresent"),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
						VolumeMode:  ptr.To(corev1.PersistentVolumeMode("Filesystem")),
					},
					Status: corev1.PersistentVolumeClaimStatus{Phase: "Pending"},
				}},
			}},
		},
		{"statefulset OnDelete", onDelete, onDeleteWant},
		{
			"statefulset explicit RollingUpdate without parameters stays bare",
			&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: "RollingUpdate"},
				Template:       template("nginx:1"),
			}},
			&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{
				Replicas:             ptr.To(int32(1)),
				RevisionHistoryLimit: ptr.To(int32(10)),
				PodManagementPolicy:  "OrderedReady",
				UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: "RollingUpdate"},
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: "Retain", WhenScaled: "Retain",
				},
				Template: defaultedTemplate("nginx:1", "IfNotPresent"),
			}},
		},
		{
			"daemonset",
			&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Selector: sel, Template: labeled(template("nginx:1"))}},
			&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				Selector: sel,
				Template: labeled(defaultedTemplate("nginx:1", "IfNotPresent")),
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
					Type: "RollingUpdate",
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{
						MaxUnavailable: ptr.To(intstr.FromInt32(1)),
						MaxSurge:       ptr.To(intstr.FromInt32(0)),
					},
				},
				RevisionHistoryLimit: ptr.To(int32(10)),
			}},
		},
		{
			"daemonset OnDelete",
			&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: "OnDelete"},
				Template:       template("nginx:1"),
			}},
			&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				UpdateStrategy:       appsv1.DaemonSetUpdateStrategy{Type: "OnDelete"},
				RevisionHistoryLimit: ptr.To(int32(10)),
				Template:             defaultedTemplate("nginx:1", "IfNotPresent"),
			}},
		},
	})
}

func TestReplicationControllerDefaults(t *testing.T) {
	tpl := template("nginx:1")
	tpl.Labels = appLabels
	wantTpl := defaultedTemplate("nginx:1", "IfNotPresent")
	wantTpl.Labels = appLabels

	runCases(t, []defaultCase{
		{
			"selector and labels from template",
			&corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Template: &tpl}},
			&corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: appLabels},
				Spec: corev1.ReplicationControllerSpec{
					Replicas: ptr.To(int32(1)),
					Selector: appLabels,
					Template: &wantTpl,
				},
			},
		},
		{
			"explicit selector and labels kept",
			&corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"owner": "me"}},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(3)), Selector: map[string]string{"app": "web"}, Template: &tpl},
			},
			&corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"owner": "me"}},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(3)), Selector: map[string]string{"app": "web"}, Template: &wantTpl},
			},
		},
		{
			"no template",
			&corev1.ReplicationController{},
			&corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(1))}},
		},
	})
}

func TestBatchDefaults(t *testing.T) {
	jobTpl := func() corev1.PodTemplateSpec {
		t := template("busybox:1")
		t.Labels = appLabels
		t.Spec.RestartPolicy = "Never"
		return t
	}
	wantJobTpl := func() corev1.PodTemplateSpec {
		t := defaultedTemplate("busybox:1", "IfNotPresent")
		t.Labels = appLabels
		t.Spec.RestartPolicy = "Never"
		return t
	}
	jobSpec := func(mutate func(*batchv1.JobSpec)) batchv1.JobSpec {
		s := batchv1.JobSpec{
			Completions:          ptr.To(int32(1)),
			Parallelism:          ptr.To(int32(1)),
			BackoffLimit:         ptr.To(int32(6)),
			CompletionMode:       ptr.To(batchv1.CompletionMode("NonIndexed")),
			Suspend:              ptr.To(false),
			PodReplacementPolicy: ptr.To(batchv1.PodReplacementPolicy("TerminatingOrFailed")),
			ManualSelector:       ptr.To(false),
			Template:             wantJobTpl(),
		}
		if mutate != nil {
			mutate(&s)
		}
		return s
	}

	failurePolicy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          "Ignore",
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: "DisruptionTarget"}},
	}}}
	wantFailurePolicy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          "Ignore",
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: "DisruptionTarget", Status: "True"}},
	}}}

	runCases(t, []defaultCase{
		{
			"job",
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi"}, Spec: batchv1.JobSpec{Template: jobTpl()}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Labels: appLabels}, Spec: jobSpec(nil)},
		},
		{
			"job with only parallelism is a work queue",
			&batchv1.Job{Spec: batchv1.JobSpec{Parallelism: ptr.To(int32(4)), Template: jobTpl()}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: jobSpec(func(s *batchv1.JobSpec) {
				s.Completions = nil
				s.Parallelism = ptr.To(int32(4))
			})},
		},
		{
			"job with only completions",
			&batchv1.Job{Spec: batchv1.JobSpec{Completions: ptr.To(int32(5)), Template: jobTpl()}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: jobSpec(func(s *batchv1.JobSpec) {
				s.Completions = ptr.To(int32(5))
			})},
		},
		{
			"indexed job with backoffLimitPerIndex",
			&batchv1.Job{Spec: batchv1.JobSpec{
				CompletionMode:       ptr.To(batchv1.IndexedCompletion),
				BackoffLimitPerIndex: ptr.To(int32(2)),
				Template:             jobTpl(),
			}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: jobSpec(func(s *batchv1.JobSpec) {
				s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				s.BackoffLimitPerIndex = ptr.To(int32(2))
				s.BackoffLimit = ptr.To(int32(math.MaxInt32))
			})},
		},
		{
			"job with pod failure policy",
			&batchv1.Job{Spec: batchv1.JobSpec{PodFailurePolicy: failurePolicy, Template: jobTpl()}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: jobSpec(func(s *batchv1.JobSpec) {
				s.PodFailurePolicy = wantFailurePolicy
				s.PodReplacementPolicy = ptr.To(batchv1.PodReplacementPolicy("Failed"))
			})},
		},
		{
			"job labels kept",
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}, Spec: batchv1.JobSpec{Suspend: ptr.To(true), Template: jobTpl()}},
			&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}, Spec: jobSpec(func(s *batchv1.JobSpec) {
				s.Suspend = ptr.To(true)
			})},
		},
		{
			"cronjob",
			&batchv1.CronJob{Spec: batchv1.CronJobSpec{
				Schedule: "*/5 * * * *",
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					PodFailurePolicy: failurePolicy,
					Template:         jobTpl(),
				}},
			}},
			&batchv1.CronJob{Spec: batchv1.CronJobSpec{
				Schedule:                   "*/5 * * * *",
				ConcurrencyPolicy:          "Allow",
				Suspend:                    ptr.To(false),
				SuccessfulJobsHistoryLimit: ptr.To(int32(3)),
				FailedJobsHistoryLimit:     ptr.To(int32(1)),
				// The job template gets type-level defaults only; the Job's
				// own defaults are applied when the controller creates it.
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					PodFailurePolicy: wantFailurePolicy,
					Template:         wantJobTpl(),
				}},
			}},
		},
	})
}
