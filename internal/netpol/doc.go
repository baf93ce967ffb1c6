// Package netpol enforces Kubernetes NetworkPolicies on one node.
//
// Compile turns the cluster's Pods, Namespaces and NetworkPolicies into a
// Ruleset for the pods of this node: for each pod isolated for ingress or
// egress, the peers and ports it may exchange traffic with. The Backend
// programs a Ruleset into an nftables table of its own whose chain sits on
// the forward hook, after the service proxy's DNAT, so that policies see
// pod addresses. Ingress is enforced on the node of the destination pod,
// egress on the node of the source pod. The Controller watches the API
// and syncs the backend.
package netpol
