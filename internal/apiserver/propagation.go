package apiserver

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applyPropagation records a delete's propagation policy on the object as
// the garbage collector's finalizers, as upstream's registry does: Orphan
// (or orphanDependents=true) adds "orphan", Foreground adds
// "foregroundDeletion", an explicit Background drops both. The garbage
// collector removes the finalizer once it has done what it names.
func applyPropagation(acc metav1.Object, opts *metav1.DeleteOptions) {
	orphan, foreground := false, false
	explicit := false
	switch {
	case opts.PropagationPolicy != nil:
		explicit = true
		orphan = *opts.PropagationPolicy == metav1.DeletePropagationOrphan
		foreground = *opts.PropagationPolicy == metav1.DeletePropagationForeground
	case opts.OrphanDependents != nil:
		explicit = true
		orphan = *opts.OrphanDependents
	}
	if !explicit {
		return
	}
	fins := acc.GetFinalizers()
	drop := func(name string) {
		fins = slices.DeleteFunc(fins, func(f string) bool { return f == name })
	}
	add := func(name string) {
		if !slices.Contains(fins, name) {
			fins = append(fins, name)
		}
	}
	switch {
	case orphan:
		drop(metav1.FinalizerDeleteDependents)
		add(metav1.FinalizerOrphanDependents)
	case foreground:
		drop(metav1.FinalizerOrphanDependents)
		add(metav1.FinalizerDeleteDependents)
	default:
		drop(metav1.FinalizerOrphanDependents)
		drop(metav1.FinalizerDeleteDependents)
	}
	if len(fins) == 0 {
		fins = nil
	}
	acc.SetFinalizers(fins)
}
