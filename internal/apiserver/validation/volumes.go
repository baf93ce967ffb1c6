package validation

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// volumeSourceKind is one member of the VolumeSource union: its JSON name and
// an optional deep check. The order is upstream's, which decides which of two
// set members is reported as the extra one.
type volumeSourceKind struct {
	name     string
	set      bool
	validate func() field.ErrorList
}

// validateVolumes is core's ValidateVolumes; it returns the valid volumes by
// name so container mounts can be resolved against them.
func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	allNames := map[string]bool{}
	createdPVCs := map[string]bool{}
	if podMeta != nil && podMeta.Name != "" {
		for _, vol := range volumes {
			if vol.Ephemeral != nil {
				createdPVCs[podMeta.Name+"-"+vol.Name] = true
			}
		}
	}
	vols := map[string]corev1.VolumeSource{}
	for i := range volumes {
		vol := &volumes[i]
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := validateVolumeSource(&vol.VolumeSource, idxPath, vol.Name, podMeta)
		if vol.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, validateDNS1123Label(vol.Name, namePath)...)
		}
		if allNames[vol.Name] {
			el = append(el, field.Duplicate(namePath, vol.Name))
		}
		if len(el) == 0 {
			allNames[vol.Name] = true
			vols[vol.Name] = vol.VolumeSource
		} else {
			allErrs = append(allErrs, el...)
		}
		if vol.PersistentVolumeClaim != nil && createdPVCs[vol.PersistentVolumeClaim.ClaimName] {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("persistentVolumeClaim").Child("claimName"), vol.PersistentVolumeClaim.ClaimName,
				"must not reference a PVC that gets created for an ephemeral volume"))
		}
	}
	return vols, allErrs
}

func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path, volName string, podMeta *metav1.ObjectMeta) field.ErrorList {
	var allErrs field.ErrorList
	// The paths of some deep checks differ from the union member's name
	// (gcePersistentDisk -> persistentDisk, cephFS -> cephfs); upstream's
	// quirks are kept.
	kinds := []volumeSourceKind{
		{"emptyDir", src.EmptyDir != nil, func() field.ErrorList {
			if src.EmptyDir.SizeLimit != nil && src.EmptyDir.SizeLimit.Cmp(resource.Quantity{}) < 0 {
				return field.ErrorList{field.Forbidden(fldPath.Child("emptyDir").Child("sizeLimit"), "SizeLimit field must be a valid resource quantity")}
			}
			return nil
		}},
		{"hostPath", src.HostPath != nil, func() field.ErrorList { return validateHostPathVolumeSource(src.HostPath, fldPath.Child("hostPath")) }},
		{"gitRepo", src.GitRepo != nil, func() field.ErrorList {
			var errs field.ErrorList
			if src.GitRepo.Repository == "" {
				errs = append(errs, field.Required(fldPath.Child("gitRepo").Child("repository"), ""))
			}
			return append(errs, validateLocalDescendingPath(src.GitRepo.Directory, fldPath.Child("gitRepo").Child("directory"))...)
		}},
		{"gcePersistentDisk", src.GCEPersistentDisk != nil, func() field.ErrorList {
			var errs field.ErrorList
			p := fldPath.Child("persistentDisk")
			if src.GCEPersistentDisk.PDName == "" {
				errs = append(errs, field.Required(p.Child("pdName"), ""))
			}
			if src.GCEPersistentDisk.Partition < 0 || src.GCEPersistentDisk.Partition > 255 {
				errs = append(errs, field.Invalid(p.Child("partition"), src.GCEPersistentDisk.Partition, "must be between 1 and 255, inclusive"))
			}
			return errs
		}},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil, func() field.ErrorList {
			if src.AWSElasticBlockStore.VolumeID == "" {
				return field.ErrorList{field.Required(fldPath.Child("awsElasticBlockStore").Child("volumeID"), "")}
			}
			return nil
		}},
		{"secret", src.Secret != nil, func() field.ErrorList { return validateSecretVolumeSource(src.Secret, fldPath.Child("secret")) }},
		{"nfs", src.NFS != nil, func() field.ErrorList { return validateNFSVolumeSource(src.NFS, fldPath.Child("nfs")) }},
		{"iscsi", src.ISCSI != nil, func() field.ErrorList {
			var errs field.ErrorList
			p := fldPath.Child("iscsi")
			if src.ISCSI.TargetPortal == "" {
				errs = append(errs, field.Required(p.Child("targetPortal"), ""))
			}
			if src.ISCSI.IQN == "" {
				errs = append(errs, field.Required(p.Child("iqn"), ""))
			}
			return errs
		}},
		{"glusterfs", src.Glusterfs != nil, func() field.ErrorList {
			var errs field.ErrorList
			if src.Glusterfs.EndpointsName == "" {
				errs = append(errs, field.Required(fldPath.Child("glusterfs").Child("endpoints"), ""))
			}
			if src.Glusterfs.Path == "" {
				errs = append(errs, field.Required(fldPath.Child("glusterfs").Child("path"), ""))
			}
			return errs
		}},
		{"flocker", src.Flocker != nil, nil},
		{"persistentVolumeClaim", src.PersistentVolumeClaim != nil, func() field.ErrorList {
			if src.PersistentVolumeClaim.ClaimName == "" {
				return field.ErrorList{field.Required(fldPath.Child("persistentVolumeClaim").Child("claimName"), "")}
			}
			return nil
		}},
		{"rbd", src.RBD != nil, nil},
		{"cinder", src.Cinder != nil, nil},
		{"cephFS", src.CephFS != nil, func() field.ErrorList {
			if len(src.CephFS.Monitors) == 0 {
				return field.ErrorList{field.Required(fldPath.Child("cephfs").Child("monitors"), "")}
			}
			return nil
		}},
		{"quobyte", src.Quobyte != nil, nil},
		{"downwarAPI", src.DownwardAPI != nil, func() field.ErrorList {
			return validateDownwardAPIVolumeSource(src.DownwardAPI, fldPath.Child("downwardAPI"))
		}},
		{"fc", src.FC != nil, nil},
		{"flexVolume", src.FlexVolume != nil, func() field.ErrorList {
			if src.FlexVolume.Driver == "" {
				return field.ErrorList{field.Required(fldPath.Child("flexVolume").Child("driver"), "")}
			}
			return nil
		}},
		{"configMap", src.ConfigMap != nil, func() field.ErrorList {
			return validateConfigMapVolumeSource(src.ConfigMap, fldPath.Child("configMap"))
		}},
		{"azureFile", src.AzureFile != nil, nil},
		{"vsphereVolume", src.VsphereVolume != nil, nil},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil, nil},
		{"portworxVolume", src.PortworxVolume != nil, nil},
		{"azureDisk", src.AzureDisk != nil, nil},
		{"storageos", src.StorageOS != nil, nil},
		{"projected", src.Projected != nil, func() field.ErrorList {
			return validateProjectedVolumeSource(src.Projected, fldPath.Child("projected"))
		}},
		{"scaleIO", src.ScaleIO != nil, nil},
		{"csi", src.CSI != nil, func() field.ErrorList { return validateCSIVolumeSource(src.CSI, fldPath.Child("csi")) }},
		{"ephemeral", src.Ephemeral != nil, func() field.ErrorList {
			errs := validateEphemeralVolumeSource(src.Ephemeral, fldPath.Child("ephemeral"))
			if podMeta != nil && podMeta.Name != "" && volName != "" {
				pvcName := podMeta.Name + "-" + volName
				for _, msg := range nameIsDNSSubdomain(pvcName, false) {
					errs = append(errs, field.Invalid(fldPath.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvcName, msg)))
				}
			}
			return errs
		}},
		{"image", src.Image != nil, nil},
	}
	numVolumes := 0
	for _, k := range kinds {
		if !k.set {
			continue
		}
		if numVolumes > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(k.name), "may not specify more than 1 volume type"))
			continue
		}
		numVolumes++
		if k.validate != nil {
			allErrs = append(allErrs, k.validate()...)
		}
	}
	if numVolumes == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a volume type"))
	}
	return allErrs
}

var supportedHostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathBlockDev, corev1.HostPathCharDev, corev1.HostPathDirectory,
	corev1.HostPathDirectoryOrCreate, corev1.HostPathFile, corev1.HostPathFileOrCreate, corev1.HostPathSocket,
}

func validateHostPathVolumeSource(hp *corev1.HostPathVolumeSource, fldPath *field.Path) field.ErrorList {
	if hp.Path == "" {
		return field.ErrorList{field.Required(fldPath.Child("path"), "")}
	}
	allErrs := validatePathNoBacksteps(hp.Path, fldPath.Child("path"))
	if hp.Type != nil {
		ok := false
		for _, t := range supportedHostPathTypes {
			if *hp.Type == t {
				ok = true
			}
		}
		if !ok {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), hp.Type, supportedHostPathTypes))
		}
	}
	return allErrs
}

func validateNFSVolumeSource(nfs *corev1.NFSVolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if nfs.Server == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("server"), ""))
	}
	if nfs.Path == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	if !path.IsAbs(nfs.Path) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), nfs.Path, "must be an absolute path"))
	}
	return allErrs
}

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateSecretVolumeSource(s *corev1.SecretVolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if s.SecretName == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("secretName"), ""))
	}
	allErrs = append(allErrs, validateFileMode(s.DefaultMode, fldPath.Child("defaultMode"))...)
	for i := range s.Items {
		allErrs = append(allErrs, validateKeyToPath(&s.Items[i], fldPath.Child("items").Index(i))...)
	}
	return allErrs
}

func validateConfigMapVolumeSource(c *corev1.ConfigMapVolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if c.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	allErrs = append(allErrs, validateFileMode(c.DefaultMode, fldPath.Child("defaultMode"))...)
	for i := range c.Items {
		allErrs = append(allErrs, validateKeyToPath(&c.Items[i], fldPath.Child("items").Index(i))...)
	}
	return allErrs
}

func validateKeyToPath(kp *corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if kp.Key == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("key"), ""))
	}
	if kp.Path == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, validateLocalNonReservedPath(kp.Path, fldPath.Child("path"))...)
	allErrs = append(allErrs, validateFileMode(kp.Mode, fldPath.Child("mode"))...)
	return allErrs
}

var validVolumeDownwardAPIFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}

func validateDownwardAPIVolumeSource(d *corev1.DownwardAPIVolumeSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateFileMode(d.DefaultMode, fldPath.Child("defaultMode"))
	for i := range d.Items {
		allErrs = append(allErrs, validateDownwardAPIVolumeFile(&d.Items[i], fldPath)...)
	}
	return allErrs
}

func validateDownwardAPIVolumeFile(file *corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if file.Path == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, validateLocalNonReservedPath(file.Path, fldPath.Child("path"))...)
	switch {
	case file.FieldRef != nil:
		allErrs = append(allErrs, validateObjectFieldSelector(file.FieldRef, validVolumeDownwardAPIFieldPaths, fldPath.Child("fieldRef"))...)
		if file.ResourceFieldRef != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	case file.ResourceFieldRef != nil:
		allErrs = append(allErrs, validateContainerResourceFieldSelector(file.ResourceFieldRef, fldPath.Child("resourceFieldRef"), true)...)
	default:
		allErrs = append(allErrs, field.Required(fldPath, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(allErrs, validateFileMode(file.Mode, fldPath.Child("mode"))...)
}

func validateProjectedVolumeSource(p *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateFileMode(p.DefaultMode, fldPath.Child("defaultMode"))
	allPaths := map[string]bool{}
	addPath := func(p string, bad interface{}) {
		if allPaths[p] {
			allErrs = append(allErrs, field.Invalid(fldPath, bad, "conflicting duplicate paths"))
		}
		allPaths[p] = true
	}
	for i, source := range p.Sources {
		numSources := 0
		srcPath := fldPath.Child("sources").Index(i)
		if s := source.Secret; s != nil {
			numSources++
			projPath := srcPath.Child("secret")
			if s.Name == "" {
				allErrs = append(allErrs, field.Required(projPath.Child("name"), ""))
			}
			for j := range s.Items {
				allErrs = append(allErrs, validateKeyToPath(&s.Items[j], projPath.Child("items").Index(j))...)
				if s.Items[j].Path != "" {
					addPath(s.Items[j].Path, s.Name)
				}
			}
		}
		if c := source.ConfigMap; c != nil {
			numSources++
			projPath := srcPath.Child("configMap")
			if c.Name == "" {
				allErrs = append(allErrs, field.Required(projPath.Child("name"), ""))
			}
			for j := range c.Items {
				allErrs = append(allErrs, validateKeyToPath(&c.Items[j], projPath.Child("items").Index(j))...)
				if c.Items[j].Path != "" {
					addPath(c.Items[j].Path, c.Name)
				}
			}
		}
		if d := source.DownwardAPI; d != nil {
			numSources++
			for j := range d.Items {
				allErrs = append(allErrs, validateDownwardAPIVolumeFile(&d.Items[j], srcPath.Child("downwardAPI"))...)
				if d.Items[j].Path != "" {
					addPath(d.Items[j].Path, d.Items[j].Path)
				}
			}
		}
		if t := source.ServiceAccountToken; t != nil {
			numSources++
			projPath := srcPath.Child("serviceAccountToken")
			// Defaulting sets one hour; a missing value means defaults did not run.
			exp := deref(t.ExpirationSeconds, 3600)
			if exp < 10*60 {
				allErrs = append(allErrs, field.Invalid(projPath.Child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
			}
			if exp > 1<<32 {
				allErrs = append(allErrs, field.Invalid(projPath.Child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
			}
			if t.Path == "" {
				allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
			} else {
				allErrs = append(allErrs, validateLocalNonReservedPath(t.Path, fldPath.Child("path"))...)
			}
		}
		if source.ClusterTrustBundle != nil {
			numSources++
		}
		if source.PodCertificate != nil {
			numSources++
		}
		if numSources > 1 {
			allErrs = append(allErrs, field.Forbidden(srcPath, "may not specify more than 1 volume type"))
		}
	}
	return allErrs
}

func validateCSIVolumeSource(csi *corev1.CSIVolumeSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateCSIDriverName(csi.Driver, fldPath.Child("driver"))
	if csi.NodePublishSecretRef != nil {
		if csi.NodePublishSecretRef.Name == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("nodePublishSecretRef", "name"), ""))
		} else {
			allErrs = append(allErrs, validateName(csi.NodePublishSecretRef.Name, nameIsDNSSubdomain, fldPath.Child("name"))...)
		}
	}
	return allErrs
}

func validateCSIDriverName(driver string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if driver == "" {
		allErrs = append(allErrs, field.Required(fldPath, ""))
	}
	if len(driver) > 63 {
		allErrs = append(allErrs, field.TooLong(fldPath, driver, 63))
	}
	for _, msg := range nameIsDNSSubdomain(strings.ToLower(driver), false) {
		allErrs = append(allErrs, field.Invalid(fldPath, driver, msg))
	}
	return allErrs
}

func validateEphemeralVolumeSource(e *corev1.EphemeralVolumeSource, fldPath *field.Path) field.ErrorList {
	if e.VolumeClaimTemplate == nil {
		return field.ErrorList{field.Required(fldPath.Child("volumeClaimTemplate"), "")}
	}
	tmplPath := fldPath.Child("volumeClaimTemplate")
	allErrs := validateTemplateObjectMeta(&e.VolumeClaimTemplate.ObjectMeta, tmplPath.Child("metadata"))
	return append(allErrs, validatePersistentVolumeClaimSpec(&e.VolumeClaimTemplate.Spec, tmplPath.Child("spec"))...)
}

// validateTemplateObjectMeta allows only labels and annotations, as upstream
// does for embedded claim templates.
func validateTemplateObjectMeta(meta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	allErrs := validateAnnotations(meta.Annotations, fldPath.Child("annotations"))
	allErrs = append(allErrs, validateLabels(meta.Labels, fldPath.Child("labels"))...)
	rest := meta.DeepCopy()
	rest.Labels, rest.Annotations = nil, nil
	fields := []struct {
		name string
		set  bool
	}{
		{"name", rest.Name != ""}, {"generateName", rest.GenerateName != ""}, {"namespace", rest.Namespace != ""},
		{"selfLink", rest.SelfLink != ""}, {"uid", rest.UID != ""}, {"resourceVersion", rest.ResourceVersion != ""},
		{"generation", rest.Generation != 0}, {"creationTimestamp", !rest.CreationTimestamp.IsZero()},
		{"deletionTimestamp", rest.DeletionTimestamp != nil}, {"deletionGracePeriodSeconds", rest.DeletionGracePeriodSeconds != nil},
		{"ownerReferences", len(rest.OwnerReferences) > 0}, {"finalizers", len(rest.Finalizers) > 0}, {"managedFields", len(rest.ManagedFields) > 0},
	}
	for _, f := range fields {
		if f.set {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(f.name), "cannot be set"))
		}
	}
	return allErrs
}

// validateLocalDescendingPath: relative, and no ".." element.
func validateLocalDescendingPath(target string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if path.IsAbs(target) {
		allErrs = append(allErrs, field.Invalid(fldPath, target, "must be a relative path"))
	}
	return append(allErrs, validatePathNoBacksteps(target, fldPath)...)
}

func validatePathNoBacksteps(target string, fldPath *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(target), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(fldPath, target, "must not contain '..'")}
		}
	}
	return nil
}

func validateLocalNonReservedPath(target string, fldPath *field.Path) field.ErrorList {
	allErrs := validateLocalDescendingPath(target, fldPath)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		allErrs = append(allErrs, field.Invalid(fldPath, target, "must not start with '..'"))
	}
	return allErrs
}

var (
	supportedAccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}
	supportedVolumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
)

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	foundRWOP, foundOther := false, false
	for _, mode := range modes {
		known := false
		for _, m := range supportedAccessModes {
			if m == mode {
				known = true
			}
		}
		if !known {
			allErrs = append(allErrs, field.NotSupported(fldPath, mode, supportedAccessModes))
		}
		if mode == corev1.ReadWriteOncePod {
			foundRWOP = true
		} else if known {
			foundOther = true
		}
	}
	if foundRWOP && foundOther {
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return allErrs
}

// validatePersistentVolumeClaimSpec is core's ValidatePersistentVolumeClaimSpec.
func validatePersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.AccessModes) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("accessModes"), "at least 1 access mode is required"))
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	}
	allErrs = append(allErrs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))...)
	storagePath := fldPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		allErrs = append(allErrs, field.Required(storagePath, ""))
	} else if errs := validatePositiveQuantityValue(q, storagePath); len(errs) > 0 {
		allErrs = append(allErrs, errs...)
	} else {
		allErrs = append(allErrs, validateResourceQuantityValue(corev1.ResourceStorage, q, storagePath)...)
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		allErrs = append(allErrs, validateName(*spec.StorageClassName, nameIsDNSSubdomain, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && *spec.VolumeMode != corev1.PersistentVolumeBlock && *spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, supportedVolumeModes))
	}
	if ds := spec.DataSource; ds != nil {
		p := fldPath.Child("dataSource")
		if ds.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		if ds.Kind == "" {
			allErrs = append(allErrs, field.Required(p.Child("kind"), ""))
		}
		if deref(ds.APIGroup, "") == "" && ds.Kind != "PersistentVolumeClaim" {
			allErrs = append(allErrs, field.Invalid(p, ds.Kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
		}
	}
	if spec.VolumeAttributesClassName != nil && *spec.VolumeAttributesClassName != "" {
		allErrs = append(allErrs, validateName(*spec.VolumeAttributesClassName, nameIsDNSSubdomain, fldPath.Child("volumeAttributesClassName"))...)
	}
	return allErrs
}
