package validation

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func serviceBackend(name string, port int32) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
}

func newIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: objMeta("web"), Spec: networkingv1.IngressSpec{
		IngressClassName: ptr("skiff"),
		Rules: []networkingv1.IngressRule{{Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: serviceBackend("web", 80)}},
		}}}},
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"web.example.com"}, SecretName: "web-tls"}},
	}}
}

func TestIngress(t *testing.T) {
	path0 := func(i *networkingv1.Ingress) *networkingv1.HTTPIngressPath { return &i.Spec.Rules[0].HTTP.Paths[0] }
	runCreate(t, newIngress, []createCase[*networkingv1.Ingress]{
		{name: "valid"},
		{name: "wildcard host", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.com" }},
		{name: "default backend only", mutate: func(i *networkingv1.Ingress) {
			b := serviceBackend("web", 80)
			i.Spec.Rules, i.Spec.DefaultBackend = nil, &b
		}},
		{name: "neither rules nor default backend", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules = nil },
			want: []fe{invalid("spec")}},
		{name: "missing pathType", mutate: func(i *networkingv1.Ingress) { path0(i).PathType = nil },
			want: []fe{required("spec.rules[0].http.paths[0].pathType")}},
		{name: "unknown pathType", mutate: func(i *networkingv1.Ingress) { path0(i).PathType = ptr(networkingv1.PathType("Regex")) },
			want: []fe{notSupported("spec.rules[0].http.paths[0].pathType")}},
		{name: "relative path", mutate: func(i *networkingv1.Ingress) { path0(i).Path = "api" },
			want: []fe{invalid("spec.rules[0].http.paths[0].path")}},
		{name: "path with //", mutate: func(i *networkingv1.Ingress) { path0(i).Path = "/a//b" },
			want: []fe{invalid("spec.rules[0].http.paths[0].path")}},
		{name: "no paths", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths = nil },
			want: []fe{required("spec.rules[0].http.paths")}},
		{name: "IP host", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" },
			want: []fe{invalid("spec.rules[0].host")}},
		{name: "backend without port", mutate: func(i *networkingv1.Ingress) { path0(i).Backend.Service.Port = networkingv1.ServiceBackendPort{} },
			want: []fe{required("spec.rules[0].http.paths[0].backend")}},
		{name: "backend with name and number", mutate: func(i *networkingv1.Ingress) { path0(i).Backend.Service.Port.Name = "http" },
			want: []fe{invalid("spec.rules[0].http.paths[0].backend")}},
		{name: "backend without service name", mutate: func(i *networkingv1.Ingress) { path0(i).Backend.Service.Name = "" },
			want: []fe{required("spec.rules[0].http.paths[0].backend.service.name")}},
		{name: "backend port out of range", mutate: func(i *networkingv1.Ingress) { path0(i).Backend.Service.Port.Number = 70000 },
			want: []fe{invalid("spec.rules[0].http.paths[0].backend.service.port.number")}},
		{name: "bad TLS host", mutate: func(i *networkingv1.Ingress) { i.Spec.TLS[0].Hosts = []string{"Web.Example.com"} },
			want: []fe{invalid("spec.tls[0].hosts[0]")}},
		{name: "class annotation disagrees", mutate: func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{"kubernetes.io/ingress.class": "nginx"}
		}, want: []fe{invalid("annotations.kubernetes.io/ingress.class")}},
	})
	i := newIngress()
	path0(i).PathType = nil
	expectMessage(t, ValidateCreate(i), "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified")
}

func TestIngressClass(t *testing.T) {
	fresh := func() *networkingv1.IngressClass {
		return &networkingv1.IngressClass{ObjectMeta: clusterMeta("skiff"), Spec: networkingv1.IngressClassSpec{Controller: "skiff.sh/ingress"}}
	}
	runCreate(t, fresh, []createCase[*networkingv1.IngressClass]{
		{name: "valid"},
		{name: "controller without domain", mutate: func(c *networkingv1.IngressClass) { c.Spec.Controller = "ingress" },
			want: []fe{invalid("spec.controller")}},
	})
	runUpdate(t, fresh, false, []updateCase[*networkingv1.IngressClass]{
		{name: "controller immutable", mutate: func(c *networkingv1.IngressClass) { c.Spec.Controller = "example.com/other" },
			want: []fe{invalid("spec.controller")}},
	})
}

func TestNetworkPolicy(t *testing.T) {
	fresh := func() *networkingv1.NetworkPolicy {
		port := intstr.FromInt32(5432)
		return &networkingv1.NetworkPolicy{ObjectMeta: objMeta("db"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		}}
	}
	rule := func(n *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicyIngressRule { return &n.Spec.Ingress[0] }
	runCreate(t, fresh, []createCase[*networkingv1.NetworkPolicy]{
		{name: "valid"},
		{name: "ipBlock peer", mutate: func(n *networkingv1.NetworkPolicy) {
			rule(n).From = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}
		}},
		{name: "empty peer", mutate: func(n *networkingv1.NetworkPolicy) { rule(n).From = []networkingv1.NetworkPolicyPeer{{}} },
			want: []fe{required("spec.ingress[0].from[0]")}},
		{name: "ipBlock with selector", mutate: func(n *networkingv1.NetworkPolicy) {
			rule(n).From[0].IPBlock = &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}
		}, want: []fe{forbidden("spec.ingress[0].from[0]")}},
		{name: "except outside cidr", mutate: func(n *networkingv1.NetworkPolicy) {
			rule(n).From = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"192.168.0.0/24"}}}}
		}, want: []fe{invalid("spec.ingress[0].from[0].ipBlock.except[0]")}},
		{name: "port out of range", mutate: func(n *networkingv1.NetworkPolicy) {
			p := intstr.FromInt32(0)
			rule(n).Ports[0].Port = &p
		}, want: []fe{invalid("spec.ingress[0].ports[0].port")}},
		{name: "endPort below port", mutate: func(n *networkingv1.NetworkPolicy) { rule(n).Ports[0].EndPort = ptr(int32(80)) },
			want: []fe{invalid("spec.ingress[0].ports[0].endPort")}},
		{name: "bad policy type", mutate: func(n *networkingv1.NetworkPolicy) { n.Spec.PolicyTypes = []networkingv1.PolicyType{"Both"} },
			want: []fe{notSupported("spec.policyTypes[0]")}},
	})
}
