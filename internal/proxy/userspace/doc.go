// Package userspace is the user-space backend of the service proxy: a Go
// TCP and UDP proxy that needs no kernel NAT (no nftables, no iptables, no
// IPVS), and spreads connections over a Service's endpoints with the IPVS
// scheduling algorithms, chosen per Service by the skiff.sh/proxy-scheduler
// annotation (proxy.SchedulerAnnotation): rr (the default), lc, dh, sh,
// sed and nq.
//
// # Addresses
//
// The ClusterIPs are added as /32 addresses to a dummy device the backend
// owns, DefaultInterface
// ("skiff-svc0"), as kube-proxy's IPVS mode does with kube-ipvs0: the
// kernel then delivers traffic for them locally, both from the node itself
// and from pods (whose default route is the node). The device is created
// by the first Sync and left down like kube-ipvs0 (an address on a down
// device is local all the same); addresses are added and removed one by
// one over rtnetlink as Service ports come and go. On a kernel built
// without dummy devices (CONFIG_DUMMY off, as on some minimal VM kernels)
// a bridge without ports, of the same name, stands in: it holds addresses
// alike. Since every Service address is then a local address, and Linux by default answers ARP for
// any local address on any interface, the backend sets
// net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 in its network
// namespace, as kube-proxy's IPVS mode does, so that the node does not
// claim the Service addresses on its LAN.
//
// External and load balancer addresses are not added: one may be another
// node's address (the built-in load balancer lends the nodes' addresses),
// and a local address captures every port of it, cutting this node off
// from that node. Their listeners are bound with IP_FREEBIND and serve
// whenever the address is this node's: one of its own addresses, a pool
// address its announcer holds, or one an administrator put on it.
//
// # Listeners
//
// Per Service port, one listening socket of the port's protocol on
// ClusterIP:port, on each external and load balancer IP:port, and on each
// Ruleset.NodeIPs address:nodePort (never loopback). Accepted TCP
// connections are connected to an endpoint and spliced both ways with
// io.Copy (splice(2) between two sockets on Linux), passing half-closes
// on and resets both ways. A connection attempt to an endpoint is bounded
// by Config.DialTimeout; when it fails, the next endpoint is tried, up to
// four, as kube-proxy's userspace mode did, and the client is reset after
// the last. UDP keeps one session per client address: its own socket to
// the chosen endpoint, ended after Config.UDPIdleTimeout without a
// datagram either way (30 s, the kernel's conntrack timeout for UDP;
// kube-proxy's userspace mode used 250 ms, which cut slow DNS answers);
// replies go back from the listening socket, so from the Service address.
// A listener keeps at most 1024 sessions; datagrams of further clients are
// dropped until one ends.
//
// SCTP ports get their addresses but no listener.
//
// # What is not like the kernel backends
//
//   - The client address is not preserved: the backend connects to the
//     endpoint from the node, so an endpoint sees the node's address
//     (on the pod bridge, the bridge's). externalTrafficPolicy Local still
//     chooses the node's endpoints for outside clients, but keeping their
//     address is a property of the kernel backends only.
//   - Filters are laid out without NAT. A destination without any usable
//     endpoint (proxy.FilterReject) has no listener: the address is local,
//     so the kernel itself answers TCP with a reset and UDP with ICMP port
//     unreachable, as the kernel backends' reject rules do. A TCP
//     destination nobody may use (proxy.FilterDrop: a Local traffic policy
//     without a local endpoint) has no listener either, so it is refused
//     rather than dropped: a silent drop needs a packet filter, and a
//     listener that completed handshakes only to reset them would tell
//     clients they had connected. When the same external listener serves
//     some clients (an externalTrafficPolicy Local Service reached from
//     pods or from the node is short-circuited to every endpoint, as by
//     the kernel backends) but not an outside one, that one is reset at
//     once. UDP destinations with endpoints anywhere keep their listener,
//     and datagrams nobody may serve are read and discarded: a real drop.
//   - Close cuts the connections in flight: the kernel backends' rules
//     (and conntrack) survive a restart of the proxy, a user-space proxy
//     does not.
//   - An established connection whose endpoint disappears goes on, as
//     conntrack keeps it in the kernel modes; one whose Service port is
//     removed goes on until its address is removed from the device.
//
// # Scheduling
//
// Every endpoint has weight 1. rr takes the endpoints in turn; lc the one
// with the fewest active connections; sed the one with the fewest active
// connections plus one over its weight; nq an idle one if any, else as
// sed (with weights of 1, lc, sed and nq choose alike); dh hashes the
// destination (the Service address the client connected to) and sh the
// client's address into IPVS's 256 buckets, bucket i going to endpoint i
// modulo their number, so a destination (dh) or a client (sh) keeps its
// endpoint while the endpoints stay the same. Ties go to the first
// endpoint. Active connections are counted per endpoint and Service port
// (a TCP connection until both directions end, a UDP session until it
// ends). With sessionAffinity ClientIP, a client keeps its endpoint, per
// Service port, for the timeout after its last new connection, whatever
// the scheduler. The schedulers are pure functions (schedule) with table
// tests.
//
// # Lifecycle
//
// New opens the network namespace (Config.NetNS; empty: the process's)
// and rtnetlink there, and starts one OS thread inside the namespace that
// creates every socket of the backend: a socket keeps the namespace it was
// created in, so the goroutines accepting and copying run anywhere.
// Connecting to an endpoint starts there (a non-blocking connect) and is
// awaited through the Go runtime's poller, so the thread never waits on
// the network. Sync is called from one goroutine: the first creates the
// device, then every Sync compares each Service port with the applied one
// (proxy.ServicePort.Equal) and touches only those that differ. A change
// of endpoints, scheduler or affinity swaps the port's scheduling state in
// place, keeping its listeners and connections (and the endpoints' active
// counts); a change of addresses or ports closes and opens only the
// listeners concerned. A removed port's listeners are closed, and its
// addresses removed from the device once no port uses them. A listener
// that cannot be opened (its address and port taken) does not stop the
// others: Sync applies everything else and returns an error naming the
// address, and the next Sync retries that port; nothing is rebuilt. Close
// stops every listener, connection and goroutine; the package function
// Cleanup deletes the device (when switching to another backend).
package userspace
