// Package cni gives pods on one node their network through CNI plugins.
//
// A Manager owns the node's pod network: a Linux bridge (default "skiff0")
// that every pod's eth0 is attached to, addresses from the node's podCIDR
// handed out by the host-local IPAM plugin, hostPorts through the portmap
// plugin, and one nftables table ("ip skiff-nat") that masquerades traffic
// leaving the cluster's pod range. The network configuration is generated
// from Config by pure functions (conflist, masqueradeScript); the plugins
// themselves are the ones Debian ships in /usr/lib/cni.
//
// Lifecycle:
//
//   - New validates the Config and prepares StateDir. It changes nothing on
//     the host.
//   - SetPodCIDR records the node's podCIDR once node IPAM assigned it;
//     until then Setup and Status fail with ErrNoPodCIDR.
//   - Setup (CNI ADD) attaches a sandbox's network namespace and returns its
//     IPs. The first Setup of a Manager also prepares the host: it enables
//     IPv4 forwarding and bridge netfilter and (re)writes the masquerade
//     table.
//   - Teardown (CNI DEL) detaches a sandbox and releases its IP. It is
//     idempotent and works when the namespace is already gone, when the pod
//     was never set up, and after a restart of the process: the
//     configuration a pod was set up with is cached by libcni under
//     StateDir and is used again for its DEL.
//   - Cleanup removes the masquerade table. It leaves the bridge, because
//     pods may still be attached to it.
//
// Rules for callers: call Setup and Teardown with the same sandboxID (it is
// the CNI container ID and keys the IP allocation and the cache), at most one
// call per sandbox at a time; different sandboxes may be set up
// concurrently. Teardown every sandbox that Setup was called for, also when
// Setup failed. The package must run as root in the node's network
// namespace.
package cni
