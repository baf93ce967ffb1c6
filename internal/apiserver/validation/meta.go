package validation

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// nameFunc checks a metadata.name (or generateName when prefix is true).
type nameFunc = apimachineryvalidation.ValidateNameFunc

// Name rules used by the kinds we serve, as upstream assigns them.
var (
	nameIsDNSSubdomain = apimachineryvalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apimachineryvalidation.NameIsDNSLabel
	nameIsDNS1035Label = apimachineryvalidation.NameIsDNS1035Label
	nameIsPathSegment  = path.ValidatePathSegmentName
)

const (
	isNegativeErrorMsg    = apimachineryvalidation.IsNegativeErrorMsg
	fieldImmutableMsg     = apimachineryvalidation.FieldImmutableErrorMsg
	isNotIntegerErrorMsg  = "must be an integer"
	isNotPositiveErrorMsg = "must be greater than zero"
)

// standardFinalizers are the finalizer names that need no domain prefix.
func isStandardFinalizerName(name string) bool {
	switch name {
	case "kubernetes", metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		return true
	}
	return false
}

// validateObjectMeta is core's ValidateObjectMeta: the apimachinery checks
// plus the rule that unqualified finalizers must be standard ones.
func validateObjectMeta(meta *metav1.ObjectMeta, namespaced bool, nameFn nameFunc, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(meta, namespaced, nameFn, fldPath)
	for i := range meta.Finalizers {
		allErrs = append(allErrs, validateKubeFinalizerName(meta.Finalizers[i], fldPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

// validateObjectMetaUpdate is core's ValidateObjectMetaUpdate.
func validateObjectMetaUpdate(newMeta, oldMeta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(newMeta, oldMeta, fldPath)
	for i := range newMeta.Finalizers {
		allErrs = append(allErrs, validateKubeFinalizerName(newMeta.Finalizers[i], fldPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

func validateKubeFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	if len(strings.Split(name, "/")) == 1 && !isStandardFinalizerName(name) {
		return field.ErrorList{field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified")}
	}
	return nil
}

// validateFinalizerName is core's check for namespace spec.finalizers.
func validateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateFinalizerName(name, fldPath)
	return append(allErrs, validateKubeFinalizerName(name, fldPath)...)
}

// dedupe drops errors whose rendered text repeats an earlier one; upstream's
// generic and kind-specific metadata checks overlap on update.
func dedupe(errs field.ErrorList) field.ErrorList {
	if len(errs) < 2 {
		return errs
	}
	seen := make(map[string]bool, len(errs))
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		msg := e.Error()
		if seen[msg] {
			continue
		}
		seen[msg] = true
		out = append(out, e)
	}
	return out
}

func validateNonnegativeField(value int64, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateNonnegativeField(value, fldPath)
}

func validateImmutableField(newVal, oldVal interface{}, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

func validateLabels(labels map[string]string, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabels(labels, fldPath)
}

func validateLabelName(name string, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelName(name, fldPath)
}

func validateAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateAnnotations(annotations, fldPath)
}

// validateLabelSelector validates strictly: new objects never get the
// invalid-label-value allowance upstream keeps for stored data.
func validateLabelSelector(sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fldPath)
}

func validateDNS1123Label(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

func validateDNS1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

func validateQualifiedName(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsQualifiedName(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

// validateName reports a name checked with nameFn at fldPath.
func validateName(name string, nameFn nameFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range nameFn(name, false) {
		allErrs = append(allErrs, field.Invalid(fldPath, name, msg))
	}
	return allErrs
}

// validatePortNumOrName is core's ValidatePortNumOrName.
func validatePortNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch port.Type {
	case intstr.Int:
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			allErrs = append(allErrs, field.Invalid(fldPath, port.IntValue(), msg))
		}
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, port.StrVal, msg))
		}
	default:
		allErrs = append(allErrs, field.InternalError(fldPath, fmt.Errorf("unknown type: %v", port.Type)))
	}
	return allErrs
}

// validatePositiveIntOrPercent is apps' ValidatePositiveIntOrPercent.
func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, validateNonnegativeField(int64(v.IntValue()), fldPath)...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%%')"))
	}
	return allErrs
}

func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, true
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

// isNotMoreThan100Percent is apps' IsNotMoreThan100Percent.
func isNotMoreThan100Percent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	n, ok := percentValue(v)
	if !ok || n <= 100 {
		return nil
	}
	return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
}

// sortedKeys returns a map's keys in order, so errors come out in a stable
// order (upstream's map iteration order is random; the set is the same).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedResourceNames[V any](m map[corev1.ResourceName]V) []corev1.ResourceName {
	keys := make([]corev1.ResourceName, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// semanticEqual compares API values the way upstream does (quantities by
// value, times by instant).
func semanticEqual(a, b interface{}) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}

// specDiff renders what changed, like the diff upstream appends to
// "may not change" errors. Comparing types with unexported fields panics in
// go-cmp; the JSON diff is the fallback.
func specDiff(oldV, newV interface{}) (out string) {
	defer func() {
		if recover() != nil {
			out = diff.Diff(oldV, newV)
		}
	}()
	return cmp.Diff(oldV, newV)
}

// validateIP checks an address in a field that predates strict IP parsing;
// like clusters without StrictIPCIDRValidation, non-canonical forms pass.
func validateIP(fldPath *field.Path, value string) field.ErrorList {
	return validation.IsValidIPForLegacyField(fldPath, value, false, nil)
}

// validateCIDR is validateIP for CIDR fields.
func validateCIDR(fldPath *field.Path, value string) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fldPath, value, false, nil)
}

// internalValue renders a struct the way upstream's error messages show it.
// Upstream validates its internal types, which have no JSON tags, so a
// struct-valued BadValue prints with Go field names and without omitempty
// ({"Type":"BlueGreen","RollingUpdate":null}). Types with their own JSON
// form (quantities, int-or-strings, times, label selectors) keep it.
func internalValue(v interface{}) json.RawMessage {
	out, err := json.Marshal(internalForm(reflect.ValueOf(v)))
	if err != nil {
		return json.RawMessage(`null`)
	}
	return out
}

func internalForm(v reflect.Value) interface{} {
	if !v.IsValid() {
		return nil
	}
	// Shared apimachinery types are the same in upstream's internal API.
	if t := v.Type(); strings.HasPrefix(t.PkgPath(), "k8s.io/apimachinery/") && v.CanInterface() {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return internalForm(v.Elem())
	case reflect.Struct:
		var out orderedObject
		return addStructFields(v, out)
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface()
		}
		fallthrough
	case reflect.Array:
		out := make([]interface{}, v.Len())
		for i := range out {
			out[i] = internalForm(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]interface{}{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = internalForm(v.MapIndex(k))
		}
		return out
	}
	return v.Interface()
}

// addStructFields flattens embedded structs as encoding/json does.
func addStructFields(v reflect.Value, out orderedObject) orderedObject {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = addStructFields(v.Field(i), out)
			continue
		}
		out = append(out, keyValue{f.Name, internalForm(v.Field(i))})
	}
	return out
}

type keyValue struct {
	key   string
	value interface{}
}

// orderedObject is a JSON object that keeps its fields in struct order.
type orderedObject []keyValue

// MarshalJSON writes the fields in order.
func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.key)
		val, err := json.Marshal(kv.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
