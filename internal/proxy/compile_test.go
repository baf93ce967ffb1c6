package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const testNode = "node-a"

func ptr[T any](v T) *T { return &v }

// service builds a ClusterIP Service "ns/name" at 10.96.0.10 with one TCP
// port 80 -> 8080 unless mutated.
func service(name string, mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: "10.96.0.10",
			Selector:  map[string]string{"app": name},
			Ports:     []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

type ep struct {
	ip                          string
	node                        string
	ready, serving, terminating *bool
}

func readyEP(ip, node string) ep { return ep{ip: ip, node: node} }

func termEP(ip, node string, serving bool) ep {
	return ep{ip: ip, node: node, ready: ptr(false), serving: ptr(serving), terminating: ptr(true)}
}

func notReadyEP(ip, node string) ep {
	return ep{ip: ip, node: node, ready: ptr(false), serving: ptr(false), terminating: ptr(false)}
}

// slice builds an IPv4 EndpointSlice of service svc with one port
// (portName, number, TCP).
func slice(name, svc, portName string, number int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(number), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, e := range eps {
		d := discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
		}
		if e.node != "" {
			d.NodeName = ptr(e.node)
		}
		es.Endpoints = append(es.Endpoints, d)
	}
	return es
}

func eps(local bool, port uint16, ips ...string) []Endpoint {
	var out []Endpoint
	for _, ip := range ips {
		out = append(out, Endpoint{IP: netip.MustParseAddr(ip), Port: port, Local: local})
	}
	return out
}

func addrs(list ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

var vip = netip.MustParseAddr("10.96.0.10")

func name(svc, port string) ServicePortName {
	return ServicePortName{Namespace: "ns", Name: svc, Port: port, Protocol: TCP}
}

func TestCompile(t *testing.T) {
	node := Node{Name: testNode, IPs: addrs("192.168.1.5", "fd00::5", "192.168.1.5")}
	tests := []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		want     []*ServicePort
	}{
		{
			name:     "only ready endpoints",
			services: []*corev1.Service{service("web")},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				readyEP("10.244.0.3", testNode), readyEP("10.244.1.2", "node-b"),
				notReadyEP("10.244.1.9", "node-b"), termEP("10.244.1.7", "node-b", true))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: append(eps(true, 8080, "10.244.0.3"), eps(false, 8080, "10.244.1.2")...),
				HasEndpoints:     true,
			}},
		},
		{
			name:     "unset conditions mean ready",
			services: []*corev1.Service{service("web")},
			slices:   []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, ep{ip: "10.244.1.2"})},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"), HasEndpoints: true,
			}},
		},
		{
			name:     "serving terminating endpoints only when none is ready",
			services: []*corev1.Service{service("web")},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				termEP("10.244.1.7", "node-b", true), termEP("10.244.1.8", "node-b", false), notReadyEP("10.244.1.9", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 8080, "10.244.1.7"), HasEndpoints: true,
			}},
		},
		{
			name:     "no endpoints rejects",
			services: []*corev1.Service{service("web")},
			slices:   []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, notReadyEP("10.244.1.9", "node-b"))},
			want:     []*ServicePort{{Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80}},
		},
		{
			name: "headless and ExternalName get nothing",
			services: []*corev1.Service{
				service("headless", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
				service("ext", func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeExternalName
					s.Spec.ExternalName = "example.com"
					s.Spec.ClusterIP = ""
				}),
			},
			slices: []*discoveryv1.EndpointSlice{slice("headless-1", "headless", "", 8080, readyEP("10.244.1.2", "node-b"))},
			want:   nil,
		},
		{
			name: "named target port resolved per slice, multi-port",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")},
					{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353)},
				}
			})},
			slices: []*discoveryv1.EndpointSlice{
				slice("web-1", "web", "http", 8080, readyEP("10.244.1.2", "node-b")),
				slice("web-2", "web", "http", 9090, readyEP("10.244.1.3", "node-b")),
				func() *discoveryv1.EndpointSlice {
					s := slice("web-3", "web", "dns", 5353, readyEP("10.244.1.2", "node-b"))
					s.Ports[0].Protocol = ptr(corev1.ProtocolUDP)
					return s
				}(),
			},
			want: []*ServicePort{
				{
					Name: ServicePortName{Namespace: "ns", Name: "web", Port: "dns", Protocol: UDP}, Protocol: UDP,
					ClusterIP: vip, Port: 53, ClusterEndpoints: eps(false, 5353, "10.244.1.2"), HasEndpoints: true,
				},
				{
					Name: name("web", "http"), Protocol: TCP, ClusterIP: vip, Port: 80,
					ClusterEndpoints: append(eps(false, 8080, "10.244.1.2"), eps(false, 9090, "10.244.1.3")...),
					HasEndpoints:     true,
				},
			},
		},
		{
			name:     "slice port of another protocol or name does not match",
			services: []*corev1.Service{service("web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("web-1", "web", "other", 8080, readyEP("10.244.1.2", "node-b")),
				func() *discoveryv1.EndpointSlice {
					s := slice("web-2", "web", "", 8080, readyEP("10.244.1.3", "node-b"))
					s.Ports[0].Protocol = ptr(corev1.ProtocolUDP)
					return s
				}(),
			},
			want: []*ServicePort{{Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80}},
		},
		{
			name:     "slices of other services, IPv6 and FQDN slices are ignored",
			services: []*corev1.Service{service("web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("db-1", "db", "", 8080, readyEP("10.244.1.2", "node-b")),
				func() *discoveryv1.EndpointSlice {
					s := slice("web-6", "web", "", 8080, readyEP("fd00::2", "node-b"))
					s.AddressType = discoveryv1.AddressTypeIPv6
					return s
				}(),
				func() *discoveryv1.EndpointSlice {
					s := slice("web-f", "web", "", 8080, readyEP("example.com", "node-b"))
					s.AddressType = discoveryv1.AddressTypeFQDN
					return s
				}(),
			},
			want: []*ServicePort{{Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80}},
		},
		{
			name:     "an endpoint in two slices counts once, ready wins",
			services: []*corev1.Service{service("web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("web-1", "web", "", 8080, notReadyEP("10.244.1.2", "node-b")),
				slice("web-2", "web", "", 8080, readyEP("10.244.1.2", "node-b")),
			},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"), HasEndpoints: true,
			}},
		},
		{
			name: "selector-less service uses the slice the user wrote",
			services: []*corev1.Service{service("manual", func(s *corev1.Service) {
				s.Spec.Selector = nil
			})},
			slices: []*discoveryv1.EndpointSlice{slice("manual-1", "manual", "", 9376, ep{ip: "192.0.2.42"})},
			want: []*ServicePort{{
				Name: name("manual", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 9376, "192.0.2.42"), HasEndpoints: true,
			}},
		},
		{
			name: "NodePort, externalIPs and load balancer IPs; Cluster policy",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalIPs = []string{"203.0.113.7", "2001:db8::7"}
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
					{IP: "198.51.100.1"},
					{IP: "198.51.100.2", IPMode: ptr(corev1.LoadBalancerIPModeProxy)},
					{Hostname: "lb.example.com"},
				}
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30080,
				ExternalIPs: addrs("203.0.113.7"), LoadBalancerIPs: addrs("198.51.100.1"),
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"), HasEndpoints: true,
			}},
		},
		{
			name: "nodePort of a ClusterIP service is not captured",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Ports[0].NodePort = 30080
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"), HasEndpoints: true,
			}},
		},
		{
			name: "externalTrafficPolicy Local: local endpoints for external traffic",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				readyEP("10.244.0.3", testNode), readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30080,
				ClusterEndpoints: append(eps(true, 8080, "10.244.0.3"), eps(false, 8080, "10.244.1.2")...),
				LocalEndpoints:   eps(true, 8080, "10.244.0.3"),
				LocalReady:       true,
				HasEndpoints:     true, ExternalLocal: true,
			}},
		},
		{
			name: "externalTrafficPolicy Local without local endpoints drops external traffic",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				readyEP("10.244.1.2", "node-b"), termEP("10.244.0.3", testNode, false))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30080,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"),
				HasEndpoints:     true, ExternalLocal: true,
			}},
		},
		{
			name: "externalTrafficPolicy Local falls back to local serving terminating endpoints",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				readyEP("10.244.1.2", "node-b"), termEP("10.244.0.3", testNode, true))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30080,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"),
				LocalEndpoints:   eps(true, 8080, "10.244.0.3"),
				HasEndpoints:     true, ExternalLocal: true,
			}},
		},
		{
			name: "externalTrafficPolicy Local on a ClusterIP-only port has no effect",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				ClusterEndpoints: eps(false, 8080, "10.244.1.2"), HasEndpoints: true,
			}},
		},
		{
			name: "internalTrafficPolicy Local",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080,
				readyEP("10.244.0.3", testNode), readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				LocalEndpoints: eps(true, 8080, "10.244.0.3"),
				LocalReady:     true,
				HasEndpoints:   true, InternalLocal: true,
			}},
		},
		{
			name: "internalTrafficPolicy Local without local endpoints",
			services: []*corev1.Service{service("web", func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", "", 8080, readyEP("10.244.1.2", "node-b"))},
			want: []*ServicePort{{
				Name: name("web", ""), Protocol: TCP, ClusterIP: vip, Port: 80,
				HasEndpoints: true, InternalLocal: true,
			}},
		},
		{
			name: "sessionAffinity ClientIP, default and explicit timeout",
			services: []*corev1.Service{
				service("a", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
				service("b", func(s *corev1.Service) {
					s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
					s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
				}),
			},
			want: []*ServicePort{
				{Name: name("a", ""), Protocol: TCP, ClusterIP: vip, Port: 80, Affinity: 3 * time.Hour},
				{Name: name("b", ""), Protocol: TCP, ClusterIP: vip, Port: 80, Affinity: time.Minute},
			},
		},
		{
			name: "scheduler annotation: a known name is kept, an unknown one is not",
			services: []*corev1.Service{
				service("a", func(s *corev1.Service) { s.Annotations = map[string]string{SchedulerAnnotation: "lc"} }),
				service("b", func(s *corev1.Service) { s.Annotations = map[string]string{SchedulerAnnotation: "wrr"} }),
			},
			want: []*ServicePort{
				{Name: name("a", ""), Protocol: TCP, ClusterIP: vip, Port: 80, Scheduler: LeastConnection},
				{Name: name("b", ""), Protocol: TCP, ClusterIP: vip, Port: 80},
			},
		},
		{
			name: "healthCheckNodePort only for a LoadBalancer with externalTrafficPolicy Local",
			services: []*corev1.Service{
				service("a", func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeLoadBalancer
					s.Spec.Ports[0].NodePort = 30001
					s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
					s.Spec.HealthCheckNodePort = 32000
				}),
				service("b", func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeNodePort
					s.Spec.Ports[0].NodePort = 30002
					s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
					s.Spec.HealthCheckNodePort = 32001
				}),
			},
			want: []*ServicePort{
				{Name: name("a", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30001, ExternalLocal: true, HealthCheckNodePort: 32000},
				{Name: name("b", ""), Protocol: TCP, ClusterIP: vip, Port: 80, NodePort: 30002, ExternalLocal: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compile(node, tt.services, tt.slices)
			if diff := cmp.Diff(tt.want, got.Services, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Compile services (-want +got):\n%s", diff)
			}
			if want := addrs("192.168.1.5"); !equalAddrs(got.NodeIPs, want) {
				t.Errorf("NodeIPs: got %v, want %v", got.NodeIPs, want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	local := eps(true, 80, "10.244.0.3")
	remote := eps(false, 80, "10.244.1.2")
	tests := []struct {
		name                       string
		sp                         ServicePort
		wantInternal, wantExternal Filter
	}{
		{"no endpoints anywhere", ServicePort{NodePort: 30000}, FilterReject, FilterReject},
		{"endpoints", ServicePort{NodePort: 30000, ClusterEndpoints: remote, HasEndpoints: true}, FilterNone, FilterNone},
		{"external Local without local", ServicePort{NodePort: 30000, ClusterEndpoints: remote, HasEndpoints: true, ExternalLocal: true}, FilterNone, FilterDrop},
		{"external Local with local", ServicePort{NodePort: 30000, ClusterEndpoints: remote, LocalEndpoints: local, HasEndpoints: true, ExternalLocal: true}, FilterNone, FilterNone},
		{"internal Local without local", ServicePort{HasEndpoints: true, InternalLocal: true}, FilterDrop, FilterDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sp.InternalFilter(); got != tt.wantInternal {
				t.Errorf("InternalFilter: got %v, want %v", got, tt.wantInternal)
			}
			if got := tt.sp.ExternalFilter(); got != tt.wantExternal {
				t.Errorf("ExternalFilter: got %v, want %v", got, tt.wantExternal)
			}
		})
	}
}

func TestServicePortEqual(t *testing.T) {
	a := &ServicePort{Name: name("web", ""), ClusterIP: vip, Port: 80, ClusterEndpoints: eps(false, 80, "10.244.1.2")}
	b := *a
	if !a.Equal(&b) {
		t.Errorf("Equal of a copy: got false, want true")
	}
	b.ClusterEndpoints = eps(false, 80, "10.244.1.3")
	if a.Equal(&b) {
		t.Errorf("Equal with another endpoint: got true, want false")
	}
	c := *a
	c.Affinity = time.Second
	if a.Equal(&c) {
		t.Errorf("Equal with affinity: got true, want false")
	}
	d := *a
	d.Scheduler = SourceHashing
	if a.Equal(&d) {
		t.Errorf("Equal with a scheduler: got true, want false")
	}
	e := *a
	e.HealthCheckNodePort = 32000
	if a.Equal(&e) {
		t.Errorf("Equal with a health check port: got true, want false")
	}
}
