package defaults

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestServiceDefaults(t *testing.T) {
	cluster := ptr.To(corev1.ServiceInternalTrafficPolicy("Cluster"))
	runCases(t, []defaultCase{
		{
			"clusterIP",
			&corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80},
				{Name: "dns", Port: 53, Protocol: "UDP", TargetPort: intstr.FromString("dns")},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9100)},
			}}},
			&corev1.Service{Spec: corev1.ServiceSpec{
				Type:                  "ClusterIP",
				SessionAffinity:       "None",
				InternalTrafficPolicy: cluster,
				Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
					{Name: "dns", Port: 53, Protocol: "UDP", TargetPort: intstr.FromString("dns")},
					{Name: "metrics", Port: 9090, Protocol: "TCP", TargetPort: intstr.FromInt32(9100)},
				},
			}},
		},
		{
			"clusterIP with externalIPs is externally accessible",
			&corev1.Service{Spec: corev1.ServiceSpec{ExternalIPs: []string{"1.2.3.4"}}},
			&corev1.Service{Spec: corev1.ServiceSpec{
				Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: cluster,
				ExternalIPs: []string{"1.2.3.4"}, ExternalTrafficPolicy: "Cluster",
			}},
		},
		{
			"nodePort",
			&corev1.Service{Spec: corev1.ServiceSpec{Type: "NodePort", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}},
			&corev1.Service{Spec: corev1.ServiceSpec{
				Type: "NodePort", SessionAffinity: "None", InternalTrafficPolicy: cluster, ExternalTrafficPolicy: "Cluster",
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP", TargetPort: intstr.FromInt32(80)}},
			}},
		},
		{
			"loadBalancer",
			&corev1.Service{
				Spec:   corev1.ServiceSpec{Type: "LoadBalancer", ExternalTrafficPolicy: "Local"},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "5.6.7.8"}, {Hostname: "lb.example"}}}},
			},
			&corev1.Service{
				Spec: corev1.ServiceSpec{
					Type: "LoadBalancer", SessionAffinity: "None", InternalTrafficPolicy: cluster,
					ExternalTrafficPolicy: "Local", AllocateLoadBalancerNodePorts: ptr.To(true),
				},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "5.6.7.8", IPMode: ptr.To(corev1.LoadBalancerIPMode("VIP"))},
					{Hostname: "lb.example"},
				}}},
			},
		},
		{
			"externalName gets no traffic policies",
			&corev1.Service{Spec: corev1.ServiceSpec{Type: "ExternalName", ExternalName: "db.example"}},
			&corev1.Service{Spec: corev1.ServiceSpec{Type: "ExternalName", ExternalName: "db.example", SessionAffinity: "None"}},
		},
		{
			"clientIP affinity gets the 3h timeout",
			&corev1.Service{Spec: corev1.ServiceSpec{SessionAffinity: "ClientIP"}},
			&corev1.Service{Spec: corev1.ServiceSpec{
				Type: "ClusterIP", SessionAffinity: "ClientIP", InternalTrafficPolicy: cluster,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(10800))}},
			}},
		},
		{
			"affinity config dropped without clientIP affinity",
			&corev1.Service{Spec: corev1.ServiceSpec{
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(60))}},
			}},
			&corev1.Service{Spec: corev1.ServiceSpec{Type: "ClusterIP", SessionAffinity: "None", InternalTrafficPolicy: cluster}},
		},
	})
}

func TestCoreObjectDefaults(t *testing.T) {
	filesystem := ptr.To(corev1.PersistentVolumeMode("Filesystem"))
	runCases(t, []defaultCase{
		{
			"endpoints",
			&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}, {Port: 53, Protocol: "UDP"}}}}},
			&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}}}},
		},
		{
			"secret",
			&corev1.Secret{
				Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
				StringData: map[string]string{"user": "admin", "pass": "s3cret"},
			},
			&corev1.Secret{
				Type: "Opaque",
				Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret"), "keep": []byte("k")},
			},
		},
		{
			"secret type kept",
			&corev1.Secret{Type: "kubernetes.io/tls"},
			&corev1.Secret{Type: "kubernetes.io/tls"},
		},
		{
			"configmap",
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{}},
		},
		{
			"namespace",
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "wrong", "x": "y"}}},
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a", "x": "y"}},
				Status:     corev1.NamespaceStatus{Phase: "Active"},
			},
		},
		{
			"namespace without a name yet",
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}, Status: corev1.NamespaceStatus{Phase: "Active"}},
		},
		{
			"node",
			&corev1.Node{
				Spec:   corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
				Status: corev1.NodeStatus{Capacity: corev1.ResourceList{"cpu": q("4"), "memory": q("8Gi"), "pods": q("110")}},
			},
			&corev1.Node{
				Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
				Status: corev1.NodeStatus{
					Capacity:    corev1.ResourceList{"cpu": q("4"), "memory": q("8Gi"), "pods": q("110")},
					Allocatable: corev1.ResourceList{"cpu": q("4"), "memory": q("8Gi"), "pods": q("110")},
				},
			},
		},
		{
			"node podCIDRs fill podCIDR",
			&corev1.Node{Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.2.0/24", "fd00:2::/64"}}},
			&corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.2.0/24", PodCIDRs: []string{"10.244.2.0/24", "fd00:2::/64"}}},
		},
		{
			"persistentvolume",
			&corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{"storage": q("10Gi")},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}},
			}},
			&corev1.PersistentVolume{
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{"storage": q("10Gi")},
					PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data", Type: ptr.To(corev1.HostPathType(""))}},
					PersistentVolumeReclaimPolicy: "Retain",
					VolumeMode:                    filesystem,
				},
				Status: corev1.PersistentVolumeStatus{Phase: "Pending"},
			},
		},
		{
			"persistentvolume in-tree sources",
			&corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
				PersistentVolumeReclaimPolicy: "Delete",
				VolumeMode:                    ptr.To(corev1.PersistentVolumeMode("Block")),
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					RBD:       &corev1.RBDPersistentVolumeSource{CephMonitors: []string{"m"}, RBDImage: "i", RBDPool: "fast"},
					ISCSI:     &corev1.ISCSIPersistentVolumeSource{TargetPortal: "t", IQN: "q"},
					AzureDisk: &corev1.AzureDiskVolumeSource{DiskName: "d", DataDiskURI: "u", FSType: ptr.To("xfs")},
					ScaleIO:   &corev1.ScaleIOPersistentVolumeSource{Gateway: "g", System: "s"},
				},
			}},
			&corev1.PersistentVolume{
				Spec: corev1.PersistentVolumeSpec{
					PersistentVolumeReclaimPolicy: "Delete",
					VolumeMode:                    ptr.To(corev1.PersistentVolumeMode("Block")),
					PersistentVolumeSource: corev1.PersistentVolumeSource{
						RBD:   &corev1.RBDPersistentVolumeSource{CephMonitors: []string{"m"}, RBDImage: "i", RBDPool: "fast", RadosUser: "admin", Keyring: "/etc/ceph/keyring"},
						ISCSI: &corev1.ISCSIPersistentVolumeSource{TargetPortal: "t", IQN: "q", ISCSIInterface: "default"},
						AzureDisk: &corev1.AzureDiskVolumeSource{
							DiskName: "d", DataDiskURI: "u", FSType: ptr.To("xfs"),
							CachingMode: ptr.To(corev1.AzureDataDiskCachingMode("ReadWrite")), ReadOnly: ptr.To(false), Kind: ptr.To(corev1.AzureDataDiskKind("Shared")),
						},
						ScaleIO: &corev1.ScaleIOPersistentVolumeSource{Gateway: "g", System: "s", StorageMode: "ThinProvisioned", FSType: "xfs"},
					},
				},
				Status: corev1.PersistentVolumeStatus{Phase: "Pending"},
			},
		},
		{
			"persistentvolumeclaim",
			&corev1.PersistentVolumeClaim{
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1500000001m")}},
				},
				Status: corev1.PersistentVolumeClaimStatus{Phase: "Bound", Capacity: corev1.ResourceList{"storage": q("2Gi")}},
			},
			&corev1.PersistentVolumeClaim{
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{"storage": q("1500000001m")}},
					VolumeMode:  filesystem,
				},
				Status: corev1.PersistentVolumeClaimStatus{Phase: "Bound", Capacity: corev1.ResourceList{"storage": q("2Gi")}},
			},
		},
		{
			"limitrange",
			&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
				{
					Type:    "Container",
					Max:     corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")},
					Min:     corev1.ResourceList{"cpu": q("100m"), "ephemeral-storage": q("1Mi")},
					Default: corev1.ResourceList{"cpu": q("500m")},
				},
				{Type: "Pod", Max: corev1.ResourceList{"cpu": q("4")}},
			}}},
			&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
				{
					Type: "Container",
					Max:  corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")},
					Min:  corev1.ResourceList{"cpu": q("100m"), "ephemeral-storage": q("1Mi")},
					// Default limit from max where unset.
					Default: corev1.ResourceList{"cpu": q("500m"), "memory": q("1Gi")},
					// Default request from the default limit, then from min.
					DefaultRequest: corev1.ResourceList{"cpu": q("500m"), "memory": q("1Gi"), "ephemeral-storage": q("1Mi")},
				},
				{Type: "Pod", Max: corev1.ResourceList{"cpu": q("4")}},
			}}},
		},
		{
			"resourcequota rounds up to millis",
			&corev1.ResourceQuota{
				Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"requests.cpu": q("0.0001"), "pods": q("10")}},
				Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{"requests.cpu": q("1001u")}},
			},
			&corev1.ResourceQuota{
				Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"requests.cpu": q("1m"), "pods": q("10")}},
				Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{"requests.cpu": q("2m")}},
			},
		},
	})
}

// TestResourceRoundingString checks the rounding as a client sees it, in the
// serialized quantity, not just numerically.
func TestResourceRoundingString(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Image: "x:1",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("100u"), "memory": q("1.5Gi")}},
	}}}}
	Default(pod)
	cases := []struct {
		got  corev1.ResourceList
		name corev1.ResourceName
		want string
	}{
		{pod.Spec.Containers[0].Resources.Limits, "cpu", "1m"},
		{pod.Spec.Containers[0].Resources.Requests, "cpu", "1m"},
		{pod.Spec.Containers[0].Resources.Limits, "memory", "1536Mi"},
	}
	for _, tc := range cases {
		v := tc.got[tc.name]
		if got := v.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
