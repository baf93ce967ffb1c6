package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: objMeta("web"),
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
			ClusterIP:             "10.96.0.20",
			ClusterIPs:            []string{"10.96.0.20"},
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        ptr(corev1.IPFamilyPolicySingleStack),
			SessionAffinity:       corev1.ServiceAffinityNone,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
		},
	}
}

func TestServiceCreate(t *testing.T) {
	twoPorts := func() []corev1.ServicePort {
		return []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
			{Name: "https", Port: 443, TargetPort: intstr.FromString("https"), Protocol: corev1.ProtocolTCP},
		}
	}
	runCreate(t, newService, []createCase[*corev1.Service]{
		{name: "valid"},
		{name: "valid, clusterIPs not yet synced", mutate: func(s *corev1.Service) { s.Spec.ClusterIPs = nil }},
		{name: "valid two named ports", mutate: func(s *corev1.Service) { s.Spec.Ports = twoPorts() }},
		{name: "valid headless without ports", mutate: func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports = "None", []string{"None"}, nil
		}},
		{name: "valid NodePort", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort = 30080
		}},
		{name: "valid ExternalName", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com.", SessionAffinity: corev1.ServiceAffinityNone}
		}},
		{name: "name must be a DNS-1035 label", mutate: func(s *corev1.Service) { s.Name = "1web" },
			want: []fe{invalid("metadata.name")}},
		{name: "no ports", mutate: func(s *corev1.Service) { s.Spec.Ports = nil },
			want: []fe{required("spec.ports")}},
		{name: "port out of range", mutate: func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 },
			want: []fe{invalid("spec.ports[0].port")}},
		{name: "bad target port", mutate: func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) },
			want: []fe{invalid("spec.ports[0].targetPort")}},
		{name: "bad named target port", mutate: func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("HTTP_PORT") },
			want: []fe{invalid("spec.ports[0].targetPort"), invalid("spec.ports[0].targetPort")}},
		{name: "names required with two ports", mutate: func(s *corev1.Service) {
			s.Spec.Ports = twoPorts()
			s.Spec.Ports[1].Name = ""
		}, want: []fe{required("spec.ports[1].name")}},
		{name: "duplicate port names", mutate: func(s *corev1.Service) {
			s.Spec.Ports = twoPorts()
			s.Spec.Ports[1].Name = "http"
		}, want: []fe{duplicate("spec.ports[1].name")}},
		{name: "duplicate port/protocol", mutate: func(s *corev1.Service) {
			s.Spec.Ports = twoPorts()
			s.Spec.Ports[1].Port = 80
		}, want: []fe{duplicate("spec.ports[1]")}},
		{name: "bad protocol", mutate: func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" },
			want: []fe{notSupported("spec.ports[0].protocol")}},
		{name: "bad type", mutate: func(s *corev1.Service) { s.Spec.Type = "Internal" },
			want: []fe{notSupported("spec.type")}},
		{name: "bad clusterIP", mutate: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0", []string{"10.96.0"} },
			want: []fe{invalid("spec.clusterIPs[0]")}},
		{name: "clusterIP and clusterIPs disagree", mutate: func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.21"} },
			want: []fe{invalid("spec.clusterIPs")}},
		{name: "nodePort on ClusterIP", mutate: func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			want: []fe{forbidden("spec.ports[0].nodePort")}},
		{name: "headless NodePort", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, want: []fe{invalid("spec.clusterIPs[0]")}},
		{name: "ExternalName without name", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, SessionAffinity: corev1.ServiceAffinityNone}
		}, want: []fe{required("spec.externalName")}},
		{name: "ExternalName with clusterIP", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.IPFamilies, s.Spec.IPFamilyPolicy, s.Spec.InternalTrafficPolicy = nil, nil, nil
		}, want: []fe{forbidden("spec.clusterIPs")}},
		{name: "externalTrafficPolicy on ClusterIP", mutate: func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			want: []fe{invalid("spec.externalTrafficPolicy")}},
		{name: "bad session affinity", mutate: func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" },
			want: []fe{notSupported("spec.sessionAffinity")}},
		{name: "bad selector value", mutate: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web server"} },
			want: []fe{invalid("spec.selector")}},
	})
	s := newService()
	s.Spec.Ports = nil
	expectMessage(t, ValidateCreate(s), "spec.ports: Required value")
}

func TestServiceUpdate(t *testing.T) {
	runUpdate(t, newService, false, []updateCase[*corev1.Service]{
		{name: "no change"},
		{name: "selector change", mutate: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web2"} }},
		{name: "clusterIP omitted keeps the allocated one", mutate: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }},
		{name: "clusterIP changed", mutate: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.21", []string{"10.96.0.21"} },
			want: []fe{invalid("spec.clusterIPs[0]")}},
		{name: "to ExternalName drops the IP", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", SessionAffinity: corev1.ServiceAffinityNone}
		}},
	})
	old := newService()
	s := newService()
	s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.21", []string{"10.96.0.21"}
	expectMessage(t, ValidateUpdate(s, old), `spec.clusterIPs[0]: Invalid value: ["10.96.0.21"]: may not change once set`)
}

func TestServiceStatusUpdate(t *testing.T) {
	lb := func() *corev1.Service {
		s := newService()
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
		return s
	}
	runUpdate(t, lb, true, []updateCase[*corev1.Service]{
		{name: "ingress IP", mutate: func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10", IPMode: ptr(corev1.LoadBalancerIPModeVIP)}}
		}},
		{name: "bad ingress IP", mutate: func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "not-an-ip"}}
		}, want: []fe{invalid("status.loadBalancer.ingress[0].ip")}},
	})
}

func TestEndpoints(t *testing.T) {
	fresh := func() *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: objMeta("web"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}},
			Ports:     []corev1.EndpointPort{{Port: 8080, Protocol: corev1.ProtocolTCP}},
		}}}
	}
	runCreate(t, fresh, []createCase[*corev1.Endpoints]{
		{name: "valid"},
		{name: "no addresses", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Addresses = nil }, want: []fe{required("subsets[0]")}},
		{name: "loopback address", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "127.0.0.1" },
			want: []fe{invalid("subsets[0].addresses[0].ip")}},
		{name: "bad port", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Port = 0 }, want: []fe{invalid("subsets[0].ports[0].port")}},
	})
}

func TestEndpointSlice(t *testing.T) {
	fresh := func() *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  objMeta("web-abc"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80)), Protocol: ptr(corev1.ProtocolTCP)}},
		}
	}
	runCreate(t, fresh, []createCase[*discoveryv1.EndpointSlice]{
		{name: "valid"},
		{name: "missing addressType", mutate: func(e *discoveryv1.EndpointSlice) { e.AddressType = "" }, want: []fe{required("addressType")}},
		{name: "unknown addressType", mutate: func(e *discoveryv1.EndpointSlice) { e.AddressType = "IPv5" }, want: []fe{notSupported("addressType")}},
		{name: "IPv6 in IPv4 slice", mutate: func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses = []string{"fd00::1"} },
			want: []fe{invalid("endpoints[0].addresses[0]")}},
		{name: "endpoint without address", mutate: func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses = nil },
			want: []fe{required("endpoints[0].addresses")}},
		{name: "port without protocol", mutate: func(e *discoveryv1.EndpointSlice) { e.Ports[0].Protocol = nil },
			want: []fe{required("ports[0].protocol")}},
	})
	runUpdate(t, fresh, false, []updateCase[*discoveryv1.EndpointSlice]{
		{name: "addressType immutable", mutate: func(e *discoveryv1.EndpointSlice) {
			e.AddressType = discoveryv1.AddressTypeFQDN
			e.Endpoints[0].Addresses = []string{"web.example.com"}
		}, want: []fe{invalid("addressType")}},
	})
}
