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
// (DefaultInterface, created on demand and deleted once empty); the kernel
// then answers ARP for it on the node's LAN interface, and the service
// proxy's rules, which match every load balancer address, forward the
// traffic. On adding an address the Announcer sends gratuitous ARPs from the
// interface holding the node IP, so that the LAN's neighbour caches move to
// the new node at once after a fail-over. The others remove it.
//
// The decisions are pure functions (Want, Diff, garp); the Announcer reads
// the interface's addresses over rtnetlink, diffs and applies.
//
// Lifecycle: New checks the Config and changes nothing. Run syncs on every
// relevant change and every ResyncPeriod and returns when its context ends,
// leaving the addresses in place so that a restart does not drop traffic;
// the next Run reconciles them. Cleanup deletes the interface.
package announce
