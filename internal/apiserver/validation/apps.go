package validation

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const selectorMismatchMsg = "`selector` does not match template `labels`"

// validateControllerSelector is the selector block shared by Deployment,
// ReplicaSet and StatefulSet: present, valid, and not empty.
func validateControllerSelector(sel *metav1.LabelSelector, kind string, fldPath *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	allErrs := validateLabelSelector(sel, fldPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kind))
	}
	return allErrs
}

// validatePodTemplateSpecForReplicaSet is apps' check for Deployment and
// ReplicaSet templates: labels match the selector, the pod spec is valid,
// and the pod restarts forever.
func validatePodTemplateSpecForReplicaSet(t *corev1.PodTemplateSpec, selector labels.Selector, kind string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("metadata", "labels"), t.Labels, selectorMismatchMsg))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(t, fldPath)...)
	allErrs = append(allErrs, validateAlwaysRestart(t, kind, fldPath.Child("spec"))...)
	return allErrs
}

func validateAlwaysRestart(t *corev1.PodTemplateSpec, kind string, specPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("restartPolicy"), t.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return allErrs
}

// Deployment

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegativeField(int64(deref(spec.Replicas, 0)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "deployment", fldPath.Child("selector"))...)
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validatePodTemplateSpecForReplicaSet(&spec.Template, selector, "ReplicaSet", fldPath.Child("template"))...)
	}
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.ProgressDeadlineSeconds), fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		ru := s.RollingUpdate
		p := fldPath.Child("rollingUpdate")
		maxUnavailable := deref(ru.MaxUnavailable, intstr.IntOrString{})
		maxSurge := deref(ru.MaxSurge, intstr.IntOrString{})
		allErrs := validatePositiveIntOrPercent(maxUnavailable, p.Child("maxUnavailable"))
		allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, p.Child("maxSurge"))...)
		if intOrPercentValue(maxUnavailable) == 0 && intOrPercentValue(maxSurge) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("maxUnavailable"), maxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		return append(allErrs, isNotMoreThan100Percent(maxUnavailable, p.Child("maxUnavailable"))...)
	default:
		return field.ErrorList{field.NotSupported(fldPath, internalValue(*s), []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType})}
	}
	return nil
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
}

// validateDeploymentUpdate adds the apps/v1 rule from the registry
// strategy: the selector never changes.
func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutableField(d.Spec.Selector, old.Spec.Selector, field.NewPath("spec").Child("selector"))...)
}

func validateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := d.Status
	allErrs = append(allErrs, validateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.Replicas), p.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.UpdatedReplicas), p.Child("updatedReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.UnavailableReplicas), p.Child("unavailableReplicas"))...)
	if s.CollisionCount != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*s.CollisionCount), p.Child("collisionCount"))...)
	}
	const msg = "cannot be greater than status.replicas"
	if s.UpdatedReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("updatedReplicas"), s.UpdatedReplicas, msg))
	}
	if s.ReadyReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, msg))
	}
	if s.AvailableReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, msg))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return append(allErrs, validateCollisionCountNotDecremented(s.CollisionCount, old.Status.CollisionCount, p)...)
}

func validateCollisionCountNotDecremented(n, old *int32, statusPath *field.Path) field.ErrorList {
	decremented := (n == nil && old != nil) || (n != nil && old != nil && *n < *old)
	if !decremented {
		return nil
	}
	return field.ErrorList{field.Invalid(statusPath.Child("collisionCount"), deref(n, 0), "cannot be decremented")}
}

// ReplicaSet

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegativeField(int64(deref(spec.Replicas, 0)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	// Upstream reuses the Deployment wording here.
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "deployment", fldPath.Child("selector"))...)
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validatePodTemplateSpecForReplicaSet(&spec.Template, selector, "ReplicaSet", fldPath.Child("template"))...)
	}
	return allErrs
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutableField(rs.Spec.Selector, old.Spec.Selector, field.NewPath("spec").Child("selector"))...)
}

func validateReplicaSetStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	s := rs.Status
	return append(allErrs, validateReplicaCounts(field.NewPath("status"), s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration)...)
}

// validateReplicaCounts is the status check shared by ReplicaSet and
// ReplicationController.
func validateReplicaCounts(p *field.Path, replicas, fullyLabeled, ready, available int32, observedGeneration int64) field.ErrorList {
	allErrs := validateNonnegativeField(int64(replicas), p.Child("replicas"))
	allErrs = append(allErrs, validateNonnegativeField(int64(fullyLabeled), p.Child("fullyLabeledReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(ready), p.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(available), p.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(observedGeneration, p.Child("observedGeneration"))...)
	const msg = "cannot be greater than status.replicas"
	if fullyLabeled > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("fullyLabeledReplicas"), fullyLabeled, msg))
	}
	if ready > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), ready, msg))
	}
	if available > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, msg))
	}
	if available > ready {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

// StatefulSet

// statefulSetTemplateVolumes adds a claim volume for each volumeClaimTemplate
// the pod spec does not already declare, so mounts of claim templates
// resolve, as upstream does before validating the pod template.
func statefulSetTemplateWithClaims(spec *appsv1.StatefulSetSpec) *corev1.PodTemplateSpec {
	t := spec.Template.DeepCopy()
	have := map[string]bool{}
	for _, v := range t.Spec.Volumes {
		have[v.Name] = true
	}
	for _, c := range spec.VolumeClaimTemplates {
		if c.Name == "" || have[c.Name] {
			continue
		}
		have[c.Name] = true
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{
			Name:         c.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}},
		})
	}
	return t
}

// validateStatefulSetSpec is apps' ValidateStatefulSetSpec. checkPodSpec
// turns on full pod template validation, which upstream ratchets: always on
// create, on update only while the stored template still passes it.
func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, fldPath *field.Path, checkPodSpec bool) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	usPath := fldPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case "":
		allErrs = append(allErrs, field.Required(usPath, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(usPath.Child("rollingUpdate"), internalValue(spec.UpdateStrategy.RollingUpdate),
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			ruPath := usPath.Child("rollingUpdate")
			allErrs = append(allErrs, validateNonnegativeField(int64(deref(ru.Partition, 0)), ruPath.Child("partition"))...)
			if ru.MaxUnavailable != nil {
				mu := ruPath.Child("maxUnavailable")
				allErrs = append(allErrs, validatePositiveIntOrPercent(*ru.MaxUnavailable, mu)...)
				if intOrPercentValue(*ru.MaxUnavailable) == 0 {
					allErrs = append(allErrs, field.Invalid(mu, *ru.MaxUnavailable, "cannot be 0"))
				}
				allErrs = append(allErrs, isNotMoreThan100Percent(*ru.MaxUnavailable, mu)...)
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(usPath, internalValue(spec.UpdateStrategy),
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		pp := fldPath.Child("persistentVolumeClaimRetentionPolicy")
		policies := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		for _, f := range []struct {
			name string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", p.WhenDeleted}, {"whenScaled", p.WhenScaled}} {
			if f.v != appsv1.RetainPersistentVolumeClaimRetentionPolicyType && f.v != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
				allErrs = append(allErrs, field.NotSupported(pp.Child(f.name), f.v, policies))
			}
		}
	}
	allErrs = append(allErrs, validateNonnegativeField(int64(deref(spec.Replicas, 0)), fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.Ordinals != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(spec.Ordinals.Start), fldPath.Child("ordinals.start"))...)
	}
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "statefulset", fldPath.Child("selector"))...)
	selector, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, ""))
	} else {
		tPath := fldPath.Child("template")
		t := &spec.Template
		if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
			allErrs = append(allErrs, field.Invalid(tPath.Child("metadata", "labels"), t.Labels, selectorMismatchMsg))
		}
		if checkPodSpec {
			allErrs = append(allErrs, validatePodTemplateSpec(statefulSetTemplateWithClaims(spec), tPath)...)
		} else {
			allErrs = append(allErrs, validateLabels(t.Labels, tPath.Child("labels"))...)
			allErrs = append(allErrs, validateAnnotations(t.Annotations, tPath.Child("annotations"))...)
			allErrs = append(allErrs, validatePodSpecificAnnotations(t.Annotations, &t.Spec, tPath.Child("annotations"))...)
		}
	}
	allErrs = append(allErrs, validateAlwaysRestart(&spec.Template, "StatefulSet", fldPath.Child("template", "spec"))...)
	if checkPodSpec {
		allErrs = append(allErrs, validateVolumeClaimTemplates(spec.VolumeClaimTemplates, fldPath.Child("volumeClaimTemplates"))...)
	}
	return allErrs
}

func validateVolumeClaimTemplates(templates []corev1.PersistentVolumeClaim, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i := range templates {
		allErrs = append(allErrs, validatePersistentVolumeClaimSpec(&templates[i].Spec, fldPath.Index(i).Child("spec"))...)
	}
	return allErrs
}

func validateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	// StatefulSet names become pod hostnames, hence a DNS label.
	allErrs := validateObjectMeta(&ss.ObjectMeta, true, nameIsDNSLabel, field.NewPath("metadata"))
	return append(allErrs, validateStatefulSetSpec(&ss.Spec, field.NewPath("spec"), true)...)
}

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	oldTemplateValid := len(validatePodTemplateSpec(statefulSetTemplateWithClaims(&old.Spec), field.NewPath("spec", "template"))) == 0 &&
		len(validateVolumeClaimTemplates(old.Spec.VolumeClaimTemplates, field.NewPath("spec", "volumeClaimTemplates"))) == 0
	allErrs = append(allErrs, validateStatefulSetSpec(&ss.Spec, field.NewPath("spec"), oldTemplateValid)...)

	clone := ss.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !semanticEqual(*clone, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"),
			"updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return allErrs
}

func validateStatefulSetStatusUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	p := field.NewPath("status")
	s := ss.Status
	allErrs := validateNonnegativeField(int64(s.Replicas), p.Child("replicas"))
	allErrs = append(allErrs, validateNonnegativeField(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.CurrentReplicas), p.Child("currentReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.UpdatedReplicas), p.Child("updatedReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	if s.CollisionCount != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*s.CollisionCount), p.Child("collisionCount"))...)
	}
	const msg = "cannot be greater than status.replicas"
	if s.ReadyReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, msg))
	}
	if s.CurrentReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("currentReplicas"), s.CurrentReplicas, msg))
	}
	if s.UpdatedReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("updatedReplicas"), s.UpdatedReplicas, msg))
	}
	if s.AvailableReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, msg))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	allErrs = append(allErrs, validateObjectMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))...)
	return append(allErrs, validateCollisionCountNotDecremented(s.CollisionCount, old.Status.CollisionCount, p)...)
}

// DaemonSet

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateLabelSelector(spec.Selector, fldPath.Child("selector"))
	selector, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err == nil && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, selectorMismatchMsg))
	}
	if spec.Selector != nil && len(spec.Selector.MatchLabels)+len(spec.Selector.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "empty selector is invalid for daemonset"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, fldPath.Child("template"))...)
	allErrs = append(allErrs, validateAlwaysRestart(&spec.Template, "DaemonSet", fldPath.Child("template", "spec"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, fldPath.Child("updateStrategy"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	return allErrs
}

func validateDaemonSetUpdateStrategy(s *appsv1.DaemonSetUpdateStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		return nil
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "")}
		}
		p := fldPath.Child("rollingUpdate")
		maxUnavailable := deref(s.RollingUpdate.MaxUnavailable, intstr.IntOrString{})
		maxSurge := deref(s.RollingUpdate.MaxSurge, intstr.IntOrString{})
		allErrs := validatePositiveIntOrPercent(maxUnavailable, p.Child("maxUnavailable"))
		allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, p.Child("maxSurge"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(maxUnavailable, p.Child("maxUnavailable"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(maxSurge, p.Child("maxSurge"))...)
		hasUnavailable := intOrPercentValue(maxUnavailable) != 0
		hasSurge := intOrPercentValue(maxSurge) != 0
		switch {
		case hasUnavailable && hasSurge:
			allErrs = append(allErrs, field.Invalid(p.Child("maxSurge"), maxSurge, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			allErrs = append(allErrs, field.Required(p.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
		return allErrs
	default:
		return field.ErrorList{field.NotSupported(fldPath, internalValue(*s), []appsv1.DaemonSetUpdateStrategyType{appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType})}
	}
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	allErrs := validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))...)
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutableField(ds.Spec.Selector, old.Spec.Selector, field.NewPath("spec").Child("selector"))...)
}

func validateDaemonSetStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := ds.Status
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"currentNumberScheduled", int64(s.CurrentNumberScheduled)}, {"numberMisscheduled", int64(s.NumberMisscheduled)},
		{"desiredNumberScheduled", int64(s.DesiredNumberScheduled)}, {"numberReady", int64(s.NumberReady)},
		{"observedGeneration", s.ObservedGeneration}, {"updatedNumberScheduled", int64(s.UpdatedNumberScheduled)},
		{"numberAvailable", int64(s.NumberAvailable)}, {"numberUnavailable", int64(s.NumberUnavailable)},
	} {
		allErrs = append(allErrs, validateNonnegativeField(f.v, p.Child(f.name))...)
	}
	if s.CollisionCount != nil {
		allErrs = append(allErrs, validateNonnegativeField(int64(*s.CollisionCount), p.Child("collisionCount"))...)
	}
	return append(allErrs, validateCollisionCountNotDecremented(s.CollisionCount, old.Status.CollisionCount, p)...)
}

// ControllerRevision

func validateControllerRevision(r *appsv1.ControllerRevision) field.ErrorList {
	allErrs := validateObjectMeta(&r.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	if r.Data.Raw == nil && r.Data.Object == nil {
		allErrs = append(allErrs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(allErrs, validateNonnegativeField(r.Revision, field.NewPath("revision"))...)
}

func validateControllerRevisionUpdate(r, old *appsv1.ControllerRevision) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&r.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateControllerRevision(r)...)
	return append(allErrs, validateImmutableField(r.Data, old.Data, field.NewPath("data"))...)
}
