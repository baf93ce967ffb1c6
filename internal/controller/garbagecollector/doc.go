// Package garbagecollector deletes objects whose owners are gone, as
// upstream's garbage collector does.
//
// It watches the metadata of every resource the API server serves (found by
// discovery, rediscovered every 30 s so new CRDs are covered) and keeps an
// ownership graph: objects by UID and, for each owner UID, the objects that
// name it in metadata.ownerReferences. Work items are object UIDs:
//
//   - an object with owners is checked: owners not in the graph are looked
//     up with a live GET (a stale cache never deletes anything); when no
//     owner is left the object is deleted (Background, or Foreground when an
//     owner is itself waiting in foreground deletion and the object has
//     dependents); when only some owners are gone their references are
//     removed;
//   - an owner being deleted with the foregroundDeletion finalizer has its
//     dependents deleted and loses the finalizer once no dependent with
//     blockOwnerDeletion is left;
//   - an owner being deleted with the orphan finalizer has its reference
//     removed from every dependent, then loses the finalizer.
//
// The API server adds those finalizers for propagationPolicy Foreground and
// Orphan; the collector only removes them.
package garbagecollector
