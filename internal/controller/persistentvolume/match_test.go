package persistentvolume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var (
	rwo = corev1.ReadWriteOnce
	rwx = corev1.ReadWriteMany
	rox = corev1.ReadOnlyMany
)

type pvOpt func(*corev1.PersistentVolume)

func newPV(name, size string, opts ...pvOpt) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: k8stypes.UID("pv-uid-" + name)},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{rwo},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func pvClass(c string) pvOpt { return func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = c } }
func pvModes(m ...corev1.PersistentVolumeAccessMode) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.AccessModes = m }
}
func pvLabels(l map[string]string) pvOpt { return func(v *corev1.PersistentVolume) { v.Labels = l } }
func pvRef(ns, name, uid string) pvOpt {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name, UID: k8stypes.UID(uid)}
	}
}
func pvPhase(p corev1.PersistentVolumePhase) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}
func pvBlock(v *corev1.PersistentVolume) { v.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) }

type pvcOpt func(*corev1.PersistentVolumeClaim)

func newPVC(name, size string, opts ...pvcOpt) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: k8stypes.UID("claim-uid-" + name), ResourceVersion: "7"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{rwo},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func pvcClass(s string) pvcOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To(s) }
}
func pvcModes(m ...corev1.PersistentVolumeAccessMode) pvcOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = m }
}
func pvcSelector(l map[string]string) pvcOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.Selector = &metav1.LabelSelector{MatchLabels: l} }
}
func pvcVolume(n string) pvcOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = n }
}

func TestFindBestMatch(t *testing.T) {
	tests := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		volumes []*corev1.PersistentVolume
		delay   bool
		want    string
	}{
		{"smallest that fits", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("big", "10Gi"), newPV("small", "500Mi"), newPV("fit", "2Gi")}, false, "fit"},
		{"exact size", newPVC("c", "1Gi"), []*corev1.PersistentVolume{newPV("a", "2Gi"), newPV("b", "1Gi")}, false, "b"},
		{"none big enough", newPVC("c", "5Gi"), []*corev1.PersistentVolume{newPV("a", "2Gi")}, false, ""},
		{"empty class matches only empty class", newPVC("c", "1Gi", pvcClass("")),
			[]*corev1.PersistentVolume{newPV("fast", "1Gi", pvClass("fast")), newPV("plain", "5Gi")}, false, "plain"},
		{"nil class is empty class", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("fast", "1Gi", pvClass("fast"))}, false, ""},
		{"class must match", newPVC("c", "1Gi", pvcClass("fast")),
			[]*corev1.PersistentVolume{newPV("plain", "1Gi"), newPV("fast", "3Gi", pvClass("fast"))}, false, "fast"},
		{"access modes superset", newPVC("c", "1Gi", pvcModes(rwx)),
			[]*corev1.PersistentVolume{newPV("rwo", "1Gi"), newPV("rwx", "2Gi", pvModes(rwo, rwx))}, false, "rwx"},
		{"fewest access modes preferred over smaller", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("many", "1Gi", pvModes(rwo, rox, rwx)), newPV("one", "5Gi")}, false, "one"},
		{"selector", newPVC("c", "1Gi", pvcSelector(map[string]string{"tier": "db"})),
			[]*corev1.PersistentVolume{newPV("a", "1Gi"), newPV("b", "2Gi", pvLabels(map[string]string{"tier": "db"}))}, false, "b"},
		{"volume mode must be equal", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("block", "1Gi", pvBlock)}, false, ""},
		{"not available", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("rel", "1Gi", pvPhase(corev1.VolumeReleased)), newPV("pend", "1Gi", pvPhase(corev1.VolumePending))}, false, ""},
		{"claimed by another", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("a", "1Gi", pvRef("ns", "other", ""))}, false, ""},
		{"pre-bound by claimRef wins", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("a", "1Gi"), newPV("pre", "9Gi", pvRef("ns", "c", ""), pvClass("x"))}, false, "pre"},
		{"claimRef with other uid is not ours", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("pre", "9Gi", pvRef("ns", "c", "old"))}, false, ""},
		{"delay binding skips unbound volumes", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("a", "1Gi")}, true, ""},
		{"delay binding keeps pre-bound", newPVC("c", "1Gi"),
			[]*corev1.PersistentVolume{newPV("pre", "1Gi", pvRef("ns", "c", ""))}, true, "pre"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if v := FindBestMatch(tt.claim, tt.volumes, tt.delay); v != nil {
				got = v.Name
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckSatisfies(t *testing.T) {
	tests := []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		pv    *corev1.PersistentVolume
		want  string
	}{
		{"ok", newPVC("c", "1Gi"), newPV("v", "1Gi"), ""},
		{"selector ignored", newPVC("c", "1Gi", pvcSelector(map[string]string{"a": "b"})), newPV("v", "1Gi"), ""},
		{"too small", newPVC("c", "2Gi"), newPV("v", "1Gi"), "requested PV is too small"},
		{"class", newPVC("c", "1Gi", pvcClass("fast")), newPV("v", "1Gi"), "storageClassName does not match"},
		{"mode", newPVC("c", "1Gi"), newPV("v", "1Gi", pvBlock), "incompatible volumeMode"},
		{"access", newPVC("c", "1Gi", pvcModes(rwx)), newPV("v", "1Gi"), "incompatible accessMode"},
	}
	for _, tt := range tests {
		if got := CheckSatisfies(tt.claim, tt.pv); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDefaultClass(t *testing.T) {
	sc := func(name string, def bool, sec int64) *storagev1.StorageClass {
		s := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(sec, 0)}}
		if def {
			s.Annotations = map[string]string{AnnDefaultStorageClass: "true"}
		}
		return s
	}
	tests := []struct {
		name    string
		classes []*storagev1.StorageClass
		want    string
	}{
		{"none", nil, ""},
		{"no default", []*storagev1.StorageClass{sc("a", false, 1)}, ""},
		{"one default", []*storagev1.StorageClass{sc("a", false, 1), sc("b", true, 1)}, "b"},
		{"newest default", []*storagev1.StorageClass{sc("old", true, 1), sc("new", true, 5)}, "new"},
	}
	for _, tt := range tests {
		if got := DefaultClass(tt.classes); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
