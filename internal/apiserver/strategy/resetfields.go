package strategy

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// ResetFields returns, for server-side apply, the fields a write through
// the given subresource ("" for the main resource, or "status") resets and
// therefore does not own, keyed by every served API version of the kind, as
// upstream's GetResetFields do: the main resource of a kind with a status
// subresource resets status; the status subresource resets spec, plus a
// Pod's metadata.deletionTimestamp and metadata.ownerReferences and a
// Deployment's metadata.labels; a Namespace's finalize subresource resets
// status. It returns nil when nothing is reset (kinds without a status
// subresource, other subresources).
func ResetFields(gvk schema.GroupVersionKind, subresource string) map[fieldpath.APIVersion]*fieldpath.Set {
	r := lookup(gvk.GroupKind())
	if r == nil || !r.HasSubresource("status") {
		return nil
	}
	var paths []fieldpath.Path
	switch subresource {
	case "":
		paths = []fieldpath.Path{fieldpath.MakePathOrDie("status")}
	case "status":
		paths = []fieldpath.Path{fieldpath.MakePathOrDie("spec")}
		switch gvk.GroupKind() {
		case schema.GroupKind{Kind: "Pod"}:
			paths = append(paths,
				fieldpath.MakePathOrDie("metadata", "deletionTimestamp"),
				fieldpath.MakePathOrDie("metadata", "ownerReferences"))
		case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
			paths = append(paths, fieldpath.MakePathOrDie("metadata", "labels"))
		}
	case "finalize":
		// A namespace's finalize subresource writes spec.finalizers and
		// resets status.
		if gvk.GroupKind() != (schema.GroupKind{Kind: "Namespace"}) {
			return nil
		}
		paths = []fieldpath.Path{fieldpath.MakePathOrDie("status")}
	default:
		return nil
	}
	out := make(map[fieldpath.APIVersion]*fieldpath.Set, len(r.Versions))
	for _, v := range r.Versions {
		out[fieldpath.APIVersion(schema.GroupVersion{Group: r.Group, Version: v}.String())] = fieldpath.NewSet(paths...)
	}
	return out
}

func lookup(gk schema.GroupKind) *registry.Resource {
	all := registry.All()
	for i := range all {
		if all[i].Group == gk.Group && all[i].Kind == gk.Kind {
			return &all[i]
		}
	}
	return nil
}
