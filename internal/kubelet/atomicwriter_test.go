package kubelet

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestAtomicValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{"a/b/c", true},
		{".hidden", true},
		{"a/.b", true},
		{"a..b", true},
		{"", false},
		{"/etc/passwd", false},
		{"..", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"..data", false},
		{"..2026_01_01", false},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("a/", 2049), false},
	} {
		err := validatePath(tc.path)
		if got := err == nil; got != tc.ok {
			t.Errorf("validatePath(%.40q): got err %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}

func TestAtomicValidatePayload(t *testing.T) {
	f := fileProjection{Data: []byte("x"), Mode: 0o644}
	for _, tc := range []struct {
		name    string
		paths   []string
		want    []string
		wantErr string
	}{
		{"clean", []string{"a", "b/c"}, []string{"a", "b/c"}, ""},
		{"cleaned", []string{"a/./b", "c//d"}, []string{"a/b", "c/d"}, ""},
		{"duplicate after cleaning", []string{"a/./b", "a/b"}, nil, "duplicate path"},
		{"file is parent", []string{"a", "a/b"}, nil, "parent directory"},
		{"dot", []string{"."}, nil, "must name a file"},
		{"absolute", []string{"/a"}, nil, "must be relative"},
		{"backstep", []string{"a/../b"}, nil, "must not contain '..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]fileProjection{}
			for _, p := range tc.paths {
				in[p] = f
			}
			got, err := validatePayload(in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if strings.Join(keys, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", keys, tc.want)
			}
		})
	}
}

// readVolumeFile reads a file through the volume's user-visible path.
func readVolumeFile(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// tsDirs lists the timestamped directories of dir.
func tsDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if isTsDirName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestAtomicWriterLayoutAndUpdates(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)

	changed, err := writeAtomic(dir, map[string]fileProjection{
		"a":     {Data: []byte("one"), Mode: 0o600},
		"sub/b": {Data: []byte("two"), Mode: 0o644},
		"gone":  {Data: []byte("bye"), Mode: 0o644},
	}, now, -1)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v err %v, want true nil", changed, err)
	}
	ts := tsDirs(t, dir)
	if len(ts) != 1 || !strings.HasPrefix(ts[0], "..2026_11_24_17_00_00.") {
		t.Fatalf("timestamped dirs: got %v, want one ..2026_11_24_17_00_00.*", ts)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "..data")); got != ts[0] {
		t.Errorf("..data: got %q, want %q", got, ts[0])
	}
	for _, top := range []string{"a", "sub", "gone"} {
		if got, _ := os.Readlink(filepath.Join(dir, top)); got != "..data/"+top {
			t.Errorf("link %s: got %q, want %q", top, got, "..data/"+top)
		}
	}
	if got := readVolumeFile(t, dir, "sub/b"); got != "two" {
		t.Errorf("sub/b: got %q, want two", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of a: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// The same payload writes nothing.
	same := map[string]fileProjection{
		"a":     {Data: []byte("one"), Mode: 0o600},
		"sub/b": {Data: []byte("two"), Mode: 0o644},
		"gone":  {Data: []byte("bye"), Mode: 0o644},
	}
	if changed, err := writeAtomic(dir, same, now.Add(time.Second), -1); err != nil || changed {
		t.Fatalf("same payload: changed %v err %v, want false nil", changed, err)
	}
	if got := tsDirs(t, dir); len(got) != 1 || got[0] != ts[0] {
		t.Errorf("after no-op: got %v, want %v", got, ts)
	}

	// An update swaps ..data, removes the old directory and the link of a
	// path that is gone; a mode change alone is an update too.
	later := now.Add(time.Minute)
	changed, err = writeAtomic(dir, map[string]fileProjection{
		"a":     {Data: []byte("one"), Mode: 0o640},
		"sub/b": {Data: []byte("three"), Mode: 0o644},
	}, later, -1)
	if err != nil || !changed {
		t.Fatalf("update: changed %v err %v, want true nil", changed, err)
	}
	ts2 := tsDirs(t, dir)
	if len(ts2) != 1 || ts2[0] == ts[0] || !strings.HasPrefix(ts2[0], "..2026_11_24_17_01_00.") {
		t.Fatalf("after update: got %v, want one new ..2026_11_24_17_01_00.*", ts2)
	}
	if got := readVolumeFile(t, dir, "sub/b"); got != "three" {
		t.Errorf("sub/b: got %q, want three", got)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode of a: got %v, want 0640", fi.Mode().Perm())
	}
	if _, err := os.Lstat(filepath.Join(dir, "gone")); !os.IsNotExist(err) {
		t.Errorf("link gone: got err %v, want not exist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "..data_tmp")); !os.IsNotExist(err) {
		t.Errorf("..data_tmp left behind: %v", err)
	}

	// An empty payload empties the volume.
	if _, err := writeAtomic(dir, nil, later.Add(time.Minute), -1); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if !isTsDirName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if strings.Join(names, ",") != "..data" {
		t.Errorf("after empty payload: got %v, want only ..data and its directory", names)
	}
}

func TestAtomicWriterRejectsInvalidPayload(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomic(dir, map[string]fileProjection{"../escape": {Data: []byte("x"), Mode: 0o644}}, time.Now(), -1); err == nil {
		t.Fatal("got no error for ../escape, want one")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid payload wrote %d entries, want none", len(entries))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
		t.Errorf("escape written outside the volume")
	}
}
