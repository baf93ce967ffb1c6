package persistentvolume

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotations the binder writes, as upstream names them.
const (
	// AnnBindCompleted on a claim says the controller finished binding it.
	AnnBindCompleted = "pv.kubernetes.io/bind-completed"
	// AnnBoundByController on a claim or volume says the controller, not
	// the user, chose the other side of the binding.
	AnnBoundByController = "pv.kubernetes.io/bound-by-controller"
	// AnnDefaultStorageClass marks the cluster's default StorageClass.
	AnnDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	// annBetaStorageClass is the deprecated annotation form of a class name.
	annBetaStorageClass = "volume.beta.kubernetes.io/storage-class"
)

// ClaimClass is the storage class a claim asks for: its
// spec.storageClassName, else the deprecated beta annotation, else "".
func ClaimClass(c *corev1.PersistentVolumeClaim) string {
	if v, ok := c.Annotations[annBetaStorageClass]; ok {
		return v
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// VolumeClass is the storage class of a volume, read as ClaimClass reads a
// claim's.
func VolumeClass(v *corev1.PersistentVolume) string {
	if c, ok := v.Annotations[annBetaStorageClass]; ok {
		return c
	}
	return v.Spec.StorageClassName
}

// DefaultClass is the name of the default StorageClass, "" when none is
// annotated as default. With several defaults the newest wins, as upstream.
func DefaultClass(classes []*storagev1.StorageClass) string {
	var best *storagev1.StorageClass
	for _, sc := range classes {
		if sc.Annotations[AnnDefaultStorageClass] != "true" {
			continue
		}
		if best == nil || best.CreationTimestamp.Before(&sc.CreationTimestamp) ||
			(best.CreationTimestamp.Equal(&sc.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// IsDelayBinding says whether the claim's class binds on first consumer.
// A missing class binds immediately.
func IsDelayBinding(c *corev1.PersistentVolumeClaim, classes map[string]*storagev1.StorageClass) bool {
	name := ClaimClass(c)
	if name == "" {
		return false
	}
	sc, ok := classes[name]
	return ok && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

func volumeModeOf(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// modesMismatch says whether the claim and the volume differ in volumeMode,
// Filesystem standing for unset.
func modesMismatch(c *corev1.PersistentVolumeClaim, v *corev1.PersistentVolume) bool {
	return volumeModeOf(c.Spec.VolumeMode) != volumeModeOf(v.Spec.VolumeMode)
}

// hasAccessModes says whether have contains every mode of want.
func hasAccessModes(have, want []corev1.PersistentVolumeAccessMode) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// IsBoundToClaim says whether the volume's claimRef names the claim: by
// namespace and name, and by uid unless the ref has none (pre-binding).
func IsBoundToClaim(v *corev1.PersistentVolume, c *corev1.PersistentVolumeClaim) bool {
	ref := v.Spec.ClaimRef
	if ref == nil || ref.Namespace != c.Namespace || ref.Name != c.Name {
		return false
	}
	return ref.UID == "" || ref.UID == c.UID
}

func requested(c *corev1.PersistentVolumeClaim) resource.Quantity {
	return c.Spec.Resources.Requests[corev1.ResourceStorage]
}

func capacity(v *corev1.PersistentVolume) resource.Quantity {
	return v.Spec.Capacity[corev1.ResourceStorage]
}

// CheckSatisfies explains why the volume cannot serve a claim that names it
// in spec.volumeName, "" when it can: capacity, class, volumeMode and
// access modes are checked; the selector is not, as upstream.
func CheckSatisfies(c *corev1.PersistentVolumeClaim, v *corev1.PersistentVolume) string {
	req, have := requested(c), capacity(v)
	if have.Cmp(req) < 0 {
		return "requested PV is too small"
	}
	if VolumeClass(v) != ClaimClass(c) {
		return "storageClassName does not match"
	}
	if modesMismatch(c, v) {
		return "incompatible volumeMode"
	}
	if !hasAccessModes(v.Spec.AccessModes, c.Spec.AccessModes) {
		return "incompatible accessMode"
	}
	return ""
}

// FindBestMatch picks the volume a claim without spec.volumeName binds to,
// nil when none fits. A volume pre-bound to the claim by its claimRef wins
// outright. Otherwise a candidate is Available, has no claimRef, is not
// being deleted, matches the claim's class, volumeMode and selector, has
// every access mode the claim asks for and at least its storage request.
// As upstream, candidates with the fewest access modes are preferred, and
// among those the smallest. With delayBinding only pre-bound volumes are
// considered: the rest is the scheduler's job.
func FindBestMatch(c *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, delayBinding bool) *corev1.PersistentVolume {
	var sel labels.Selector
	if c.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(c.Spec.Selector)
		if err != nil {
			return nil
		}
		sel = s
	}
	req := requested(c)
	class := ClaimClass(c)
	// Sort for a deterministic choice among equals.
	sorted := append([]*corev1.PersistentVolume(nil), volumes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var best *corev1.PersistentVolume
	for _, v := range sorted {
		if modesMismatch(c, v) || v.DeletionTimestamp != nil || !hasAccessModes(v.Spec.AccessModes, c.Spec.AccessModes) {
			continue
		}
		have := capacity(v)
		if have.Cmp(req) < 0 {
			continue
		}
		if IsBoundToClaim(v, c) {
			return v
		}
		if delayBinding {
			continue
		}
		if v.Status.Phase != corev1.VolumeAvailable || v.Spec.ClaimRef != nil {
			continue
		}
		if sel != nil && !sel.Matches(labels.Set(v.Labels)) {
			continue
		}
		if VolumeClass(v) != class {
			continue
		}
		if best == nil || better(v, best) {
			best = v
		}
	}
	return best
}

// better says whether a is preferred to b: fewer access modes, then less
// capacity.
func better(a, b *corev1.PersistentVolume) bool {
	if la, lb := distinctModes(a), distinctModes(b); la != lb {
		return la < lb
	}
	ca, cb := capacity(a), capacity(b)
	return ca.Cmp(cb) < 0
}

func distinctModes(v *corev1.PersistentVolume) int {
	seen := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range v.Spec.AccessModes {
		seen[m] = true
	}
	return len(seen)
}
