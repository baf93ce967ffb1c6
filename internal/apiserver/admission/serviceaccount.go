package admission

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Names and values of the kube-api-access volume upstream's ServiceAccount
// admission plugin adds to pods.
const (
	// ServiceAccountVolumePrefix starts the volume's name; five random
	// characters follow.
	ServiceAccountVolumePrefix = "kube-api-access-"
	// ServiceAccountMountPath is where every container sees the volume.
	ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// RootCAConfigMap is the ConfigMap every namespace gets with the
	// cluster CA under RootCAKey.
	RootCAConfigMap = "kube-root-ca.crt"
	RootCAKey       = "ca.crt"
	// ProjectedTokenSeconds is the lifetime the kubelet asks for; the API
	// server extends it (see the TokenRequest subresource).
	ProjectedTokenSeconds int64 = 3607
	// MirrorPodAnnotation marks pods the kubelet creates for static pods.
	MirrorPodAnnotation = "kubernetes.io/config.mirror"
)

// IsMirrorPod reports whether pod mirrors a static pod; upstream leaves
// those alone.
func IsMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[MirrorPodAnnotation]
	return ok
}

// ShouldAutomount decides whether pod gets the API credentials volume: the
// pod's automountServiceAccountToken wins, then the account's; both unset
// means yes.
func ShouldAutomount(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa != nil && sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// TokenVolumeSource is the projected source of the kube-api-access
// volume: a bound token, the cluster CA and the namespace.
func TokenVolumeSource() *corev1.ProjectedVolumeSource {
	return &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](corev1.ProjectedVolumeSourceDefaultMode),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(ProjectedTokenSeconds)}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: RootCAKey, Path: RootCAKey}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path:     "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}
}

// MountServiceAccountToken adds the kube-api-access volume (named with
// suffix unless the pod already has one) and a read-only mount of it at
// ServiceAccountMountPath to every init container and container that does
// not mount something there already, as upstream's plugin does. A pod
// whose containers all mount that path gets no volume.
func MountServiceAccountToken(pod *corev1.Pod, suffix string) {
	volName := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, ServiceAccountVolumePrefix) {
			volName = v.Name
			break
		}
	}
	hasVolume := volName != ""
	if !hasVolume {
		volName = ServiceAccountVolumePrefix + suffix
	}
	mount := corev1.VolumeMount{Name: volName, ReadOnly: true, MountPath: ServiceAccountMountPath}
	needed := false
	for _, cs := range []*[]corev1.Container{&pod.Spec.InitContainers, &pod.Spec.Containers} {
		for i := range *cs {
			c := &(*cs)[i]
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.MountPath == ServiceAccountMountPath {
					mounted = true
					break
				}
			}
			if !mounted {
				c.VolumeMounts = append(c.VolumeMounts, mount)
				needed = true
			}
		}
	}
	if needed && !hasVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: volName,
			VolumeSource: corev1.VolumeSource{Projected: TokenVolumeSource()}})
	}
}
