// Package controller holds what Skiff's controllers share, as upstream's
// pkg/controller does: the worker loop that drains a controller's queue
// (RunWorkers), expectations (what a controller has asked for and not yet
// seen in its cache), pod creation from a template with an owner
// reference, adoption and release of objects by selector, and the pod
// predicates and orderings the workload controllers agree on.
//
// Rules a controller keeps:
//   - Before creating or deleting, record the count with Expectations.Expect*
//     and lower it with Creation/DeletionObserved from the informer's event
//     handlers (and Lower* when a request failed); sync does nothing but
//     status while Satisfied is false.
//   - Objects from listers are shared: DeepCopy before changing them.
//   - An object is adopted only by a live owner (no deletionTimestamp) whose
//     selector matches it, and released when it stops matching.
package controller
