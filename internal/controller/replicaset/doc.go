// Package replicaset is the replicaset and replicationcontroller controller:
// it keeps the number of active pods matching an owner's selector equal to
// its spec.replicas, as upstream's ReplicaSet controller does.
//
// One implementation serves both kinds. A ReplicationController is read
// through an adapter that presents it as an apps/v1 ReplicaSet (its
// equality-based selector becomes matchLabels) and writes its status back in
// core/v1 form; owner references, events and the status subresource use the
// object's real kind.
//
// Lifecycle: New or NewForReplicationControllers registers event handlers on
// the informers it is given; the caller starts the informers; Run waits for
// their caches, runs workers until ctx ends.
//
// Each sync claims the pods (adopting matching orphans, releasing owned pods
// that stopped matching), then, only when every creation and deletion it
// asked for earlier has been observed through the informer, creates or
// deletes at most BurstReplicas pods: creations in slow-start batches of 1,
// 2, 4, ... that stop at the first failure, deletions in the order of
// controller.PodsForDeletion. It then writes status (replicas,
// fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration,
// the ReplicaFailure condition) when it changed, and requeues itself after
// minReadySeconds while ready pods are not yet available.
package replicaset
