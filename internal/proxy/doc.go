// Package proxy is the service proxy of a node: it makes Service virtual
// addresses (ClusterIPs, NodePorts, external and load balancer IPs) reach
// the Services' endpoints, as kube-proxy does.
//
// It has three parts.
//
// Compile is a pure function from Services, EndpointSlices and the node
// (name, addresses) to a Ruleset: per Service port, the virtual addresses
// and the endpoints traffic to them may use, with every upstream rule
// decided there (ready endpoints, terminating ones as fallback, named
// target ports, traffic policies, session affinity, what a Service without
// endpoints does). Backends lay a Ruleset out; they decide nothing.
//
// A Backend programs a Ruleset into the node (internal/proxy/nftables is
// the nftables one). It remembers what it applied and changes only the
// Service ports that differ; its first Sync, and the first after a
// failure, rebuilds everything.
//
// Proxier ties them: it watches Services and EndpointSlices through
// client-go informers, and at most once per MinSyncInterval (and at least
// once per SyncPeriod) compiles the cache's content and calls
// Backend.Sync from one goroutine. Construct it with New and call Run,
// which returns when its context ends; the rules stay in place so that a
// restarted proxy does not interrupt traffic.
package proxy
