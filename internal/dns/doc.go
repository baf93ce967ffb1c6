// Package dns is the cluster DNS server: it answers the cluster zone
// (cluster.local by default) as CoreDNS's kubernetes plugin does with
// "pods insecure" and "fallthrough in-addr.arpa ip6.arpa", and forwards
// every other name to the node's upstream resolvers through a small cache.
//
// Data flow: informers on Namespaces, Services and EndpointSlices feed an
// Index on every event (an add, update or delete costs work proportional
// to that one object's Service); a query reads the Index under a read lock
// and never lists anything. Index.Lookup is the whole answer logic, a pure
// function of the Index's content and the question; Server wraps it with
// sockets (UDP and TCP on one port), truncation for UDP clients, EDNS0,
// and the forwarder.
//
// Lifecycle: New checks a Config; Run binds the sockets, starts the
// informers, closes Ready once their caches have synced and serves until
// its context ends. Before the first sync, answers that would be negative
// for the zone are SERVFAIL, as CoreDNS does, so that a client never caches
// a false NXDOMAIN.
//
// Rules for callers: the upstreams must not lead back to this server; the
// server drops its own listening address and the cluster DNS Service IPs
// from them, but cannot see a loop through another resolver.
package dns
