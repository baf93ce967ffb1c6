package convert

import (
	"encoding/json"
	"fmt"
	"maps"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotations in which autoscaling/v1 carries what it has no fields for.
const (
	// metricSpecsAnnotation holds the metrics other than the CPU
	// utilization target, as a JSON list of autoscaling/v1 MetricSpec.
	metricSpecsAnnotation = "autoscaling.alpha.kubernetes.io/metrics"
	// metricStatusesAnnotation holds all current metrics, as a JSON list of
	// autoscaling/v1 MetricStatus.
	metricStatusesAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	// conditionsAnnotation holds the status conditions, as a JSON list of
	// autoscaling/v1 HorizontalPodAutoscalerCondition.
	conditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions"
	// behaviorSpecsAnnotation holds the scaling behavior, encoded as
	// upstream encodes its internal type: Go field names, no omitempty.
	behaviorSpecsAnnotation = "autoscaling.alpha.kubernetes.io/behavior"
)

// defaultCPUUtilization is the target upstream gives a v1 HPA written
// without any metric.
const defaultCPUUtilization = 80

var roundTripAnnotations = []string{metricSpecsAnnotation, metricStatusesAnnotation, conditionsAnnotation, behaviorSpecsAnnotation}

// dropRoundTrip returns annotations without the round-trip ones: a copy when
// one had to be removed, nil when nothing is left.
func dropRoundTrip(in map[string]string) map[string]string {
	found := false
	for _, k := range roundTripAnnotations {
		if _, ok := in[k]; ok {
			found = true
			break
		}
	}
	if !found {
		return in
	}
	out := maps.Clone(in)
	for _, k := range roundTripAnnotations {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// The annotation encoding of the behavior: upstream marshals its internal
// type, which has no JSON tags, so the keys are the Go field names and
// absent values are null.
type behaviorAnnotation struct {
	ScaleUp   *scalingRulesAnnotation
	ScaleDown *scalingRulesAnnotation
}

type scalingRulesAnnotation struct {
	StabilizationWindowSeconds *int32
	SelectPolicy               *autoscalingv2.ScalingPolicySelect
	Policies                   []scalingPolicyAnnotation
	Tolerance                  *resource.Quantity
}

type scalingPolicyAnnotation struct {
	Type          autoscalingv2.HPAScalingPolicyType
	Value         int32
	PeriodSeconds int32
}

func isCPUUtilizationTarget(m *autoscalingv2.MetricSpec) bool {
	return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
		m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil
}

func hpaToV1(src *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv1.HorizontalPodAutoscaler, error) {
	in := src.DeepCopy()
	out := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: in.ObjectMeta}
	// Only annotations produced by this conversion may be present.
	out.Annotations = dropRoundTrip(out.Annotations)

	out.Spec = autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
		MinReplicas:    in.Spec.MinReplicas,
		MaxReplicas:    in.Spec.MaxReplicas,
	}
	for i := range in.Spec.Metrics {
		m := &in.Spec.Metrics[i]
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			out.Spec.TargetCPUUtilizationPercentage = m.Resource.Target.AverageUtilization
			break
		}
	}

	out.Status = autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration: in.Status.ObservedGeneration,
		LastScaleTime:      in.Status.LastScaleTime,
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	for i := range in.Status.CurrentMetrics {
		m := &in.Status.CurrentMetrics[i]
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
			m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			out.Status.CurrentCPUUtilizationPercentage = m.Resource.Current.AverageUtilization
		}
	}

	set := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode annotation %s: %w", key, err)
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[key] = string(b)
		return nil
	}

	var others []autoscalingv1.MetricSpec
	for i := range in.Spec.Metrics {
		if isCPUUtilizationTarget(&in.Spec.Metrics[i]) {
			continue
		}
		others = append(others, metricSpecToV1(&in.Spec.Metrics[i]))
	}
	if len(others) > 0 {
		if err := set(metricSpecsAnnotation, others); err != nil {
			return nil, err
		}
	}
	// Every current metric is kept, the CPU one too, because its raw value
	// has no v1 field.
	if len(in.Status.CurrentMetrics) > 0 {
		current := make([]autoscalingv1.MetricStatus, len(in.Status.CurrentMetrics))
		for i := range in.Status.CurrentMetrics {
			current[i] = metricStatusToV1(&in.Status.CurrentMetrics[i])
		}
		if err := set(metricStatusesAnnotation, current); err != nil {
			return nil, err
		}
	}
	if in.Spec.Behavior != nil {
		if err := set(behaviorSpecsAnnotation, behaviorToAnnotation(in.Spec.Behavior)); err != nil {
			return nil, err
		}
	}
	if len(in.Status.Conditions) > 0 {
		conds := make([]autoscalingv1.HorizontalPodAutoscalerCondition, len(in.Status.Conditions))
		for i, c := range in.Status.Conditions {
			conds[i] = autoscalingv1.HorizontalPodAutoscalerCondition{
				Type:               autoscalingv1.HorizontalPodAutoscalerConditionType(c.Type),
				Status:             c.Status,
				LastTransitionTime: c.LastTransitionTime,
				Reason:             c.Reason,
				Message:            c.Message,
				ObservedGeneration: c.ObservedGeneration,
			}
		}
		if err := set(conditionsAnnotation, conds); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hpaToV2(src *autoscalingv1.HorizontalPodAutoscaler) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	in := src.DeepCopy()
	out := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: in.ObjectMeta}
	out.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
		MinReplicas:    in.Spec.MinReplicas,
		MaxReplicas:    in.Spec.MaxReplicas,
	}
	if in.Spec.TargetCPUUtilizationPercentage != nil {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationTarget(*in.Spec.TargetCPUUtilizationPercentage)}
	}
	out.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: in.Status.ObservedGeneration,
		LastScaleTime:      in.Status.LastScaleTime,
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	if in.Status.CurrentCPUUtilizationPercentage != nil {
		u := *in.Status.CurrentCPUUtilizationPercentage
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: &u},
			},
		}}
	}

	if enc, ok := in.Annotations[metricSpecsAnnotation]; ok {
		var others []autoscalingv1.MetricSpec
		if err := json.Unmarshal([]byte(enc), &others); err != nil {
			return nil, fmt.Errorf("decode annotation %s: %w", metricSpecsAnnotation, err)
		}
		// The other metrics come first, the CPU target (if any) last.
		metrics := make([]autoscalingv2.MetricSpec, 0, len(others)+len(out.Spec.Metrics))
		for i := range others {
			metrics = append(metrics, metricSpecToV2(&others[i]))
		}
		out.Spec.Metrics = append(metrics, out.Spec.Metrics...)
	}
	if enc, ok := in.Annotations[behaviorSpecsAnnotation]; ok {
		// Upstream moves only well-formed, non-empty behavior to the field.
		var b behaviorAnnotation
		if err := json.Unmarshal([]byte(enc), &b); err == nil && (b.ScaleUp != nil || b.ScaleDown != nil) {
			out.Spec.Behavior = behaviorFromAnnotation(&b)
		}
	}
	if enc, ok := in.Annotations[metricStatusesAnnotation]; ok {
		var current []autoscalingv1.MetricStatus
		if err := json.Unmarshal([]byte(enc), &current); err != nil {
			return nil, fmt.Errorf("decode annotation %s: %w", metricStatusesAnnotation, err)
		}
		// These carry more than currentCPUUtilizationPercentage.
		out.Status.CurrentMetrics = make([]autoscalingv2.MetricStatus, len(current))
		for i := range current {
			out.Status.CurrentMetrics[i] = metricStatusToV2(&current[i])
		}
	}
	// v1 once had an implicit CPU target in the controller; v2 makes it
	// explicit, once all metrics are known.
	if len(out.Spec.Metrics) == 0 {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationTarget(defaultCPUUtilization)}
	}
	if enc, ok := in.Annotations[conditionsAnnotation]; ok {
		var conds []autoscalingv1.HorizontalPodAutoscalerCondition
		if err := json.Unmarshal([]byte(enc), &conds); err != nil {
			return nil, fmt.Errorf("decode annotation %s: %w", conditionsAnnotation, err)
		}
		out.Status.Conditions = make([]autoscalingv2.HorizontalPodAutoscalerCondition, len(conds))
		for i, c := range conds {
			out.Status.Conditions[i] = autoscalingv2.HorizontalPodAutoscalerCondition{
				Type:               autoscalingv2.HorizontalPodAutoscalerConditionType(c.Type),
				Status:             c.Status,
				LastTransitionTime: c.LastTransitionTime,
				Reason:             c.Reason,
				Message:            c.Message,
				ObservedGeneration: c.ObservedGeneration,
			}
		}
	}
	out.Annotations = dropRoundTrip(out.Annotations)
	return out, nil
}

func cpuUtilizationTarget(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{
				Type:               autoscalingv2.UtilizationMetricType,
				AverageUtilization: &percent,
			},
		},
	}
}

// quantity dereferences q, giving the zero quantity for nil, as upstream's
// conversion into v1's non-pointer quantity fields does.
func quantity(q *resource.Quantity) resource.Quantity {
	if q == nil {
		return resource.Quantity{}
	}
	return *q
}

func metricSpecToV1(in *autoscalingv2.MetricSpec) autoscalingv1.MetricSpec {
	out := autoscalingv1.MetricSpec{Type: autoscalingv1.MetricSourceType(in.Type)}
	if s := in.Object; s != nil {
		out.Object = &autoscalingv1.ObjectMetricSource{
			Target:       autoscalingv1.CrossVersionObjectReference(s.DescribedObject),
			MetricName:   s.Metric.Name,
			TargetValue:  quantity(s.Target.Value),
			Selector:     s.Metric.Selector,
			AverageValue: s.Target.AverageValue,
		}
	}
	if s := in.Pods; s != nil {
		out.Pods = &autoscalingv1.PodsMetricSource{
			MetricName:         s.Metric.Name,
			TargetAverageValue: quantity(s.Target.AverageValue),
			Selector:           s.Metric.Selector,
		}
	}
	if s := in.Resource; s != nil {
		out.Resource = &autoscalingv1.ResourceMetricSource{
			Name:                     s.Name,
			TargetAverageUtilization: s.Target.AverageUtilization,
			TargetAverageValue:       s.Target.AverageValue,
		}
	}
	if s := in.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricSource{
			Name:                     s.Name,
			Container:                s.Container,
			TargetAverageUtilization: s.Target.AverageUtilization,
			TargetAverageValue:       s.Target.AverageValue,
		}
	}
	if s := in.External; s != nil {
		out.External = &autoscalingv1.ExternalMetricSource{
			MetricName:         s.Metric.Name,
			MetricSelector:     s.Metric.Selector,
			TargetValue:        s.Target.Value,
			TargetAverageValue: s.Target.AverageValue,
		}
	}
	return out
}

// utilizationOrAverage is the target type v1 implies for resource metrics:
// a utilization when one is given, an average value otherwise.
func utilizationOrAverage(utilization *int32) autoscalingv2.MetricTargetType {
	if utilization != nil {
		return autoscalingv2.UtilizationMetricType
	}
	return autoscalingv2.AverageValueMetricType
}

func metricSpecToV2(in *autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(in.Type)}
	if s := in.Object; s != nil {
		t := autoscalingv2.ValueMetricType
		if s.AverageValue != nil {
			t = autoscalingv2.AverageValueMetricType
		}
		v := s.TargetValue
		out.Object = &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference(s.Target),
			Target:          autoscalingv2.MetricTarget{Type: t, Value: &v, AverageValue: s.AverageValue},
			Metric:          autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
		}
	}
	if s := in.Pods; s != nil {
		v := s.TargetAverageValue
		out.Pods = &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &v},
		}
	}
	if s := in.Resource; s != nil {
		out.Resource = &autoscalingv2.ResourceMetricSource{
			Name: s.Name,
			Target: autoscalingv2.MetricTarget{
				Type:               utilizationOrAverage(s.TargetAverageUtilization),
				AverageValue:       s.TargetAverageValue,
				AverageUtilization: s.TargetAverageUtilization,
			},
		}
	}
	if s := in.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{
			Name:      s.Name,
			Container: s.Container,
			Target: autoscalingv2.MetricTarget{
				Type:               utilizationOrAverage(s.TargetAverageUtilization),
				AverageValue:       s.TargetAverageValue,
				AverageUtilization: s.TargetAverageUtilization,
			},
		}
	}
	if s := in.External; s != nil {
		t := autoscalingv2.ValueMetricType
		if s.TargetValue == nil {
			t = autoscalingv2.AverageValueMetricType
		}
		out.External = &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.MetricSelector},
			Target: autoscalingv2.MetricTarget{Type: t, Value: s.TargetValue, AverageValue: s.TargetAverageValue},
		}
	}
	return out
}

func metricStatusToV1(in *autoscalingv2.MetricStatus) autoscalingv1.MetricStatus {
	out := autoscalingv1.MetricStatus{Type: autoscalingv1.MetricSourceType(in.Type)}
	if s := in.Object; s != nil {
		out.Object = &autoscalingv1.ObjectMetricStatus{
			Target:       autoscalingv1.CrossVersionObjectReference(s.DescribedObject),
			MetricName:   s.Metric.Name,
			CurrentValue: quantity(s.Current.Value),
			Selector:     s.Metric.Selector,
			AverageValue: s.Current.AverageValue,
		}
	}
	if s := in.Pods; s != nil {
		out.Pods = &autoscalingv1.PodsMetricStatus{
			MetricName:          s.Metric.Name,
			CurrentAverageValue: quantity(s.Current.AverageValue),
			Selector:            s.Metric.Selector,
		}
	}
	if s := in.Resource; s != nil {
		out.Resource = &autoscalingv1.ResourceMetricStatus{
			Name:                      s.Name,
			CurrentAverageUtilization: s.Current.AverageUtilization,
			CurrentAverageValue:       quantity(s.Current.AverageValue),
		}
	}
	if s := in.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricStatus{
			Name:                      s.Name,
			Container:                 s.Container,
			CurrentAverageUtilization: s.Current.AverageUtilization,
			CurrentAverageValue:       quantity(s.Current.AverageValue),
		}
	}
	if s := in.External; s != nil {
		out.External = &autoscalingv1.ExternalMetricStatus{
			MetricName:          s.Metric.Name,
			MetricSelector:      s.Metric.Selector,
			CurrentValue:        quantity(s.Current.Value),
			CurrentAverageValue: s.Current.AverageValue,
		}
	}
	return out
}

func metricStatusToV2(in *autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(in.Type)}
	if s := in.Object; s != nil {
		v := s.CurrentValue
		out.Object = &autoscalingv2.ObjectMetricStatus{
			Metric:          autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Current:         autoscalingv2.MetricValueStatus{Value: &v, AverageValue: s.AverageValue},
			DescribedObject: autoscalingv2.CrossVersionObjectReference(s.Target),
		}
	}
	if s := in.Pods; s != nil {
		v := s.CurrentAverageValue
		out.Pods = &autoscalingv2.PodsMetricStatus{
			Metric:  autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Current: autoscalingv2.MetricValueStatus{AverageValue: &v},
		}
	}
	if s := in.Resource; s != nil {
		v := s.CurrentAverageValue
		out.Resource = &autoscalingv2.ResourceMetricStatus{
			Name:    s.Name,
			Current: autoscalingv2.MetricValueStatus{AverageValue: &v, AverageUtilization: s.CurrentAverageUtilization},
		}
	}
	if s := in.ContainerResource; s != nil {
		v := s.CurrentAverageValue
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{
			Name:      s.Name,
			Container: s.Container,
			Current:   autoscalingv2.MetricValueStatus{AverageValue: &v, AverageUtilization: s.CurrentAverageUtilization},
		}
	}
	if s := in.External; s != nil {
		v := s.CurrentValue
		out.External = &autoscalingv2.ExternalMetricStatus{
			Metric:  autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.MetricSelector},
			Current: autoscalingv2.MetricValueStatus{Value: &v, AverageValue: s.CurrentAverageValue},
		}
	}
	return out
}

func behaviorToAnnotation(in *autoscalingv2.HorizontalPodAutoscalerBehavior) behaviorAnnotation {
	rules := func(r *autoscalingv2.HPAScalingRules) *scalingRulesAnnotation {
		if r == nil {
			return nil
		}
		out := &scalingRulesAnnotation{
			StabilizationWindowSeconds: r.StabilizationWindowSeconds,
			SelectPolicy:               r.SelectPolicy,
			Tolerance:                  r.Tolerance,
		}
		if r.Policies != nil {
			out.Policies = make([]scalingPolicyAnnotation, len(r.Policies))
			for i, p := range r.Policies {
				out.Policies[i] = scalingPolicyAnnotation(p)
			}
		}
		return out
	}
	return behaviorAnnotation{ScaleUp: rules(in.ScaleUp), ScaleDown: rules(in.ScaleDown)}
}

func behaviorFromAnnotation(in *behaviorAnnotation) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	rules := func(r *scalingRulesAnnotation) *autoscalingv2.HPAScalingRules {
		if r == nil {
			return nil
		}
		out := &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: r.StabilizationWindowSeconds,
			SelectPolicy:               r.SelectPolicy,
			Tolerance:                  r.Tolerance,
		}
		if r.Policies != nil {
			out.Policies = make([]autoscalingv2.HPAScalingPolicy, len(r.Policies))
			for i, p := range r.Policies {
				out.Policies[i] = autoscalingv2.HPAScalingPolicy(p)
			}
		}
		return out
	}
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(in.ScaleUp), ScaleDown: rules(in.ScaleDown)}
}
