package apiserver

import (
	"bytes"
	"encoding/json"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// ownedUpdate computes, without the managed-fields library, the
// managedFields an Update gets in the common case of a client that keeps
// rewriting the same fields: a node renewing its Lease, a controller
// bumping a counter it set before. When the update changes only the values
// of scalar fields (no field added or removed, no list touched) that the
// updating manager's own Update entry already owns and no other entry owns,
// the full computation (both objects converted to typed values, validated
// and compared) ends with every entry as it was and that manager's time set
// to now; ownedUpdate returns exactly that. It answers ok=false whenever
// the case is not that one, and the caller runs the full computation.
//
// reset holds the fields the endpoint's strategy resets for this
// subresource (the full computation never gives them to the updater), and
// apiVersion the version the endpoint's field manager records. sets, if
// not nil, keeps decoded fieldsV1 sets between calls.
func ownedUpdate(cur, next metav1.Object, curObj, nextObj runtime.Object, manager, apiVersion, sub string,
	reset *fieldpath.Set, now time.Time, sets *fieldSetCache) ([]metav1.ManagedFieldsEntry, bool) {
	live := cur.GetManagedFields()
	if len(live) == 0 {
		return nil, false
	}
	// The request's own managedFields win over the live ones unless they
	// are absent (or the request is to a subresource); only "absent" and
	// "the same as live" keep the live ones.
	if sub == "" {
		if sent := next.GetManagedFields(); sent != nil && !sameManagedFields(sent, live) {
			return nil, false
		}
	}
	if manager == "" {
		manager = "unknown"
	}
	mine := -1
	decoded := make([]map[string]any, len(live))
	for i := range live {
		e := &live[i]
		if e.FieldsType != "FieldsV1" || e.FieldsV1 == nil || e.APIVersion != apiVersion {
			return nil, false
		}
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationUpdate && e.Subresource == sub {
			if mine >= 0 {
				return nil, false
			}
			mine = i
		}
	}
	if mine < 0 {
		return nil, false
	}
	a, okA := strippedCopy(curObj)
	b, okB := strippedCopy(nextObj)
	if !okA || !okB || a.Type() != b.Type() {
		return nil, false
	}
	var changed [][]string
	if !typedScalarChanges(a, b, nil, &changed) {
		return nil, false
	}
	out := append([]metav1.ManagedFieldsEntry(nil), live...)
	if len(changed) == 0 {
		return out, true
	}
	for _, p := range changed {
		if reset != nil && resetCovers(reset, p) {
			return nil, false
		}
		for i := range live {
			if decoded[i] == nil {
				var ok bool
				if decoded[i], ok = sets.get(live[i].FieldsV1.Raw); !ok {
					return nil, false
				}
			}
			if owns(decoded[i], p) != (i == mine) {
				return nil, false
			}
		}
	}
	out[mine].Time = &metav1.Time{Time: now.UTC()}
	sortManagedFields(out)
	return out, true
}

// sameManagedFields reports whether two managedFields lists are the same.
func sameManagedFields(a, b []metav1.ManagedFieldsEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		p, q := &a[i], &b[i]
		if p.Manager != q.Manager || p.Operation != q.Operation || p.APIVersion != q.APIVersion ||
			p.FieldsType != q.FieldsType || p.Subresource != q.Subresource ||
			(p.Time == nil) != (q.Time == nil) || (p.Time != nil && !p.Time.Equal(q.Time)) ||
			(p.FieldsV1 == nil) != (q.FieldsV1 == nil) || (p.FieldsV1 != nil && !bytes.Equal(p.FieldsV1.Raw, q.FieldsV1.Raw)) {
			return false
		}
	}
	return true
}

// fieldSetCache holds decoded fieldsV1 sets by their JSON. Objects of one
// kind written by one manager share them (a thousand nodes' Leases have
// the same two entries), so a renewal finds its sets decoded rather than
// parsing them again. The decoded sets are shared: never modify one.
type fieldSetCache struct {
	mu   sync.Mutex
	sets map[string]map[string]any
}

// fieldSetCacheSize bounds the cache; when full it starts over, which
// costs a few decodes and keeps the memory bounded whatever the mix.
const fieldSetCacheSize = 512

// get returns the decoded set of raw, and false if raw is not a JSON
// object. A nil cache decodes every time.
func (c *fieldSetCache) get(raw []byte) (map[string]any, bool) {
	if c == nil {
		var set map[string]any
		if err := json.Unmarshal(raw, &set); err != nil || set == nil {
			return nil, false
		}
		return set, true
	}
	c.mu.Lock()
	set, ok := c.sets[string(raw)]
	c.mu.Unlock()
	if ok {
		return set, true
	}
	if err := json.Unmarshal(raw, &set); err != nil || set == nil {
		return nil, false
	}
	c.mu.Lock()
	if c.sets == nil || len(c.sets) >= fieldSetCacheSize {
		c.sets = make(map[string]map[string]any, fieldSetCacheSize)
	}
	c.sets[string(raw)] = set
	c.mu.Unlock()
	return set, true
}

// owns reports whether a decoded fieldsV1 set holds the field at path
// itself (not only a parent or a child of it).
func owns(set map[string]any, path []string) bool {
	cur := set
	for _, k := range path {
		next, ok := cur["f:"+k].(map[string]any)
		if !ok {
			return false
		}
		cur = next
	}
	return len(cur) == 0
}

// resetCovers reports whether the reset set holds path or a parent of it.
func resetCovers(reset *fieldpath.Set, path []string) bool {
	p := make(fieldpath.Path, 0, len(path))
	for i := range path {
		name := path[i]
		p = append(p, fieldpath.PathElement{FieldName: &name})
		if reset.Has(p) {
			return true
		}
	}
	return false
}

// sortManagedFields orders entries as the managed-fields library stores
// them: by operation, then time (seconds), manager, API version and
// subresource.
func sortManagedFields(e []metav1.ManagedFieldsEntry) {
	sort.Slice(e, func(i, j int) bool {
		p, q := e[i], e[j]
		if p.Operation != q.Operation {
			return p.Operation < q.Operation
		}
		var ps, qs int64
		if p.Time != nil {
			ps = p.Time.Unix()
		}
		if q.Time != nil {
			qs = q.Time.Unix()
		}
		if ps != qs {
			return ps < qs
		}
		if p.Manager != q.Manager {
			return p.Manager < q.Manager
		}
		if p.APIVersion != q.APIVersion {
			return p.APIVersion < q.APIVersion
		}
		return p.Subresource < q.Subresource
	})
}
