package runc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRecordCache(t *testing.T) {
	r := &Runtime{cache: newRecordCache()}
	dir := t.TempDir()
	path := filepath.Join(dir, "c1", "container.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := r.writeRecord(path, &containerState{ID: "c1", Labels: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	// Served from memory: the file may go, the record stays until
	// forgotten.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var got containerState
	if err := r.readRecord(path, &got); err != nil || got.ID != "c1" || got.Labels["a"] != "1" {
		t.Fatalf("readRecord: got %+v, %v, want c1 with label a=1", got, err)
	}
	// A caller's change to its copy does not reach the cache.
	got.Labels["a"] = "changed"
	var again containerState
	if err := r.readRecord(path, &again); err != nil || again.Labels["a"] != "1" {
		t.Errorf("after changing a copy: got %+v, %v, want label a=1", again, err)
	}
	r.forgetPrefix(filepath.Join(dir, "c1"))
	if err := r.readRecord(path, &again); !os.IsNotExist(err) {
		t.Errorf("after forgetPrefix: got %v, want the file's absence", err)
	}
	// A record read from disk is remembered too.
	path2 := filepath.Join(dir, "sandbox.json")
	if err := writeJSON(path2, &sandboxState{ID: "s1", IPs: []string{"10.0.0.2"}}); err != nil {
		t.Fatal(err)
	}
	var sb sandboxState
	if err := r.readRecord(path2, &sb); err != nil || sb.ID != "s1" {
		t.Fatalf("readRecord from disk: got %+v, %v", sb, err)
	}
	if err := os.Remove(path2); err != nil {
		t.Fatal(err)
	}
	var sb2 sandboxState
	if err := r.readRecord(path2, &sb2); err != nil || len(sb2.IPs) != 1 {
		t.Errorf("second read: got %+v, %v, want it from memory", sb2, err)
	}
}
