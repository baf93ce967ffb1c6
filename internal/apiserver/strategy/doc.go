// Package strategy owns what upstream Kubernetes calls the REST strategy of
// each built-in resource, reduced to pure functions over typed k8s.io/api
// objects:
//
//   - PrepareForCreate, PrepareForUpdate and PrepareForStatusUpdate normalise
//     a write before validation: they clear or keep status, maintain
//     metadata.generation, and apply the per-kind rules upstream's
//     pkg/registry/<group>/<resource>/strategy.go apply (pod QoS class,
//     namespace finalizer, job selector, service allocated values, ...).
//   - Fields, SelectableFields and FieldLabelError answer field selectors the
//     way upstream's ToSelectableFields and field label conversion functions
//     do.
//   - ResetFields tells server-side apply which fields a write through the
//     main resource or the status subresource does not own.
//   - HasGeneration tells whether upstream maintains metadata.generation.
//
// # Contract
//
// The functions mutate the object they are given and never the old object;
// callers pass a fresh copy of the request body and the stored object. They
// read no clock and do no I/O: where upstream stamps "now" on create (the
// SchedulingGated pod condition, a persistent volume's
// lastPhaseTransitionTime) the object's creationTimestamp is used, so the
// caller must fill the system metadata (uid, creationTimestamp) before
// PrepareForCreate, as upstream's create handler does. The job selector is
// generated from the uid for the same reason.
//
// The update functions also apply the generic rules of upstream's
// rest.BeforeUpdate that concern metadata the client cannot change:
// generation, uid (when omitted), creationTimestamp, deletionTimestamp and
// deletionGracePeriodSeconds are taken from the old object. Kinds with no
// special rules pass through unchanged apart from those.
//
// Defaulting and validation are not done here; they live in sibling packages
// and run after (defaulting before) these functions, in upstream's order:
// decode+default, prepare, validate.
package strategy
