package validation

import (
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newHPA() *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objMeta("web"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		MinReplicas:    ptr(int32(1)),
		MaxReplicas:    5,
		Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
		}}},
	}}
}

func TestHPA(t *testing.T) {
	runCreate(t, newHPA, []createCase[*autoscalingv2.HorizontalPodAutoscaler]{
		{name: "valid"},
		{name: "minReplicas 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr(int32(0)) },
			want: []fe{invalid("spec.minReplicas"), forbidden("spec.metrics")}},
		{name: "max below min", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr(int32(6)) },
			want: []fe{invalid("spec.maxReplicas")}},
		{name: "maxReplicas 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MaxReplicas = 0 },
			want: []fe{invalid("spec.maxReplicas"), invalid("spec.maxReplicas")}},
		{name: "no target name", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Name = "" },
			want: []fe{required("spec.scaleTargetRef.name")}},
		{name: "no target kind", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Kind = "" },
			want: []fe{required("spec.scaleTargetRef.kind")}},
		{name: "utilization 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Resource.Target.AverageUtilization = ptr(int32(0))
		}, want: []fe{invalid("spec.metrics[0].resource.target.averageUtilization")}},
		{name: "metric type without source", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Type = autoscalingv2.PodsMetricSourceType
		},
			want: []fe{required("spec.metrics[0].pods")}},
		{name: "two metric sources", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Pods = &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(quantity("10"))}}
		}, want: []fe{forbidden("spec.metrics[0].pods")}},
		{name: "behavior without policies", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{}}
		}, want: []fe{required("spec.behavior.scaleUp.policies")}},
	})
	h := newHPA()
	h.Spec.MinReplicas = ptr(int32(6))
	expectMessage(t, ValidateCreate(h), "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`")
	runUpdate(t, newHPA, true, []updateCase[*autoscalingv2.HorizontalPodAutoscaler]{
		{name: "counts", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status.CurrentReplicas, h.Status.DesiredReplicas = 2, 3
		}},
		{name: "negative desired", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Status.DesiredReplicas = -1 },
			want: []fe{invalid("status.desiredReplicas")}},
	})
}

func TestHPAv1(t *testing.T) {
	fresh := func() *autoscalingv1.HorizontalPodAutoscaler {
		return &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: objMeta("web"), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr(int32(1)), MaxReplicas: 3, TargetCPUUtilizationPercentage: ptr(int32(50)),
		}}
	}
	runCreate(t, fresh, []createCase[*autoscalingv1.HorizontalPodAutoscaler]{
		{name: "valid"},
		{name: "max below min", mutate: func(h *autoscalingv1.HorizontalPodAutoscaler) { h.Spec.MaxReplicas = 0 },
			want: []fe{invalid("spec.maxReplicas"), invalid("spec.maxReplicas")}},
	})
}

func TestPodDisruptionBudget(t *testing.T) {
	fresh := func() *policyv1.PodDisruptionBudget {
		one := intstr.FromInt32(1)
		return &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("web"), Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		}}
	}
	runCreate(t, fresh, []createCase[*policyv1.PodDisruptionBudget]{
		{name: "valid"},
		{name: "both set", mutate: func(p *policyv1.PodDisruptionBudget) {
			v := intstr.FromString("10%")
			p.Spec.MaxUnavailable = &v
		}, want: []fe{invalid("spec")}},
		{name: "over 100%", mutate: func(p *policyv1.PodDisruptionBudget) {
			v := intstr.FromString("120%")
			p.Spec.MinAvailable = &v
		}, want: []fe{invalid("spec.minAvailable")}},
		{name: "negative", mutate: func(p *policyv1.PodDisruptionBudget) {
			v := intstr.FromInt32(-1)
			p.Spec.MinAvailable = &v
		}, want: []fe{invalid("spec.minAvailable")}},
		{name: "metadata checked by the generic rules", mutate: func(p *policyv1.PodDisruptionBudget) { p.Labels = map[string]string{"a": "b c"} },
			want: []fe{invalid("metadata.labels")}},
	})
	p := fresh()
	v := intstr.FromString("10%")
	p.Spec.MaxUnavailable = &v
	expectMessage(t, ValidateCreate(p), `spec: Invalid value: {"MinAvailable":1,"Selector":{"matchLabels":{"app":"web"}},"MaxUnavailable":"10%","UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set`)
	runUpdate(t, fresh, true, []updateCase[*policyv1.PodDisruptionBudget]{
		{name: "negative allowed", mutate: func(p *policyv1.PodDisruptionBudget) { p.Status.DisruptionsAllowed = -1 },
			want: []fe{invalid("status.disruptionsAllowed")}},
	})
}

func TestRBAC(t *testing.T) {
	role := func() *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: objMeta("reader"), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
	}
	runCreate(t, role, []createCase[*rbacv1.Role]{
		{name: "valid"},
		{name: "name with colon allowed", mutate: func(r *rbacv1.Role) { r.Name = "system:reader" }},
		{name: "no verbs", mutate: func(r *rbacv1.Role) { r.Rules[0].Verbs = nil }, want: []fe{required("rules[0].verbs")}},
		{name: "no resources", mutate: func(r *rbacv1.Role) { r.Rules[0].Resources = nil }, want: []fe{required("rules[0].resources")}},
		{name: "no apiGroups", mutate: func(r *rbacv1.Role) { r.Rules[0].APIGroups = nil }, want: []fe{required("rules[0].apiGroups")}},
		{name: "non-resource URL in a Role", mutate: func(r *rbacv1.Role) {
			r.Rules = []rbacv1.PolicyRule{{NonResourceURLs: []string{"/healthz"}, Verbs: []string{"get"}}}
		}, want: []fe{invalid("rules[0].nonResourceURLs")}},
		{name: "slash in name", mutate: func(r *rbacv1.Role) { r.Name = "a/b" }, want: []fe{invalid("metadata.name")}},
	})
	expectMessage(t, ValidateCreate(&rbacv1.Role{ObjectMeta: objMeta("r"), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}}),
		"rules[0].verbs: Required value: verbs must contain at least one value")

	clusterRole := func() *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{ObjectMeta: clusterMeta("viewer"), Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	}
	runCreate(t, clusterRole, []createCase[*rbacv1.ClusterRole]{
		{name: "valid"},
		{name: "mixed rule", mutate: func(r *rbacv1.ClusterRole) { r.Rules[0].Resources = []string{"pods"} },
			want: []fe{invalid("rules[0].nonResourceURLs")}},
	})

	binding := func() *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: objMeta("read-pods"),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder"}, {Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "jane"}},
		}
	}
	runCreate(t, binding, []createCase[*rbacv1.RoleBinding]{
		{name: "valid"},
		{name: "bad roleRef kind", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Kind = "Group" }, want: []fe{notSupported("roleRef.kind")}},
		{name: "missing roleRef name", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "" }, want: []fe{required("roleRef.name")}},
		{name: "bad subject kind", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[0].Kind = "Robot" }, want: []fe{notSupported("subjects[0].kind")}},
		{name: "user without apiGroup", mutate: func(b *rbacv1.RoleBinding) { b.Subjects[1].APIGroup = "" }, want: []fe{notSupported("subjects[1].apiGroup")}},
	})
	runUpdate(t, binding, false, []updateCase[*rbacv1.RoleBinding]{
		{name: "subjects may change", mutate: func(b *rbacv1.RoleBinding) { b.Subjects = b.Subjects[:1] }},
		{name: "roleRef immutable", mutate: func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "admin" }, want: []fe{invalid("roleRef")}},
	})
	old, b := binding(), binding()
	b.RoleRef.Name = "admin"
	expectMessage(t, ValidateUpdate(b, old), `roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"admin"}: cannot change roleRef`)

	crb := func() *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta("viewers"),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "viewer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder", Namespace: "ci"}},
		}
	}
	runCreate(t, crb, []createCase[*rbacv1.ClusterRoleBinding]{
		{name: "valid"},
		{name: "service account without namespace", mutate: func(b *rbacv1.ClusterRoleBinding) { b.Subjects[0].Namespace = "" },
			want: []fe{required("subjects[0].namespace")}},
		{name: "Role ref", mutate: func(b *rbacv1.ClusterRoleBinding) { b.RoleRef.Kind = "Role" }, want: []fe{notSupported("roleRef.kind")}},
	})
}

func TestPriorityClass(t *testing.T) {
	fresh := func() *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{ObjectMeta: clusterMeta("high"), Value: 1000, PreemptionPolicy: ptr(corev1.PreemptLowerPriority)}
	}
	runCreate(t, fresh, []createCase[*schedulingv1.PriorityClass]{
		{name: "valid"},
		{name: "value above user range", mutate: func(p *schedulingv1.PriorityClass) { p.Value = 2000000000 }, want: []fe{forbidden("value")}},
		{name: "system prefix", mutate: func(p *schedulingv1.PriorityClass) { p.Name = "system-high" }, want: []fe{forbidden("metadata.name")}},
		{name: "bad preemption policy", mutate: func(p *schedulingv1.PriorityClass) { p.PreemptionPolicy = ptr(corev1.PreemptionPolicy("Always")) },
			want: []fe{notSupported("preemptionPolicy")}},
	})
	runUpdate(t, fresh, false, []updateCase[*schedulingv1.PriorityClass]{
		{name: "description may change", mutate: func(p *schedulingv1.PriorityClass) { p.Description = "x" }},
		{name: "value immutable", mutate: func(p *schedulingv1.PriorityClass) { p.Value = 5 }, want: []fe{forbidden("value")}},
	})
}

func TestStorageClass(t *testing.T) {
	fresh := func() *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: clusterMeta("standard"), Provisioner: "skiff.sh/local",
			Parameters:    map[string]string{"path": "/var/lib/skiff/volumes"},
			ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimDelete), VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer)}
	}
	runCreate(t, fresh, []createCase[*storagev1.StorageClass]{
		{name: "valid"},
		{name: "no provisioner", mutate: func(s *storagev1.StorageClass) { s.Provisioner = "" }, want: []fe{required("provisioner")}},
		{name: "bad provisioner", mutate: func(s *storagev1.StorageClass) { s.Provisioner = "a b" }, want: []fe{invalid("provisioner")}},
		{name: "Recycle reclaim", mutate: func(s *storagev1.StorageClass) { s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRecycle) }, want: []fe{notSupported("reclaimPolicy")}},
		{name: "no binding mode", mutate: func(s *storagev1.StorageClass) { s.VolumeBindingMode = nil }, want: []fe{required("volumeBindingMode")}},
	})
	runUpdate(t, fresh, false, []updateCase[*storagev1.StorageClass]{
		{name: "allowVolumeExpansion may change", mutate: func(s *storagev1.StorageClass) { s.AllowVolumeExpansion = ptr(true) }},
		{name: "parameters immutable", mutate: func(s *storagev1.StorageClass) { s.Parameters["path"] = "/srv" }, want: []fe{forbidden("parameters")}},
		{name: "provisioner immutable", mutate: func(s *storagev1.StorageClass) { s.Provisioner = "example.com/nfs" }, want: []fe{forbidden("provisioner")}},
		{name: "binding mode immutable", mutate: func(s *storagev1.StorageClass) { s.VolumeBindingMode = ptr(storagev1.VolumeBindingImmediate) },
			want: []fe{invalid("volumeBindingMode")}},
	})
}

func TestLease(t *testing.T) {
	fresh := func() *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: objMeta("node-1"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr(int32(40))}}
	}
	runCreate(t, fresh, []createCase[*coordinationv1.Lease]{
		{name: "valid"},
		{name: "zero duration", mutate: func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = ptr(int32(0)) }, want: []fe{invalid("spec.leaseDurationSeconds")}},
		{name: "negative transitions", mutate: func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = ptr(int32(-1)) }, want: []fe{invalid("spec.leaseTransitions")}},
		{name: "preferred holder without strategy", mutate: func(l *coordinationv1.Lease) { l.Spec.PreferredHolder = ptr("node-2") },
			want: []fe{forbidden("spec.preferredHolder")}},
	})
	runUpdate(t, fresh, false, []updateCase[*coordinationv1.Lease]{
		{name: "renew", mutate: func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = ptr(int32(1)) }},
	})
}
