package validation

import (
	"fmt"
	"net"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Namespace

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel, field.NewPath("metadata"))
	for _, f := range ns.Spec.Finalizers {
		allErrs = append(allErrs, validateFinalizerName(string(f), field.NewPath("spec", "finalizers"))...)
	}
	return allErrs
}

func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	phasePath := field.NewPath("status", "Phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			allErrs = append(allErrs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		allErrs = append(allErrs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return allErrs
}

// Node

func validateNode(node *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := validateObjectMeta(&node.ObjectMeta, false, nameIsDNSSubdomain, metaPath)
	// Upstream reports taint problems under metadata.taints.
	allErrs = append(allErrs, validateNodeTaints(node.Spec.Taints, metaPath.Child("taints"))...)
	allErrs = append(allErrs, validateNodeResources(node)...)
	if len(node.Spec.PodCIDRs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for i, c := range node.Spec.PodCIDRs {
			allErrs = append(allErrs, validateCIDR(p.Index(i), c)...)
		}
		if len(node.Spec.PodCIDRs) > 1 {
			v4 := 0
			for _, c := range node.Spec.PodCIDRs {
				if ip, _, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
					v4++
				}
			}
			if v4 != 1 || len(node.Spec.PodCIDRs) > 2 {
				allErrs = append(allErrs, field.Invalid(p, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
			seen := map[string]bool{}
			for i, c := range node.Spec.PodCIDRs {
				if seen[c] {
					allErrs = append(allErrs, field.Duplicate(p.Index(i), c))
				}
				seen[c] = true
			}
		}
	}
	return allErrs
}

func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	unique := map[corev1.TaintEffect]map[string]bool{}
	for i, t := range taints {
		p := fldPath.Index(i)
		allErrs = append(allErrs, validateLabelName(t.Key, p.Child("key"))...)
		if errs := validation.IsValidLabelValue(t.Value); len(errs) != 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("value"), t.Value, strings.Join(errs, ";")))
		}
		allErrs = append(allErrs, validateTaintEffect(t.Effect, false, p.Child("effect"))...)
		if unique[t.Effect][t.Key] {
			e := field.Duplicate(p, internalValue(t))
			e.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, e)
			continue
		}
		if unique[t.Effect] == nil {
			unique[t.Effect] = map[string]bool{}
		}
		unique[t.Effect][t.Key] = true
	}
	return allErrs
}

func validateNodeResources(node *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(node.Status.Capacity) {
		allErrs = append(allErrs, validateResourceQuantityValue(k, node.Status.Capacity[k], field.NewPath("status", "capacity", string(k)))...)
	}
	for _, k := range sortedResourceNames(node.Status.Allocatable) {
		allErrs = append(allErrs, validateResourceQuantityValue(k, node.Status.Allocatable[k], field.NewPath("status", "allocatable", string(k)))...)
	}
	return allErrs
}

// validateNodeUpdate is core's ValidateNodeUpdate: podCIDRs and providerID
// may only go from unset to set.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta, metaPath)
	allErrs = append(allErrs, validateNodeResources(node)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), internalValue(a)))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 {
		const msg = "node updates may not change podCIDR except from \"\" to valid"
		if len(old.Spec.PodCIDRs) != len(node.Spec.PodCIDRs) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), msg))
		} else {
			for i, c := range old.Spec.PodCIDRs {
				if c != node.Spec.PodCIDRs[i] {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), msg))
				}
			}
		}
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != node.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	allErrs = append(allErrs, validateNodeTaints(node.Spec.Taints, metaPath.Child("taints"))...)
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return allErrs
}

// PersistentVolume

var supportedReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain}

func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	allErrs := validateObjectMeta(&pv.ObjectMeta, false, nameIsDNSSubdomain, field.NewPath("metadata"))
	spec := &pv.Spec
	fldPath := field.NewPath("spec")
	if len(spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("accessModes"), ""))
	}
	allErrs = append(allErrs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))...)
	capPath := fldPath.Child("capacity")
	if len(spec.Capacity) == 0 {
		allErrs = append(allErrs, field.Required(capPath, ""))
	}
	if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		allErrs = append(allErrs, field.NotSupported(capPath, spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, r := range sortedResourceNames(spec.Capacity) {
		q := spec.Capacity[r]
		if q.Value() < 0 {
			allErrs = append(allErrs, field.Invalid(capPath.Key(string(r)), q.Value(), "must be a valid resource quantity"))
		}
		allErrs = append(allErrs, validatePositiveQuantityValue(q, capPath.Key(string(r)))...)
	}
	if spec.PersistentVolumeReclaimPolicy != "" {
		allErrs = append(allErrs, validateEnum(spec.PersistentVolumeReclaimPolicy, supportedReclaimPolicies, fldPath.Child("persistentVolumeReclaimPolicy"))...)
	}
	nodeAffinity := false
	if spec.NodeAffinity != nil {
		nodeAffinity = true
		if spec.NodeAffinity.Required != nil {
			allErrs = append(allErrs, validateNodeSelector(spec.NodeAffinity.Required, fldPath.Child("nodeAffinity").Child("required"))...)
		} else {
			allErrs = append(allErrs, field.Required(fldPath.Child("nodeAffinity").Child("required"), "must specify required node constraints"))
		}
	}
	src := &spec.PersistentVolumeSource
	kinds := []struct {
		name string
		set  bool
		fn   func() field.ErrorList
	}{
		{"hostPath", src.HostPath != nil, func() field.ErrorList { return validateHostPathVolumeSource(src.HostPath, fldPath.Child("hostPath")) }},
		{"gcePersistentDisk", src.GCEPersistentDisk != nil, nil},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil, nil},
		{"glusterfs", src.Glusterfs != nil, nil},
		{"flocker", src.Flocker != nil, nil},
		{"nfs", src.NFS != nil, func() field.ErrorList { return validateNFSVolumeSource(src.NFS, fldPath.Child("nfs")) }},
		{"rbd", src.RBD != nil, nil},
		{"quobyte", src.Quobyte != nil, nil},
		{"cephFS", src.CephFS != nil, nil},
		{"iscsi", src.ISCSI != nil, nil},
		{"cinder", src.Cinder != nil, nil},
		{"fc", src.FC != nil, nil},
		{"flexVolume", src.FlexVolume != nil, nil},
		{"azureFile", src.AzureFile != nil, nil},
		{"vsphereVolume", src.VsphereVolume != nil, nil},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil, nil},
		{"portworxVolume", src.PortworxVolume != nil, nil},
		{"azureDisk", src.AzureDisk != nil, nil},
		{"scaleIO", src.ScaleIO != nil, nil},
		{"local", src.Local != nil, func() field.ErrorList {
			var errs field.ErrorList
			if src.Local.Path == "" {
				errs = append(errs, field.Required(fldPath.Child("local").Child("path"), ""))
			} else {
				errs = append(errs, validatePathNoBacksteps(src.Local.Path, fldPath.Child("local").Child("path"))...)
			}
			if !nodeAffinity {
				errs = append(errs, field.Required(fldPath.Child("nodeAffinity"), "Local volume requires node affinity"))
			}
			return errs
		}},
		{"storageos", src.StorageOS != nil, nil},
		{"csi", src.CSI != nil, func() field.ErrorList {
			errs := validateCSIDriverName(src.CSI.Driver, fldPath.Child("csi").Child("driver"))
			if src.CSI.VolumeHandle == "" {
				errs = append(errs, field.Required(fldPath.Child("csi").Child("volumeHandle"), ""))
			}
			return errs
		}},
	}
	n := 0
	for _, k := range kinds {
		if !k.set {
			continue
		}
		// Upstream counts flexVolume without checking for a second type.
		if n > 0 && k.name != "flexVolume" {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(k.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		if k.fn != nil {
			allErrs = append(allErrs, k.fn()...)
		}
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a volume type"))
	}
	if src.HostPath != nil && path.Clean(src.HostPath.Path) == "/" && spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRecycle {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
	}
	if spec.StorageClassName != "" {
		allErrs = append(allErrs, validateName(spec.StorageClassName, nameIsDNSSubdomain, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && *spec.VolumeMode != corev1.PersistentVolumeBlock && *spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, supportedVolumeModes))
	}
	return allErrs
}

func validatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	allErrs := validatePersistentVolume(pv)
	allErrs = append(allErrs, validateObjectMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))...)
	newSrc := pv.Spec.PersistentVolumeSource
	// A CSI volume may gain a controllerExpandSecretRef.
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && newSrc.CSI != nil && newSrc.CSI.ControllerExpandSecretRef != nil {
		newSrc = *newSrc.DeepCopy()
		newSrc.CSI.ControllerExpandSecretRef = nil
	}
	if !semanticEqual(newSrc, old.Spec.PersistentVolumeSource) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"),
			fmt.Sprintf("spec.persistentvolumesource is immutable after creation\n%v", specDiff(old.Spec.PersistentVolumeSource, newSrc))))
	}
	allErrs = append(allErrs, validateImmutableField(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil && !semanticEqual(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("nodeAffinity"), pv.Spec.NodeAffinity, fieldImmutableMsg+", except for updating from beta label to GA"))
	}
	return allErrs
}

// PersistentVolumeClaim

func validatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	allErrs := validateObjectMeta(&pvc.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validatePersistentVolumeClaimSpec(&pvc.Spec, field.NewPath("spec"))...)
}

// validatePersistentVolumeClaimUpdate: a claim's spec is fixed except for
// binding its volumeName once and growing a bound claim's storage request.
func validatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validatePersistentVolumeClaim(pvc)...)
	newSpec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if old.Spec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	if oldSpec.StorageClassName == nil && newSpec.StorageClassName != nil {
		// Setting a class on a claim that had none is an allowed upgrade.
		if a, ok := old.Annotations[corev1.BetaStorageClassAnnotation]; !ok || *newSpec.StorageClassName == a {
			newSpec.StorageClassName = nil
		}
	}
	if pvc.Status.Phase == corev1.ClaimBound && newSpec.Resources.Requests != nil {
		if q, ok := old.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			newSpec.Resources.Requests[corev1.ResourceStorage] = q
		} else {
			delete(newSpec.Resources.Requests, corev1.ResourceStorage)
		}
	}
	newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	if !semanticEqual(*newSpec, *oldSpec) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"), fmt.Sprintf(
			"spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n%v", specDiff(*oldSpec, *newSpec))))
	}
	oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	statusSize := old.Status.Capacity[corev1.ResourceStorage]
	// Shrinking is allowed only while recovering from a failed expansion,
	// and never to or below the current capacity.
	if newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	return append(allErrs, validateImmutableField(pvc.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
}

func validatePersistentVolumeClaimStatusUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if len(pvc.Spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(field.NewPath("Spec", "accessModes"), ""))
	}
	capPath := field.NewPath("status", "capacity")
	for _, r := range sortedResourceNames(pvc.Status.Capacity) {
		if q := pvc.Status.Capacity[r]; q.Value() < 0 {
			allErrs = append(allErrs, field.Invalid(capPath.Key(string(r)), q.Value(), "must be a valid resource quantity"))
		}
	}
	return allErrs
}

// LimitRange

func isStandardLimitRangeType(t corev1.LimitType) bool {
	return t == corev1.LimitTypePod || t == corev1.LimitTypeContainer || t == corev1.LimitTypePersistentVolumeClaim
}

// namedResourceList is a LimitRangeItem list and its JSON name.
type namedResourceList struct {
	name string
	l    corev1.ResourceList
}

func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	allErrs := validateObjectMeta(&lr.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	fldPath := field.NewPath("spec", "limits")
	types := map[corev1.LimitType]bool{}
	for i := range lr.Spec.Limits {
		limit := &lr.Spec.Limits[i]
		p := fldPath.Index(i)
		typePath := p.Child("type")
		if msgs := validation.IsQualifiedName(string(limit.Type)); len(msgs) > 0 {
			for _, msg := range msgs {
				allErrs = append(allErrs, field.Invalid(typePath, limit.Type, msg))
			}
		} else if !strings.Contains(string(limit.Type), "/") && !isStandardLimitRangeType(limit.Type) {
			allErrs = append(allErrs, field.Invalid(typePath, limit.Type, "must be a standard limit type or fully qualified"))
		}
		if types[limit.Type] {
			allErrs = append(allErrs, field.Duplicate(typePath, limit.Type))
		}
		types[limit.Type] = true
		nameCheck := func(name corev1.ResourceName, np *field.Path) field.ErrorList {
			if limit.Type == corev1.LimitTypePod || limit.Type == corev1.LimitTypeContainer {
				return validateContainerResourceName(name, np)
			}
			return validateResourceName(name, np)
		}
		lists := []namedResourceList{{"max", limit.Max}, {"min", limit.Min}}
		if limit.Type == corev1.LimitTypePod {
			if len(limit.Default) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(limit.DefaultRequest) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		} else {
			lists = append(lists, namedResourceList{"default", limit.Default}, namedResourceList{"defaultRequest", limit.DefaultRequest})
		}
		lists = append(lists, namedResourceList{"maxLimitRequestRatio", limit.MaxLimitRequestRatio})
		for _, l := range lists {
			for _, k := range sortedResourceNames(l.l) {
				allErrs = append(allErrs, nameCheck(k, p.Child(l.name).Key(string(k)))...)
			}
		}
		if limit.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := limit.Min[corev1.ResourceStorage]
			_, hasMax := limit.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				allErrs = append(allErrs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		allErrs = append(allErrs, validateLimitRangeOrdering(limit, p)...)
	}
	return allErrs
}

// validateLimitRangeOrdering checks min <= defaultRequest <= default <= max.
func validateLimitRangeOrdering(limit *corev1.LimitRangeItem, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	keys := map[string]bool{}
	for _, l := range []corev1.ResourceList{limit.Max, limit.Min, limit.Default, limit.DefaultRequest, limit.MaxLimitRequestRatio} {
		for k := range l {
			keys[string(k)] = true
		}
	}
	if limit.Type == corev1.LimitTypePod {
		// Pod limits have no defaults; ignore any that slipped in.
		limit = limit.DeepCopy()
		limit.Default, limit.DefaultRequest = nil, nil
	}
	for _, k := range sortedKeys(keys) {
		name := corev1.ResourceName(k)
		minQ, hasMin := limit.Min[name]
		maxQ, hasMax := limit.Max[name]
		defQ, hasDef := limit.Default[name]
		reqQ, hasReq := limit.DefaultRequest[name]
		ratio, hasRatio := limit.MaxLimitRequestRatio[name]
		if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("min").Key(k), minQ, fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
		}
		if hasReq && hasMin && minQ.Cmp(reqQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(k), reqQ, fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), reqQ.String())))
		}
		if hasReq && hasMax && reqQ.Cmp(maxQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(k), reqQ, fmt.Sprintf("default request value %s is greater than max value %s", reqQ.String(), maxQ.String())))
		}
		if hasReq && hasDef && reqQ.Cmp(defQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(k), reqQ, fmt.Sprintf("default request value %s is greater than default limit value %s", reqQ.String(), defQ.String())))
		}
		if hasDef && hasMin && minQ.Cmp(defQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("default").Key(k), minQ, fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), defQ.String())))
		}
		if hasDef && hasMax && defQ.Cmp(maxQ) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("default").Key(k), maxQ, fmt.Sprintf("default value %s is greater than max value %s", defQ.String(), maxQ.String())))
		}
		if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("maxLimitRequestRatio").Key(k), ratio, fmt.Sprintf("ratio %s is less than 1", ratio.String())))
		}
	}
	return allErrs
}

// ResourceQuota

func validateResourceQuotaSpec(spec *corev1.ResourceQuotaSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateQuotaResourceList(spec.Hard, fldPath.Child("hard"))
	scopesPath := fldPath.Child("scopes")
	scopes := map[corev1.ResourceQuotaScope]bool{}
	for _, s := range spec.Scopes {
		switch s {
		case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeBestEffort,
			corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
			corev1.ResourceQuotaScopeVolumeAttributesClass:
		default:
			allErrs = append(allErrs, field.Invalid(scopesPath, spec.Scopes, "unsupported scope"))
		}
		scopes[s] = true
	}
	if (scopes[corev1.ResourceQuotaScopeBestEffort] && scopes[corev1.ResourceQuotaScopeNotBestEffort]) ||
		(scopes[corev1.ResourceQuotaScopeTerminating] && scopes[corev1.ResourceQuotaScopeNotTerminating]) {
		allErrs = append(allErrs, field.Invalid(scopesPath, spec.Scopes, "conflicting scopes"))
	}
	return allErrs
}

func validateQuotaResourceList(list corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(list) {
		p := fldPath.Key(string(k))
		errs := validateResourceName(k, p)
		if len(errs) == 0 && !strings.Contains(string(k), "/") && !isStandardQuotaResourceName(k) {
			errs = append(errs, field.Invalid(p, k, "must be a standard resource for quota"))
		}
		allErrs = append(allErrs, errs...)
		allErrs = append(allErrs, validateResourceQuantityValue(k, list[k], p)...)
	}
	return allErrs
}

func validateResourceQuota(rq *corev1.ResourceQuota) field.ErrorList {
	allErrs := validateObjectMeta(&rq.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateResourceQuotaSpec(&rq.Spec, field.NewPath("spec"))...)
	allErrs = append(allErrs, validateQuotaResourceList(rq.Status.Hard, field.NewPath("status", "hard"))...)
	return append(allErrs, validateQuotaResourceList(rq.Status.Used, field.NewPath("status", "used"))...)
}

func validateResourceQuotaUpdate(rq, old *corev1.ResourceQuota) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rq.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateResourceQuotaSpec(&rq.Spec, field.NewPath("spec"))...)
	newScopes, oldScopes := map[corev1.ResourceQuotaScope]bool{}, map[corev1.ResourceQuotaScope]bool{}
	for _, s := range rq.Spec.Scopes {
		newScopes[s] = true
	}
	for _, s := range old.Spec.Scopes {
		oldScopes[s] = true
	}
	if !semanticEqual(newScopes, oldScopes) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "scopes"), rq.Spec.Scopes, fieldImmutableMsg))
	}
	return allErrs
}

func validateResourceQuotaStatusUpdate(rq, old *corev1.ResourceQuota) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rq.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if rq.ResourceVersion == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("resourceVersion"), ""))
	}
	allErrs = append(allErrs, validateQuotaResourceList(rq.Status.Hard, field.NewPath("status", "hard"))...)
	return append(allErrs, validateQuotaResourceList(rq.Status.Used, field.NewPath("status", "used"))...)
}

// PodTemplate and ReplicationController

func validatePodTemplate(pt *corev1.PodTemplate) field.ErrorList {
	allErrs := validateObjectMeta(&pt.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validatePodTemplateSpec(&pt.Template, field.NewPath("template"))...)
}

func validatePodTemplateUpdate(pt, old *corev1.PodTemplate) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&pt.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validatePodTemplateSpec(&pt.Template, field.NewPath("template"))...)
}

func validateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))
	selector := labels.Set(spec.Selector).AsSelector()
	if selector.Empty() {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	}
	allErrs = append(allErrs, validateNonnegativeField(int64(deref(spec.Replicas, 0)), fldPath.Child("replicas"))...)
	tPath := fldPath.Child("template")
	if spec.Template == nil {
		return append(allErrs, field.Required(tPath, ""))
	}
	if !selector.Empty() && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(tPath.Child("metadata", "labels"), spec.Template.Labels, selectorMismatchMsg))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(spec.Template, tPath)...)
	return append(allErrs, validateAlwaysRestart(spec.Template, "ReplicationController", tPath.Child("spec"))...)
}

func validateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	allErrs := validateObjectMeta(&rc.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))...)
}

func validateReplicationControllerUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))...)
}

func validateReplicationControllerStatusUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	s := rc.Status
	return append(allErrs, validateReplicaCounts(field.NewPath("status"), s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration)...)
}

// Events. A core/v1 Event gets upstream's legacy rules only; an
// events.k8s.io/v1 Event also gets the strict ones. Paths use core field
// names (involvedObject, message) as upstream's do, because both versions
// are validated in the core form.

const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// coreEvent is the part of an Event the rules look at, in core terms.
type coreEvent struct {
	meta                 *metav1.ObjectMeta
	involvedNamespace    string
	eventTime            metav1.MicroTime
	reportingController  string
	reportingInstance    string
	action, reason, note string
	eventType            string
	firstTimestamp       metav1.Time
	lastTimestamp        metav1.Time
	count                int32
	sourceSet            bool
	seriesCount          int32
	seriesLastObserved   metav1.MicroTime
	hasSeries            bool
	// reportingControllerField is the name the request's version uses.
	reportingControllerField string
}

func fromCoreEvent(e *corev1.Event) coreEvent {
	ce := coreEvent{
		meta: &e.ObjectMeta, involvedNamespace: e.InvolvedObject.Namespace, eventTime: e.EventTime,
		reportingController: e.ReportingController, reportingInstance: e.ReportingInstance,
		action: e.Action, reason: e.Reason, note: e.Message, eventType: e.Type,
		firstTimestamp: e.FirstTimestamp, lastTimestamp: e.LastTimestamp, count: e.Count,
		sourceSet: e.Source.Component != "" || e.Source.Host != "", reportingControllerField: "reportingComponent",
	}
	if e.Series != nil {
		ce.hasSeries, ce.seriesCount, ce.seriesLastObserved = true, e.Series.Count, e.Series.LastObservedTime
	}
	return ce
}

func fromEventsEvent(e *eventsv1.Event) coreEvent {
	ce := coreEvent{
		meta: &e.ObjectMeta, involvedNamespace: e.Regarding.Namespace, eventTime: e.EventTime,
		reportingController: e.ReportingController, reportingInstance: e.ReportingInstance,
		action: e.Action, reason: e.Reason, note: e.Note, eventType: e.Type,
		firstTimestamp: e.DeprecatedFirstTimestamp, lastTimestamp: e.DeprecatedLastTimestamp, count: e.DeprecatedCount,
		sourceSet: e.DeprecatedSource.Component != "" || e.DeprecatedSource.Host != "", reportingControllerField: "reportingController",
	}
	if e.Series != nil {
		ce.hasSeries, ce.seriesCount, ce.seriesLastObserved = true, e.Series.Count, e.Series.LastObservedTime
	}
	return ce
}

func legacyValidateEvent(e coreEvent) field.ErrorList {
	var allErrs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.eventTime.IsZero() {
		if e.involvedNamespace == "" {
			if e.meta.Namespace != metav1.NamespaceNone && e.meta.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, field.Invalid(nsPath, e.involvedNamespace, "does not match event.namespace"))
			}
		} else if e.meta.Namespace != e.involvedNamespace {
			allErrs = append(allErrs, field.Invalid(nsPath, e.involvedNamespace, "does not match event.namespace"))
		}
	} else {
		if e.involvedNamespace == "" && e.meta.Namespace != metav1.NamespaceDefault && e.meta.Namespace != metav1.NamespaceSystem {
			allErrs = append(allErrs, field.Invalid(nsPath, e.involvedNamespace, "does not match event.namespace"))
		}
		rcPath := field.NewPath(e.reportingControllerField)
		if e.reportingController == "" {
			allErrs = append(allErrs, field.Required(rcPath, ""))
		}
		allErrs = append(allErrs, validateQualifiedName(e.reportingController, rcPath)...)
		if e.reportingInstance == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("reportingInstance"), ""))
		}
		if len(e.reportingInstance) > reportingInstanceLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", reportingInstanceLengthLimit)))
		}
		if e.action == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("action"), ""))
		}
		if len(e.action) > actionLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", actionLengthLimit)))
		}
		if e.reason == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("reason"), ""))
		}
		if len(e.reason) > reasonLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reason"), "", fmt.Sprintf("can have at most %v characters", reasonLengthLimit)))
		}
		if len(e.note) > noteLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(e.meta.Namespace) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("namespace"), e.meta.Namespace, msg))
	}
	return allErrs
}

func validateEventSeries(e coreEvent) field.ErrorList {
	if !e.hasSeries {
		return nil
	}
	var allErrs field.ErrorList
	if e.seriesCount < 2 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
	}
	if e.seriesLastObserved.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return allErrs
}

// validateStrictEvent adds the events.k8s.io rules to the legacy ones.
func validateStrictEvent(e coreEvent) field.ErrorList {
	allErrs := legacyValidateEvent(e)
	allErrs = append(allErrs, validateObjectMeta(e.meta, true, nameIsDNSSubdomain, field.NewPath("metadata"))...)
	allErrs = append(allErrs, validateEventSeries(e)...)
	if e.eventTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.eventType != corev1.EventTypeNormal && e.eventType != corev1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.eventType)))
	}
	if !e.firstTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !e.lastTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if e.count != 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if e.sourceSet {
		allErrs = append(allErrs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return allErrs
}

func validateEventsEventUpdate(e, old *eventsv1.Event) field.ErrorList {
	allErrs := legacyValidateEvent(fromEventsEvent(e))
	allErrs = append(allErrs, validateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))...)
	if !semanticEqual(e.Series, old.Series) {
		allErrs = append(allErrs, validateEventSeries(fromEventsEvent(e))...)
	}
	for _, f := range []struct {
		name     string
		new, old interface{}
	}{
		{"involvedObject", e.Regarding, old.Regarding},
		{"reason", e.Reason, old.Reason},
		{"message", e.Note, old.Note},
		{"source", e.DeprecatedSource, old.DeprecatedSource},
		{"firstTimestamp", e.DeprecatedFirstTimestamp, old.DeprecatedFirstTimestamp},
		{"lastTimestamp", e.DeprecatedLastTimestamp, old.DeprecatedLastTimestamp},
		{"count", e.DeprecatedCount, old.DeprecatedCount},
		{"type", e.Type, old.Type},
		{"eventTime", e.EventTime, old.EventTime},
		{"action", e.Action, old.Action},
		{"related", e.Related, old.Related},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	} {
		allErrs = append(allErrs, validateImmutableField(f.new, f.old, field.NewPath(f.name))...)
	}
	return allErrs
}
