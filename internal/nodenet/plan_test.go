package nodenet

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type nodeOpt func(*corev1.Node)

func node(name, cidr, ip string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func notReady(n *corev1.Node) {
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
}

func vtep(mac string) nodeOpt {
	return func(n *corev1.Node) {
		n.Annotations = map[string]string{AnnotationBackendType: "vxlan", AnnotationBackendData: fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac)}
	}
}

func TestParseBackend(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Backend
		wantErr bool
	}{
		{"", HostGW, false}, {"host-gw", HostGW, false}, {"vxlan", VXLAN, false}, {"none", None, false},
		{"wireguard-native", "", true}, {"VXLAN", "", true},
	} {
		got, err := ParseBackend(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPeers(t *testing.T) {
	nodes := []*corev1.Node{
		node("self", "10.244.0.0/24", "10.0.0.1", vtep("aa:aa:aa:aa:aa:01")),
		node("c", "10.244.2.0/24", "10.0.0.3", vtep("AA:AA:AA:AA:AA:03")),
		node("b", "10.244.1.0/24", "10.0.0.2", vtep("aa:aa:aa:aa:aa:02")),
		node("nocidr", "", "10.0.0.4"),
		node("noip", "10.244.4.0/24", ""),
		node("down", "10.244.5.0/24", "10.0.0.6", notReady),
		node("v6", "fd00::/64", "fd00::1"),
		node("novtep", "10.244.7.0/24", "10.0.0.8"),
		node("badvtep", "10.244.8.0/24", "10.0.0.9", vtep("zz")),
	}
	b := Peer{Name: "b", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), IP: netip.MustParseAddr("10.0.0.2")}
	c := Peer{Name: "c", PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), IP: netip.MustParseAddr("10.0.0.3")}
	novtep := Peer{Name: "novtep", PodCIDR: netip.MustParsePrefix("10.244.7.0/24"), IP: netip.MustParseAddr("10.0.0.8")}
	badvtep := Peer{Name: "badvtep", PodCIDR: netip.MustParsePrefix("10.244.8.0/24"), IP: netip.MustParseAddr("10.0.0.9")}
	down := Peer{Name: "down", PodCIDR: netip.MustParsePrefix("10.244.5.0/24"), IP: netip.MustParseAddr("10.0.0.6")}

	got, skipped := Peers("self", nodes, HostGW)
	// A node that is not Ready keeps its route: its pods still run.
	if want := []Peer{b, badvtep, c, down, novtep}; !reflect.DeepEqual(got, want) {
		t.Errorf("host-gw peers:\n got %+v\nwant %+v", got, want)
	}
	wantSkipped := map[string]string{"nocidr": "no IPv4 podCIDR", "noip": "no IPv4 InternalIP", "v6": "no IPv4 podCIDR"}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("host-gw skipped: got %v, want %v", skipped, wantSkipped)
	}

	b.VtepMAC, c.VtepMAC = "aa:aa:aa:aa:aa:02", "aa:aa:aa:aa:aa:03"
	got, skipped = Peers("self", nodes, VXLAN)
	if want := []Peer{b, c}; !reflect.DeepEqual(got, want) {
		t.Errorf("vxlan peers:\n got %+v\nwant %+v", got, want)
	}
	for _, name := range []string{"novtep", "badvtep"} {
		if skipped[name] == "" {
			t.Errorf("vxlan: node %s not skipped, want skipped (skipped: %v)", name, skipped)
		}
	}
}

func TestDesired(t *testing.T) {
	peers := []Peer{
		{Name: "b", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), IP: netip.MustParseAddr("10.0.0.2"), VtepMAC: "aa:aa:aa:aa:aa:02"},
		{Name: "far", PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), IP: netip.MustParseAddr("192.168.9.9"), VtepMAC: "aa:aa:aa:aa:aa:03"},
	}
	local := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.244.0.0/24")}

	got, unreachable := Desired(HostGW, peers, local, 0)
	want := State{Routes: []Route{{Dst: netip.MustParsePrefix("10.244.1.0/24"), Gw: netip.MustParseAddr("10.0.0.2")}}}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(unreachable, []string{"far"}) {
		t.Errorf("host-gw: got %+v, unreachable %v; want %+v, unreachable [far]", got, unreachable, want)
	}

	got, unreachable = Desired(VXLAN, peers, local, 7)
	want = State{
		Routes: []Route{
			{Dst: netip.MustParsePrefix("10.244.1.0/24"), Gw: netip.MustParseAddr("10.244.1.0"), LinkIndex: 7, Onlink: true},
			{Dst: netip.MustParsePrefix("10.244.2.0/24"), Gw: netip.MustParseAddr("10.244.2.0"), LinkIndex: 7, Onlink: true},
		},
		Neighs: []Neigh{{IP: netip.MustParseAddr("10.244.1.0"), MAC: "aa:aa:aa:aa:aa:02"}, {IP: netip.MustParseAddr("10.244.2.0"), MAC: "aa:aa:aa:aa:aa:03"}},
		FDB:    []FDB{{MAC: "aa:aa:aa:aa:aa:02", Dst: netip.MustParseAddr("10.0.0.2")}, {MAC: "aa:aa:aa:aa:aa:03", Dst: netip.MustParseAddr("192.168.9.9")}},
	}
	if !reflect.DeepEqual(got, want) || len(unreachable) != 0 {
		t.Errorf("vxlan:\n got %+v, unreachable %v\nwant %+v", got, unreachable, want)
	}

	if got, _ := Desired(None, peers, local, 0); !got.Empty() {
		t.Errorf("none: got %+v, want nothing", got)
	}
}

func TestDiff(t *testing.T) {
	r := func(dst, gw string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Gw: netip.MustParseAddr(gw)}
	}
	fdb := func(mac, dst string) FDB { return FDB{MAC: mac, Dst: netip.MustParseAddr(dst)} }
	for _, tc := range []struct {
		name             string
		desired, current State
		wantAdd, wantDel State
	}{
		{name: "nothing"},
		{name: "in sync",
			desired: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}},
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}}},
		{name: "new node",
			desired: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2"), r("10.244.2.0/24", "10.0.0.3")}},
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}},
			wantAdd: State{Routes: []Route{r("10.244.2.0/24", "10.0.0.3")}}},
		{name: "node gone",
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}, FDB: []FDB{fdb("aa:aa:aa:aa:aa:02", "10.0.0.2")}},
			wantDel: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}, FDB: []FDB{fdb("aa:aa:aa:aa:aa:02", "10.0.0.2")}}},
		{name: "node IP changed: replaced, not deleted",
			desired: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.9")}, FDB: []FDB{fdb("aa:aa:aa:aa:aa:02", "10.0.0.9")}},
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}, FDB: []FDB{fdb("aa:aa:aa:aa:aa:02", "10.0.0.2")}},
			wantAdd: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.9")}, FDB: []FDB{fdb("aa:aa:aa:aa:aa:02", "10.0.0.9")}}},
		{name: "podCIDR changed",
			desired: State{Routes: []Route{r("10.244.5.0/24", "10.0.0.2")}},
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}},
			wantAdd: State{Routes: []Route{r("10.244.5.0/24", "10.0.0.2")}},
			wantDel: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}}},
		{name: "duplicates for one key: the extra goes",
			desired: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2")}},
			current: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.2"), r("10.244.1.0/24", "10.0.0.7")}},
			wantDel: State{Routes: []Route{r("10.244.1.0/24", "10.0.0.7")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add, del := Diff(tc.desired, tc.current)
			if !reflect.DeepEqual(add, tc.wantAdd) {
				t.Errorf("add: got %+v, want %+v", add, tc.wantAdd)
			}
			if !reflect.DeepEqual(del, tc.wantDel) {
				t.Errorf("del: got %+v, want %+v", del, tc.wantDel)
			}
		})
	}
}

func TestRelevantChange(t *testing.T) {
	base := node("b", "10.244.1.0/24", "10.0.0.2", vtep("aa:aa:aa:aa:aa:02"))
	for _, tc := range []struct {
		name   string
		change func(*corev1.Node)
		want   bool
	}{
		{"heartbeat only", func(n *corev1.Node) { n.Status.Conditions[0].LastHeartbeatTime = metav1.Now(); n.ResourceVersion = "9" }, false},
		{"labels only", func(n *corev1.Node) { n.Labels = map[string]string{"a": "b"} }, false},
		{"podCIDR", func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.7.0/24", []string{"10.244.7.0/24"} }, true},
		{"InternalIP", func(n *corev1.Node) { n.Status.Addresses[1].Address = "10.0.0.9" }, true},
		{"Ready", notReady, false},
		{"VTEP MAC", vtep("aa:aa:aa:aa:aa:09"), true},
	} {
		n := base.DeepCopy()
		tc.change(n)
		if got := relevant(base) != relevant(n); got != tc.want {
			t.Errorf("%s: relevant change %v, want %v", tc.name, got, tc.want)
		}
	}
}
