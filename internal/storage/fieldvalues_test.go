package storage

import (
	"testing"

	"k8s.io/apimachinery/pkg/fields"
)

func TestFieldValues(t *testing.T) {
	var keys fieldKeys
	a := keys.values(fields.Set{"metadata.name": "a", "spec.nodeName": "node-1", "status.phase": "Running"})
	b := keys.values(fields.Set{"metadata.name": "b", "spec.nodeName": "", "status.phase": "Pending"})
	if &a.keys[0] != &b.keys[0] {
		t.Error("objects with the same fields do not share their keys")
	}
	for _, tc := range []struct {
		sel  string
		a, b bool
	}{
		{"spec.nodeName=node-1", true, false},
		{"spec.nodeName=", false, true},
		{"spec.nodeName!=node-1,status.phase=Pending", false, true},
		{"metadata.name=b", false, true},
		{"status.podIP=", true, true}, // a field the object does not have is empty
		{"status.podIP!=", false, false},
	} {
		sel, err := fields.ParseSelector(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(a); got != tc.a {
			t.Errorf("%q matches a: %v, want %v", tc.sel, got, tc.a)
		}
		if got := sel.Matches(b); got != tc.b {
			t.Errorf("%q matches b: %v, want %v", tc.sel, got, tc.b)
		}
	}
	c := keys.values(fields.Set{"metadata.name": "c"})
	if c.Has("spec.nodeName") || c.Get("metadata.name") != "c" || len(c.keys) != 1 {
		t.Errorf("an object with other fields: %+v", c)
	}
	d := keys.values(fields.Set{"metadata.name": "d", "spec.nodeName": "node-2", "status.podIP": "10.0.0.1"})
	if d.Has("status.phase") || d.Get("status.podIP") != "10.0.0.1" || d.Get("spec.nodeName") != "node-2" {
		t.Errorf("an object with as many but other fields: %+v", d)
	}
	if !a.Has("spec.nodeName") || a.Get("spec.nodeName") != "node-1" {
		t.Errorf("a lost its values when c brought other keys: %+v", a)
	}
}
