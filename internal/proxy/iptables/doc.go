// Package iptables is the iptables backend of the service proxy, for
// kernels without nf_tables: it programs a proxy.Ruleset with
// iptables-restore into chains of its own (all named SKIFF-...) in the nat
// and filter tables, touching other chains only to insert the jumps into
// its own.
//
// The layout is kube-proxy's iptables mode: nat SKIFF-SERVICES matches
// every ClusterIP, external and load balancer address (one rule each) and
// the node's addresses for SKIFF-NODEPORTS; a Service port's chains are
// SKIFF-SVC-<hash> (Cluster policy endpoints), SKIFF-SVL-<hash> (Local),
// SKIFF-EXT-<hash> (NodePort, external and LB traffic) and one
// SKIFF-SEP-<hash> per endpoint, which DNATs; endpoints are spread with
// "-m statistic --mode random" and session affinity uses "-m recent".
// Masquerade is a mark (SKIFF-MARK-MASQ) acted on in SKIFF-POSTROUTING.
// Services without a usable endpoint are rejected or dropped by the filter
// table's SKIFF-SERVICES, SKIFF-EXTERNAL-SERVICES and SKIFF-NODEPORTS.
// Unlike the nftables backend, per-packet cost grows with the number of
// Services (a linear walk of SKIFF-SERVICES), as in kube-proxy.
//
// Every sync is one iptables-restore --noflush: declaring a chain flushes
// it, so a sync rewrites exactly the chains it declares and commits each
// table atomically. The restore input is computed by a pure function from
// the previously applied state, the new Ruleset and the configuration.
// The first Sync, and the first after a failure, reads the tables
// (iptables-save), rewrites every chain, inserts the missing jumps from
// the built-in chains and deletes SKIFF- chains nothing uses; later Syncs
// rewrite the dispatch chains and the chains of the Service ports that
// changed, and delete the chains those no longer use.
//
// Lifecycle: New (checks the programs, decides the bridge mode), Sync from
// one goroutine, Close (leaves the rules), Cleanup (removes every SKIFF-
// chain and the jumps to them). Commands run in Config.NetNS through
// nsenter.
package iptables
