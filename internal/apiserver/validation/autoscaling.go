package validation

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	maxPeriodSeconds              int32 = 1800
	maxStabilizationWindowSeconds int32 = 3600
	// minReplicasLowerBound is 1: HPAScaleToZero is an alpha feature.
	minReplicasLowerBound int32 = 1
)

func validateCrossVersionObjectReference(kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), ""))
	} else {
		allErrs = append(allErrs, validateName(kind, path.ValidatePathSegmentName, fldPath.Child("kind"))...)
	}
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else {
		allErrs = append(allErrs, validateName(name, path.ValidatePathSegmentName, fldPath.Child("name"))...)
	}
	return allErrs
}

// validateReplicaBounds checks minReplicas and maxReplicas.
func validateReplicaBounds(minReplicas *int32, maxReplicas int32, lower int32, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if minReplicas != nil && *minReplicas < lower {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("minReplicas"), *minReplicas, fmt.Sprintf("must be greater than or equal to %d", lower)))
	}
	if maxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxReplicas"), maxReplicas, "must be greater than 0"))
	}
	if minReplicas != nil && maxReplicas < *minReplicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxReplicas"), maxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	return allErrs
}

// HorizontalPodAutoscaler (autoscaling/v2, the stored version)

func validateHPASpec(spec *autoscalingv2.HorizontalPodAutoscalerSpec, fldPath *field.Path, lower int32) field.ErrorList {
	allErrs := validateReplicaBounds(spec.MinReplicas, spec.MaxReplicas, lower, fldPath)
	allErrs = append(allErrs, validateCrossVersionObjectReference(spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name, fldPath.Child("scaleTargetRef"))...)
	metricsPath := fldPath.Child("metrics")
	hasObjectOrExternal := false
	for i := range spec.Metrics {
		allErrs = append(allErrs, validateMetricSpec(&spec.Metrics[i], metricsPath.Index(i))...)
		if t := spec.Metrics[i].Type; t == autoscalingv2.ObjectMetricSourceType || t == autoscalingv2.ExternalMetricSourceType {
			hasObjectOrExternal = true
		}
	}
	if spec.MinReplicas != nil && *spec.MinReplicas == 0 && !hasObjectOrExternal {
		allErrs = append(allErrs, field.Forbidden(metricsPath, "must specify at least one Object or External metric to support scaling to zero replicas"))
	}
	if b := spec.Behavior; b != nil {
		allErrs = append(allErrs, validateScalingRules(b.ScaleUp, fldPath.Child("behavior").Child("scaleUp"))...)
		allErrs = append(allErrs, validateScalingRules(b.ScaleDown, fldPath.Child("behavior").Child("scaleDown"))...)
	}
	return allErrs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), w, "must be greater than or equal to zero"))
		}
		if *w > maxStabilizationWindowSeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), w, fmt.Sprintf("must be less than or equal to %v", maxStabilizationWindowSeconds)))
		}
	}
	if s := r.SelectPolicy; s != nil && *s != autoscalingv2.MaxChangePolicySelect && *s != autoscalingv2.MinChangePolicySelect && *s != autoscalingv2.DisabledPolicySelect {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("selectPolicy"), s,
			[]autoscalingv2.ScalingPolicySelect{autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect}))
	}
	policiesPath := fldPath.Child("policies")
	if len(r.Policies) == 0 {
		allErrs = append(allErrs, field.Required(policiesPath, "must specify at least one Policy"))
	}
	for i, p := range r.Policies {
		pp := policiesPath.Index(i)
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			allErrs = append(allErrs, field.NotSupported(pp.Child("type"), p.Type, []autoscalingv2.HPAScalingPolicyType{autoscalingv2.PercentScalingPolicy, autoscalingv2.PodsScalingPolicy}))
		}
		if p.Value <= 0 {
			allErrs = append(allErrs, field.Invalid(pp.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, "must be greater than zero"))
		}
		if p.PeriodSeconds > maxPeriodSeconds {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, fmt.Sprintf("must be less than or equal to %v", maxPeriodSeconds)))
		}
	}
	return allErrs
}

var validMetricSourceTypes = []autoscalingv2.MetricSourceType{
	autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ObjectMetricSourceType,
	autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
}

func validateMetricSpec(spec *autoscalingv2.MetricSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Type == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must specify a metric source type"))
	}
	known := false
	for _, t := range validMetricSourceTypes {
		if t == spec.Type {
			known = true
		}
	}
	if !known {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), spec.Type, validMetricSourceTypes))
	}
	present := []string{}
	if spec.Object != nil {
		present = append(present, "object")
		if len(present) == 1 {
			p := fldPath.Child("object")
			allErrs = append(allErrs, validateCrossVersionObjectReference(spec.Object.DescribedObject.Kind, spec.Object.DescribedObject.Name, p.Child("describedObject"))...)
			allErrs = append(allErrs, validateMetricIdentifier(spec.Object.Metric, p.Child("metric"))...)
			allErrs = append(allErrs, validateMetricTarget(spec.Object.Target, p.Child("target"))...)
			if spec.Object.Target.Value == nil && spec.Object.Target.AverageValue == nil {
				allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must set either a target value or averageValue"))
			}
		}
	}
	if spec.External != nil {
		present = append(present, "external")
		if len(present) == 1 {
			p := fldPath.Child("external")
			allErrs = append(allErrs, validateMetricIdentifier(spec.External.Metric, p.Child("metric"))...)
			allErrs = append(allErrs, validateMetricTarget(spec.External.Target, p.Child("target"))...)
			t := spec.External.Target
			if t.Value == nil && t.AverageValue == nil {
				allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must set either a target value for metric or a per-pod target"))
			}
			if t.Value != nil && t.AverageValue != nil {
				allErrs = append(allErrs, field.Forbidden(p.Child("target").Child("value"), "may not set both a target value for metric and a per-pod target"))
			}
		}
	}
	if spec.Pods != nil {
		present = append(present, "pods")
		if len(present) == 1 {
			p := fldPath.Child("pods")
			allErrs = append(allErrs, validateMetricIdentifier(spec.Pods.Metric, p.Child("metric"))...)
			allErrs = append(allErrs, validateMetricTarget(spec.Pods.Target, p.Child("target"))...)
			if spec.Pods.Target.AverageValue == nil {
				allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must specify a positive target averageValue"))
			}
		}
	}
	if spec.Resource != nil {
		present = append(present, "resource")
		if len(present) == 1 {
			p := fldPath.Child("resource")
			if spec.Resource.Name == "" {
				allErrs = append(allErrs, field.Required(p.Child("name"), "must specify a resource name"))
			}
			allErrs = append(allErrs, validateResourceMetricTarget(spec.Resource.Target, p.Child("target"))...)
		}
	}
	if spec.ContainerResource != nil {
		present = append(present, "containerResource")
		if len(present) == 1 {
			p := fldPath.Child("containerResource")
			if spec.ContainerResource.Name == "" {
				allErrs = append(allErrs, field.Required(p.Child("name"), "must specify a resource name"))
			} else {
				allErrs = append(allErrs, validateContainerResourceName(spec.ContainerResource.Name, p.Child("name"))...)
			}
			if spec.ContainerResource.Container == "" {
				allErrs = append(allErrs, field.Required(p.Child("container"), "must specify a container"))
			} else {
				allErrs = append(allErrs, validateDNS1123Label(spec.ContainerResource.Container, p.Child("container"))...)
			}
			allErrs = append(allErrs, validateResourceMetricTarget(spec.ContainerResource.Target, p.Child("target"))...)
		}
	}
	expected := ""
	missing := func(set bool, name string) {
		expected = name
		if !set {
			allErrs = append(allErrs, field.Required(fldPath.Child(name), "must populate information for the given metric source"))
		}
	}
	switch spec.Type {
	case autoscalingv2.ObjectMetricSourceType:
		missing(spec.Object != nil, "object")
	case autoscalingv2.PodsMetricSourceType:
		missing(spec.Pods != nil, "pods")
	case autoscalingv2.ResourceMetricSourceType:
		missing(spec.Resource != nil, "resource")
	case autoscalingv2.ExternalMetricSourceType:
		missing(spec.External != nil, "external")
	case autoscalingv2.ContainerResourceMetricSourceType:
		missing(spec.ContainerResource != nil, "containerResource")
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), spec.Type, validMetricSourceTypes))
	}
	if len(present) != 1 {
		for _, t := range present {
			if t != expected {
				allErrs = append(allErrs, field.Forbidden(fldPath.Child(t), "must populate the given metric source only"))
			}
		}
	}
	return allErrs
}

func validateResourceMetricTarget(t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	allErrs := validateMetricTarget(t, fldPath)
	if t.AverageUtilization == nil && t.AverageValue == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("averageUtilization"), "must set either a target raw value or a target utilization"))
	}
	if t.AverageUtilization != nil && t.AverageValue != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return allErrs
}

func validateMetricTarget(t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if t.Type == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must specify a metric target type"))
	}
	if t.Type != autoscalingv2.UtilizationMetricType && t.Type != autoscalingv2.ValueMetricType && t.Type != autoscalingv2.AverageValueMetricType {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("value"), t.Value, "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageValue"), t.AverageValue, "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageUtilization"), t.AverageUtilization, "must be greater than 0"))
	}
	return allErrs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, fldPath *field.Path) field.ErrorList {
	if id.Name == "" {
		return field.ErrorList{field.Required(fldPath.Child("name"), "must specify a metric name")}
	}
	return validateName(id.Name, path.ValidatePathSegmentName, fldPath.Child("name"))
}

func validateHPA(hpa *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	allErrs := validateObjectMeta(&hpa.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateHPASpec(&hpa.Spec, field.NewPath("spec"), minReplicasLowerBound)...)
}

// hpaLowerBound keeps an existing minReplicas=0 valid on update.
func hpaLowerBound(oldMin *int32) int32 {
	if oldMin != nil && *oldMin == 0 {
		return 0
	}
	return minReplicasLowerBound
}

func validateHPAUpdate(hpa, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&hpa.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateHPASpec(&hpa.Spec, field.NewPath("spec"), hpaLowerBound(old.Spec.MinReplicas))...)
}

func validateHPAStatus(current, desired int32) field.ErrorList {
	allErrs := validateNonnegativeField(int64(current), field.NewPath("status", "currentReplicas"))
	return append(allErrs, validateNonnegativeField(int64(desired), field.NewPath("status", "desiredReplicas"))...)
}

// autoscaling/v1 has the same rules on its smaller spec.

func validateHPAv1Spec(spec *autoscalingv1.HorizontalPodAutoscalerSpec, fldPath *field.Path, lower int32) field.ErrorList {
	allErrs := validateReplicaBounds(spec.MinReplicas, spec.MaxReplicas, lower, fldPath)
	allErrs = append(allErrs, validateCrossVersionObjectReference(spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name, fldPath.Child("scaleTargetRef"))...)
	if u := spec.TargetCPUUtilizationPercentage; u != nil && *u < 1 {
		// v1's field converts to metrics[0].resource.target in v2.
		allErrs = append(allErrs, field.Invalid(fldPath.Child("metrics").Index(0).Child("resource").Child("target").Child("averageUtilization"), u, "must be greater than 0"))
	}
	return allErrs
}

// validateScale covers the scale subresource.
func validateScale(s *autoscalingv1.Scale) field.ErrorList {
	allErrs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	if s.Spec.Replicas < 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "replicas"), s.Spec.Replicas, "must be greater than or equal to 0"))
	}
	return allErrs
}
