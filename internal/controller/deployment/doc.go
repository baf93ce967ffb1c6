// Package deployment is the deployment controller: it turns a Deployment
// into ReplicaSets and moves pods from the old ones to the new one, as
// upstream's kube-controller-manager does, so that kubectl's rollout
// commands behave as they do against upstream.
//
// The ReplicaSet for the current pod template is named
// <deployment>-<pod-template-hash>, where the hash is upstream's (fnv32a over
// the dumped template plus status.collisionCount, SafeEncodeString'd), and
// carries the hash as the pod-template-hash label in its selector and
// template. Each ReplicaSet records its revision
// (deployment.kubernetes.io/revision), the revisions it held before
// (revision-history), and the deployment size it was scaled for
// (desired-replicas, max-replicas, used by proportional scaling). A rollback
// is a template change back to an older template: the older ReplicaSet is
// found again by template and given the next revision.
//
// Each sync, in order: claim ReplicaSets (adopt/release by selector); keep
// the Progressing condition's paused state; when paused or when only
// spec.replicas changed, scale proportionally and stop; otherwise take one
// step of the strategy (RollingUpdate: scale the new ReplicaSet up within
// maxSurge, then old ones down within maxUnavailable; Recreate: old ones to
// zero, wait for their pods to go, then the new one up); delete the oldest
// zero-sized ReplicaSets beyond revisionHistoryLimit once complete; and
// write status and conditions when they changed.
//
// The arithmetic (fenceposts, scaling steps, proportions, revisions, hash,
// conditions) is in pure functions in rollout.go; the I/O is in the
// Controller's methods.
package deployment
