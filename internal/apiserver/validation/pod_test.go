package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodCreate(t *testing.T) {
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	runCreate(t, newPod, []createCase[*corev1.Pod]{
		{name: "valid"},
		{name: "valid with volumes, probes and env", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: emptyDir}}
			c := &p.Spec.Containers[0]
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
			c.Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: quantity("100m"), corev1.ResourceMemory: quantity("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: quantity("500m"), corev1.ResourceMemory: quantity("128Mi")},
			}
			c.ReadinessProbe = &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
				PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
			}
		}},
		{name: "name not a subdomain", mutate: func(p *corev1.Pod) { p.Name = "Web" },
			want: []fe{invalid("metadata.name")}},
		{name: "missing namespace", mutate: func(p *corev1.Pod) { p.Namespace = "" },
			want: []fe{required("metadata.namespace")}},
		{name: "no containers", mutate: func(p *corev1.Pod) { p.Spec.Containers = nil },
			want: []fe{required("spec.containers")}},
		{name: "missing image", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want: []fe{required("spec.containers[0].image")}},
		{name: "image with whitespace", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			want: []fe{invalid("spec.containers[0].image")}},
		{name: "container name not a label", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web_1" },
			want: []fe{invalid("spec.containers[0].name")}},
		{name: "missing container name", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" },
			want: []fe{required("spec.containers[0].name")}},
		{name: "duplicate container names", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, container("web", "busybox"))
		}, want: []fe{duplicate("spec.containers[1].name")}},
		{name: "init container name clashes with container", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{container("web", "busybox")}
		}, want: []fe{duplicate("spec.initContainers[0].name")}},
		{name: "port out of range", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, Protocol: corev1.ProtocolTCP}}
		}, want: []fe{invalid("spec.containers[0].ports[0].containerPort")}},
		{name: "port missing", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Protocol: corev1.ProtocolTCP}}
		}, want: []fe{required("spec.containers[0].ports[0].containerPort")}},
		{name: "bad protocol", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "HTTP"}}
		}, want: []fe{notSupported("spec.containers[0].ports[0].protocol")}},
		{name: "duplicate port names", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{
				{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP},
				{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP},
			}
		}, want: []fe{duplicate("spec.containers[0].ports[1].name")}},
		{name: "host port conflict", mutate: func(p *corev1.Pod) {
			c2 := container("side", "busybox")
			c2.Ports = []corev1.ContainerPort{{ContainerPort: 90, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
			p.Spec.Containers = append(p.Spec.Containers, c2)
		}, want: []fe{duplicate("spec.containers[1].ports[0].hostPort")}},
		{name: "hostNetwork needs hostPort == containerPort", mutate: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
		}, want: []fe{invalid("spec.containers[0].ports[0].hostPort")}},
		{name: "bad restart policy", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			want: []fe{notSupported("spec.restartPolicy")}},
		{name: "missing restart policy", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "" },
			want: []fe{required("spec.restartPolicy")}},
		{name: "bad dns policy", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" },
			want: []fe{notSupported("spec.dnsPolicy")}},
		{name: "dnsPolicy None without dnsConfig", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			want: []fe{required("spec.dnsConfig")}},
		{name: "bad pull policy", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" },
			want: []fe{notSupported("spec.containers[0].imagePullPolicy")}},
		{name: "undefaulted pull policy", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "" },
			want: []fe{required("spec.containers[0].imagePullPolicy")}},
		{name: "requests above limits", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: quantity("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: quantity("128Mi")},
			}
		}, want: []fe{invalid("spec.containers[0].resources.requests")}},
		{name: "negative resource", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: quantity("-1")}}
		}, want: []fe{invalid("spec.containers[0].resources.requests[cpu]")}},
		{name: "unknown resource name", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{"gpu": quantity("1")}}
		}, want: []fe{invalid("spec.containers[0].resources.limits[gpu]"), invalid("spec.containers[0].resources.limits[gpu]")}},
		{name: "extended resource needs equal request and limit", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"example.com/gpu": quantity("1")},
				Limits:   corev1.ResourceList{"example.com/gpu": quantity("2")},
			}
		}, want: []fe{invalid("spec.containers[0].resources.requests")}},
		{name: "duplicate volume names", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: emptyDir}, {Name: "data", VolumeSource: emptyDir}}
		}, want: []fe{duplicate("spec.volumes[1].name")}},
		{name: "volume without type", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
		}, want: []fe{required("spec.volumes[0]")}},
		{name: "volume with two types", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"},
			}}}
		}, want: []fe{forbidden("spec.volumes[0].hostPath")}},
		{name: "mount of unknown volume", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, want: []fe{notFound("spec.containers[0].volumeMounts[0].name")}},
		{name: "mount without path", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: emptyDir}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data"}}
		}, want: []fe{required("spec.containers[0].volumeMounts[0].mountPath")}},
		{name: "configMap volume without name", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}}
		}, want: []fe{required("spec.volumes[0].configMap.name")}},
		{name: "secret volume with bad mode", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr(int32(01000))}}}}
		}, want: []fe{invalid("spec.volumes[0].secret.defaultMode")}},
		{name: "env var name with '='", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B", Value: "x"}}
		}, want: []fe{invalid("spec.containers[0].env[0].name")}},
		{name: "env var without name", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}}
		}, want: []fe{required("spec.containers[0].env[0].name")}},
		{name: "env value and valueFrom", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"},
			}}}
		}, want: []fe{invalid("spec.containers[0].env[0].valueFrom")}},
		{name: "secretKeyRef without key", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}},
			}}}
		}, want: []fe{required("spec.containers[0].env[0].valueFrom.secretKeyRef.key")}},
		{name: "unsupported downward API field", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.containers"},
			}}}
		}, want: []fe{notSupported("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath")}},
		{name: "probe without handler", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 1}
		}, want: []fe{required("spec.containers[0].livenessProbe")}},
		{name: "probe with two handlers", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 1, ProbeHandler: corev1.ProbeHandler{
				Exec:      &corev1.ExecAction{Command: []string{"true"}},
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
			}}
		}, want: []fe{forbidden("spec.containers[0].livenessProbe.tcpSocket")}},
		{name: "liveness successThreshold not 1", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}, want: []fe{invalid("spec.containers[0].livenessProbe.successThreshold")}},
		{name: "probe port out of range", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{SuccessThreshold: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(0)}}}
		}, want: []fe{invalid("spec.containers[0].readinessProbe.tcpSocket.port")}},
		{name: "negative probe period", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: -1, SuccessThreshold: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}, want: []fe{invalid("spec.containers[0].readinessProbe.periodSeconds")}},
		{name: "probe on plain init container", mutate: func(p *corev1.Pod) {
			c := container("init", "busybox")
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			p.Spec.InitContainers = []corev1.Container{c}
		}, want: []fe{forbidden("spec.initContainers[0].readinessProbe")}},
		{name: "restartPolicy on regular container", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		}, want: []fe{forbidden("spec.containers[0].restartPolicy")}},
		{name: "toleration with empty key needs Exists", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "x"}}
		}, want: []fe{invalid("spec.tolerations[0].operator")}},
		{name: "bad node selector label", mutate: func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"disk": "fast ssd"}
		}, want: []fe{invalid("spec.nodeSelector")}},
		{name: "ephemeral containers on create", mutate: func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}}}
		}, want: []fe{forbidden("spec.ephemeralContainers")}},
		{name: "missing terminationGracePeriodSeconds", mutate: func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = nil },
			want: []fe{required("spec.terminationGracePeriodSeconds")}},
		{name: "mirror pod annotation without node", mutate: func(p *corev1.Pod) {
			p.Annotations = map[string]string{"kubernetes.io/config.mirror": "x"}
		}, want: []fe{invalid("metadata.annotations[kubernetes.io/config.mirror]")}},
		{name: "token projection without service account", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3600))}}},
			}}}}
		}, want: []fe{forbidden("spec.volumes[0].projected.sources[0].serviceAccountToken")}},
	})
}

func TestPodCreateMessages(t *testing.T) {
	p := newPod()
	p.Name = "Foo"
	p.Spec.Containers[0].Image = ""
	errs := ValidateCreate(p)
	expectMessage(t, errs, `metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`)
	expectMessage(t, errs, "spec.containers[0].image: Required value")

	p = newPod()
	p.Spec.RestartPolicy = "Sometimes"
	expectMessage(t, ValidateCreate(p), `spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`)

	p = newPod()
	p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: quantity("2")}
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: quantity("1")}
	expectMessage(t, ValidateCreate(p), `spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`)
}

func TestPodUpdate(t *testing.T) {
	stored := func() *corev1.Pod {
		p := newPod()
		p.Spec.NodeName = "node-1"
		p.Spec.ActiveDeadlineSeconds = ptr(int64(600))
		return p
	}
	runUpdate(t, stored, false, []updateCase[*corev1.Pod]{
		{name: "no change"},
		{name: "image change allowed", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }},
		{name: "label change allowed", mutate: func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} }},
		{name: "toleration added", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}},
		{name: "shorter deadline allowed", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(60)) }},
		{name: "longer deadline rejected", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(6000)) },
			want: []fe{invalid("spec.activeDeadlineSeconds")}},
		{name: "port change forbidden", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
		}, want: []fe{forbidden("spec")}},
		{name: "adding a container forbidden", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, container("side", "busybox"))
		}, want: []fe{forbidden("spec.containers")}},
		{name: "image removed", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want: []fe{required("spec.containers[0].image")}},
		{name: "name change", mutate: func(p *corev1.Pod) { p.Name = "other" },
			want: []fe{invalid("metadata.name")}},
		{name: "namespace change", mutate: func(p *corev1.Pod) { p.Namespace = "kube-system" },
			want: []fe{invalid("metadata.namespace")}},
		{name: "uid change", mutate: func(p *corev1.Pod) { p.UID = "other" },
			want: []fe{invalid("metadata.uid")}},
		{name: "creationTimestamp change", mutate: func(p *corev1.Pod) { p.CreationTimestamp = metav1.Unix(100, 0) },
			want: []fe{invalid("metadata.creationTimestamp")}},
		{name: "missing resourceVersion", mutate: func(p *corev1.Pod) { p.ResourceVersion = "" },
			want: []fe{invalid("metadata.resourceVersion")}},
	})

	old := stored()
	p := stored()
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
	errs := ValidateUpdate(p, old)
	const prefix = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), prefix) || !strings.Contains(errs[0].Error(), "ContainerPort") {
		t.Errorf("got %v, want one error starting %q with a diff naming ContainerPort", errs.ToAggregate(), prefix)
	}
}

func TestPodStatusUpdate(t *testing.T) {
	stored := func() *corev1.Pod {
		p := newPod()
		p.Spec.NodeName = "node-1"
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
		return p
	}
	runUpdate(t, stored, true, []updateCase[*corev1.Pod]{
		{name: "no change"},
		{name: "pod IP set", mutate: func(p *corev1.Pod) {
			p.Status.PodIP = "10.244.0.5"
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}}
		}},
		{name: "bad pod IP", mutate: func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0"}} },
			want: []fe{invalid("status.podIPs[0]")}},
		{name: "node name change", mutate: func(p *corev1.Pod) { p.Spec.NodeName = "node-2" },
			want: []fe{forbidden("status.nodeName")}},
		{name: "terminated container restarts under Never", mutate: func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		}, want: []fe{forbidden("status.containerStatuses[0].state")}},
	})
}

func TestBindingCreate(t *testing.T) {
	fresh := func() *corev1.Binding {
		return &corev1.Binding{ObjectMeta: objMeta("web"), Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	}
	runCreate(t, fresh, []createCase[*corev1.Binding]{
		{name: "valid"},
		{name: "no target name", mutate: func(b *corev1.Binding) { b.Target.Name = "" }, want: []fe{required("target.name")}},
		{name: "target not a node", mutate: func(b *corev1.Binding) { b.Target.Kind = "Pod" }, want: []fe{notSupported("target.kind")}},
	})
}

func TestPodTemplateCreate(t *testing.T) {
	fresh := func() *corev1.PodTemplate {
		return &corev1.PodTemplate{ObjectMeta: objMeta("tmpl"), Template: podTemplate(map[string]string{"app": "web"})}
	}
	runCreate(t, fresh, []createCase[*corev1.PodTemplate]{
		{name: "valid"},
		{name: "missing image", mutate: func(p *corev1.PodTemplate) { p.Template.Spec.Containers[0].Image = "" },
			want: []fe{required("template.spec.containers[0].image")}},
		{name: "bad template label", mutate: func(p *corev1.PodTemplate) { p.Template.Labels = map[string]string{"app": "a b"} },
			want: []fe{invalid("template.labels")}},
	})
}
