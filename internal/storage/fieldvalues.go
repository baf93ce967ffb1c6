package storage

import (
	"slices"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/fields"
)

// fieldValues is the selectable fields of one cached object: their values
// in the order of keys, which every object of a resource with the same
// fields shares. The cache holds one per object (30,000 pods, 30,000 events
// and more in a large cluster), and a Go map of eight or nine strings
// weighs three to four times these two slices.
type fieldValues struct {
	keys []string // sorted; shared, never modified
	vals []string
}

var _ fields.Fields = fieldValues{}

func (f fieldValues) Has(field string) bool {
	_, ok := slices.BinarySearch(f.keys, field)
	return ok
}

func (f fieldValues) Get(field string) string {
	if i, ok := slices.BinarySearch(f.keys, field); ok {
		return f.vals[i]
	}
	return ""
}

// fieldKeys hands out the sorted key slices objects share: the last one
// seen, which is every object's while a resource's set of fields does not
// change.
type fieldKeys struct{ last atomic.Pointer[[]string] }

// values returns set as fieldValues.
func (k *fieldKeys) values(set fields.Set) fieldValues {
	keys := k.shared(set)
	if keys == nil {
		keys = make([]string, 0, len(set))
		for key := range set {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		k.last.Store(&keys)
	}
	vals := make([]string, len(keys))
	for i, key := range keys {
		vals[i] = set[key]
	}
	return fieldValues{keys: keys, vals: vals}
}

// shared returns the last keys handed out if they are exactly set's, and
// nil if not.
func (k *fieldKeys) shared(set fields.Set) []string {
	last := k.last.Load()
	if last == nil || len(*last) != len(set) {
		return nil
	}
	for _, key := range *last {
		if _, ok := set[key]; !ok {
			return nil
		}
	}
	return *last
}
