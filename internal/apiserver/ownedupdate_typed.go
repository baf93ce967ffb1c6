package apiserver

import (
	"encoding/json"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// typedScalarChanges is scalarChanges over the Go values themselves, so
// that an update need not convert both objects to unstructured maps. It
// walks structs by their JSON names as the managed-fields library's paths
// name them, and answers false (the caller then takes the library's path)
// for anything but values of present scalar fields changing: a field
// appearing or disappearing (nil pointers, empty omitempty values, map
// keys), a list changing, or a type it does not know.
func typedScalarChanges(a, b reflect.Value, path []string, out *[][]string) bool {
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return typedScalarChanges(a.Elem(), b.Elem(), path, out)
	case reflect.Struct:
		if isJSONLeaf(a.Type()) {
			return leafChange(a, b, path, out)
		}
		if marshalsItself(a.Type()) {
			return false // a JSON form this walk does not know
		}
		t := a.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			fa, fb := a.Field(i), b.Field(i)
			if name == "" && f.Anonymous { // embedded: inlined, as TypeMeta
				if !typedScalarChanges(fa, fb, path, out) {
					return false
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			if strings.Contains(opts, "omitempty") && fa.IsZero() != fb.IsZero() {
				return false // a field appears or disappears
			}
			if fa.IsZero() && fb.IsZero() {
				continue
			}
			p := append(path[:len(path):len(path)], name)
			if !typedScalarChanges(fa, fb, p, out) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Type().Key().Kind() != reflect.String || a.Len() != b.Len() {
			return a.Len() == 0 && b.Len() == 0 && a.Type().Key().Kind() == reflect.String
		}
		it := a.MapRange()
		for it.Next() {
			vb := b.MapIndex(it.Key())
			if !vb.IsValid() {
				return false
			}
			p := append(path[:len(path):len(path)], it.Key().String())
			if !typedScalarChanges(it.Value(), vb, p, out) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return leafChange(a, b, path, out)
	}
	return false
}

// leafChange records path when two scalars differ.
func leafChange(a, b reflect.Value, path []string, out *[][]string) bool {
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, path)
	}
	return true
}

// marshalsItself reports whether a struct type has its own JSON form.
func marshalsItself(t reflect.Type) bool {
	m := reflect.TypeFor[json.Marshaler]()
	return t.Implements(m) || reflect.PointerTo(t).Implements(m)
}

// isJSONLeaf reports whether a struct type serializes as one JSON scalar
// of its own (metav1.Time, MicroTime, resource.Quantity, IntOrString).
func isJSONLeaf(t reflect.Type) bool {
	switch t.Name() {
	case "Time", "MicroTime", "Quantity", "IntOrString", "Duration":
		return marshalsItself(t)
	}
	return false
}

// strippedCopy is a shallow copy of obj without what the managed-fields
// library never tracks (apiVersion, kind, name, namespace, uid,
// resourceVersion, generation, creationTimestamp, selfLink, managedFields),
// for typedScalarChanges. obj itself is not changed.
func strippedCopy(obj runtime.Object) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	acc, err := meta.Accessor(cp.Interface())
	if err != nil {
		return reflect.Value{}, false
	}
	acc.SetName("")
	acc.SetNamespace("")
	acc.SetUID("")
	acc.SetResourceVersion("")
	acc.SetGeneration(0)
	acc.SetCreationTimestamp(metav1.Time{})
	acc.SetSelfLink("")
	acc.SetManagedFields(nil)
	if tm := cp.Elem().FieldByName("TypeMeta"); tm.IsValid() && tm.CanSet() {
		tm.Set(reflect.Zero(tm.Type()))
	}
	return cp.Elem(), true
}
