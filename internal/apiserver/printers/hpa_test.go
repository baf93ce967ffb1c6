package printers

import (
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func qty(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

func resourceUtilization(name corev1.ResourceName, target int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: name, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
	}}
}

func resourceUtilizationStatus(name corev1.ResourceName, current int32) autoscalingv2.MetricStatus {
	return autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
		Name: name, Current: autoscalingv2.MetricValueStatus{AverageUtilization: &current},
	}}
}

func TestHPATargets(t *testing.T) {
	memAvg := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("200Mi")},
	}}
	memAvgStatus := autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
		Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: qty("100Mi")},
	}}
	pods := autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "qps"}, Target: autoscalingv2.MetricTarget{AverageValue: qty("1k")},
	}}
	podsStatus := autoscalingv2.MetricStatus{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
		Current: autoscalingv2.MetricValueStatus{AverageValue: qty("250")},
	}}
	object := autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		Target: autoscalingv2.MetricTarget{Value: qty("10")},
	}}
	objectAvg := autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		Target: autoscalingv2.MetricTarget{AverageValue: qty("5")},
	}}
	objectStatus := autoscalingv2.MetricStatus{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{
		Current: autoscalingv2.MetricValueStatus{Value: qty("12"), AverageValue: qty("3")},
	}}
	external := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Target: autoscalingv2.MetricTarget{Value: qty("30")},
	}}
	externalAvg := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Target: autoscalingv2.MetricTarget{AverageValue: qty("30")},
	}}
	externalStatus := autoscalingv2.MetricStatus{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
		Current: autoscalingv2.MetricValueStatus{Value: qty("42")},
	}}
	containerCPU := autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
		Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{AverageUtilization: ptr(int32(60))},
	}}
	containerCPUStatus := autoscalingv2.MetricStatus{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{
		Name: corev1.ResourceCPU, Container: "app", Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(45))},
	}}
	autoTarget := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU,
	}}

	tests := []struct {
		name     string
		specs    []autoscalingv2.MetricSpec
		statuses []autoscalingv2.MetricStatus
		want     string
	}{
		{"no metrics", nil, nil, "<none>"},
		{"cpu utilization", []autoscalingv2.MetricSpec{resourceUtilization(corev1.ResourceCPU, 80)},
			[]autoscalingv2.MetricStatus{resourceUtilizationStatus(corev1.ResourceCPU, 50)}, "cpu: 50%/80%"},
		{"cpu utilization not yet measured", []autoscalingv2.MetricSpec{resourceUtilization(corev1.ResourceCPU, 80)}, nil, "cpu: <unknown>/80%"},
		{"memory average value", []autoscalingv2.MetricSpec{memAvg}, []autoscalingv2.MetricStatus{memAvgStatus}, "memory: 100Mi/200Mi"},
		{"average value with a status lacking it", []autoscalingv2.MetricSpec{memAvg},
			[]autoscalingv2.MetricStatus{resourceUtilizationStatus(corev1.ResourceMemory, 3)}, "memory: <nil>/200Mi"},
		{"utilization target unset", []autoscalingv2.MetricSpec{autoTarget}, nil, "cpu: <unknown>/<auto>"},
		{"pods", []autoscalingv2.MetricSpec{pods}, []autoscalingv2.MetricStatus{podsStatus}, "250/1k"},
		{"pods unknown", []autoscalingv2.MetricSpec{pods}, nil, "<unknown>/1k"},
		{"object value", []autoscalingv2.MetricSpec{object}, []autoscalingv2.MetricStatus{objectStatus}, "12/10"},
		{"object average", []autoscalingv2.MetricSpec{objectAvg}, []autoscalingv2.MetricStatus{objectStatus}, "3/5 (avg)"},
		{"external value", []autoscalingv2.MetricSpec{external}, []autoscalingv2.MetricStatus{externalStatus}, "42/30"},
		{"external average unknown", []autoscalingv2.MetricSpec{externalAvg}, []autoscalingv2.MetricStatus{externalStatus}, "<unknown>/30 (avg)"},
		{"container resource", []autoscalingv2.MetricSpec{containerCPU}, []autoscalingv2.MetricStatus{containerCPUStatus}, "cpu: 45%/60%"},
		{"unknown type", []autoscalingv2.MetricSpec{{Type: "Custom"}}, nil, "<unknown type>"},
		{"two metrics", []autoscalingv2.MetricSpec{resourceUtilization(corev1.ResourceCPU, 80), memAvg},
			[]autoscalingv2.MetricStatus{resourceUtilizationStatus(corev1.ResourceCPU, 20), memAvgStatus}, "cpu: 20%/80%, memory: 100Mi/200Mi"},
		{"more than two", []autoscalingv2.MetricSpec{resourceUtilization(corev1.ResourceCPU, 80), memAvg, pods, object},
			nil, "cpu: <unknown>/80%, memory: <unknown>/200Mi + 2 more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: objMeta("web", time.Hour),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
					MinReplicas:    ptr(int32(2)), MaxReplicas: 10, Metrics: tt.specs,
				},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, CurrentMetrics: tt.statuses},
			}
			checkRow(t, h, []interface{}{"web", "Deployment/web", tt.want, "2", int64(10), int64(3), "60m"})
		})
	}
}

func TestHPAV1Row(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		spec        autoscalingv1.HorizontalPodAutoscalerSpec
		status      autoscalingv1.HorizontalPodAutoscalerStatus
		want        []interface{}
	}{
		{
			name:   "cpu target and current",
			spec:   autoscalingv1.HorizontalPodAutoscalerSpec{MinReplicas: ptr(int32(1)), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr(int32(50))},
			status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, CurrentCPUUtilizationPercentage: ptr(int32(30))},
			want:   []interface{}{"php", "Deployment/php", "cpu: 30%/50%", "1", int64(5), int64(2), "60m"},
		},
		{
			name: "no target implies 80%, min unset",
			spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3},
			want: []interface{}{"php", "Deployment/php", "cpu: <unknown>/80%", "<unset>", int64(3), int64(0), "60m"},
		},
		{
			name: "annotated metrics come before the cpu target",
			annotations: map[string]string{
				hpaMetricSpecsAnnotation:    `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"1k"}}]`,
				hpaMetricStatusesAnnotation: `[{"type":"Pods","pods":{"metricName":"qps","currentAverageValue":"200"}},{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":10,"currentAverageValue":"5m"}}]`,
			},
			spec:   autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 4, TargetCPUUtilizationPercentage: ptr(int32(70))},
			status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 1, CurrentCPUUtilizationPercentage: ptr(int32(99))},
			want:   []interface{}{"php", "Deployment/php", "200/1k, cpu: 10%/70%", "<unset>", int64(4), int64(1), "60m"},
		},
		{
			name:        "annotated metrics without cpu target get no default",
			annotations: map[string]string{hpaMetricSpecsAnnotation: `[{"type":"External","external":{"metricName":"queue","targetAverageValue":"30"}}]`},
			spec:        autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 4},
			want:        []interface{}{"php", "Deployment/php", "<unknown>/30 (avg)", "<unset>", int64(4), int64(0), "60m"},
		},
		{
			name:        "unparsable annotation is ignored",
			annotations: map[string]string{hpaMetricSpecsAnnotation: `{`},
			spec:        autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 4, TargetCPUUtilizationPercentage: ptr(int32(60))},
			want:        []interface{}{"php", "Deployment/php", "cpu: <unknown>/60%", "<unset>", int64(4), int64(0), "60m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: objMeta("php", time.Hour), Spec: tt.spec, Status: tt.status}
			h.Annotations = tt.annotations
			h.Spec.ScaleTargetRef = autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "php"}
			checkRow(t, h, tt.want)
		})
	}
}
