package printers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestIngressRow(t *testing.T) {
	rules := func(hosts ...string) []networkingv1.IngressRule {
		out := make([]networkingv1.IngressRule, len(hosts))
		for i, h := range hosts {
			out[i] = networkingv1.IngressRule{Host: h}
		}
		return out
	}
	tests := []struct {
		name                         string
		spec                         networkingv1.IngressSpec
		status                       networkingv1.IngressStatus
		class, hosts, address, ports string
	}{
		{
			name:  "no rules, no class",
			class: "<none>", hosts: "*", address: "", ports: "80",
		},
		{
			name:  "hosts with TLS and class",
			spec:  networkingv1.IngressSpec{IngressClassName: ptr("nginx"), Rules: rules("a.example.com", "b.example.com"), TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
			class: "nginx", hosts: "a.example.com,b.example.com", address: "", ports: "80, 443",
		},
		{
			name:  "empty hosts skipped",
			spec:  networkingv1.IngressSpec{Rules: rules("", "b.example.com")},
			class: "<none>", hosts: "b.example.com", address: "", ports: "80",
		},
		{
			name:  "more than three hosts",
			spec:  networkingv1.IngressSpec{Rules: rules("a", "", "b", "c", "d")},
			class: "<none>", hosts: "a,b,c + 2 more...", address: "", ports: "80",
		},
		{
			name:  "exactly three hosts",
			spec:  networkingv1.IngressSpec{Rules: rules("a", "b", "c")},
			class: "<none>", hosts: "a,b,c", address: "", ports: "80",
		},
		{
			name: "load balancer addresses",
			status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
				{IP: "192.168.1.10"}, {Hostname: "lb.example.com"}, {IP: "192.168.1.9"},
			}}},
			class: "<none>", hosts: "*", address: "192.168.1.10,192.168.1.9,lb.example.com", ports: "80",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &networkingv1.Ingress{ObjectMeta: objMeta("web", time.Hour), Spec: tt.spec, Status: tt.status}
			checkRow(t, ing, []interface{}{"web", tt.class, tt.hosts, tt.address, tt.ports, "60m"})
		})
	}
}

func TestNetworkingRows(t *testing.T) {
	checkRow(t, &networkingv1.IngressClass{ObjectMeta: objMeta("nginx", time.Hour), Spec: networkingv1.IngressClassSpec{
		Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"},
	}}, []interface{}{"nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "60m"})
	checkRow(t, &networkingv1.IngressClass{ObjectMeta: objMeta("skiff", time.Hour), Spec: networkingv1.IngressClassSpec{
		Controller: "skiff.sh/ingress",
		Parameters: &networkingv1.IngressClassParametersReference{Kind: "ConfigMap", Name: "cfg"},
	}}, []interface{}{"skiff", "skiff.sh/ingress", "ConfigMap/cfg", "60m"})
	checkRow(t, &networkingv1.IngressClass{ObjectMeta: objMeta("plain", time.Hour), Spec: networkingv1.IngressClassSpec{Controller: "c"}},
		[]interface{}{"plain", "c", "<none>", "60m"})

	checkRow(t, &networkingv1.NetworkPolicy{ObjectMeta: objMeta("deny-all", time.Hour)}, []interface{}{"deny-all", "<none>", "60m"})
	checkRow(t, &networkingv1.NetworkPolicy{ObjectMeta: objMeta("db", time.Hour), Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}},
	}}, []interface{}{"db", "role=db", "60m"})
}

func TestEndpointSliceRow(t *testing.T) {
	port := func(p int32) discoveryv1.EndpointPort { return discoveryv1.EndpointPort{Port: &p} }
	tests := []struct {
		name             string
		ports            []discoveryv1.EndpointPort
		endpoints        []discoveryv1.Endpoint
		wantPorts, wantE string
	}{
		{"empty", nil, nil, "<unset>", "<unset>"},
		{"ports by number, name, or any", []discoveryv1.EndpointPort{port(80), {Name: ptr("http")}, {}}, []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}},
			"80,http,*", "10.244.0.5"},
		{"more than three", []discoveryv1.EndpointPort{port(1), port(2), port(3), port(4), port(5)},
			[]discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1", "10.0.0.2"}}, {Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}}},
			"1,2,3 + 2 more...", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &discoveryv1.EndpointSlice{ObjectMeta: objMeta("web-abcde", time.Hour), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: tt.ports, Endpoints: tt.endpoints}
			checkRow(t, s, []interface{}{"web-abcde", "IPv4", tt.wantPorts, tt.wantE, "60m"})
		})
	}
}

func TestRoleBindingRows(t *testing.T) {
	subjects := []rbacv1.Subject{
		{Kind: rbacv1.UserKind, Name: "alice"},
		{Kind: rbacv1.GroupKind, Name: "devs"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: "kube-system", Name: "ci"},
		{Kind: rbacv1.UserKind, Name: "bob"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "app"},
		{Kind: "Robot", Name: "r2"},
	}
	checkRow(t, &rbacv1.RoleBinding{ObjectMeta: objMeta("read", time.Hour), Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}},
		[]interface{}{"read", "ClusterRole/view", "60m", "alice, bob", "devs", "kube-system/ci, default/app"})
	checkRow(t, &rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("admins", time.Hour),
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}},
		[]interface{}{"admins", "ClusterRole/cluster-admin", "60m", "", "", ""})
}

func TestStorageClassRow(t *testing.T) {
	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	def := &storagev1.StorageClass{ObjectMeta: objMeta("local-path", time.Hour), Provisioner: "skiff.sh/local-path",
		ReclaimPolicy: &retain, VolumeBindingMode: &wait, AllowVolumeExpansion: ptr(true)}
	def.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	checkRow(t, def, []interface{}{"local-path (default)", "skiff.sh/local-path", "Retain", "WaitForFirstConsumer", true, "60m"})

	beta := &storagev1.StorageClass{ObjectMeta: objMeta("old", time.Hour), Provisioner: "p"}
	beta.Annotations = map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}
	checkRow(t, beta, []interface{}{"old (default)", "p", "Delete", "Immediate", false, "60m"})

	plain := &storagev1.StorageClass{ObjectMeta: objMeta("fast", time.Hour), Provisioner: "p"}
	plain.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "false"}
	checkRow(t, plain, []interface{}{"fast", "p", "Delete", "Immediate", false, "60m"})
}

func TestPolicySchedulingCoordinationRows(t *testing.T) {
	checkRow(t, &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("web", time.Hour),
		Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromString("50%"))},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
		[]interface{}{"web", "50%", "N/A", int64(1), "60m"})
	checkRow(t, &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("db", time.Hour),
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromInt32(1))}},
		[]interface{}{"db", "N/A", "1", int64(0), "60m"})

	never := corev1.PreemptNever
	checkRow(t, &schedulingv1.PriorityClass{ObjectMeta: objMeta("system-node-critical", time.Hour), Value: 2000001000},
		[]interface{}{"system-node-critical", int64(2000001000), false, "60m", ""})
	checkRow(t, &schedulingv1.PriorityClass{ObjectMeta: objMeta("batch", time.Hour), Value: -5, GlobalDefault: true, PreemptionPolicy: &never},
		[]interface{}{"batch", int64(-5), true, "60m", "Never"})

	checkRow(t, &coordinationv1.Lease{ObjectMeta: objMeta("kube-scheduler", time.Hour),
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1_3f2a")}},
		[]interface{}{"kube-scheduler", "node-1_3f2a", "60m"})
	checkRow(t, &coordinationv1.Lease{ObjectMeta: objMeta("free", time.Hour)}, []interface{}{"free", "", "60m"})
}
