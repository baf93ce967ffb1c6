package announce

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func node(name, ip string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		},
	}
}

func lbService(name string, class *string, local bool, ingress ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class},
	}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	for _, ip := range ingress {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(svc string, ready bool, nodes ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc + "-x", Namespace: "ns",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for i, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.0.%d", i+1)},
			NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	return es
}

// announcers maps each node to what Want gives it.
func announcers(w World, names ...string) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		for _, a := range Want(n, w) {
			out[n] = append(out[n], a.String())
		}
	}
	return out
}

func TestWant(t *testing.T) {
	ab := []*corev1.Node{node("a", "10.0.0.1", true, nil), node("b", "10.0.0.2", true, nil)}
	pool := "192.168.200.10"
	// Who wins pool among a and b, and among b and c, by the hash.
	winAB := winner([]string{"a", "b"}, netip.MustParseAddr(pool))
	loseAB := map[string]string{"a": "b", "b": "a"}[winAB]
	for _, tc := range []struct {
		name string
		w    World
		want map[string][]string
	}{
		{"one winner for a pool address", World{Services: []*corev1.Service{lbService("web", nil, false, pool)}, Nodes: ab},
			map[string][]string{winAB: {pool}}},
		{"our class too", World{Services: []*corev1.Service{lbService("web", ptr.To(lbClass), false, pool)}, Nodes: ab},
			map[string][]string{winAB: {pool}}},
		{"another class: nobody", World{Services: []*corev1.Service{lbService("web", ptr.To("example.com/lb"), false, pool)}, Nodes: ab},
			map[string][]string{}},
		{"node addresses (no pool): nobody", World{Services: []*corev1.Service{lbService("web", nil, false, "10.0.0.1", "10.0.0.2")}, Nodes: ab},
			map[string][]string{}},
		{"IPv6 and garbage ignored", World{Services: []*corev1.Service{lbService("web", nil, false, "fd00::1", "x")}, Nodes: ab},
			map[string][]string{}},
		{"the winner NotReady: the other", World{Services: []*corev1.Service{lbService("web", nil, false, pool)},
			Nodes: []*corev1.Node{node(winAB, "10.0.0.1", false, nil), node(loseAB, "10.0.0.2", true, nil)}},
			map[string][]string{loseAB: {pool}}},
		{"the winner excluded: the other", World{Services: []*corev1.Service{lbService("web", nil, false, pool)},
			Nodes: []*corev1.Node{node(winAB, "10.0.0.1", true, map[string]string{labelExcludeFromLB: ""}), node(loseAB, "10.0.0.2", true, nil)}},
			map[string][]string{loseAB: {pool}}},
		{"no eligible node: nobody", World{Services: []*corev1.Service{lbService("web", nil, false, pool)},
			Nodes: []*corev1.Node{node("a", "10.0.0.1", false, nil)}}, map[string][]string{}},
		{"Local: the node with the ready endpoint", World{Services: []*corev1.Service{lbService("web", nil, true, pool)}, Nodes: ab,
			Slices: []*discoveryv1.EndpointSlice{slice("web", true, loseAB), slice("other", true, winAB)}},
			map[string][]string{loseAB: {pool}}},
		{"Local: unready endpoints do not count", World{Services: []*corev1.Service{lbService("web", nil, true, pool)}, Nodes: ab,
			Slices: []*discoveryv1.EndpointSlice{slice("web", false, loseAB)}},
			map[string][]string{winAB: {pool}}},
		{"Local without endpoints: any node", World{Services: []*corev1.Service{lbService("web", nil, true, pool)}, Nodes: ab},
			map[string][]string{winAB: {pool}}},
		{"Cluster ignores endpoints", World{Services: []*corev1.Service{lbService("web", nil, false, pool)}, Nodes: ab,
			Slices: []*discoveryv1.EndpointSlice{slice("web", true, loseAB)}},
			map[string][]string{winAB: {pool}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := announcers(tc.w, "a", "b")
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWantSpreads checks rendezvous hashing: with many addresses each of
// three nodes announces some, exactly one node announces each, and a node
// leaving moves only its own addresses.
func TestWantSpreads(t *testing.T) {
	nodes := []*corev1.Node{node("a", "10.0.0.1", true, nil), node("b", "10.0.0.2", true, nil), node("c", "10.0.0.3", true, nil)}
	var svcs []*corev1.Service
	for i := range 60 {
		svcs = append(svcs, lbService(fmt.Sprintf("s%d", i), nil, false, fmt.Sprintf("192.168.200.%d", i+1)))
	}
	before := announcers(World{Services: svcs, Nodes: nodes}, "a", "b", "c")
	owner := map[string]string{}
	for n, addrs := range before {
		if len(addrs) < 5 {
			t.Errorf("node %s announces %d of 60 addresses, want a fair share", n, len(addrs))
		}
		for _, a := range addrs {
			if o, dup := owner[a]; dup {
				t.Errorf("%s announced by %s and %s", a, o, n)
			}
			owner[a] = n
		}
	}
	if len(owner) != 60 {
		t.Errorf("got %d addresses announced, want 60", len(owner))
	}
	after := announcers(World{Services: svcs, Nodes: nodes[:2]}, "a", "b")
	for n, addrs := range after {
		for _, a := range addrs {
			if owner[a] != n && owner[a] != "c" {
				t.Errorf("%s moved from %s to %s though %s stayed", a, owner[a], n, owner[a])
			}
		}
	}
}

func TestDiff(t *testing.T) {
	p := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		want, present    []netip.Addr
		wantAdd, wantDel []netip.Addr
	}{
		{"nothing", nil, nil, nil, nil},
		{"add", p("10.0.0.2", "10.0.0.1"), nil, p("10.0.0.1", "10.0.0.2"), nil},
		{"delete", nil, p("10.0.0.1"), nil, p("10.0.0.1")},
		{"both, keep the common", p("10.0.0.1", "10.0.0.3"), p("10.0.0.2", "10.0.0.3"), p("10.0.0.1"), p("10.0.0.2")},
	} {
		add, del := Diff(tc.want, tc.present)
		if !slices.Equal(add, tc.wantAdd) || !slices.Equal(del, tc.wantDel) {
			t.Errorf("%s: got add %v del %v, want add %v del %v", tc.name, add, del, tc.wantAdd, tc.wantDel)
		}
	}
}

func TestGARP(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	got := garp(mac, netip.MustParseAddr("192.168.200.10"))
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, // Ethernet
		0, 1, 0x08, 0, 6, 4, 0, 1, // ARP request
		2, 0, 0, 0, 0, 1, 192, 168, 200, 10, // sender
		0, 0, 0, 0, 0, 0, 192, 168, 200, 10, // target: the same address
	}
	if !slices.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}
