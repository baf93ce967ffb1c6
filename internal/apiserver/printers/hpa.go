package printers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations in which autoscaling/v1 round-trips what only v2 can express.
const (
	hpaMetricSpecsAnnotation    = "autoscaling.alpha.kubernetes.io/metrics"
	hpaMetricStatusesAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
)

// defaultCPUUtilization is the target autoscaling/v1 implies when an HPA
// names no metric at all.
const defaultCPUUtilization = 80

func hpaV2Row(h *autoscalingv2.HorizontalPodAutoscaler, now time.Time) []interface{} {
	return hpaRow(h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, h.Spec.MinReplicas,
		h.Spec.MaxReplicas, h.Status.CurrentReplicas, h.CreationTimestamp,
		h.Spec.Metrics, h.Status.CurrentMetrics, now)
}

// hpaV1Row prints an autoscaling/v1 object as its v2 form would print:
// targetCPUUtilizationPercentage and the metric annotations become metrics.
func hpaV1Row(h *autoscalingv1.HorizontalPodAutoscaler, now time.Time) []interface{} {
	specs, statuses := hpaV1Metrics(h)
	return hpaRow(h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, h.Spec.MinReplicas,
		h.Spec.MaxReplicas, h.Status.CurrentReplicas, h.CreationTimestamp, specs, statuses, now)
}

func hpaRow(name, refKind, refName string, minReplicas *int32, maxReplicas, current int32, created metav1.Time,
	specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus, now time.Time) []interface{} {
	minPods := unset
	if minReplicas != nil {
		minPods = fmt.Sprintf("%d", *minReplicas)
	}
	return []interface{}{
		name, refKind + "/" + refName, hpaTargets(specs, statuses), minPods, int64(maxReplicas), int64(current),
		age(created, now),
	}
}

// hpaTargets renders "current/target" for the first two metrics and counts
// the rest. A status is matched to its spec by position, as upstream does.
func hpaTargets(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return none
	}
	const max = 2
	list := make([]string, 0, len(specs))
	for i := range specs {
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		list = append(list, hpaTarget(&specs[i], st))
	}
	if len(list) > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), len(list)-max)
	}
	return strings.Join(list, ", ")
}

// hpaTarget renders one metric. Quantities are printed with the nil-safe
// Quantity.String, which is what upstream prints for an absent value too.
func hpaTarget(spec *autoscalingv2.MetricSpec, st *autoscalingv2.MetricStatus) string {
	current := unknown
	switch spec.Type {
	case autoscalingv2.ExternalMetricSourceType:
		if spec.External == nil {
			break
		}
		if spec.External.Target.AverageValue != nil {
			if st != nil && st.External != nil && st.External.Current.AverageValue != nil {
				current = st.External.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", current, spec.External.Target.AverageValue.String())
		}
		if st != nil && st.External != nil {
			current = st.External.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.External.Target.Value.String())
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods == nil {
			break
		}
		if st != nil && st.Pods != nil {
			current = st.Pods.Current.AverageValue.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.Pods.Target.AverageValue.String())
	case autoscalingv2.ObjectMetricSourceType:
		if spec.Object == nil {
			break
		}
		if spec.Object.Target.AverageValue != nil {
			if st != nil && st.Object != nil && st.Object.Current.AverageValue != nil {
				current = st.Object.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", current, spec.Object.Target.AverageValue.String())
		}
		if st != nil && st.Object != nil {
			current = st.Object.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.Object.Target.Value.String())
	case autoscalingv2.ResourceMetricSourceType:
		if spec.Resource == nil {
			break
		}
		var cur *autoscalingv2.MetricValueStatus
		if st != nil && st.Resource != nil {
			cur = &st.Resource.Current
		}
		return resourceTarget(spec.Resource.Name, spec.Resource.Target, cur)
	case autoscalingv2.ContainerResourceMetricSourceType:
		if spec.ContainerResource == nil {
			break
		}
		var cur *autoscalingv2.MetricValueStatus
		if st != nil && st.ContainerResource != nil {
			cur = &st.ContainerResource.Current
		}
		return resourceTarget(spec.ContainerResource.Name, spec.ContainerResource.Target, cur)
	}
	// An unknown type, or a known one without its source (validation rejects
	// the latter; upstream would not get this far).
	return "<unknown type>"
}

// resourceTarget renders "cpu: 50%/80%" for utilization targets and
// "memory: 100Mi/200Mi" for average-value targets; an unset utilization
// target prints "<auto>".
func resourceTarget(name corev1.ResourceName, target autoscalingv2.MetricTarget, cur *autoscalingv2.MetricValueStatus) string {
	current := unknown
	if target.AverageValue != nil {
		if cur != nil {
			current = cur.AverageValue.String()
		}
		return fmt.Sprintf("%s: %s/%s", name, current, target.AverageValue.String())
	}
	if cur != nil && cur.AverageUtilization != nil {
		current = fmt.Sprintf("%d%%", *cur.AverageUtilization)
	}
	want := "<auto>"
	if target.AverageUtilization != nil {
		want = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name, current, want)
}

// hpaV1Metrics derives the v2 metrics of an autoscaling/v1 object the way
// conversion does: metrics kept in the annotation come first, then the CPU
// target; with no metric at all the implied CPU target is 80%. Current
// metrics in the annotation replace the CPU utilization status.
func hpaV1Metrics(h *autoscalingv1.HorizontalPodAutoscaler) ([]autoscalingv2.MetricSpec, []autoscalingv2.MetricStatus) {
	var specs []autoscalingv2.MetricSpec
	if raw, ok := h.Annotations[hpaMetricSpecsAnnotation]; ok {
		var others []autoscalingv1.MetricSpec
		if err := json.Unmarshal([]byte(raw), &others); err == nil {
			for i := range others {
				specs = append(specs, v1MetricSpec(&others[i]))
			}
		}
	}
	if t := h.Spec.TargetCPUUtilizationPercentage; t != nil {
		specs = append(specs, cpuUtilizationSpec(*t))
	}
	if len(specs) == 0 {
		specs = []autoscalingv2.MetricSpec{cpuUtilizationSpec(defaultCPUUtilization)}
	}

	var statuses []autoscalingv2.MetricStatus
	if c := h.Status.CurrentCPUUtilizationPercentage; c != nil {
		u := *c
		statuses = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: &u},
			},
		}}
	}
	if raw, ok := h.Annotations[hpaMetricStatusesAnnotation]; ok {
		var current []autoscalingv1.MetricStatus
		if err := json.Unmarshal([]byte(raw), &current); err == nil {
			statuses = make([]autoscalingv2.MetricStatus, 0, len(current))
			for i := range current {
				statuses = append(statuses, v1MetricStatus(&current[i]))
			}
		}
	}
	return specs, statuses
}

func cpuUtilizationSpec(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &percent},
		},
	}
}

// v1MetricSpec converts the targets of an annotation-held v1 metric; names
// and selectors are not printed and are left out.
func v1MetricSpec(in *autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(in.Type)}
	if o := in.Object; o != nil {
		v := o.TargetValue
		out.Object = &autoscalingv2.ObjectMetricSource{Target: autoscalingv2.MetricTarget{Value: &v, AverageValue: o.AverageValue}}
	}
	if p := in.Pods; p != nil {
		v := p.TargetAverageValue
		out.Pods = &autoscalingv2.PodsMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: &v}}
	}
	if r := in.Resource; r != nil {
		out.Resource = &autoscalingv2.ResourceMetricSource{Name: r.Name, Target: autoscalingv2.MetricTarget{
			AverageValue: r.TargetAverageValue, AverageUtilization: r.TargetAverageUtilization,
		}}
	}
	if r := in.ContainerResource; r != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{Name: r.Name, Container: r.Container,
			Target: autoscalingv2.MetricTarget{AverageValue: r.TargetAverageValue, AverageUtilization: r.TargetAverageUtilization}}
	}
	if e := in.External; e != nil {
		out.External = &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{
			Value: e.TargetValue, AverageValue: e.TargetAverageValue,
		}}
	}
	return out
}

// v1MetricStatus converts the current values of an annotation-held v1
// metric status.
func v1MetricStatus(in *autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(in.Type)}
	if o := in.Object; o != nil {
		v := o.CurrentValue
		out.Object = &autoscalingv2.ObjectMetricStatus{Current: autoscalingv2.MetricValueStatus{Value: &v, AverageValue: o.AverageValue}}
	}
	if p := in.Pods; p != nil {
		v := p.CurrentAverageValue
		out.Pods = &autoscalingv2.PodsMetricStatus{Current: autoscalingv2.MetricValueStatus{AverageValue: &v}}
	}
	if r := in.Resource; r != nil {
		v := r.CurrentAverageValue
		out.Resource = &autoscalingv2.ResourceMetricStatus{Name: r.Name, Current: autoscalingv2.MetricValueStatus{
			AverageValue: &v, AverageUtilization: r.CurrentAverageUtilization,
		}}
	}
	if r := in.ContainerResource; r != nil {
		v := r.CurrentAverageValue
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container,
			Current: autoscalingv2.MetricValueStatus{AverageValue: &v, AverageUtilization: r.CurrentAverageUtilization}}
	}
	if e := in.External; e != nil {
		v := e.CurrentValue
		out.External = &autoscalingv2.ExternalMetricStatus{Current: autoscalingv2.MetricValueStatus{
			Value: &v, AverageValue: e.CurrentAverageValue,
		}}
	}
	return out
}
