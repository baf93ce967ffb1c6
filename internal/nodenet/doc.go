// Package nodenet makes the pods of other nodes reachable from this node,
// by pod IP and without NAT, as flannel's host-gw and vxlan backends do.
//
// A Controller runs on every node (in `skiff agent` and in the server's own
// node). It watches the Node objects and, for every other node that is
// Ready and has an IPv4 podCIDR and InternalIP (a "peer"), programs:
//
//   - host-gw: a route "podCIDR via InternalIP" in the main table. The
//     peer's InternalIP must be on a directly connected network (one L2
//     segment); other peers are logged and left out.
//   - vxlan: one VXLAN device (VXLANDevice, VNI 1, UDP 8472, learning off)
//     over the interface holding the node IP, whose MAC the controller
//     publishes in its own Node's annotations (AnnotationBackendData, as
//     flannel's backend-data); per peer a forwarding entry "peer MAC ->
//     peer IP", a permanent neighbour entry "peer VTEP -> peer MAC" and a
//     route "podCIDR via VTEP dev skiff.1 onlink", where a node's VTEP
//     address is the first address of its podCIDR (given to its own
//     device as a /32).
//
// The decisions are pure functions (Peers, Desired, Diff); the Controller
// reads the kernel's state over rtnetlink, diffs and applies. Routes carry
// RouteProtocol, so the controller recognises its own after a restart and
// never touches anyone else's; on the VXLAN device, which is its own,
// every permanent neighbour and forwarding entry is its own.
//
// Lifecycle: New checks the Config and changes nothing. Run enables IPv4
// forwarding, syncs on every relevant Node change and every ResyncPeriod,
// and returns when its context ends, leaving routes and device in place so
// a restart does not interrupt traffic; the next Run reconciles them. A
// node that is deleted, loses its podCIDR or IP, or stops being Ready
// loses its routes on the others at their next sync. Every node of a
// cluster must use the same backend. The pod network's masquerade rule
// (internal/cni) spares traffic within the cluster CIDR, so pods see each
// other's own addresses.
package nodenet
