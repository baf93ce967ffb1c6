package runc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCgroupLayouts runs the cgroup helpers on fake v1 (hybrid) and v2
// trees: these machines are cgroup v1 with an empty unified hierarchy, so
// the v2 layout is only met here.
func TestCgroupLayouts(t *testing.T) {
	const root, parent, ctr = "skiff", "kubepods/burstable/pod1", "c1"
	write := func(file, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		v2   bool
	}{{"v1", false}, {"v2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			mount := t.TempDir()
			cg := cgroupsPath(root, parent, ctr)
			var want []string
			if tc.v2 {
				write(filepath.Join(mount, "cgroup.controllers"), "cpuset cpu io memory pids\n")
				write(filepath.Join(mount, cg, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
				want = []string{mount}
			} else {
				for _, c := range []string{"cpu", "memory", "pids", "unified"} {
					if err := os.MkdirAll(filepath.Join(mount, c, root, parent), 0o755); err != nil {
						t.Fatal(err)
					}
					want = append(want, filepath.Join(mount, c))
				}
				// "cpu,cpuacct"-style links are not hierarchies of their own.
				if err := os.Symlink("cpu", filepath.Join(mount, "cpu,cpuacct")); err != nil {
					t.Fatal(err)
				}
				write(filepath.Join(mount, "memory", cg, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
			}
			if got := hierarchiesIn(mount); !slices.Equal(got, want) {
				t.Errorf("hierarchies: got %v, want %v", got, want)
			}
			if !oomKilledIn(mount, cg) {
				t.Error("oomKilled: false, want the kill the memory controller counted")
			}
			if oomKilledIn(mount, cgroupsPath(root, parent, "other")) {
				t.Error("oomKilled of a container without a cgroup: true")
			}

			// The pod's cgroup goes once runc removed the containers',
			// and its empty ancestors up to the root with it.
			for _, h := range want {
				_ = os.RemoveAll(filepath.Join(h, cg))
			}
			removeCgroupIn(mount, root, parent)
			for _, h := range want {
				if _, err := os.Stat(filepath.Join(h, root)); !os.IsNotExist(err) {
					t.Errorf("%s still there after removeCgroup: %v", filepath.Join(h, root), err)
				}
			}
		})
	}
}
