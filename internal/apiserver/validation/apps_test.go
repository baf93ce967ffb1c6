package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDeploymentCreate(t *testing.T) {
	runCreate(t, newDeployment, []createCase[*appsv1.Deployment]{
		{name: "valid"},
		{name: "Recreate strategy", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}},
		{name: "selector does not match template", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "x"} },
			want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "missing selector", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			// A nil selector matches nothing, so the labels check fails too.
			want: []fe{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{name: "empty selector", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			want: []fe{invalid("spec.selector")}},
		{name: "bad selector operator", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Is", Values: []string{"x"}}}
		}, want: []fe{invalid("spec.selector.matchExpressions[0].operator"), invalid("spec.selector")}},
		{name: "negative replicas", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) },
			want: []fe{invalid("spec.replicas")}},
		{name: "restartPolicy Never", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []fe{notSupported("spec.template.spec.restartPolicy")}},
		{name: "activeDeadlineSeconds", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(10)) },
			want: []fe{forbidden("spec.template.spec.activeDeadlineSeconds")}},
		{name: "missing image", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			want: []fe{required("spec.template.spec.containers[0].image")}},
		{name: "unknown strategy", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"} },
			want: []fe{notSupported("spec.strategy")}},
		{name: "Recreate with rollingUpdate", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			want: []fe{forbidden("spec.strategy.rollingUpdate")}},
		{name: "maxSurge and maxUnavailable both 0", mutate: func(d *appsv1.Deployment) {
			zero := intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &zero}
		}, want: []fe{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "maxUnavailable over 100%", mutate: func(d *appsv1.Deployment) {
			v := intstr.FromString("150%")
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
		}, want: []fe{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "bad percent", mutate: func(d *appsv1.Deployment) {
			v := intstr.FromString("ten")
			d.Spec.Strategy.RollingUpdate.MaxSurge = &v
		}, want: []fe{invalid("spec.strategy.rollingUpdate.maxSurge")}},
		{name: "progressDeadline not above minReady", mutate: func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			want: []fe{invalid("spec.progressDeadlineSeconds")}},
	})
}

func TestDeploymentMessages(t *testing.T) {
	d := newDeployment()
	d.Spec.Template.Labels = map[string]string{"app": "x"}
	expectMessage(t, ValidateCreate(d), "spec.template.metadata.labels: Invalid value: "+`{"app":"x"}`+": `selector` does not match template `labels`")

	d = newDeployment()
	zero := intstr.FromInt32(0)
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &zero}
	expectMessage(t, ValidateCreate(d), "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0")
}

func TestDeploymentUpdate(t *testing.T) {
	runUpdate(t, newDeployment, false, []updateCase[*appsv1.Deployment]{
		{name: "scale", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(5)) }},
		{name: "new image", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }},
		{name: "selector changed", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "fe"}}
			d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "fe"}
		}, want: []fe{invalid("spec.selector")}},
	})
	old := newDeployment()
	d := newDeployment()
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "fe"}}
	d.Spec.Template.Labels = d.Spec.Selector.MatchLabels
	expectMessage(t, ValidateUpdate(d, old), `spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"fe"}}: field is immutable`)
}

func TestDeploymentStatusUpdate(t *testing.T) {
	runUpdate(t, newDeployment, true, []updateCase[*appsv1.Deployment]{
		{name: "counts", mutate: func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, UpdatedReplicas: 2}
		}},
		{name: "negative replicas", mutate: func(d *appsv1.Deployment) { d.Status.Replicas = -1 },
			// 0 ready/updated/available now exceed -1 replicas too.
			want: []fe{invalid("status.replicas"), invalid("status.updatedReplicas"), invalid("status.readyReplicas"), invalid("status.availableReplicas")}},
		{name: "ready above replicas", mutate: func(d *appsv1.Deployment) { d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2} },
			want: []fe{invalid("status.readyReplicas")}},
	})
}

func newReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: objMeta("web-abc"),
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(map[string]string{"app": "web"}),
		},
	}
}

func TestReplicaSet(t *testing.T) {
	runCreate(t, newReplicaSet, []createCase[*appsv1.ReplicaSet]{
		{name: "valid"},
		{name: "selector mismatch", mutate: func(r *appsv1.ReplicaSet) { r.Spec.Template.Labels = nil },
			want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "negative replicas", mutate: func(r *appsv1.ReplicaSet) { r.Spec.Replicas = ptr(int32(-3)) },
			want: []fe{invalid("spec.replicas")}},
		{name: "restartPolicy OnFailure", mutate: func(r *appsv1.ReplicaSet) { r.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			want: []fe{notSupported("spec.template.spec.restartPolicy")}},
	})
	runUpdate(t, newReplicaSet, false, []updateCase[*appsv1.ReplicaSet]{
		{name: "scale", mutate: func(r *appsv1.ReplicaSet) { r.Spec.Replicas = ptr(int32(3)) }},
		{name: "selector immutable", mutate: func(r *appsv1.ReplicaSet) {
			r.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
			r.Spec.Template.Labels = r.Spec.Selector.MatchLabels
		}, want: []fe{invalid("spec.selector")}},
	})
	runUpdate(t, newReplicaSet, true, []updateCase[*appsv1.ReplicaSet]{
		{name: "available above ready", mutate: func(r *appsv1.ReplicaSet) {
			r.Status = appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 2}
		}, want: []fe{invalid("status.availableReplicas")}},
	})
}

func newStatefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: objMeta("db"),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr(int32(3)),
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template:            podTemplate(map[string]string{"app": "db"}),
			ServiceName:         "db",
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))},
			},
			RevisionHistoryLimit: ptr(int32(10)),
		},
	}
}

func claimTemplate(name string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity("1Gi")}},
		},
	}
}

func TestStatefulSetCreate(t *testing.T) {
	runCreate(t, newStatefulSet, []createCase[*appsv1.StatefulSet]{
		{name: "valid"},
		{name: "mount of a claim template", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}
		}},
		{name: "name must be a DNS label", mutate: func(s *appsv1.StatefulSet) { s.Name = "db.v1" },
			want: []fe{invalid("metadata.name")}},
		{name: "selector mismatch", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = map[string]string{"app": "x"} },
			want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "missing selector", mutate: func(s *appsv1.StatefulSet) { s.Spec.Selector = nil },
			want: []fe{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{name: "empty selector", mutate: func(s *appsv1.StatefulSet) { s.Spec.Selector = &metav1.LabelSelector{} },
			want: []fe{invalid("spec.selector")}},
		{name: "negative replicas", mutate: func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(-1)) },
			want: []fe{invalid("spec.replicas")}},
		{name: "bad pod management policy", mutate: func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" },
			want: []fe{invalid("spec.podManagementPolicy")}},
		{name: "bad update strategy", mutate: func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = "Canary" },
			want: []fe{invalid("spec.updateStrategy")}},
		{name: "restartPolicy Never", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []fe{notSupported("spec.template.spec.restartPolicy")}},
		{name: "missing image", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "" },
			want: []fe{required("spec.template.spec.containers[0].image")}},
		{name: "claim template without access modes", mutate: func(s *appsv1.StatefulSet) {
			c := claimTemplate("data")
			c.Spec.AccessModes = nil
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{c}
		}, want: []fe{required("spec.volumeClaimTemplates[0].spec.accessModes")}},
	})
}

func TestStatefulSetUpdate(t *testing.T) {
	runUpdate(t, newStatefulSet, false, []updateCase[*appsv1.StatefulSet]{
		{name: "scale", mutate: func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr(int32(5)) }},
		{name: "template", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "postgres:17" }},
		{name: "update strategy", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}},
		{name: "service name forbidden", mutate: func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" },
			want: []fe{forbidden("spec")}},
		{name: "selector forbidden", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db", "x": "y"}}
			s.Spec.Template.Labels = s.Spec.Selector.MatchLabels
		}, want: []fe{forbidden("spec")}},
	})
	old := newStatefulSet()
	s := newStatefulSet()
	s.Spec.ServiceName = "other"
	expectMessage(t, ValidateUpdate(s, old), "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
}

func newDaemonSet() *appsv1.DaemonSet {
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	return &appsv1.DaemonSet{
		ObjectMeta: objMeta("agent"),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: podTemplate(map[string]string{"app": "agent"}),
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
			},
			RevisionHistoryLimit: ptr(int32(10)),
		},
	}
}

func TestDaemonSet(t *testing.T) {
	runCreate(t, newDaemonSet, []createCase[*appsv1.DaemonSet]{
		{name: "valid"},
		{name: "selector mismatch", mutate: func(d *appsv1.DaemonSet) { d.Spec.Template.Labels = map[string]string{"app": "x"} },
			want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "empty selector", mutate: func(d *appsv1.DaemonSet) { d.Spec.Selector = &metav1.LabelSelector{} },
			want: []fe{invalid("spec.selector")}},
		{name: "both surge and unavailable", mutate: func(d *appsv1.DaemonSet) {
			one := intstr.FromInt32(1)
			d.Spec.UpdateStrategy.RollingUpdate.MaxSurge = &one
		}, want: []fe{invalid("spec.updateStrategy.rollingUpdate.maxSurge")}},
		{name: "neither surge nor unavailable", mutate: func(d *appsv1.DaemonSet) {
			zero := intstr.FromInt32(0)
			d.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &zero
		}, want: []fe{required("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{name: "unknown strategy", mutate: func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: "Surge"} },
			want: []fe{notSupported("spec.updateStrategy")}},
		{name: "restartPolicy OnFailure", mutate: func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			want: []fe{notSupported("spec.template.spec.restartPolicy")}},
	})
	runUpdate(t, newDaemonSet, false, []updateCase[*appsv1.DaemonSet]{
		{name: "template", mutate: func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.Containers[0].Image = "agent:2" }},
		{name: "selector immutable", mutate: func(d *appsv1.DaemonSet) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent", "v": "2"}}
			d.Spec.Template.Labels = d.Spec.Selector.MatchLabels
		}, want: []fe{invalid("spec.selector")}},
	})
	runUpdate(t, newDaemonSet, true, []updateCase[*appsv1.DaemonSet]{
		{name: "negative desired", mutate: func(d *appsv1.DaemonSet) { d.Status.DesiredNumberScheduled = -1 },
			want: []fe{invalid("status.desiredNumberScheduled")}},
	})
}

func newReplicationController() *corev1.ReplicationController {
	t := podTemplate(map[string]string{"app": "web"})
	return &corev1.ReplicationController{
		ObjectMeta: objMeta("web"),
		Spec:       corev1.ReplicationControllerSpec{Replicas: ptr(int32(1)), Selector: map[string]string{"app": "web"}, Template: &t},
	}
}

func TestReplicationController(t *testing.T) {
	runCreate(t, newReplicationController, []createCase[*corev1.ReplicationController]{
		{name: "valid"},
		{name: "empty selector", mutate: func(r *corev1.ReplicationController) { r.Spec.Selector = nil },
			want: []fe{required("spec.selector")}},
		{name: "selector mismatch", mutate: func(r *corev1.ReplicationController) { r.Spec.Template.Labels = map[string]string{"app": "x"} },
			want: []fe{invalid("spec.template.metadata.labels")}},
		{name: "no template", mutate: func(r *corev1.ReplicationController) { r.Spec.Template = nil },
			want: []fe{required("spec.template")}},
		{name: "negative replicas", mutate: func(r *corev1.ReplicationController) { r.Spec.Replicas = ptr(int32(-1)) },
			want: []fe{invalid("spec.replicas")}},
		{name: "restartPolicy Never", mutate: func(r *corev1.ReplicationController) { r.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []fe{notSupported("spec.template.spec.restartPolicy")}},
	})
	runUpdate(t, newReplicationController, true, []updateCase[*corev1.ReplicationController]{
		{name: "ready above replicas", mutate: func(r *corev1.ReplicationController) {
			r.Status = corev1.ReplicationControllerStatus{Replicas: 1, ReadyReplicas: 2}
		},
			want: []fe{invalid("status.readyReplicas")}},
	})
}

func TestControllerRevision(t *testing.T) {
	fresh := func() *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: objMeta("web-1"), Data: runtime.RawExtension{Raw: []byte(`{}`)}, Revision: 1}
	}
	runCreate(t, fresh, []createCase[*appsv1.ControllerRevision]{
		{name: "valid"},
		{name: "no data", mutate: func(r *appsv1.ControllerRevision) { r.Data = runtime.RawExtension{} }, want: []fe{required("data")}},
		{name: "negative revision", mutate: func(r *appsv1.ControllerRevision) { r.Revision = -1 }, want: []fe{invalid("revision")}},
	})
	runUpdate(t, fresh, false, []updateCase[*appsv1.ControllerRevision]{
		{name: "data immutable", mutate: func(r *appsv1.ControllerRevision) { r.Data = runtime.RawExtension{Raw: []byte(`{"a":1}`)} },
			want: []fe{invalid("data")}},
	})
}
