package validation

import (
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodDisruptionBudget. Upstream validates only the spec here; metadata gets
// the generic registry checks.

func validatePDBSpec(spec *policyv1.PodDisruptionBudgetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, internalValue(*spec), "minAvailable and maxUnavailable cannot be both set"))
	}
	if spec.MinAvailable != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*spec.MinAvailable, fldPath.Child("minAvailable"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(*spec.MinAvailable, fldPath.Child("minAvailable"))...)
	}
	if spec.MaxUnavailable != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*spec.MaxUnavailable, fldPath.Child("maxUnavailable"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(*spec.MaxUnavailable, fldPath.Child("maxUnavailable"))...)
	}
	allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	if p := spec.UnhealthyPodEvictionPolicy; p != nil && *p != policyv1.IfHealthyBudget && *p != policyv1.AlwaysAllow {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("unhealthyPodEvictionPolicy"), *p,
			[]policyv1.UnhealthyPodEvictionPolicyType{policyv1.AlwaysAllow, policyv1.IfHealthyBudget}))
	}
	return allErrs
}

func validatePDBStatusUpdate(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pdb.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := pdb.Status
	allErrs = append(allErrs, metav1validation.ValidateConditions(s.Conditions, p.Child("conditions"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.DisruptionsAllowed), p.Child("disruptionsAllowed"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.CurrentHealthy), p.Child("currentHealthy"))...)
	allErrs = append(allErrs, validateNonnegativeField(int64(s.DesiredHealthy), p.Child("desiredHealthy"))...)
	return append(allErrs, validateNonnegativeField(int64(s.ExpectedPods), p.Child("expectedPods"))...)
}

// RBAC. Role and binding names only need to be safe path segments.

func validatePolicyRule(rule rbacv1.PolicyRule, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(rule.Verbs) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("verbs"), "verbs must contain at least one value"))
	}
	if len(rule.NonResourceURLs) > 0 {
		if namespaced {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
		}
		if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		return allErrs
	}
	if len(rule.APIGroups) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiGroups"), "resource rules must supply at least one api group"))
	}
	if len(rule.Resources) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("resources"), "resource rules must supply at least one resource"))
	}
	return allErrs
}

func validateRole(r *rbacv1.Role) field.ErrorList {
	allErrs := validateObjectMeta(&r.ObjectMeta, true, nameIsPathSegment, field.NewPath("metadata"))
	for i, rule := range r.Rules {
		allErrs = append(allErrs, validatePolicyRule(rule, true, field.NewPath("rules").Index(i))...)
	}
	return allErrs
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	allErrs := validateObjectMeta(&r.ObjectMeta, false, nameIsPathSegment, field.NewPath("metadata"))
	for i, rule := range r.Rules {
		allErrs = append(allErrs, validatePolicyRule(rule, false, field.NewPath("rules").Index(i))...)
	}
	if r.AggregationRule != nil {
		selPath := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(r.AggregationRule.ClusterRoleSelectors) == 0 {
			allErrs = append(allErrs, field.Required(selPath, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range r.AggregationRule.ClusterRoleSelectors {
			sel := &r.AggregationRule.ClusterRoleSelectors[i]
			allErrs = append(allErrs, validateLabelSelector(sel, selPath.Index(i))...)
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				allErrs = append(allErrs, field.Invalid(selPath.Index(i), sel, "invalid label selector."))
			}
		}
	}
	return allErrs
}

func validateRoleRef(ref rbacv1.RoleRef, kinds []string) field.ErrorList {
	var allErrs field.ErrorList
	if ref.APIGroup != rbacv1.GroupName {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("roleRef", "apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	known := false
	for _, k := range kinds {
		if ref.Kind == k {
			known = true
		}
	}
	if !known {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("roleRef", "kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("roleRef", "name"), ""))
	} else {
		allErrs = append(allErrs, validateName(ref.Name, nameIsPathSegment, field.NewPath("roleRef", "name"))...)
	}
	return allErrs
}

func validateSubject(s rbacv1.Subject, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if s.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			allErrs = append(allErrs, validateName(s.Name, nameIsDNSSubdomain, fldPath.Child("name"))...)
		}
		if s.APIGroup != "" {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != rbacv1.GroupName {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return allErrs
}

func validateRoleBinding(b *rbacv1.RoleBinding) field.ErrorList {
	allErrs := validateObjectMeta(&b.ObjectMeta, true, nameIsPathSegment, field.NewPath("metadata"))
	allErrs = append(allErrs, validateRoleRef(b.RoleRef, []string{"Role", "ClusterRole"})...)
	for i, s := range b.Subjects {
		allErrs = append(allErrs, validateSubject(s, true, field.NewPath("subjects").Index(i))...)
	}
	return allErrs
}

func validateClusterRoleBinding(b *rbacv1.ClusterRoleBinding) field.ErrorList {
	allErrs := validateObjectMeta(&b.ObjectMeta, false, nameIsPathSegment, field.NewPath("metadata"))
	allErrs = append(allErrs, validateRoleRef(b.RoleRef, []string{"ClusterRole"})...)
	for i, s := range b.Subjects {
		allErrs = append(allErrs, validateSubject(s, false, field.NewPath("subjects").Index(i))...)
	}
	return allErrs
}

// validateRoleRefUnchanged: a binding's roleRef is fixed for its lifetime.
func validateRoleRefUnchanged(ref, old rbacv1.RoleRef) field.ErrorList {
	if ref != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), internalValue(ref), "cannot change roleRef")}
	}
	return nil
}

// PriorityClass

const (
	systemPriorityClassPrefix    = "system-"
	highestUserDefinablePriority = int32(1000000000)
	systemCriticalPriority       = 2 * highestUserDefinablePriority
)

// knownSystemPriorityClass reports whether name/value/globalDefault match a
// built-in system class, with upstream's explanation when not.
func knownSystemPriorityClass(name string, value int32, globalDefault bool) error {
	classes := map[string]int32{
		"system-node-critical":    systemCriticalPriority + 1000,
		"system-cluster-critical": systemCriticalPriority,
	}
	want, ok := classes[name]
	switch {
	case !ok:
		return fmt.Errorf("%v is not a known system priority class", name)
	case want != value:
		return fmt.Errorf("value of %v PriorityClass must be %v", name, want)
	case globalDefault:
		return fmt.Errorf("globalDefault of %v PriorityClass must be %v", name, false)
	}
	return nil
}

func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	allErrs := validateObjectMeta(&pc.ObjectMeta, false, nameIsDNSSubdomain, field.NewPath("metadata"))
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		if err := knownSystemPriorityClass(pc.Name, pc.Value, pc.GlobalDefault); err != nil {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err.Error()))
		}
	} else if pc.Value > highestUserDefinablePriority {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserDefinablePriority)))
	}
	if pc.PreemptionPolicy != nil {
		allErrs = append(allErrs, validatePreemptionPolicy(*pc.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
	}
	return allErrs
}

func validatePriorityClassUpdate(pc, old *schedulingv1.PriorityClass) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if pc.Value != old.Value {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(allErrs, validateImmutableField(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
}

// StorageClass

const (
	maxProvisionerParameterSize = 256 * (1 << 10)
	maxProvisionerParameterLen  = 512
)

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	allErrs := validateObjectMeta(&sc.ObjectMeta, false, nameIsDNSSubdomain, field.NewPath("metadata"))
	provPath := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		allErrs = append(allErrs, field.Required(provPath, sc.Provisioner))
	} else {
		allErrs = append(allErrs, validateQualifiedName(strings.ToLower(sc.Provisioner), provPath)...)
	}
	paramsPath := field.NewPath("parameters")
	if len(sc.Parameters) > maxProvisionerParameterLen {
		allErrs = append(allErrs, field.TooLong(paramsPath, "", maxProvisionerParameterLen))
	} else {
		var size int64
		for _, k := range sortedKeys(sc.Parameters) {
			if k == "" {
				allErrs = append(allErrs, field.Invalid(paramsPath, k, "field can not be empty."))
			}
			size += int64(len(k)) + int64(len(sc.Parameters[k]))
		}
		if size > maxProvisionerParameterSize {
			allErrs = append(allErrs, field.TooLong(paramsPath, "", maxProvisionerParameterSize))
		}
	}
	if rp := sc.ReclaimPolicy; rp != nil && *rp != "" && *rp != corev1.PersistentVolumeReclaimDelete && *rp != corev1.PersistentVolumeReclaimRetain {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("reclaimPolicy"), rp,
			[]corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}))
	}
	modePath := field.NewPath("volumeBindingMode")
	if m := sc.VolumeBindingMode; m == nil {
		allErrs = append(allErrs, field.Required(modePath, ""))
	} else if *m != storagev1.VolumeBindingImmediate && *m != storagev1.VolumeBindingWaitForFirstConsumer {
		allErrs = append(allErrs, field.NotSupported(modePath, m, []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}))
	}
	for i, term := range sc.AllowedTopologies {
		tp := field.NewPath("allowedTopologies").Index(i).Child("matchLabelExpressions")
		keys := map[string]bool{}
		for j, req := range term.MatchLabelExpressions {
			rp := tp.Index(j)
			if len(req.Values) == 0 {
				allErrs = append(allErrs, field.Required(rp.Child("values"), ""))
			}
			seen := map[string]bool{}
			for k, v := range req.Values {
				if seen[v] {
					allErrs = append(allErrs, field.Duplicate(rp.Child("values").Index(k), v))
				}
				seen[v] = true
			}
			allErrs = append(allErrs, validateLabelName(req.Key, rp.Child("key"))...)
			if keys[req.Key] {
				allErrs = append(allErrs, field.Duplicate(rp.Child("key"), req.Key))
			}
			keys[req.Key] = true
		}
	}
	return allErrs
}

// validateStorageClassUpdate: how volumes are provisioned never changes.
func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if !semanticEqual(emptyAsNil(sc.Parameters), emptyAsNil(old.Parameters)) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if deref(sc.ReclaimPolicy, "") != deref(old.ReclaimPolicy, "") {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	return append(allErrs, validateImmutableField(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}

// Lease

func validateLeaseSpec(spec *coordinationv1.LeaseSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseDurationSeconds"), d, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseTransitions"), t, "must be greater than or equal to 0"))
	}
	if s := spec.Strategy; s != nil {
		sp := fldPath.Child("strategy")
		if !strings.Contains(string(*s), "/") {
			if *s != coordinationv1.OldestEmulationVersion {
				allErrs = append(allErrs, field.NotSupported(sp, *s, []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}))
			}
		} else {
			allErrs = append(allErrs, validateQualifiedName(string(*s), sp)...)
		}
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && deref(spec.Strategy, "") == "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return allErrs
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	allErrs := validateObjectMeta(&l.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateLeaseSpec(&l.Spec, field.NewPath("spec"))...)
}
