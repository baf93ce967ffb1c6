// Package statefulset is the statefulset controller: it gives each
// StatefulSet pods with stable names (<set>-<ordinal>), hostnames under the
// set's governing service, and PersistentVolumeClaims
// (<template>-<set>-<ordinal>) that outlive the pods, as upstream does.
//
// Each sync claims the set's pods, finds or creates the ControllerRevision
// of the current template (package history), asks the pure planner Decide
// what to create and delete, acts, trims old revisions to
// revisionHistoryLimit, and writes status. Pods are named, so a lagging
// cache can only cause an AlreadyExists (ignored), never a duplicate; no
// expectations are needed.
//
// A pod is available once it has been Running and Ready for
// spec.minReadySeconds; the sync requeues the set for the moment the next
// Ready pod becomes available, since nothing else signals it.
// OrderedReady (the default) creates ordinals upward, each after the
// previous one is available, and removes them downward one at a time;
// Parallel does neither wait. RollingUpdate replaces pods from the highest
// ordinal down to spec.updateStrategy.rollingUpdate.partition, keeping at
// most rollingUpdate.maxUnavailable (default 1; a percentage of replicas
// rounds down, minimum 1) of the set's pods unavailable: OrderedReady
// replaces batches of maxUnavailable and starts the next batch when every
// pod is available again; Parallel keeps a sliding window. OnDelete
// replaces a pod only when someone deletes it.
package statefulset
