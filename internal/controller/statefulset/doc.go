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
// OrderedReady (the default) creates ordinals upward, each after the
// previous one is Running and Ready, and removes them downward one at a
// time; Parallel does neither wait. RollingUpdate replaces pods from the
// highest ordinal down to spec.updateStrategy.rollingUpdate.partition, one
// at a time; OnDelete replaces a pod only when someone deletes it.
package statefulset
