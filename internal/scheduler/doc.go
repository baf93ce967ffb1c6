// Package scheduler is Skiff's kube-scheduler: it assigns pending pods to
// nodes through the pods/binding subresource, as an ordinary client of the
// API server.
//
// It has three layers:
//
//   - The decision core (Schedule, Preempt) is pure: given a Snapshot of
//     nodes with the pods counted on them and a pod, it runs upstream's
//     default filter plugins in upstream's order, scores the feasible nodes
//     with the default profile's score plugins and weights, and returns the
//     chosen node or a FitError whose message reads as upstream's. It does
//     no I/O and reads no clock; the rotating start index is an input and
//     an output. Preempt picks, again purely, the node and victims whose
//     eviction lets a pod fit, weighing the PodDisruptionBudgets it is
//     given as values (fewest violations first, as upstream).
//   - The Cache keeps a Snapshot current incrementally from informer
//     events and from the scheduler's own assumptions (a pod counted on its
//     node the moment it is chosen, before the API server confirms the
//     binding). Decisions run under the cache's lock, so they never see a
//     half-applied event. The cache's snapshot journals the node positions
//     that change, so the cluster-wide sums pre-filtering needs (pods per
//     topology domain for spreading and inter-pod affinity) are kept, not
//     recomputed: a decision visits only the nodes changed since the last
//     one, not all of them (aggregate.go). Every change to a NodeInfo in
//     that snapshot must go through the Cache, which records it; a
//     namespace's labels changing drops everything derived.
//   - The Scheduler ties them to the API: informers for pods, nodes,
//     namespaces and PodDisruptionBudgets (read when preempting); the Queue (active by priority then time, backoff 1s
//     doubling to 10s, unschedulable pods retried on node and pod events or
//     after 5 minutes); one scheduling loop; bindings, events and status
//     patches done asynchronously so the loop never waits for the API.
//
// Lifecycle: New checks the Config; Run (with LeaderElect) campaigns for
// the Lease kube-system/kube-scheduler, then starts the informers, waits
// until their handlers have seen the initial lists, and schedules until ctx
// ends or the lease is lost (an error, as upstream exits).
//
// A Snapshot handed to Schedule or Preempt must not change while they run;
// NodeInfos in it change only through the Cache (or, in a snapshot built
// by NewSnapshot, which has no journal and sums per decision, by the
// caller between calls).
package scheduler
