package apiserver

import (
	"encoding/json"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/apiserver/printers"
)

// table renders objects as a server-side Table, the form `kubectl get`
// prints. includeObject chooses what each row carries: the object's
// metadata (default, what kubectl needs for names and labels), the whole
// object, or nothing.
func (c *call) table(objs []runtime.Object, lm metav1.ListMeta) (*metav1.Table, error) {
	t := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ListMeta:          lm,
		ColumnDefinitions: printers.ColumnDefinitions(c.ep.gvk.GroupKind()),
		Rows:              []metav1.TableRow{},
	}
	include := metav1.IncludeObjectPolicy(c.r.URL.Query().Get("includeObject"))
	switch include {
	case "":
		include = metav1.IncludeMetadata
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
	default:
		return nil, apierrors.NewBadRequest("includeObject: Unsupported value: " + string(include))
	}
	for _, obj := range objs {
		cells, err := printers.Row(obj, c.now)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		row := metav1.TableRow{Cells: cells}
		switch include {
		case metav1.IncludeMetadata:
			b, err := json.Marshal(partial(obj))
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			row.Object = runtime.RawExtension{Raw: b}
		case metav1.IncludeObject:
			raw, err := toRaw(obj)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			row.Object = raw
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
