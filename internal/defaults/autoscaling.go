package defaults

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// defaultCPUUtilization is the target an HPA without metrics scales on.
const defaultCPUUtilization = 80

func defaultHPAv1(hpa *autoscalingv1.HorizontalPodAutoscaler) {
	if hpa.Spec.MinReplicas == nil {
		hpa.Spec.MinReplicas = ptr.To(int32(1))
	}
}

func defaultHPAv2(hpa *autoscalingv2.HorizontalPodAutoscaler) {
	spec := &hpa.Spec
	if spec.MinReplicas == nil {
		spec.MinReplicas = ptr.To(int32(1))
	}
	if len(spec.Metrics) == 0 {
		spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: ptr.To(int32(defaultCPUUtilization)),
				},
			},
		}}
	}
	// Behavior is only completed when the user gave one; a nil behavior means
	// the controller's built-in rules and stays nil.
	if b := spec.Behavior; b != nil {
		b.ScaleUp = completeScalingRules(b.ScaleUp, scaleUpRules())
		b.ScaleDown = completeScalingRules(b.ScaleDown, scaleDownRules())
	}
}

// scaleUpRules is the controller's historical scale-up behavior: no
// stabilization, at most doubling or 4 pods per 15s, whichever is more.
func scaleUpRules() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptr.To(int32(0)),
		SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
}

// scaleDownRules leaves the stabilization window unset on purpose: the
// controller then uses its --horizontal-pod-autoscaler-downscale-stabilization
// flag, which a stored default would override.
func scaleDownRules() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{
		SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		},
	}
}

// completeScalingRules returns def with every field the user set in rules
// taken from rules. A non-nil empty policy list is kept as given.
func completeScalingRules(rules, def *autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if rules == nil {
		return def
	}
	if rules.SelectPolicy != nil {
		def.SelectPolicy = rules.SelectPolicy
	}
	if rules.StabilizationWindowSeconds != nil {
		def.StabilizationWindowSeconds = rules.StabilizationWindowSeconds
	}
	if rules.Policies != nil {
		def.Policies = rules.Policies
	}
	if rules.Tolerance != nil {
		def.Tolerance = rules.Tolerance
	}
	return def
}
