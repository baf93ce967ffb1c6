package defaults

import (
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestAutoscalingDefaults(t *testing.T) {
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	cpu80 := []autoscalingv2.MetricSpec{{
		Type: "Resource",
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   "cpu",
			Target: autoscalingv2.MetricTarget{Type: "Utilization", AverageUtilization: ptr.To(int32(80))},
		},
	}}
	memory := []autoscalingv2.MetricSpec{{
		Type: "Resource",
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   "memory",
			Target: autoscalingv2.MetricTarget{Type: "AverageValue", AverageValue: ptr.To(q("500Mi"))},
		},
	}}
	maxPolicy := ptr.To(autoscalingv2.ScalingPolicySelect("Max"))
	defaultUp := &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr.To(int32(0)),
		SelectPolicy:               maxPolicy,
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: "Pods", Value: 4, PeriodSeconds: 15},
			{Type: "Percent", Value: 100, PeriodSeconds: 15},
		},
	}

	runCases(t, []defaultCase{
		{
			"v2 without metrics or behavior",
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target, MaxReplicas: 5}},
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, MinReplicas: ptr.To(int32(1)), Metrics: cpu80,
			}},
		},
		{
			"v2 metrics and minReplicas kept",
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, MinReplicas: ptr.To(int32(2)), Metrics: memory,
			}},
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, MinReplicas: ptr.To(int32(2)), Metrics: memory,
			}},
		},
		{
			"v2 partial behavior is completed",
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, Metrics: memory,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(60)), Tolerance: ptr.To(q("50m"))},
				},
			}},
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, MinReplicas: ptr.To(int32(1)), Metrics: memory,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp: defaultUp,
					ScaleDown: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To(int32(60)),
						SelectPolicy:               maxPolicy,
						Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: "Percent", Value: 100, PeriodSeconds: 15}},
						Tolerance:                  ptr.To(q("50m")),
					},
				},
			}},
		},
		{
			"v2 empty behavior leaves scale-down stabilization to the controller",
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, Metrics: memory,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.ScalingPolicySelect("Disabled"))},
				},
			}},
			&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: target, MaxReplicas: 5, MinReplicas: ptr.To(int32(1)), Metrics: memory,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To(int32(0)),
						SelectPolicy:               ptr.To(autoscalingv2.ScalingPolicySelect("Disabled")),
						Policies:                   defaultUp.Policies,
					},
					ScaleDown: &autoscalingv2.HPAScalingRules{
						SelectPolicy: maxPolicy,
						Policies:     []autoscalingv2.HPAScalingPolicy{{Type: "Percent", Value: 100, PeriodSeconds: 15}},
					},
				},
			}},
		},
		{
			"v1",
			&autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3}},
			&autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3, MinReplicas: ptr.To(int32(1))}},
		},
	})
}

func TestNetworkingDefaults(t *testing.T) {
	tcp := ptr.To(corev1.Protocol("TCP"))
	udp := ptr.To(corev1.Protocol("UDP"))
	port := ptr.To(intstr.FromInt32(53))
	runCases(t, []defaultCase{
		{
			"networkpolicy ingress only",
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: port}}}},
			}},
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: port, Protocol: tcp}}}},
				PolicyTypes: []networkingv1.PolicyType{"Ingress"},
			}},
		},
		{
			"networkpolicy with egress rules",
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
				Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: port, Protocol: udp}, {Port: port}}}},
			}},
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
				Egress:      []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: port, Protocol: udp}, {Port: port, Protocol: tcp}}}},
				PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
			}},
		},
		{
			"networkpolicy explicit policyTypes kept",
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}},
			&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}},
		},
		{
			"ingressclass parameters scope",
			&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "x/y", Parameters: &networkingv1.IngressClassParametersReference{Kind: "K", Name: "n"}}},
			&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "x/y", Parameters: &networkingv1.IngressClassParametersReference{Kind: "K", Name: "n", Scope: ptr.To("Cluster")}}},
		},
		{
			"ingressclass without parameters",
			&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "x/y"}},
			&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "x/y"}},
		},
		{
			"endpointslice",
			&discoveryv1.EndpointSlice{AddressType: "IPv4", Ports: []discoveryv1.EndpointPort{{Port: ptr.To(int32(80))}, {Name: ptr.To("dns"), Protocol: udp, Port: ptr.To(int32(53))}}},
			&discoveryv1.EndpointSlice{AddressType: "IPv4", Ports: []discoveryv1.EndpointPort{
				{Name: ptr.To(""), Protocol: tcp, Port: ptr.To(int32(80))},
				{Name: ptr.To("dns"), Protocol: udp, Port: ptr.To(int32(53))},
			}},
		},
	})
}

func TestClusterDefaults(t *testing.T) {
	subjects := []rbacv1.Subject{
		{Kind: "User", Name: "alice"},
		{Kind: "Group", Name: "devs"},
		{Kind: "ServiceAccount", Name: "bot", Namespace: "ns"},
		{Kind: "User", Name: "bob", APIGroup: "example.com"},
	}
	wantSubjects := []rbacv1.Subject{
		{Kind: "User", Name: "alice", APIGroup: "rbac.authorization.k8s.io"},
		{Kind: "Group", Name: "devs", APIGroup: "rbac.authorization.k8s.io"},
		{Kind: "ServiceAccount", Name: "bot", Namespace: "ns"},
		{Kind: "User", Name: "bob", APIGroup: "example.com"},
	}
	runCases(t, []defaultCase{
		{
			"rolebinding",
			&rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}, Subjects: subjects},
			&rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "r"}, Subjects: wantSubjects},
		},
		{
			"clusterrolebinding",
			&rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "r"}, Subjects: subjects},
			&rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "r"}, Subjects: wantSubjects},
		},
		{
			"priorityclass",
			&schedulingv1.PriorityClass{Value: 1000},
			&schedulingv1.PriorityClass{Value: 1000, PreemptionPolicy: ptr.To(corev1.PreemptionPolicy("PreemptLowerPriority"))},
		},
		{
			"priorityclass explicit policy kept",
			&schedulingv1.PriorityClass{Value: 1000, PreemptionPolicy: ptr.To(corev1.PreemptNever)},
			&schedulingv1.PriorityClass{Value: 1000, PreemptionPolicy: ptr.To(corev1.PreemptNever)},
		},
		{
			"storageclass",
			&storagev1.StorageClass{Provisioner: "example.com/p"},
			&storagev1.StorageClass{
				Provisioner:       "example.com/p",
				ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimPolicy("Delete")),
				VolumeBindingMode: ptr.To(storagev1.VolumeBindingMode("Immediate")),
			},
		},
	})
}
