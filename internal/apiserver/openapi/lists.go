package openapi

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/applyconfigurations"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
)

// listSemantics returns the structured-merge-diff schema client-go embeds
// for its apply configurations. It is generated from upstream's OpenAPI and
// so carries the +listType, +listMapKey, +mapType and +structType markers of
// every k8s.io/api type: facts that live in comments, out of reach of
// reflection. The struct tags alone would get some lists wrong (containers'
// ports are keyed by containerPort and protocol, while the patch merge key is
// containerPort alone).
//
// client-go offers the schema only through a type converter, so a typed
// value of any kind is made and its schema taken. It is nil when that fails;
// the patch tags are the fallback then.
func listSemantics(scheme *runtime.Scheme) *smdschema.Schema {
	probe := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}}
	tv, err := applyconfigurations.NewTypeConverter(scheme).ObjectToTyped(probe)
	if err != nil {
		return nil
	}
	return tv.Schema()
}
