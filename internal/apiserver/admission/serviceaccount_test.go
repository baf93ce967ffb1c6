package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
)

func TestShouldAutomount(t *testing.T) {
	tests := []struct {
		name      string
		pod, sa   *bool
		nilSA     bool
		wantMount bool
	}{
		{name: "both unset", wantMount: true},
		{name: "pod false", pod: ptr.To(false), sa: ptr.To(true), wantMount: false},
		{name: "pod true beats account false", pod: ptr.To(true), sa: ptr.To(false), wantMount: true},
		{name: "account false", sa: ptr.To(false), wantMount: false},
		{name: "no account", nilSA: true, wantMount: true},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{Spec: corev1.PodSpec{AutomountServiceAccountToken: tt.pod}}
		sa := &corev1.ServiceAccount{AutomountServiceAccountToken: tt.sa}
		if tt.nilSA {
			sa = nil
		}
		if got := ShouldAutomount(sa, pod); got != tt.wantMount {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.wantMount)
		}
	}
}

func TestMountServiceAccountToken(t *testing.T) {
	want := corev1.VolumeMount{Name: "kube-api-access-abcde", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	t.Run("every container", func(t *testing.T) {
		pod := &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i"}},
			Containers:     []corev1.Container{{Name: "a"}, {Name: "b", VolumeMounts: []corev1.VolumeMount{{Name: "own", MountPath: ServiceAccountMountPath}}}},
		}}
		MountServiceAccountToken(pod, "abcde")
		if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Name != "kube-api-access-abcde" {
			t.Fatalf("volumes: got %+v, want one kube-api-access-abcde", pod.Spec.Volumes)
		}
		if !equality.Semantic.DeepEqual(pod.Spec.Volumes[0].Projected, TokenVolumeSource()) {
			t.Errorf("projected source: got %+v, want the token/ca/namespace source", pod.Spec.Volumes[0].Projected)
		}
		p := pod.Spec.Volumes[0].Projected
		if *p.DefaultMode != 420 || *p.Sources[0].ServiceAccountToken.ExpirationSeconds != 3607 || p.Sources[0].ServiceAccountToken.Path != "token" ||
			p.Sources[1].ConfigMap.Name != "kube-root-ca.crt" || p.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
			t.Errorf("projected source: got %+v, want upstream's", p)
		}
		for _, c := range []corev1.Container{pod.Spec.InitContainers[0], pod.Spec.Containers[0]} {
			if len(c.VolumeMounts) != 1 || !equality.Semantic.DeepEqual(c.VolumeMounts[0], want) {
				t.Errorf("container %s mounts: got %+v, want [%+v]", c.Name, c.VolumeMounts, want)
			}
		}
		if m := pod.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].Name != "own" {
			t.Errorf("container b mounts: got %+v, want only its own", m)
		}
	})
	t.Run("all containers mount the path", func(t *testing.T) {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
			VolumeMounts: []corev1.VolumeMount{{Name: "own", MountPath: ServiceAccountMountPath}}}}}}
		MountServiceAccountToken(pod, "abcde")
		if len(pod.Spec.Volumes) != 0 {
			t.Errorf("volumes: got %+v, want none", pod.Spec.Volumes)
		}
	})
	t.Run("existing volume reused", func(t *testing.T) {
		pod := &corev1.Pod{Spec: corev1.PodSpec{
			Volumes:    []corev1.Volume{{Name: "kube-api-access-zzzzz", VolumeSource: corev1.VolumeSource{Projected: TokenVolumeSource()}}},
			Containers: []corev1.Container{{Name: "a"}}}}
		MountServiceAccountToken(pod, "abcde")
		if len(pod.Spec.Volumes) != 1 || pod.Spec.Containers[0].VolumeMounts[0].Name != "kube-api-access-zzzzz" {
			t.Errorf("got volumes %+v mounts %+v, want the existing volume mounted", pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts)
		}
	})
}

func TestMirrorPodRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want string
	}{
		{"plain", corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, ""},
		{"configMap volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}}}, ""},
		{"service account", corev1.PodSpec{ServiceAccountName: "default"}, "a mirror pod may not reference service accounts"},
		{"secret volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}}, "a mirror pod may not reference secrets"},
		{"secret env", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}}}}, "a mirror pod may not reference secrets"},
		{"secret envFrom", corev1.PodSpec{Containers: []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{}}}}}}, "a mirror pod may not reference secrets"},
		{"pull secret", corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "p"}}}, "a mirror pod may not reference secrets"},
		{"token projection", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: TokenVolumeSource()}}}}, "a mirror pod may not use ServiceAccountToken volume projections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MirrorPodRefusal(&corev1.Pod{Spec: tc.spec}); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
