// Package announce makes the load balancer's pool addresses reachable on
// the nodes' network, as MetalLB's layer 2 mode does (without its
// memberlist): one node answers ARP for each address.
//
// An Announcer runs on every node that runs the service proxy. It watches
// Services, Nodes and EndpointSlices and, for every LoadBalancer Service
// the built-in load balancer serves (no loadBalancerClass, or
// skiff.sh/servicelb), takes each IPv4 status.loadBalancer.ingress address
// that is not a Node's address (a pool address: the node addresses servicelb
// lends without a pool are every node's own already). For each it picks one
// node by rendezvous hashing (the highest hash of node name and address)
// among the Ready nodes without the label
// node.kubernetes.io/exclude-from-external-load-balancers; for
// externalTrafficPolicy Local only among those with a ready endpoint of the
// Service, when there is one. Every node computes the same answer from the
// same objects, so no coordination is needed, and a node leaving moves only
// its own addresses.
//
// The winner puts the address, as a /32, on a dummy interface of its own
// (DefaultInterface, created on demand and deleted once empty), so that the
// node accepts its traffic, and the service proxy's rules, which match
// every load balancer address, forward it. On adding an address the
// Announcer sends gratuitous ARPs from the interface holding the node IP,
// so that the LAN's neighbour caches move to the new node at once after a
// fail-over. The others remove it.
//
// The Announcer also answers ARP requests for the addresses it announces
// itself, from user space, as MetalLB's speaker does: a raw AF_PACKET
// socket on the interface holding the node IP reads the requests and
// replies with that interface's MAC to each one whose target is in the set
// the reconcile loop last decided. The kernel answers for an address on
// the dummy interface only while the LAN interface's arp_ignore is 0, and
// the userspace proxy sets net.ipv4.conf.all.arp_ignore=1 (as kube-proxy's
// IPVS mode does, so that Service addresses on its own device are not
// claimed on the LAN); without the responder a pool address would be
// reachable only until the neighbours' caches forgot the gratuitous ARPs.
// Where the kernel still answers, both replies carry the same MAC. The
// responder answers DAD probes (sender 0.0.0.0) as the kernel does, so that
// a host about to take a pool address learns it is in use, and ignores
// replies, gratuitous requests and its own host's frames. A failing socket
// (the interface gone or down) is logged once and reopened with a backoff,
// on whichever interface then holds the node IP; it does not end Run.
//
// The decisions are pure functions (Want, Diff, garp, parseARPRequest,
// arpReply); the Announcer reads the interface's addresses over rtnetlink,
// diffs and applies.
//
// Lifecycle: New checks the Config and changes nothing. Run syncs on every
// relevant change and every ResyncPeriod, answers ARP meanwhile, and
// returns when its context ends, after the responder has closed its
// socket. It leaves the addresses in place so that a restart does not drop
// traffic (until the next Run, only the kernel answers ARP for them); the
// next Run reconciles them. Cleanup deletes the interface.
package announce
