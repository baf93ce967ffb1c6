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

// MirrorPodRefusal is why upstream's ServiceAccount plugin refuses a mirror
// pod, or "": a static pod runs without the API, so its mirror may not
// name a service account, use a Secret (volumes, projections, environment,
// image pull secrets) or a service account token projection.
func MirrorPodRefusal(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return "a mirror pod may not reference service accounts"
	}
	if podUsesSecret(pod) {
		return "a mirror pod may not reference secrets"
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return "a mirror pod may not use ServiceAccountToken volume projections"
			}
		}
	}
	return ""
}

// podUsesSecret reports whether a pod names a Secret anywhere upstream
// looks: image pull secrets, volumes (secret, projected, and the secret
// references of volume plugins), and containers' env and envFrom.
func podUsesSecret(pod *corev1.Pod) bool {
	if len(pod.Spec.ImagePullSecrets) > 0 {
		return true
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Secret != nil,
			v.CSI != nil && v.CSI.NodePublishSecretRef != nil,
			v.ISCSI != nil && v.ISCSI.SecretRef != nil,
			v.RBD != nil && v.RBD.SecretRef != nil,
			v.CephFS != nil && v.CephFS.SecretRef != nil,
			v.FlexVolume != nil && v.FlexVolume.SecretRef != nil,
			v.AzureFile != nil,
			v.ScaleIO != nil,
			v.StorageOS != nil && v.StorageOS.SecretRef != nil:
			return true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					return true
				}
			}
		}
	}
	containers := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, e := range pod.Spec.EphemeralContainers {
		containers = append(containers, corev1.Container{Env: e.Env, EnvFrom: e.EnvFrom})
	}
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				return true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return true
			}
		}
	}
	return false
}
