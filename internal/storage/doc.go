// Package storage is Skiff's versioned object store: every API object lives
// in etcd, and a watch cache in memory serves lists and watches.
//
// # What it owns
//
// A Store owns one etcd watch over the whole key prefix (default
// "/registry/") and one in-memory cache per registered resource. Objects are
// stored in etcd as upstream stores them, in Kubernetes' protobuf envelope
// without a resourceVersion (values that older releases wrote as JSON are
// still read). The cache keeps, for every object, its protobuf message with
// metadata.resourceVersion set (spliced into the stored bytes, not encoded
// again), its labels and its selectable fields, plus a ring of recent events
// from which watches resume; an object's labels and fields (which need the
// object decoded) and its JSON are made on first use and kept with it. etcd
// stays the only durable truth: a write returns only after etcd committed
// it, and the object's resourceVersion is the etcd revision of that commit.
//
// # Lifecycle
//
// New, then Register every resource, then Run (which lists, then watches,
// until its context ends). Ready is closed once the caches hold a consistent
// snapshot; Create/Update/Delete work before that, List and Watch wait.
//
// # Reads
//
//   - Get with resourceVersion "" reads etcd (linearizable); "0" reads the
//     cache.
//   - List with resourceVersion "" waits until the cache has caught up with
//     etcd's current revision, then serves from memory (consistent reads
//     from cache). "0" serves whatever the cache has. A limit with a
//     continue token, or with resourceVersion "", pages through etcd at one
//     fixed revision, so the pages of one list are consistent under
//     concurrent writes.
//   - Watch from resourceVersion N replays the cached events after N; if N
//     is older than the cache remembers, the error is 410 Gone.
//
// # Rules for callers
//
// Objects passed to Create and returned by the update function of
// GuaranteedUpdate belong to the store from then on. Objects returned by any
// method are fresh copies the caller may mutate.
package storage
