package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceRow(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	tests := []struct {
		name                                        string
		spec                                        corev1.ServiceSpec
		status                                      corev1.ServiceStatus
		typ, clusterIP, externalIP, ports, selector string
	}{
		{
			name: "cluster IP",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
				Ports: []corev1.ServicePort{{Port: 443, Protocol: tcp}}},
			typ: "ClusterIP", clusterIP: "10.96.0.1", externalIP: "<none>", ports: "443/TCP", selector: "<none>",
		},
		{
			name: "cluster IP with external IPs and several ports",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.10", "fd00::10"},
				ExternalIPs: []string{"192.0.2.1", "192.0.2.2"},
				Ports:       []corev1.ServicePort{{Port: 53, Protocol: udp}, {Port: 53, Protocol: tcp}, {Port: 9153, Protocol: tcp}},
				Selector:    map[string]string{"k8s-app": "kube-dns"}},
			typ: "ClusterIP", clusterIP: "10.96.0.10", externalIP: "192.0.2.1,192.0.2.2", ports: "53/UDP,53/TCP,9153/TCP", selector: "k8s-app=kube-dns",
		},
		{
			name: "headless",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"},
				Ports: []corev1.ServicePort{{Port: 80, Protocol: tcp}}, Selector: map[string]string{"app": "web", "tier": "fe"}},
			typ: "ClusterIP", clusterIP: "None", externalIP: "<none>", ports: "80/TCP", selector: "app=web,tier=fe",
		},
		{
			name: "node port",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.97.97.97",
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: tcp}, {Port: 443, NodePort: 30443, Protocol: tcp}}},
			typ: "NodePort", clusterIP: "10.97.97.97", externalIP: "<none>", ports: "80:30080/TCP,443:30443/TCP", selector: "<none>",
		},
		{
			name: "load balancer pending",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.5.5",
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000, Protocol: tcp}}},
			typ: "LoadBalancer", clusterIP: "10.96.5.5", externalIP: "<pending>", ports: "80:31000/TCP", selector: "<none>",
		},
		{
			name: "load balancer with ingress points, sorted and unclipped",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.5.5",
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000, Protocol: tcp}}},
			status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "203.0.113.9"}, {Hostname: "a-very-long-load-balancer.example.com"}, {IP: "203.0.113.9"}, {IP: "198.51.100.1", Hostname: "ignored"},
			}}},
			typ: "LoadBalancer", clusterIP: "10.96.5.5", externalIP: "198.51.100.1,203.0.113.9,a-very-long-load-balancer.example.com",
			ports: "80:31000/TCP", selector: "<none>",
		},
		{
			name: "load balancer ingress then external IPs",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.5.5", ExternalIPs: []string{"192.0.2.7"}},
			status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "203.0.113.9"},
			}}},
			typ: "LoadBalancer", clusterIP: "10.96.5.5", externalIP: "203.0.113.9,192.0.2.7", ports: "<none>", selector: "<none>",
		},
		{
			name: "load balancer with only external IPs",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.5.5", ExternalIPs: []string{"192.0.2.7"}},
			typ:  "LoadBalancer", clusterIP: "10.96.5.5", externalIP: "192.0.2.7", ports: "<none>", selector: "<none>",
		},
		{
			name: "external name",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
			typ:  "ExternalName", clusterIP: "<none>", externalIP: "db.example.com", ports: "<none>", selector: "<none>",
		},
		{
			name: "type not set",
			spec: corev1.ServiceSpec{ClusterIP: "10.96.1.1"},
			typ:  "", clusterIP: "10.96.1.1", externalIP: "<unknown>", ports: "<none>", selector: "<none>",
		},
		{
			name: "clusterIP wins over a differing clusterIPs",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.2", ClusterIPs: []string{"10.96.0.3"}},
			typ:  "ClusterIP", clusterIP: "10.96.0.2", externalIP: "<none>", ports: "<none>", selector: "<none>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: objMeta("svc", 10*24*time.Hour), Spec: tt.spec, Status: tt.status}
			checkRow(t, svc, []interface{}{"svc", tt.typ, tt.clusterIP, tt.externalIP, tt.ports, "10d", tt.selector})
		})
	}
}

func TestNodeRow(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: s},
		}
	}
	info := corev1.NodeSystemInfo{
		KubeletVersion: "v1.31.0", OSImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0-18-amd64",
		ContainerRuntimeVersion: "runc://1.1.12",
	}
	addrs := []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "node-1"},
		{Type: corev1.NodeInternalIP, Address: "192.168.1.10"},
		{Type: corev1.NodeInternalIP, Address: "fd00::10"},
		{Type: corev1.NodeExternalIP, Address: "203.0.113.10"},
	}
	tests := []struct {
		name   string
		labels map[string]string
		spec   corev1.NodeSpec
		status corev1.NodeStatus
		want   []interface{}
	}{
		{
			name:   "ready control plane",
			labels: map[string]string{"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "node-1"},
			status: corev1.NodeStatus{Conditions: ready(corev1.ConditionTrue), NodeInfo: info, Addresses: addrs},
			want: []interface{}{"node-1", "Ready", "control-plane,master", "3h", "v1.31.0",
				"192.168.1.10", "203.0.113.10", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "runc://1.1.12"},
		},
		{
			name:   "cordoned and not ready, role from kubernetes.io/role",
			labels: map[string]string{"kubernetes.io/role": "worker", "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/": ""},
			spec:   corev1.NodeSpec{Unschedulable: true},
			status: corev1.NodeStatus{Conditions: ready(corev1.ConditionFalse), NodeInfo: info},
			want: []interface{}{"node-1", "NotReady,SchedulingDisabled", "worker", "3h", "v1.31.0",
				"<none>", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "runc://1.1.12"},
		},
		{
			name:   "unknown readiness",
			status: corev1.NodeStatus{Conditions: ready(corev1.ConditionUnknown)},
			want:   []interface{}{"node-1", "NotReady", "<none>", "3h", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "no conditions yet",
			spec: corev1.NodeSpec{Unschedulable: true},
			want: []interface{}{"node-1", "Unknown,SchedulingDisabled", "<none>", "3h", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := objMeta("node-1", 3*time.Hour)
			m.Namespace = ""
			m.Labels = tt.labels
			checkRow(t, &corev1.Node{ObjectMeta: m, Spec: tt.spec, Status: tt.status}, tt.want)
		})
	}
}

func TestSecretRow(t *testing.T) {
	tests := []struct {
		name   string
		secret corev1.Secret
		want   []interface{}
	}{
		{
			name:   "opaque",
			secret: corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"user": []byte("a"), "pass": []byte("b")}},
			want:   []interface{}{"creds", "Opaque", int64(2), "5m"},
		},
		{
			name: "tls with stringData merged",
			secret: corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil},
				StringData: map[string]string{"tls.crt": "x", "tls.key": "y"}},
			want: []interface{}{"creds", "kubernetes.io/tls", int64(2), "5m"},
		},
		{
			name:   "empty",
			secret: corev1.Secret{Type: corev1.SecretTypeServiceAccountToken},
			want:   []interface{}{"creds", "kubernetes.io/service-account-token", int64(0), "5m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.secret
			s.ObjectMeta = objMeta("creds", 5*time.Minute)
			checkRow(t, &s, tt.want)
		})
	}
}

func TestSimpleCoreRows(t *testing.T) {
	one := int32(1)
	checkRow(t, &corev1.Namespace{ObjectMeta: objMeta("kube-system", 50*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		[]interface{}{"kube-system", "Active", "2d2h"})
	checkRow(t, &corev1.ServiceAccount{ObjectMeta: objMeta("default", time.Minute)}, []interface{}{"default", "60s"})
	checkRow(t, &corev1.ConfigMap{ObjectMeta: objMeta("cfg", time.Minute),
		Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}},
		[]interface{}{"cfg", int64(3), "60s"})
	checkRow(t, &corev1.PodTemplate{ObjectMeta: objMeta("tmpl", time.Minute), Template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: containers("web", "log")},
	}}, []interface{}{"tmpl", "web,log", "web:1,log:1", "app=web"})
	checkRow(t, &corev1.ReplicationController{ObjectMeta: objMeta("rc", time.Minute),
		Spec: corev1.ReplicationControllerSpec{Replicas: &one, Selector: map[string]string{"app": "web"},
			Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("web")}}},
		Status: corev1.ReplicationControllerStatus{Replicas: 1, ReadyReplicas: 1}},
		[]interface{}{"rc", int64(1), int64(1), int64(1), "60s", "web", "web:1", "app=web"})
	checkRow(t, &corev1.ReplicationController{ObjectMeta: objMeta("rc", time.Minute)},
		[]interface{}{"rc", int64(0), int64(0), int64(0), "60s", "", "", "<none>"})
}

func TestEndpointsRow(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		out := make([]corev1.EndpointAddress, len(ips))
		for i, ip := range ips {
			out[i] = corev1.EndpointAddress{IP: ip}
		}
		return out
	}
	tests := []struct {
		name    string
		subsets []corev1.EndpointSubset
		want    string
	}{
		{"no subsets", nil, "<none>"},
		{"subset without addresses", []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}, ""},
		{"one port", []corev1.EndpointSubset{{Addresses: addrs("10.244.0.5", "10.244.1.6"), Ports: []corev1.EndpointPort{{Port: 8080}}}},
			"10.244.0.5:8080,10.244.1.6:8080"},
		{"headless without ports", []corev1.EndpointSubset{{Addresses: addrs("10.244.0.5")}}, "10.244.0.5"},
		{"IPv6", []corev1.EndpointSubset{{Addresses: addrs("fd00::5"), Ports: []corev1.EndpointPort{{Port: 80}}}}, "[fd00::5]:80"},
		{"more than three", []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}},
			"10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRow(t, &corev1.Endpoints{ObjectMeta: objMeta("svc", time.Hour), Subsets: tt.subsets},
				[]interface{}{"svc", tt.want, "60m"})
		})
	}
}

func TestPersistentVolumeRows(t *testing.T) {
	fs := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: objMeta("pv-1", time.Hour),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
			StorageClassName:              "standard",
			VolumeMode:                    &fs,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	checkRow(t, pv, []interface{}{"pv-1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "standard", "<unset>", "", "60m", "Filesystem"})

	released := &corev1.PersistentVolume{
		ObjectMeta: objMeta("pv-2", time.Hour),
		Status:     corev1.PersistentVolumeStatus{Phase: corev1.VolumeFailed, Reason: "Recycle failed"},
	}
	released.DeletionTimestamp = agoPtr(time.Second)
	released.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "legacy"}
	released.Spec.VolumeAttributesClassName = ptr("gold")
	checkRow(t, released, []interface{}{"pv-2", "0", "", "", "Terminating", "", "legacy", "gold", "Recycle failed", "60m", "<unset>"})

	class := "fast"
	bound := &corev1.PersistentVolumeClaim{
		ObjectMeta: objMeta("data", time.Hour),
		Spec: corev1.PersistentVolumeClaimSpec{
			VolumeName: "pv-1", StorageClassName: &class, VolumeMode: &fs,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
		},
		Status: corev1.PersistentVolumeClaimStatus{
			Phase:       corev1.ClaimBound,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		},
	}
	checkRow(t, bound, []interface{}{"data", "Bound", "pv-1", "10Gi", "RWOP", "fast", "<unset>", "60m", "Filesystem"})

	pending := &corev1.PersistentVolumeClaim{
		ObjectMeta: objMeta("data", time.Hour),
		Spec: corev1.PersistentVolumeClaimSpec{
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	checkRow(t, pending, []interface{}{"data", "Pending", "", "", "", "", "<unset>", "60m", "<unset>"})
}

func TestResourceQuotaRow(t *testing.T) {
	q := &corev1.ResourceQuota{
		ObjectMeta: objMeta("compute", time.Hour),
		Status: corev1.ResourceQuotaStatus{
			Hard: corev1.ResourceList{
				"requests.cpu": resource.MustParse("4"), "requests.memory": resource.MustParse("4Gi"),
				"limits.cpu": resource.MustParse("8"), "limits.memory": resource.MustParse("8Gi"), "pods": resource.MustParse("10"),
			},
			Used: corev1.ResourceList{
				"requests.cpu": resource.MustParse("500m"), "limits.cpu": resource.MustParse("1"), "pods": resource.MustParse("3"),
			},
		},
	}
	checkRow(t, q, []interface{}{"compute",
		"pods: 3/10, requests.cpu: 500m/4, requests.memory: 0/4Gi",
		"limits.cpu: 1/8, limits.memory: 0/8Gi", "60m"})
	checkRow(t, &corev1.ResourceQuota{ObjectMeta: objMeta("empty", time.Hour)}, []interface{}{"empty", "", "", "60m"})
}
