// Package persistentvolume is the persistentvolume-binder controller:
// static binding of PersistentVolumeClaims to PersistentVolumes, as
// upstream's PV controller does it without dynamic provisioning.
//
// A Pending claim binds to the smallest Available volume that satisfies it
// (FindBestMatch): same storage class, a superset of its access modes, at
// least its storage request, its selector, the same volumeMode. A claim
// naming a volume in spec.volumeName binds only to that volume, and a
// volume whose claimRef names a claim binds only to that claim. A claim
// with no class gets the default StorageClass, as upstream's retroactive
// assignment. Claims of a WaitForFirstConsumer class are left Pending: the
// scheduler binds them.
//
// Binding writes, each step skipped when done so the next sync finishes a
// half-done bind: the volume's claimRef (and bound-by-controller), the
// volume's phase Bound, the claim's volumeName and its bind-completed and
// bound-by-controller annotations, the claim's status (Bound, the volume's
// capacity and access modes). Writes use the objects' resourceVersions, so
// a stale cache loses with a conflict rather than binding a volume twice.
//
// A volume whose claim is gone (or re-created with another uid, checked
// against the API server before trusting the cache) becomes Released;
// reclaim policy Delete then deletes the PersistentVolume object, Retain
// keeps it, Recycle fails it. A bound claim whose volume is gone becomes
// Lost.
package persistentvolume
