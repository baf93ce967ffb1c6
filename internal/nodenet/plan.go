package nodenet

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Backend is how pod traffic crosses between nodes.
type Backend string

// The backends, named as k3s names its --flannel-backend values.
const (
	// HostGW routes each other node's podCIDR via that node's IP. The
	// nodes must share one L2 network.
	HostGW Backend = "host-gw"
	// VXLAN encapsulates pod traffic in UDP (port 8472) between node IPs;
	// the nodes only need to reach each other over IP.
	VXLAN Backend = "vxlan"
	// None programs nothing: routes between nodes are someone else's job.
	None Backend = "none"
)

// DefaultBackend is the backend of a cluster that names none.
const DefaultBackend = HostGW

// ParseBackend checks a --flannel-backend value; "" is DefaultBackend.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case "":
		return DefaultBackend, nil
	case HostGW, VXLAN, None:
		return b, nil
	}
	return "", fmt.Errorf("--flannel-backend %q: want %s, %s or %s", s, HostGW, VXLAN, None)
}

// Constants of the VXLAN backend, flannel's defaults.
const (
	VXLANDevice = "skiff.1"
	VXLANVNI    = 1
	VXLANPort   = 8472
	// VXLANOverhead is what encapsulation adds to each packet (outer
	// Ethernet, IPv4, UDP and VXLAN headers): pods' MTU is the underlay's
	// less this, 1450 on a 1500 network.
	VXLANOverhead = 50
	// VXLANMTU is the MTU of the VXLAN device and of pods on a 1500 byte
	// network.
	VXLANMTU = 1500 - VXLANOverhead
)

// RouteProtocol marks the routes the controller owns (rtm_protocol; `ip
// route show proto 213`), so that a restarted controller finds and
// reconciles its own routes and never touches anyone else's. 213 is in no
// registry of /etc/iproute2/rt_protos.
const RouteProtocol = 213

// Node annotations, after flannel's backend-type, backend-data and
// public-ip.
const (
	AnnotationBackendType = "nodenet.skiff.sh/backend-type"
	// AnnotationBackendData holds {"VNI":1,"VtepMAC":"aa:bb:..."} for
	// VXLAN.
	AnnotationBackendData = "nodenet.skiff.sh/backend-data"
	AnnotationPublicIP    = "nodenet.skiff.sh/public-ip"
)

// BackendData is the VXLAN backend's Node annotation, as flannel's.
type BackendData struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

// Peer is another node whose pods this node must reach.
type Peer struct {
	Name    string
	PodCIDR netip.Prefix
	IP      netip.Addr
	// VtepMAC is the MAC of the peer's VXLAN device (VXLAN only).
	VtepMAC string
}

// Peers returns the nodes other than self that have an IPv4 podCIDR and
// InternalIP, sorted by name. Readiness does not matter, as in flannel: a
// node whose agent misses heartbeats still runs its pods, and their
// traffic must keep flowing. For VXLAN a node must also
// publish its VTEP MAC with the same VNI. skipped says, per node left out
// that is not self, why.
func Peers(self string, nodes []*corev1.Node, backend Backend) (peers []Peer, skipped map[string]string) {
	skipped = map[string]string{}
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		p := Peer{Name: n.Name}
		var ok bool
		if p.PodCIDR, ok = nodePodCIDR(n); !ok {
			skipped[n.Name] = "no IPv4 podCIDR"
			continue
		}
		if p.IP, ok = nodeInternalIP(n); !ok {
			skipped[n.Name] = "no IPv4 InternalIP"
			continue
		}
		if backend == VXLAN {
			var d BackendData
			raw := n.Annotations[AnnotationBackendData]
			if raw == "" || n.Annotations[AnnotationBackendType] != string(VXLAN) {
				skipped[n.Name] = "no VXLAN backend data"
				continue
			}
			if err := json.Unmarshal([]byte(raw), &d); err != nil {
				skipped[n.Name] = "bad VXLAN backend data: " + err.Error()
				continue
			}
			mac, err := net.ParseMAC(d.VtepMAC)
			if err != nil || len(mac) != 6 || d.VNI != VXLANVNI {
				skipped[n.Name] = fmt.Sprintf("bad VXLAN backend data %s", raw)
				continue
			}
			p.VtepMAC = mac.String()
		}
		peers = append(peers, p)
	}
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return peers, skipped
}

// nodePodCIDR is the node's first IPv4 podCIDR.
func nodePodCIDR(n *corev1.Node) (netip.Prefix, bool) {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			return p.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

// nodeInternalIP is the node's first IPv4 InternalIP.
func nodeInternalIP(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// Route is a route in the main table with RouteProtocol.
type Route struct {
	Dst netip.Prefix
	Gw  netip.Addr
	// LinkIndex is the output device; 0 lets the kernel find it from Gw.
	LinkIndex int
	// Onlink says Gw is on LinkIndex even without an address there (the
	// VXLAN device's remote VTEPs).
	Onlink bool
}

func (r Route) String() string {
	s := r.Dst.String() + " via " + r.Gw.String()
	if r.LinkIndex != 0 {
		s += fmt.Sprintf(" dev#%d", r.LinkIndex)
	}
	if r.Onlink {
		s += " onlink"
	}
	return s
}

// Neigh is a permanent neighbour (ARP) entry on the VXLAN device: the
// remote VTEP's address and MAC.
type Neigh struct {
	IP  netip.Addr
	MAC string
}

// FDB is a forwarding entry of the VXLAN device: frames to MAC go to the
// node at Dst.
type FDB struct {
	MAC string
	Dst netip.Addr
}

// State is what the controller owns in the kernel.
type State struct {
	Routes []Route
	Neighs []Neigh
	FDB    []FDB
}

// Empty reports whether s holds nothing.
func (s State) Empty() bool { return len(s.Routes)+len(s.Neighs)+len(s.FDB) == 0 }

// Desired is the state that reaches every peer's pods. For host-gw a peer
// is reachable only when its IP is in one of the local (directly connected)
// prefixes; the others are returned in unreachable. For VXLAN, vxlanIndex
// is the VXLAN device's index and every peer's VTEP address is the first
// address of its podCIDR, as flannel's.
func Desired(backend Backend, peers []Peer, local []netip.Prefix, vxlanIndex int) (s State, unreachable []string) {
	for _, p := range peers {
		switch backend {
		case HostGW:
			if !slices.ContainsFunc(local, func(l netip.Prefix) bool { return l.Contains(p.IP) }) {
				unreachable = append(unreachable, p.Name)
				continue
			}
			s.Routes = append(s.Routes, Route{Dst: p.PodCIDR, Gw: p.IP})
		case VXLAN:
			vtep := p.PodCIDR.Addr()
			s.Routes = append(s.Routes, Route{Dst: p.PodCIDR, Gw: vtep, LinkIndex: vxlanIndex, Onlink: true})
			s.Neighs = append(s.Neighs, Neigh{IP: vtep, MAC: p.VtepMAC})
			s.FDB = append(s.FDB, FDB{MAC: p.VtepMAC, Dst: p.IP})
		}
	}
	return s, unreachable
}

// Diff returns what must be added (or replaced) and deleted to move the
// kernel from current to desired. Routes are keyed by destination,
// neighbours by IP and forwarding entries by MAC: an entry whose key stays
// but whose value changed is only added, as a replacement.
func Diff(desired, current State) (add, del State) {
	add.Routes, del.Routes = diff(desired.Routes, current.Routes, func(r Route) netip.Prefix { return r.Dst })
	add.Neighs, del.Neighs = diff(desired.Neighs, current.Neighs, func(n Neigh) netip.Addr { return n.IP })
	add.FDB, del.FDB = diff(desired.FDB, current.FDB, func(f FDB) string { return f.MAC })
	return add, del
}

func diff[T comparable, K comparable](desired, current []T, key func(T) K) (add, del []T) {
	want := make(map[K]T, len(desired))
	for _, d := range desired {
		want[key(d)] = d
	}
	have := make(map[K][]T, len(current))
	for _, c := range current {
		have[key(c)] = append(have[key(c)], c)
	}
	for _, d := range desired {
		if !slices.Contains(have[key(d)], d) {
			add = append(add, d)
		}
	}
	for _, c := range current {
		w, ok := want[key(c)]
		// Of several entries for one key only the one equal to the wanted
		// one stays; a replacement covers the case of none equal, as long
		// as there is just one.
		if !ok || (w != c && (slices.Contains(have[key(c)], w) || len(have[key(c)]) > 1)) {
			del = append(del, c)
		}
	}
	return add, del
}
