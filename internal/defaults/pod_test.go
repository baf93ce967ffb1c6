package defaults

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestPullPolicy(t *testing.T) {
	cases := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", "Always"},
		{"nginx:latest", "Always"},
		{"nginx:1.25", "IfNotPresent"},
		{"docker.io/library/nginx", "Always"},
		{"registry.local:5000/team/app", "Always"},
		{"registry.local:5000/team/app:v2", "IfNotPresent"},
		{"nginx@" + digest, "IfNotPresent"},
		{"nginx:1.25@" + digest, "IfNotPresent"},
		{"nginx:latest@" + digest, "Always"},
		// Unparseable references are not Always: upstream ignores the parse
		// error and validation rejects them afterwards.
		{"", "IfNotPresent"},
		{"Nginx:latest", "IfNotPresent"},
	}
	for _, tc := range cases {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", tc.image)}}}
		Default(pod)
		if got := pod.Spec.Containers[0].ImagePullPolicy; got != tc.want {
			t.Errorf("image %q: got imagePullPolicy %q, want %q", tc.image, got, tc.want)
		}
		vol := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: tc.image}}}}}}
		Default(vol)
		if got := vol.Spec.Volumes[0].Image.PullPolicy; got != tc.want {
			t.Errorf("image volume %q: got pullPolicy %q, want %q", tc.image, got, tc.want)
		}
	}
}

func TestPodDefaults(t *testing.T) {
	minimalWant := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       podSpec(defaultedContainer("app", "nginx", "Always")),
	}

	fullIn := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			DeprecatedServiceAccount: "robot",
			HostNetwork:              true,
			InitContainers: []corev1.Container{{
				Name:      "init",
				Image:     "busybox:1.36",
				Ports:     []corev1.ContainerPort{{ContainerPort: 9000}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("500m")}},
			}},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.local:5000/team/app@" + digest,
				Ports: []corev1.ContainerPort{
					{ContainerPort: 8080},
					{ContainerPort: 53, Protocol: "UDP", HostPort: 1053},
				},
				Env: []corev1.EnvVar{
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "FILE", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "env", Key: "k"}}},
					{Name: "PLAIN", Value: "1"},
				},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": q("1"), "memory": q("128Mi")},
					Requests: corev1.ResourceList{"cpu": q("250m")},
				},
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}, PeriodSeconds: 5},
				StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, FailureThreshold: 30},
				Lifecycle: &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}},
					PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/quit", Port: intstr.FromInt32(8080), Scheme: "HTTPS"}},
				},
			}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}},
			Volumes: []corev1.Volume{
				{Name: "scratch"},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr.To(int32(0o400))}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
				{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
					}}},
				}}}},
				{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "quay.io/x/data:v1"}}},
				{Name: "eph", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
					},
				}}}},
				{Name: "iscsi", VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{TargetPortal: "10.0.0.1:3260", IQN: "iqn.2001-04.com.example:storage", Lun: 0}}},
				{Name: "rbd", VolumeSource: corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{CephMonitors: []string{"mon"}, RBDImage: "img"}}},
				{Name: "azure", VolumeSource: corev1.VolumeSource{AzureDisk: &corev1.AzureDiskVolumeSource{DiskName: "d", DataDiskURI: "u"}}},
				{Name: "scaleio", VolumeSource: corev1.VolumeSource{ScaleIO: &corev1.ScaleIOVolumeSource{Gateway: "g", System: "s", SecretRef: &corev1.LocalObjectReference{Name: "x"}}}},
			},
			Overhead: corev1.ResourceList{"cpu": q("100u")},
		},
		Status: corev1.PodStatus{
			PodIP:             "10.244.0.5",
			HostIP:            "192.168.1.10",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", AllocatedResources: corev1.ResourceList{"cpu": q("1500u")}}},
		},
	}

	fullWant := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "robot",
			DeprecatedServiceAccount:      "robot",
			HostNetwork:                   true,
			RestartPolicy:                 "Always",
			TerminationGracePeriodSeconds: ptr.To(int64(30)),
			DNSPolicy:                     "ClusterFirst",
			SecurityContext:               &corev1.PodSecurityContext{},
			SchedulerName:                 "default-scheduler",
			EnableServiceLinks:            ptr.To(true),
			InitContainers: []corev1.Container{{
				Name:            "init",
				Image:           "busybox:1.36",
				ImagePullPolicy: "IfNotPresent",
				Ports:           []corev1.ContainerPort{{ContainerPort: 9000, HostPort: 9000, Protocol: "TCP"}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": q("500m")},
					Requests: corev1.ResourceList{"cpu": q("500m")},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: "File",
			}},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           "registry.local:5000/team/app@" + digest,
				ImagePullPolicy: "IfNotPresent",
				Ports: []corev1.ContainerPort{
					{ContainerPort: 8080, HostPort: 8080, Protocol: "TCP"},
					{ContainerPort: 53, Protocol: "UDP", HostPort: 1053},
				},
				Env: []corev1.EnvVar{
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
					{Name: "FILE", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "env", Key: "k", Optional: ptr.To(false)}}},
					{Name: "PLAIN", Value: "1"},
				},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": q("1"), "memory": q("128Mi")},
					Requests: corev1.ResourceList{"cpu": q("250m"), "memory": q("128Mi")},
				},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080), Scheme: "HTTP"}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: ptr.To("")}},
					TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3,
				},
				StartupProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 30,
				},
				Lifecycle: &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http"), Scheme: "HTTP"}},
					PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/quit", Port: intstr.FromInt32(8080), Scheme: "HTTPS"}},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: "File",
			}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", ImagePullPolicy: "Always",
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
			}}},
			Volumes: []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To(int32(420))}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr.To(int32(0o400))}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: ptr.To(corev1.HostPathType(""))}}},
				{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
					Items: []corev1.DownwardAPIVolumeFile{
						{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
					},
					DefaultMode: ptr.To(int32(420)),
				}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3600))}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
						}}},
					},
					DefaultMode: ptr.To(int32(420)),
				}}},
				{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "quay.io/x/data:v1", PullPolicy: "IfNotPresent"}}},
				{Name: "eph", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1Gi")}},
						VolumeMode:  ptr.To(corev1.PersistentVolumeMode("Filesystem")),
					},
				}}}},
				{Name: "iscsi", VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{TargetPortal: "10.0.0.1:3260", IQN: "iqn.2001-04.com.example:storage", Lun: 0, ISCSIInterface: "default"}}},
				{Name: "rbd", VolumeSource: corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{CephMonitors: []string{"mon"}, RBDImage: "img", RBDPool: "rbd", RadosUser: "admin", Keyring: "/etc/ceph/keyring"}}},
				{Name: "azure", VolumeSource: corev1.VolumeSource{AzureDisk: &corev1.AzureDiskVolumeSource{
					DiskName: "d", DataDiskURI: "u",
					CachingMode: ptr.To(corev1.AzureDataDiskCachingMode("ReadWrite")),
					FSType:      ptr.To("ext4"),
					ReadOnly:    ptr.To(false),
					Kind:        ptr.To(corev1.AzureDataDiskKind("Shared")),
				}}},
				{Name: "scaleio", VolumeSource: corev1.VolumeSource{ScaleIO: &corev1.ScaleIOVolumeSource{
					Gateway: "g", System: "s", SecretRef: &corev1.LocalObjectReference{Name: "x"},
					StorageMode: "ThinProvisioned", FSType: "xfs",
				}}},
			},
			Overhead: corev1.ResourceList{"cpu": q("1m")},
		},
		Status: corev1.PodStatus{
			PodIP:             "10.244.0.5",
			PodIPs:            []corev1.PodIP{{IP: "10.244.0.5"}},
			HostIP:            "192.168.1.10",
			HostIPs:           []corev1.HostIP{{IP: "192.168.1.10"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", AllocatedResources: corev1.ResourceList{"cpu": q("2m")}}},
		},
	}

	explicitIn := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:                 "Never",
		DNSPolicy:                     "Default",
		SchedulerName:                 "custom",
		TerminationGracePeriodSeconds: ptr.To(int64(5)),
		SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
		EnableServiceLinks:            ptr.To(false),
		ServiceAccountName:            "new",
		DeprecatedServiceAccount:      "old",
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx", ImagePullPolicy: "Never",
			TerminationMessagePath: "/tmp/x", TerminationMessagePolicy: "FallbackToLogsOnError",
			Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: "SCTP"}},
		}},
	}}
	explicitWant := explicitIn.DeepCopy()
	explicitWant.Spec.DeprecatedServiceAccount = "new"

	podLevelIn := &corev1.Pod{Spec: corev1.PodSpec{
		Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}},
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("500m")}},
		}},
	}}
	podLevelWant := &corev1.Pod{Spec: podSpec(corev1.Container{
		Name: "app", Image: "nginx:1", ImagePullPolicy: "IfNotPresent",
		Resources:              corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("500m")}},
		TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
	})}
	podLevelWant.Spec.Resources = &corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")},
		// cpu from what the containers request, memory from the pod limit.
		Requests: corev1.ResourceList{"cpu": q("500m"), "memory": q("1Gi")},
	}

	hugeIn := &corev1.Pod{Spec: corev1.PodSpec{
		Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1")}},
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"hugepages-2Mi": q("4Mi")}},
		}},
	}}
	hugeWant := &corev1.Pod{Spec: podSpec(corev1.Container{
		Name: "app", Image: "nginx:1", ImagePullPolicy: "IfNotPresent",
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{"hugepages-2Mi": q("4Mi")},
			Requests: corev1.ResourceList{"hugepages-2Mi": q("4Mi")},
		},
		TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
	})}
	hugeWant.Spec.Resources = &corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{"cpu": q("1"), "hugepages-2Mi": q("4Mi")},
		Requests: corev1.ResourceList{"cpu": q("1"), "hugepages-2Mi": q("4Mi")},
	}

	ipsIn := &corev1.Pod{Status: corev1.PodStatus{
		PodIP:   "10.0.0.9",
		PodIPs:  []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}},
		HostIPs: []corev1.HostIP{{IP: "192.168.0.1"}, {IP: "fd00::10"}},
	}}
	ipsWant := &corev1.Pod{Spec: podSpec(), Status: corev1.PodStatus{
		// The singular field wins a disagreement; plural-only input fills
		// the singular field.
		PodIP:   "10.0.0.9",
		PodIPs:  []corev1.PodIP{{IP: "10.0.0.9"}},
		HostIP:  "192.168.0.1",
		HostIPs: []corev1.HostIP{{IP: "192.168.0.1"}, {IP: "fd00::10"}},
	}}

	runCases(t, []defaultCase{
		{"minimal", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Containers: []corev1.Container{container("app", "nginx")}}}, minimalWant},
		{"every nested default", fullIn, fullWant},
		{"explicit values kept", explicitIn, explicitWant},
		{"pod-level requests", podLevelIn, podLevelWant},
		{"pod-level hugepages", hugeIn, hugeWant},
		{"pod and host IPs", ipsIn, ipsWant},
	})
}

func TestPodTemplateDefaults(t *testing.T) {
	// Templates get the PodSpec defaults but none of the Pod-only ones:
	// no enableServiceLinks, no requests from limits, no host ports.
	in := &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "tpl"},
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			HostNetwork: true,
			Containers: []corev1.Container{{
				Name: "app", Image: "nginx:1",
				Ports:     []corev1.ContainerPort{{ContainerPort: 80}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1")}},
			}},
		}},
	}
	wantSpec := templateSpec(corev1.Container{
		Name: "app", Image: "nginx:1", ImagePullPolicy: "IfNotPresent",
		Ports:                  []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
		Resources:              corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("1")}},
		TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: "File",
	})
	wantSpec.HostNetwork = true
	want := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "tpl"}, Template: corev1.PodTemplateSpec{Spec: wantSpec}}
	runCases(t, []defaultCase{{"template", in, want}})
}
