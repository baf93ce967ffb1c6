package announce

import (
	"cmp"
	"crypto/sha256"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// lbClass is the loadBalancerClass of Skiff's built-in load balancer
// (internal/controller/servicelb.Class). It is repeated here, not imported:
// a component never imports another component's package, and the API
// value is the contract between them.
const lbClass = "skiff.sh/servicelb"

// labelExcludeFromLB is upstream's node label that keeps a node out of
// every load balancer.
const labelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// served reports whether the built-in load balancer serves s (as
// servicelb.Ours does).
func served(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && (s.Spec.LoadBalancerClass == nil || *s.Spec.LoadBalancerClass == lbClass)
}

// World is the API state Want decides from.
type World struct {
	Services []*corev1.Service
	Nodes    []*corev1.Node
	// Slices are the EndpointSlices, read for the Services with
	// externalTrafficPolicy Local.
	Slices []*discoveryv1.EndpointSlice
}

// Want returns, sorted, the addresses node must announce.
func Want(node string, w World) []netip.Addr {
	nodeAddrs := map[netip.Addr]bool{}
	var eligible []string
	for _, n := range w.Nodes {
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				nodeAddrs[ip] = true
			}
		}
		if candidate(n) {
			eligible = append(eligible, n.Name)
		}
	}
	var local map[string]map[string]bool // service key -> nodes with a ready endpoint
	want := map[netip.Addr]bool{}
	for _, s := range w.Services {
		if !served(s) {
			continue
		}
		var addrs []netip.Addr
		for _, in := range s.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(in.IP); err == nil && ip.Is4() && !nodeAddrs[ip] {
				addrs = append(addrs, ip)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		nodes := eligible
		if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			if local == nil {
				local = readyNodes(w.Slices)
			}
			// Only nodes with an endpoint answer, when there is one: the
			// others would drop the traffic. With none, any node is as good.
			var with []string
			for _, n := range eligible {
				if local[s.Namespace+"/"+s.Name][n] {
					with = append(with, n)
				}
			}
			if len(with) > 0 {
				nodes = with
			}
		}
		for _, a := range addrs {
			if winner(nodes, a) == node {
				want[a] = true
			}
		}
	}
	out := make([]netip.Addr, 0, len(want))
	for a := range want {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// candidate reports whether n may announce: Ready, not being deleted and
// not excluded from load balancers.
func candidate(n *corev1.Node) bool {
	if n.DeletionTimestamp != nil {
		return false
	}
	if _, excluded := n.Labels[labelExcludeFromLB]; excluded {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyNodes maps each Service (namespace/name) to the nodes that have a
// ready endpoint of it.
func readyNodes(slices []*discoveryv1.EndpointSlice) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, es := range slices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := es.Namespace + "/" + svc
		for _, ep := range es.Endpoints {
			if ep.NodeName == nil || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			if out[key] == nil {
				out[key] = map[string]bool{}
			}
			out[key][*ep.NodeName] = true
		}
	}
	return out
}

// winner is the node that announces a: the highest hash of node name and
// address (rendezvous hashing), so that a node joining or leaving moves
// only the addresses it wins or held. "" when there is no node.
func winner(nodes []string, a netip.Addr) string {
	best, bestHash := "", [sha256.Size]byte{}
	for _, n := range nodes {
		h := sha256.Sum256([]byte(n + "#" + a.String()))
		if c := cmp.Or(slices.Compare(h[:], bestHash[:]), cmp.Compare(best, n)); best == "" || c > 0 {
			best, bestHash = n, h
		}
	}
	return best
}

// Diff returns the addresses to add (in want, not present) and to delete
// (present, not wanted), sorted.
func Diff(want, present []netip.Addr) (add, del []netip.Addr) {
	for _, a := range want {
		if !slices.Contains(present, a) {
			add = append(add, a)
		}
	}
	for _, a := range present {
		if !slices.Contains(want, a) {
			del = append(del, a)
		}
	}
	slices.SortFunc(add, netip.Addr.Compare)
	slices.SortFunc(del, netip.Addr.Compare)
	return add, del
}
