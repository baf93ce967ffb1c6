package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/internal/defaults"
)

// patchType reads the patch type from the Content-Type header.
func patchType(r *http.Request) (types.PatchType, error) {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch pt := types.PatchType(strings.TrimSpace(ct)); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
		return pt, nil
	}
	return "", unsupportedMediaType(ct)
}

// applyJSONPatch applies a JSON, merge or strategic merge patch to the JSON
// of an object of type dataStruct.
func applyJSONPatch(pt types.PatchType, cur, patch []byte, dataStruct runtime.Object) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := p.Apply(cur)
		if err != nil {
			return nil, apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"), string(patch), err.Error())})
		}
		return out, nil
	case types.MergePatchType:
		if !json.Valid(patch) {
			return nil, apierrors.NewBadRequest("error decoding patch: invalid JSON")
		}
		out, err := jsonpatch.MergePatch(cur, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	case types.StrategicMergePatchType:
		if !json.Valid(patch) {
			return nil, apierrors.NewBadRequest("error decoding patch: invalid JSON")
		}
		out, err := strategicpatch.StrategicMergePatch(cur, patch, dataStruct)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	}
	return nil, unsupportedMediaType(string(pt))
}

func (c *call) patch(sub string) error {
	pt, err := patchType(c.r)
	if err != nil {
		return err
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	force := isTrue(c.r.URL.Query().Get("force"))
	apply := pt == types.ApplyYAMLPatchType
	var applied *unstructured.Unstructured
	if apply {
		if c.r.URL.Query().Get("fieldManager") == "" {
			return apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "",
				field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")})
		}
		if applied, err = c.decodeApply(body); err != nil {
			return err
		}
	} else if force {
		return apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "",
			field.ErrorList{field.Forbidden(field.NewPath("force"), "may not be specified for non-apply patch")})
	}

	return c.write(apply && sub == "", func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return c.applyCreate(applied, force)
		}
		served, err := c.toServed(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		var next runtime.Object
		if apply {
			if next, err = c.ep.applier(sub).Apply(served, applied.DeepCopy(), c.fieldManager, force); err != nil {
				return nil, err
			}
		} else {
			curJSON, err := json.Marshal(served)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			dataStruct, _ := c.s.cfg.Scheme.New(c.ep.gvk)
			patched, err := applyJSONPatch(pt, curJSON, body, dataStruct)
			if err != nil {
				return nil, err
			}
			if next, err = c.decode(patched, c.ep.gvk); err != nil {
				return nil, err
			}
		}
		defaults.Default(next)
		if next, err = c.toStorage(next); err != nil {
			return nil, err
		}
		return c.prepareUpdate(cur, next, sub, !apply)
	})
}

// decodeApply parses a server-side apply body and checks that it names the
// object of the URL.
func (c *call) decodeApply(body []byte) (*unstructured.Unstructured, error) {
	convert := yaml.YAMLToJSON
	if c.fieldValidation == "Strict" {
		convert = yaml.YAMLToJSONStrict
	}
	data, err := convert(body)
	if err != nil {
		return nil, apierrors.NewBadRequest("error decoding YAML: " + err.Error())
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, apierrors.NewBadRequest("error decoding apply patch: " + err.Error())
	}
	if u.GetAPIVersion() != c.ep.gvk.GroupVersion().String() || u.GetKind() != c.ep.gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object in the apply patch (%s, Kind=%s) does not match the expected %s",
			u.GetAPIVersion(), u.GetKind(), c.ep.gvk.String()))
	}
	if u.GetName() != "" && u.GetName() != c.info.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", u.GetName(), c.info.Name))
	}
	if ns := u.GetNamespace(); c.ep.res.Namespaced && ns != "" && ns != c.info.Namespace {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return u, nil
}

// applyCreate creates an object from a server-side apply patch.
func (c *call) applyCreate(applied *unstructured.Unstructured, force bool) (runtime.Object, error) {
	live, err := c.s.cfg.Scheme.New(c.ep.gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	acc, _ := meta.Accessor(live)
	acc.SetName(c.info.Name)
	if c.ep.res.Namespaced {
		acc.SetNamespace(c.info.Namespace)
	}
	live.GetObjectKind().SetGroupVersionKind(c.ep.gvk)
	obj, err := c.ep.applier("").Apply(live, applied.DeepCopy(), c.fieldManager, force)
	if err != nil {
		return nil, err
	}
	defaults.Default(obj)
	if obj, err = c.toStorage(obj); err != nil {
		return nil, err
	}
	if err := c.prepareCreate(obj); err != nil {
		return nil, err
	}
	return obj, nil
}
