package runc

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupMount is where the cgroup hierarchies are mounted.
const cgroupMount = "/sys/fs/cgroup"

// cgroupsPath is a container's cgroup, absolute within every hierarchy.
func cgroupsPath(root, parent, containerID string) string {
	return path.Join("/", root, parent, containerID)
}

// hierarchies lists the mounted cgroup hierarchies: the one unified mount
// on a cgroup v2 host, else each v1 controller directory (and the empty
// unified one of a hybrid host).
func hierarchies() []string { return hierarchiesIn(cgroupMount) }

// hierarchiesIn is hierarchies with the cgroup file system at mount.
func hierarchiesIn(mount string) []string {
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		return []string{mount}
	}
	entries, err := os.ReadDir(mount)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() { // skips the "cpu,cpuacct" style symlinks
			out = append(out, filepath.Join(mount, e.Name()))
		}
	}
	return out
}

// removeCgroup removes the pod's cgroup root/parent in every hierarchy
// and then its ancestors up to and including root, stopping at the first
// one still in use. Containers' own cgroups are runc's to remove.
func removeCgroup(root, parent string) { removeCgroupIn(cgroupMount, root, parent) }

// removeCgroupIn is removeCgroup with the cgroup file system at mount.
func removeCgroupIn(mount, root, parent string) {
	rel := path.Join("/", root, parent)
	stop := path.Join("/", root)
	for _, h := range hierarchiesIn(mount) {
		for p := rel; p != "/" && strings.HasPrefix(p, stop); p = path.Dir(p) {
			if err := os.Remove(filepath.Join(h, p)); err != nil && !os.IsNotExist(err) {
				break
			}
			if p == stop {
				break
			}
		}
	}
}

// oomKilled reports whether the kernel OOM-killed a process in the cgroup
// at cgroupPath (absolute within the hierarchy). It must be read before
// runc removes the cgroup.
func oomKilled(cgroupPath string) bool { return oomKilledIn(cgroupMount, cgroupPath) }

// oomKilledIn is oomKilled with the cgroup file system at mount.
func oomKilledIn(mount, cgroupPath string) bool {
	// cgroup v1 memory controller, then v2.
	if n, ok := readKeyed(filepath.Join(mount, "memory", cgroupPath, "memory.oom_control"), "oom_kill"); ok {
		return n > 0
	}
	if n, ok := readKeyed(filepath.Join(mount, cgroupPath, "memory.events"), "oom_kill"); ok {
		return n > 0
	}
	return false
}

// readKeyed reads the value of key from a "key value" per line cgroup
// file.
func readKeyed(file, key string) (uint64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	return parseKeyed(data, key)
}

func parseKeyed(data []byte, key string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
