package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// benchPod returns the i-th benchmark pod: shaped like a pod a Deployment
// would create for a small web service, so that its stored JSON (2-3 KB
// after server defaulting) costs what a real pod costs to encode, store,
// list and fan out. A toy pod would flatter every number.
func benchPod(namespace string, i int) *corev1.Pod {
	name := podName(i)
	yes, no := true, false
	grace, fsGroup := int64(45), int64(2000)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":      "checkout",
				"app.kubernetes.io/component": "api",
				"app.kubernetes.io/part-of":   "shop",
				"pod-template-hash":           "7c9f8d6b5d",
				"shard":                       fmt.Sprintf("s%02d", i%16),
			},
			Annotations: map[string]string{
				"prometheus.io/scrape":          "true",
				"prometheus.io/port":            "9090",
				"checksum/config":               "3f2a1c9be04d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f",
				"kubectl.kubernetes.io/restart": "2024-01-01T00:00:00Z",
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:    "checkout",
				Image:   "registry.example.com/shop/checkout:v1.42.3",
				Command: []string{"/app/checkout"},
				Args:    []string{"--listen=:8080", "--metrics=:9090", "--log-format=json"},
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				},
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "DATABASE_URL", Value: "postgres://checkout@db.shop.svc.cluster.local:5432/checkout?sslmode=disable"},
					{Name: "CACHE_TTL", Value: "30s"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("128Mi"),
					},
					Limits: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("500m"),
						corev1.ResourceMemory: resource.MustParse("256Mi"),
					},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/checkout", ReadOnly: true}},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					InitialDelaySeconds: 10,
					PeriodSeconds:       10,
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 5,
				},
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             &yes,
					ReadOnlyRootFilesystem:   &yes,
					AllowPrivilegeEscalation: &no,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			ServiceAccountName:            "checkout",
			TerminationGracePeriodSeconds: &grace,
			SecurityContext:               &corev1.PodSecurityContext{FSGroup: &fsGroup},
			Volumes: []corev1.Volume{{
				Name:         "config",
				VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"}}},
			}},
		},
	}
}

// podName is the name of the i-th benchmark pod.
func podName(i int) string {
	return fmt.Sprintf("checkout-7c9f8d6b5d-%05d", i)
}
