package netpol

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name, node, ip string, lbls map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func policy(ns string, sel map[string]string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	spec.PodSelector = metav1.LabelSelector{MatchLabels: sel}
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: spec}
}

func tcp(port int) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(int32(port))
	return networkingv1.NetworkPolicyPort{Port: &p}
}

func named(name string, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &p, Protocol: &proto}
}

func sel(l map[string]string) *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: l} }

// describe renders a direction compactly: "deny" for no allows, else
// "proto:lo-hi<-peers" joined by "; ".
func describe(d *Direction) string {
	if d == nil {
		return "open"
	}
	if len(d.Allows) == 0 {
		return "deny"
	}
	var parts []string
	for _, a := range d.Allows {
		peers := "any"
		if !a.AnyPeer {
			var ps []string
			for _, r := range a.Peers {
				ps = append(ps, r.String())
			}
			peers = strings.Join(ps, ",")
		}
		ports := "all"
		if a.Proto != 0 {
			ports = fmt.Sprintf("%d", a.Proto)
			if a.PortLo != 0 {
				ports += fmt.Sprintf(":%d-%d", a.PortLo, a.PortHi)
			}
		}
		parts = append(parts, ports+"<-"+peers)
	}
	return strings.Join(parts, "; ")
}

func TestCompile(t *testing.T) {
	web := map[string]string{"app": "web"}
	db := map[string]string{"app": "db"}
	pods := []*corev1.Pod{
		pod("a", "web", "n1", "10.0.1.2", web, corev1.ContainerPort{Name: "http", ContainerPort: 8080}, corev1.ContainerPort{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}),
		pod("a", "db", "n1", "10.0.1.3", db, corev1.ContainerPort{Name: "http", ContainerPort: 9090}),
		pod("a", "remote", "n2", "10.0.2.2", web, corev1.ContainerPort{Name: "http", ContainerPort: 7070}),
		pod("b", "client", "n2", "10.0.2.3", web),
		pod("c", "other", "n2", "10.0.2.4", db),
	}
	done := pod("a", "done", "n2", "10.0.2.9", web)
	done.Status.Phase = corev1.PodSucceeded
	hostNet := pod("a", "host", "n2", "192.168.0.2", web)
	hostNet.Spec.HostNetwork = true
	pods = append(pods, done, hostNet)
	nss := []*corev1.Namespace{namespace("a", map[string]string{"team": "a"}), namespace("b", map[string]string{"team": "b"}), namespace("c", nil)}
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	endPort := int32(8090)
	tests := []struct {
		name            string
		policies        []*networkingv1.NetworkPolicy
		pod             string // a local pod of n1
		ingress, egress string
	}{
		{name: "no policy: open", pod: "web", ingress: "open", egress: "open"},
		{name: "policy of another namespace does not apply", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("b", nil, networkingv1.NetworkPolicySpec{})}, ingress: "open", egress: "open"},
		{name: "empty podSelector, no rules: deny all ingress; egress defaults open", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{})}, ingress: "deny", egress: "open"},
		{name: "podSelector not matching leaves the pod open", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", db, networkingv1.NetworkPolicySpec{})}, ingress: "open", egress: "open"},
		{name: "policyTypes Egress only, no rules: deny all egress", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{PolicyTypes: egress})}, ingress: "open", egress: "deny"},
		{name: "egress rules without policyTypes isolate both", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(53)}}}})},
			ingress:  "deny", egress: "6:53-53<-any"},
		{name: "allow all ingress: one empty rule", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})}, ingress: "all<-any", egress: "open"},
		{name: "podSelector peer: same namespace only, terminated and hostNetwork pods excluded", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", web, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel(web)}}}}})},
			ingress:  "all<-10.0.1.2,10.0.2.2", egress: "open"},
		{name: "namespaceSelector peer: every pod of matching namespaces", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(map[string]string{"team": "b"})}}}}})},
			ingress:  "all<-10.0.2.3", egress: "open"},
		{name: "empty namespaceSelector: all namespaces", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(nil), PodSelector: sel(db)}}}}})},
			ingress:  "all<-10.0.1.3,10.0.2.4", egress: "open"},
		{name: "namespaceSelector and podSelector in one peer: both must match", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(map[string]string{"team": "a"}), PodSelector: sel(db)}}}}})},
			ingress:  "all<-10.0.1.3", egress: "open"},
		{name: "namespaceSelector and podSelector as two peers: either", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(map[string]string{"team": "b"})}, {PodSelector: sel(db)}}}}})},
			ingress:  "all<-10.0.1.3,10.0.2.3", egress: "open"},
		{name: "ipBlock with except", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "172.16.0.0/16", Except: []string{"172.16.1.0/24", "172.16.255.0/24"}}}}}}})},
			ingress:  "all<-172.16.0.0-172.16.0.255,172.16.2.0-172.16.254.255", egress: "open"},
		{name: "ports: one port, a range with endPort, UDP all ports", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
				tcp(80), {Port: func() *intstr.IntOrString { p := intstr.FromInt32(8080); return &p }(), EndPort: &endPort},
				{Protocol: func() *corev1.Protocol { p := corev1.ProtocolUDP; return &p }()},
			}}}})},
			ingress: "6:80-80<-any; 6:8080-8090<-any; 17<-any", egress: "open"},
		{name: "ingress named port: the destination (local) pod's number and protocol", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{named("http", corev1.ProtocolTCP), named("dns", corev1.ProtocolUDP), named("dns", corev1.ProtocolTCP)}}}})},
			ingress:  "6:8080-8080<-any; 17:53-53<-any", egress: "open"},
		{name: "egress named port: each peer pod's own number", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{PolicyTypes: egress, Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{named("http", corev1.ProtocolTCP)}, To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel(nil)}}}}})},
			ingress:  "open", egress: "6:7070-7070<-10.0.2.2; 6:8080-8080<-10.0.1.2; 6:9090-9090<-10.0.1.3"},
		{name: "policies are additive and merged by port", pod: "db",
			policies: []*networkingv1.NetworkPolicy{
				policy("a", db, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel(web)}}, Ports: []networkingv1.NetworkPolicyPort{tcp(5432)}}}}),
				policy("a", nil, networkingv1.NetworkPolicySpec{PolicyTypes: both, Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.2.4/32"}}}, Ports: []networkingv1.NetworkPolicyPort{tcp(5432)}}}}),
			},
			ingress: "6:5432-5432<-10.0.1.2,10.0.2.2,10.0.2.4", egress: "deny"},
		{name: "a peer selecting nothing allows nothing", pod: "web",
			policies: []*networkingv1.NetworkPolicy{policy("a", nil, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel(map[string]string{"app": "none"})}}}}})},
			ingress:  "deny", egress: "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Compile("n1", pods, nss, tt.policies)
			var got *PodRules
			for i := range rs.Pods {
				if rs.Pods[i].Name == tt.pod {
					got = &rs.Pods[i]
				}
				if rs.Pods[i].Namespace != "a" || (rs.Pods[i].Name != "web" && rs.Pods[i].Name != "db") {
					t.Errorf("pod %s/%s is not on n1 but has rules", rs.Pods[i].Namespace, rs.Pods[i].Name)
				}
			}
			in, out := "open", "open"
			if got != nil {
				in, out = describe(got.Ingress), describe(got.Egress)
			}
			if in != tt.ingress {
				t.Errorf("ingress: got %q, want %q", in, tt.ingress)
			}
			if out != tt.egress {
				t.Errorf("egress: got %q, want %q", out, tt.egress)
			}
		})
	}
}

func TestPolicyTypes(t *testing.T) {
	tests := []struct {
		spec            networkingv1.NetworkPolicySpec
		wantIn, wantOut bool
	}{
		{networkingv1.NetworkPolicySpec{}, true, false},
		{networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, true, true},
		{networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}, false, true},
		{networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, true, false},
	}
	for i, tt := range tests {
		in, out := PolicyTypes(&networkingv1.NetworkPolicy{Spec: tt.spec})
		if in != tt.wantIn || out != tt.wantOut {
			t.Errorf("%d: got ingress=%v egress=%v, want %v %v", i, in, out, tt.wantIn, tt.wantOut)
		}
	}
}

func TestSubtract(t *testing.T) {
	r := func(p string) Range { x, _ := prefixRange(netip.MustParsePrefix(p)); return x }
	tests := []struct {
		rs, minus []Range
		want      string
	}{
		{[]Range{r("0.0.0.0/0")}, []Range{r("10.0.0.0/8")}, "0.0.0.0-9.255.255.255 11.0.0.0-255.255.255.255"},
		{[]Range{r("10.0.0.0/24")}, []Range{r("10.0.0.0/8")}, ""},
		{[]Range{r("10.0.0.0/30")}, []Range{r("10.0.0.3/32"), r("10.0.0.0/32")}, "10.0.0.1-10.0.0.2"},
		{[]Range{r("10.0.0.0/31"), r("10.0.0.2/31")}, nil, "10.0.0.0-10.0.0.3"},
	}
	for i, tt := range tests {
		var got []string
		for _, x := range subtract(tt.rs, tt.minus) {
			got = append(got, x.String())
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%d: got %q, want %q", i, g, tt.want)
		}
	}
}
