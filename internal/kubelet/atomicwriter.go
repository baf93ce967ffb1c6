package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The atomic writer projects a set of files (a configMap's keys, a
// secret's, downward API values) into a volume directory so that a reader
// never sees a mix of old and new contents, as upstream's AtomicWriter
// does. The files live in a timestamped directory ("..2026_11_24_17_00_00.
// 123456789"); "..data" is a symlink to it, replaced with rename(2); every
// top-level user path is a symlink "<path> -> ..data/<path>". An update
// writes a new timestamped directory, swaps "..data" and removes the old
// one, so a reader that opens "<path>" sees either the old file or the new
// one. Config reloaders watch "..data" for exactly this swap.

const (
	// dataDirName is the symlink to the current timestamped directory.
	dataDirName = "..data"
	// newDataDirName is where the next "..data" is built before the rename.
	newDataDirName = "..data_tmp"
	// tsDirLayout prefixes timestamped directories; MkdirTemp appends
	// random digits after the final dot.
	tsDirLayout = "..2006_01_02_15_04_05."
	// maxPathLength and maxFileNameLength bound payload paths as upstream.
	maxPathLength     = 4096
	maxFileNameLength = 255
)

// fileProjection is one file of a volume's payload.
type fileProjection struct {
	Data []byte
	// Mode is the file's permission bits (0..0777).
	Mode int32
}

// validatePath reports whether p may be a path in a payload: relative,
// not empty, free of ".." elements, not starting with ".." (names the
// writer keeps for itself) and within upstream's length limits.
func validatePath(p string) error {
	if p == "" {
		return errors.New("invalid path: must not be empty")
	}
	if path.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(p, "/")
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// validatePayload checks every path of payload and returns the payload
// keyed by cleaned paths. Two paths that clean to the same one, or a path
// that is the parent directory of another, are an error: the files would
// overwrite each other.
func validatePayload(payload map[string]fileProjection) (map[string]fileProjection, error) {
	out := make(map[string]fileProjection, len(payload))
	for p, fp := range payload {
		if err := validatePath(p); err != nil {
			return nil, err
		}
		c := path.Clean(p)
		if c == "." {
			return nil, fmt.Errorf("invalid path: must name a file: %s", p)
		}
		if _, dup := out[c]; dup {
			return nil, fmt.Errorf("invalid path: duplicate path %q", c)
		}
		out[c] = fp
	}
	for c := range out {
		for dir := path.Dir(c); dir != "."; dir = path.Dir(dir) {
			if _, ok := out[dir]; ok {
				return nil, fmt.Errorf("invalid path: %q is a file and the parent directory of %q", dir, c)
			}
		}
	}
	return out, nil
}

// topLevel is the first element of a cleaned relative path: the name of
// the symlink the user sees in the volume's root.
func topLevel(p string) string {
	first, _, _ := strings.Cut(p, "/")
	return first
}

// writeAtomic makes the files of dir exactly payload, atomically for
// readers, and reports whether it changed anything. It writes nothing
// when every file already has its content, mode and group. now names the
// new timestamped directory. gid, unless -1, is the pod's fsGroup: every
// file, directory and link of the volume gets that group, and directories
// the setgid bit, as upstream's volume ownership does (the caller adds the
// group's read bit to the files' modes).
func writeAtomic(dir string, payload map[string]fileProjection, now time.Time, gid int) (bool, error) {
	payload, err := validatePayload(payload)
	if err != nil {
		return false, err
	}
	dataLink := filepath.Join(dir, dataDirName)
	oldTs, err := os.Readlink(dataLink)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", dataLink, err)
	}
	var oldPaths map[string]bool
	if oldTs != "" {
		if oldPaths, err = listFiles(filepath.Join(dir, oldTs)); err != nil {
			return false, err
		}
	}
	if oldTs != "" && !payloadDiffers(filepath.Join(dir, oldTs), oldPaths, payload, gid) {
		// Restore user-visible links someone removed; a no-op normally.
		return false, createUserVisibleFiles(dir, payload, gid)
	}

	tsDir, err := os.MkdirTemp(dir, now.UTC().Format(tsDirLayout))
	if err != nil {
		return false, fmt.Errorf("create timestamped directory in %s: %w", dir, err)
	}
	if err := writePayload(tsDir, payload); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("chmod %s: %w", tsDir, err)
	}
	if gid >= 0 {
		if err := setGroup(tsDir, gid); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("remove %s: %w", tmpLink, err)
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("symlink %s: %w", tmpLink, err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmpLink, -1, gid); err != nil {
			_ = os.Remove(tmpLink)
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("chown %s: %w", tmpLink, err)
		}
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		_ = os.Remove(tmpLink)
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("rename %s to %s: %w", tmpLink, dataLink, err)
	}
	if err := createUserVisibleFiles(dir, payload, gid); err != nil {
		return true, err
	}
	if err := removeUserVisiblePaths(dir, oldPaths, payload); err != nil {
		return true, err
	}
	return true, removeStaleTsDirs(dir, filepath.Base(tsDir))
}

// setGroup gives everything under root the group gid, and directories
// the setgid bit and the group's read and search bits, as upstream does
// for a read-only volume of a pod with an fsGroup.
func setGroup(root string, gid int) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o550|os.ModeSetgid)
	})
	if err != nil {
		return fmt.Errorf("set group %d on %s: %w", gid, root, err)
	}
	return nil
}

// listFiles returns the relative paths of the regular files under root.
func listFiles(root string) (map[string]bool, error) {
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	return out, nil
}

// payloadDiffers reports whether the files in tsDir (paths old) differ
// from payload in their set, content, mode or (gid unless -1) group.
func payloadDiffers(tsDir string, old map[string]bool, payload map[string]fileProjection, gid int) bool {
	if len(old) != len(payload) {
		return true
	}
	for p, fp := range payload {
		if !old[p] {
			return true
		}
		full := filepath.Join(tsDir, filepath.FromSlash(p))
		fi, err := os.Lstat(full)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != os.FileMode(fp.Mode).Perm() {
			return true
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); gid >= 0 && (!ok || int(st.Gid) != gid) {
			return true
		}
		data, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(data, fp.Data) {
			return true
		}
	}
	return false
}

// writePayload writes every file of payload under dir with its mode,
// regardless of the umask.
func writePayload(dir string, payload map[string]fileProjection) error {
	for p, fp := range payload {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", full, err)
		}
		mode := os.FileMode(fp.Mode).Perm()
		if err := os.WriteFile(full, fp.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", full, err)
		}
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", full, err)
		}
	}
	return nil
}

// createUserVisibleFiles links each top-level path of payload to its place
// under "..data", keeping links that exist; gid, unless -1, owns new links.
func createUserVisibleFiles(dir string, payload map[string]fileProjection, gid int) error {
	for p := range payload {
		top := topLevel(p)
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", link, err)
		}
		if err := os.Symlink(path.Join(dataDirName, top), link); err != nil {
			return fmt.Errorf("symlink %s: %w", link, err)
		}
		if gid >= 0 {
			if err := os.Lchown(link, -1, gid); err != nil {
				return fmt.Errorf("chown %s: %w", link, err)
			}
		}
	}
	return nil
}

// removeUserVisiblePaths removes the links of old top-level paths that no
// path of payload uses any more.
func removeUserVisiblePaths(dir string, old map[string]bool, payload map[string]fileProjection) error {
	keep := map[string]bool{}
	for p := range payload {
		keep[topLevel(p)] = true
	}
	gone := map[string]bool{}
	for p := range old {
		if top := topLevel(p); !keep[top] {
			gone[top] = true
		}
	}
	for top := range gone {
		link := filepath.Join(dir, top)
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", link, err)
		}
	}
	return nil
}

// removeStaleTsDirs removes every timestamped directory of dir but
// current: the one "..data" pointed at before the swap, and any left by a
// writer that crashed mid-way.
func removeStaleTsDirs(dir, current string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var stale []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && strings.HasPrefix(n, "..") && n != current && isTsDirName(n) {
			stale = append(stale, n)
		}
	}
	sort.Strings(stale)
	for _, n := range stale {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("remove %s: %w", filepath.Join(dir, n), err)
		}
	}
	return nil
}

// isTsDirName reports whether name looks like a timestamped directory the
// writer created.
func isTsDirName(name string) bool {
	rest, ok := strings.CutPrefix(name, "..")
	if !ok {
		return false
	}
	stamp, _, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	_, err := time.Parse(strings.Trim(tsDirLayout, "."), stamp)
	return err == nil
}
