package netpol

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// IP protocol numbers of the protocols a NetworkPolicyPort names.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// Ruleset is what the backend programs: the pods of this node that some
// policy isolates, sorted by address.
type Ruleset struct {
	Pods []PodRules
}

// PodRules are the allow-lists of one local pod. A nil direction is not
// isolated (everything is allowed); a direction with no Allows denies
// everything.
type PodRules struct {
	Namespace, Name string
	IP              netip.Addr
	Ingress, Egress *Direction
}

// Direction is the union of the rules of every policy that isolates a pod
// in one direction.
type Direction struct {
	Allows []Allow
}

// Allow lets traffic through when the peer (the source for ingress, the
// destination for egress) is AnyPeer or in Peers, and the protocol and
// destination port match: Proto 0 is any protocol; PortLo 0 is any port of
// Proto; otherwise the port is within PortLo..PortHi.
type Allow struct {
	Proto          uint8
	PortLo, PortHi uint16
	AnyPeer        bool
	Peers          []Range
}

// Compile computes the Ruleset of node's pods. pods are all pods of the
// cluster (peers are selected among them), namespaces all namespaces.
// Policies are additive: a pod is isolated in a direction when any policy
// of its namespace selects it with that policy type, and then allowed
// what any of these policies allows.
func Compile(node string, pods []*corev1.Pod, namespaces []*corev1.Namespace, policies []*networkingv1.NetworkPolicy) *Ruleset {
	c := compiler{nsLabels: map[string]labels.Set{}}
	for _, ns := range namespaces {
		c.nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	for _, p := range pods {
		if ip, ok := podIP(p); ok {
			c.pods = append(c.pods, peerPod{pod: p, ip: ip})
		}
	}
	rs := &Ruleset{}
	for _, pp := range c.pods {
		if pp.pod.Spec.NodeName != node {
			continue
		}
		pr := PodRules{Namespace: pp.pod.Namespace, Name: pp.pod.Name, IP: pp.ip}
		for _, pol := range policies {
			if pol.Namespace != pp.pod.Namespace || !selects(&pol.Spec.PodSelector, pp.pod.Labels) {
				continue
			}
			ingress, egress := PolicyTypes(pol)
			if ingress {
				if pr.Ingress == nil {
					pr.Ingress = &Direction{}
				}
				for _, rule := range pol.Spec.Ingress {
					pr.Ingress.Allows = append(pr.Ingress.Allows, c.allows(pol.Namespace, rule.From, rule.Ports, &pp, true)...)
				}
			}
			if egress {
				if pr.Egress == nil {
					pr.Egress = &Direction{}
				}
				for _, rule := range pol.Spec.Egress {
					pr.Egress.Allows = append(pr.Egress.Allows, c.allows(pol.Namespace, rule.To, rule.Ports, &pp, false)...)
				}
			}
		}
		if pr.Ingress == nil && pr.Egress == nil {
			continue
		}
		if pr.Ingress != nil {
			pr.Ingress.Allows = merge(pr.Ingress.Allows)
		}
		if pr.Egress != nil {
			pr.Egress.Allows = merge(pr.Egress.Allows)
		}
		rs.Pods = append(rs.Pods, pr)
	}
	slices.SortFunc(rs.Pods, func(a, b PodRules) int { return a.IP.Compare(b.IP) })
	return rs
}

// PolicyTypes reports the directions a policy isolates: its policyTypes,
// or when empty, as upstream defaults them, Ingress always and Egress when
// the policy has egress rules.
func PolicyTypes(p *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(p.Spec.PolicyTypes) == 0 {
		return true, len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

type peerPod struct {
	pod *corev1.Pod
	ip  netip.Addr
}

type compiler struct {
	pods     []peerPod
	nsLabels map[string]labels.Set
}

// podIP is the IPv4 address of a pod that can be a policy's subject or
// peer: one with its own network that has not terminated.
func podIP(p *corev1.Pod) (netip.Addr, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return netip.Addr{}, false
	}
	ips := []string{p.Status.PodIP}
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// selects reports whether a label selector matches set; an empty selector
// matches everything, an invalid one nothing.
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// peers resolves a rule's from/to list: any is true when the list is
// empty (every address); otherwise the selected pods and the ipBlocks'
// ranges.
func (c *compiler) peers(ns string, list []networkingv1.NetworkPolicyPeer) (any bool, pods []peerPod, ranges []Range) {
	if len(list) == 0 {
		return true, nil, nil
	}
	for _, peer := range list {
		if b := peer.IPBlock; b != nil {
			cidr, err := netip.ParsePrefix(b.CIDR)
			if err != nil {
				continue
			}
			r, ok := prefixRange(cidr)
			if !ok {
				continue
			}
			var except []Range
			for _, e := range b.Except {
				if p, err := netip.ParsePrefix(e); err == nil {
					if er, ok := prefixRange(p); ok {
						except = append(except, er)
					}
				}
			}
			ranges = append(ranges, subtract([]Range{r}, except)...)
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			continue // invalid: a peer needs one of the three
		}
		for _, pp := range c.pods {
			if peer.NamespaceSelector == nil {
				if pp.pod.Namespace != ns {
					continue
				}
			} else if nsl, ok := c.nsLabels[pp.pod.Namespace]; !ok || !selects(peer.NamespaceSelector, nsl) {
				continue
			}
			if peer.PodSelector != nil && !selects(peer.PodSelector, pp.pod.Labels) {
				continue
			}
			pods = append(pods, pp)
		}
	}
	return false, pods, normalize(ranges)
}

// allows compiles one rule of a policy in namespace ns for the local pod
// self.
func (c *compiler) allows(ns string, list []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, self *peerPod, ingress bool) []Allow {
	any, pods, ranges := c.peers(ns, list)
	peerRanges := slices.Clone(ranges)
	for _, pp := range pods {
		peerRanges = append(peerRanges, addrRange(pp.ip))
	}
	peerRanges = normalize(peerRanges)
	if !any && len(peerRanges) == 0 {
		return nil
	}
	if len(ports) == 0 {
		return []Allow{{AnyPeer: any, Peers: peerRanges}}
	}
	var out []Allow
	for _, port := range ports {
		proto := protoNumber(port.Protocol)
		if proto == 0 {
			continue
		}
		switch {
		case port.Port == nil:
			out = append(out, Allow{Proto: proto, AnyPeer: any, Peers: peerRanges})
		case port.Port.StrVal == "" && port.Port.IntVal > 0:
			lo := uint16(port.Port.IntVal)
			hi := lo
			if port.EndPort != nil && *port.EndPort >= port.Port.IntVal && *port.EndPort <= 65535 {
				hi = uint16(*port.EndPort)
			}
			out = append(out, Allow{Proto: proto, PortLo: lo, PortHi: hi, AnyPeer: any, Peers: peerRanges})
		case port.Port.StrVal != "" && ingress:
			// The destination is the local pod: its own named port.
			for _, n := range namedPorts(self.pod, port.Port.StrVal, proto) {
				out = append(out, Allow{Proto: proto, PortLo: n, PortHi: n, AnyPeer: any, Peers: peerRanges})
			}
		case port.Port.StrVal != "":
			// The destination is the peer: each peer pod's own number.
			// Only pods can have named ports, so "any peer" and ipBlocks
			// stand for the known pods they contain.
			byPort := map[uint16][]Range{}
			for _, pp := range c.pods {
				if !any && !contains(peerRanges, pp.ip) {
					continue
				}
				for _, n := range namedPorts(pp.pod, port.Port.StrVal, proto) {
					byPort[n] = append(byPort[n], addrRange(pp.ip))
				}
			}
			for n, rs := range byPort {
				out = append(out, Allow{Proto: proto, PortLo: n, PortHi: n, Peers: normalize(rs)})
			}
		}
	}
	return out
}

func protoNumber(p *corev1.Protocol) uint8 {
	if p == nil {
		return ProtoTCP
	}
	switch *p {
	case corev1.ProtocolTCP:
		return ProtoTCP
	case corev1.ProtocolUDP:
		return ProtoUDP
	case corev1.ProtocolSCTP:
		return ProtoSCTP
	}
	return 0
}

// namedPorts are the numbers of pod's container ports called name with
// protocol proto.
func namedPorts(pod *corev1.Pod, name string, proto uint8) []uint16 {
	var out []uint16
	for _, ctr := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, p := range ctr.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == name && protoNumber(&pp) == proto {
				if p.ContainerPort > 0 && p.ContainerPort <= 65535 && !slices.Contains(out, uint16(p.ContainerPort)) {
					out = append(out, uint16(p.ContainerPort))
				}
			}
		}
	}
	return out
}

// merge unites the peers of Allows with the same protocol and ports and
// sorts them.
func merge(allows []Allow) []Allow {
	type key struct {
		proto  uint8
		lo, hi uint16
	}
	byKey := map[key]*Allow{}
	var keys []key
	for _, a := range allows {
		k := key{a.Proto, a.PortLo, a.PortHi}
		m, ok := byKey[k]
		if !ok {
			m = &Allow{Proto: a.Proto, PortLo: a.PortLo, PortHi: a.PortHi}
			byKey[k] = m
			keys = append(keys, k)
		}
		m.AnyPeer = m.AnyPeer || a.AnyPeer
		m.Peers = append(m.Peers, a.Peers...)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.lo, b.lo), cmp.Compare(a.hi, b.hi))
	})
	out := make([]Allow, 0, len(keys))
	for _, k := range keys {
		a := *byKey[k]
		if a.AnyPeer {
			a.Peers = nil
		} else {
			a.Peers = normalize(a.Peers)
		}
		out = append(out, a)
	}
	return out
}
