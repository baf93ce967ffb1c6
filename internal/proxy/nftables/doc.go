// Package nftables is the nftables backend of the service proxy: it
// programs a proxy.Ruleset over netlink into one table of its own
// ("ip skiff-proxy"), never touching other tables.
//
// Per-packet cost does not grow with the number of Services: packets are
// classified by verdict maps keyed by (address . protocol . port), and
// endpoints are chosen by "numgen random" looked up in one data map keyed
// by (chain number . index). Each Service port owns a few chains (its
// cluster, local and external chains, and with session affinity one per
// endpoint) and map elements; a Sync after the first rewrites only the
// Service ports that changed, in one netlink transaction. See
// docs/proxy.md for the layout.
//
// Lifecycle: New (opens netlink, decides the bridge mode), Sync from one
// goroutine, Close (leaves the rules), Cleanup (removes the table).
package nftables
