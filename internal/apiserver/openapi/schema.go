package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
)

// Vendor extensions Kubernetes clients read from the documents.
const (
	extGVK           = "x-kubernetes-group-version-kind"
	extAction        = "x-kubernetes-action"
	extPatchStrategy = "x-kubernetes-patch-strategy"
	extPatchMergeKey = "x-kubernetes-patch-merge-key"
	extListType      = "x-kubernetes-list-type"
	extListMapKeys   = "x-kubernetes-list-map-keys"
	extMapType       = "x-kubernetes-map-type"
)

const defPrefix = "#/definitions/"

// The methods apimachinery's hand-written types use to describe their wire
// form to OpenAPI generators (metav1.Time, resource.Quantity, ...).
type (
	modelNamer  interface{ OpenAPIModelName() string }
	schemaTyper interface {
		OpenAPISchemaType() []string
		OpenAPISchemaFormat() string
	}
	oneOfTyper  interface{ OpenAPIV3OneOfTypes() []string }
	swaggerDocs interface{ SwaggerDoc() map[string]string }
)

// scalarDescriptions describe the apimachinery types that have a custom wire
// form and no SwaggerDoc of their own.
var scalarDescriptions = map[string]string{
	"io.k8s.apimachinery.pkg.apis.meta.v1.Time":       "Time is a timestamp written as an RFC 3339 string with second precision, for example \"2024-01-02T15:04:05Z\".",
	"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":  "MicroTime is a timestamp written as an RFC 3339 string with microsecond precision, for example \"2024-01-02T15:04:05.000000Z\".",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":   "Duration is a length of time written as a Go duration string, for example \"1h30m\".",
	"io.k8s.apimachinery.pkg.api.resource.Quantity":   "Quantity is a fixed-point number written as a string: digits with an optional decimal exponent (\"1e3\") or an optional binary suffix (Ki, Mi, Gi, Ti, Pi, Ei) or decimal suffix (m, k, M, G, T, P, E), for example \"500m\" or \"1Gi\". A JSON number is also accepted.",
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString holds either an integer or a string and is written as whichever of the two it holds, for example 8080 or \"http\".",
	"io.k8s.apimachinery.pkg.runtime.RawExtension":    "RawExtension holds a complete embedded object of any kind, written inline as JSON with its own apiVersion and kind.",
}

var (
	jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	byteSlice       = reflect.TypeOf([]byte(nil))
)

// definitions turns Go types into OpenAPI v2 definitions. It is used once,
// while New runs, and then dropped.
type definitions struct {
	schemas map[string]*spec.Schema
	// v3 holds the OpenAPI v3 form of the few definitions whose v3 form is
	// not a plain conversion of the v2 one (values that may be a number or a
	// string are a oneOf in v3).
	v3 map[string]*spec.Schema
	// gvks lists, per Go type, the kinds it is served as.
	gvks map[reflect.Type][]schema.GroupVersionKind
	// lists supplies, by definition name, the list and map semantics
	// (+listType, +listMapKey, +mapType, +structType) that Go struct tags
	// do not carry. Types missing from it fall back to the patch tags.
	lists map[string]*smdschema.Map
	err   error
}

func newDefinitions(gvks map[reflect.Type][]schema.GroupVersionKind, lists *smdschema.Schema) *definitions {
	d := &definitions{
		schemas: map[string]*spec.Schema{},
		v3:      map[string]*spec.Schema{},
		gvks:    gvks,
		lists:   map[string]*smdschema.Map{},
	}
	// Indexed here rather than with the schema's own lookups, which would
	// leave their indexes behind in client-go's long-lived copy.
	if lists != nil {
		for i := range lists.Types {
			if m := lists.Types[i].Map; m != nil {
				d.lists[lists.Types[i].Name] = m
			}
		}
	}
	return d
}

// modelName is the upstream definition name of a named Go type:
// k8s.io/api/apps/v1.Deployment -> io.k8s.api.apps.v1.Deployment.
func modelName(t reflect.Type) string {
	if n, ok := implements[modelNamer](t); ok {
		return n.OpenAPIModelName()
	}
	return util.ToRESTFriendlyName(t.PkgPath() + "." + t.Name())
}

// implements reports whether t or *t has the method set I, and returns a zero
// value to call the methods on. The methods used here never read the value.
func implements[I any](t reflect.Type) (I, bool) {
	if v, ok := reflect.Zero(t).Interface().(I); ok {
		return v, true
	}
	v, ok := reflect.New(t).Interface().(I)
	return v, ok
}

// ref returns the name of the definition for the named type t, building the
// definition (and those it refers to) on first use.
func (d *definitions) ref(t reflect.Type) string {
	name := modelName(t)
	if _, ok := d.schemas[name]; ok {
		return name
	}
	s := &spec.Schema{}
	// Registered before it is filled so that recursive types terminate.
	d.schemas[name] = s
	if typer, ok := implements[schemaTyper](t); ok {
		d.scalar(name, s, typer, t)
		return name
	}
	if t.Kind() != reflect.Struct {
		d.fail(fmt.Errorf("type %s: a definition needs a struct, got %s", t, t.Kind()))
		return name
	}
	d.object(name, s, t)
	return name
}

func (d *definitions) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// scalar fills the definition of a type with a custom JSON form described by
// its OpenAPISchemaType/OpenAPISchemaFormat methods.
func (d *definitions) scalar(name string, s *spec.Schema, typer schemaTyper, t reflect.Type) {
	s.Description = scalarDescriptions[name]
	s.Type = typer.OpenAPISchemaType()
	s.Format = typer.OpenAPISchemaFormat()
	if oneOf, ok := implements[oneOfTyper](t); ok {
		v3 := &spec.Schema{SchemaProps: spec.SchemaProps{Description: s.Description, Format: s.Format}}
		v3.OneOf = common.GenerateOpenAPIV3OneOfSchema(oneOf.OpenAPIV3OneOfTypes())
		d.v3[name] = v3
	}
}

// object fills the definition of a struct from its exported JSON fields.
func (d *definitions) object(name string, s *spec.Schema, t reflect.Type) {
	s.Type = spec.StringOrArray{"object"}
	s.Description = typeDoc(t)[""]
	smdType := d.lists[name]
	d.fields(s, t, smdType)
	if smdType != nil && smdType.ElementRelationship == smdschema.Atomic {
		s.AddExtension(extMapType, "atomic")
	}
	if gvks := d.gvks[t]; len(gvks) > 0 {
		list := make([]interface{}, 0, len(gvks))
		for _, gvk := range gvks {
			list = append(list, gvkExtension(gvk))
		}
		s.AddExtension(extGVK, list)
	}
}

// fields adds the JSON fields of struct t to s; embedded structs without a
// JSON name are flattened, as encoding/json does.
func (d *definitions) fields(s *spec.Schema, t reflect.Type, smdType *smdschema.Map) {
	docs := typeDoc(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		jsonName, opts, _ := strings.Cut(tag, ",")
		if jsonName == "-" && opts == "" {
			continue
		}
		if f.Anonymous && jsonName == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				d.fields(s, ft, smdType)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if jsonName == "" {
			jsonName = f.Name
		}
		omitEmpty := hasTag && strings.Contains(","+opts+",", ",omitempty,")
		prop := d.property(f.Type, omitEmpty)
		prop.Description = docs[jsonName]
		d.annotate(&prop, f, jsonName, smdType)
		if s.Properties == nil {
			s.Properties = map[string]spec.Schema{}
		}
		s.Properties[jsonName] = prop
		// Upstream's generator makes a field required unless it is omitempty
		// or marked +optional; comments are not visible to reflection, and
		// pointer fields are nearly always +optional.
		if !omitEmpty && f.Type.Kind() != reflect.Pointer {
			s.Required = append(s.Required, jsonName)
		}
	}
}

// annotate adds the patch and list/map semantics of struct field f.
func (d *definitions) annotate(prop *spec.Schema, f reflect.StructField, jsonName string, smdType *smdschema.Map) {
	strategy := f.Tag.Get("patchStrategy")
	mergeKey := f.Tag.Get("patchMergeKey")
	if strategy != "" {
		prop.AddExtension(extPatchStrategy, strategy)
	}
	if mergeKey != "" {
		prop.AddExtension(extPatchMergeKey, mergeKey)
	}
	var field *smdschema.StructField
	if smdType != nil {
		for i := range smdType.Fields {
			if smdType.Fields[i].Name == jsonName {
				field = &smdType.Fields[i]
				break
			}
		}
	}
	isList := len(prop.Type) == 1 && prop.Type[0] == "array"
	isMap := len(prop.Type) == 1 && prop.Type[0] == "object" && prop.AdditionalProperties != nil
	switch {
	case field != nil && isList && field.Type.Inlined.List != nil:
		l := field.Type.Inlined.List
		switch {
		case l.ElementRelationship == smdschema.Associative && len(l.Keys) > 0:
			prop.AddExtension(extListType, "map")
			prop.AddExtension(extListMapKeys, stringsToAny(l.Keys))
		case l.ElementRelationship == smdschema.Associative:
			prop.AddExtension(extListType, "set")
		default:
			prop.AddExtension(extListType, "atomic")
		}
	case field == nil && isList && strings.Contains(strategy, "merge"):
		// Without list metadata the patch tags are what upstream derives
		// list semantics from too.
		if mergeKey != "" {
			prop.AddExtension(extListType, "map")
			prop.AddExtension(extListMapKeys, []interface{}{mergeKey})
		} else {
			prop.AddExtension(extListType, "set")
		}
	case field != nil && isMap && field.Type.Inlined.Map != nil:
		if field.Type.Inlined.Map.ElementRelationship == smdschema.Atomic {
			prop.AddExtension(extMapType, "atomic")
		}
	case field != nil && field.Type.NamedType != nil && field.Type.ElementRelationship != nil:
		if *field.Type.ElementRelationship == smdschema.Atomic {
			prop.AddExtension(extMapType, "atomic")
		}
	}
}

// property returns the schema of a value of type t held in a field, a list
// item or a map value. References carry their siblings (description,
// default) next to $ref, as OpenAPI v2 allows.
func (d *definitions) property(t reflect.Type, omitEmpty bool) spec.Schema {
	s := d.typeSchema(t)
	if def := zeroDefault(t, omitEmpty); def != nil {
		s.Default = def
	}
	return s
}

func (d *definitions) typeSchema(t reflect.Type) spec.Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == byteSlice || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8) {
		return primitive("string", "byte")
	}
	if t.Name() != "" && t.PkgPath() != "" {
		if _, ok := implements[schemaTyper](t); ok || t.Kind() == reflect.Struct {
			return refSchema(d.ref(t))
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		typ, format := common.OpenAPITypeFormat(t.Kind().String())
		return primitive(typ, format)
	case reflect.Slice, reflect.Array:
		item := d.property(t.Elem(), false)
		return spec.Schema{SchemaProps: spec.SchemaProps{
			Type:  spec.StringOrArray{"array"},
			Items: &spec.SchemaOrArray{Schema: &item},
		}}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			d.fail(fmt.Errorf("type %s: map keys must be strings", t))
		}
		value := d.property(t.Elem(), false)
		return spec.Schema{SchemaProps: spec.SchemaProps{
			Type:                 spec.StringOrArray{"object"},
			AdditionalProperties: &spec.SchemaOrBool{Allows: true, Schema: &value},
		}}
	case reflect.Interface:
		return primitive("object", "")
	case reflect.Struct:
		// Anonymous struct types do not occur in the served API.
		d.fail(fmt.Errorf("type %s: anonymous structs are not supported", t))
		return primitive("object", "")
	default:
		d.fail(fmt.Errorf("type %s: kind %s has no OpenAPI form", t, t.Kind()))
		return spec.Schema{}
	}
}

// zeroDefault is the default upstream's generator records for a value that
// is always present on the wire: {} for structs, the zero value for scalars
// that are not omitempty, nothing for pointers, lists, maps and types with a
// custom JSON form (they encode their zero value as null).
func zeroDefault(t reflect.Type, omitEmpty bool) interface{} {
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || t.Implements(jsonUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return nil
	case reflect.Struct:
		return map[string]interface{}{}
	}
	if omitEmpty {
		return nil
	}
	zero, ok := common.OpenAPIZeroValue(t.Kind().String())
	if !ok {
		return nil
	}
	return zero
}

func primitive(typ, format string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{typ}, Format: format}}
}

func refSchema(name string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(defPrefix + name)}}
}

// typeDoc returns the SwaggerDoc of t: field descriptions by JSON name and,
// under "", the description of the type.
func typeDoc(t reflect.Type) map[string]string {
	if d, ok := implements[swaggerDocs](t); ok {
		return d.SwaggerDoc()
	}
	return nil
}

func gvkExtension(gvk schema.GroupVersionKind) map[string]interface{} {
	return map[string]interface{}{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

func stringsToAny(in []string) []interface{} {
	out := make([]interface{}, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// refs calls visit with the name of every definition s refers to directly.
func refs(s *spec.Schema, visit func(string)) {
	if s == nil {
		return
	}
	if r := s.Ref.String(); r != "" {
		visit(strings.TrimPrefix(r, defPrefix))
	}
	for _, p := range s.Properties {
		refs(&p, visit)
	}
	if s.Items != nil {
		refs(s.Items.Schema, visit)
		for i := range s.Items.Schemas {
			refs(&s.Items.Schemas[i], visit)
		}
	}
	if s.AdditionalProperties != nil {
		refs(s.AdditionalProperties.Schema, visit)
	}
	for _, group := range [][]spec.Schema{s.AllOf, s.OneOf, s.AnyOf} {
		for i := range group {
			refs(&group[i], visit)
		}
	}
}

// closure returns the names of the given definitions and of every definition
// they refer to, directly or not, sorted.
func (d *definitions) closure(roots []string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		refs(d.schemas[name], walk)
	}
	for _, r := range roots {
		walk(r)
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
