package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// dirPrefix names every directory the framework creates, so a later run
	// can find what a crashed one left behind.
	dirPrefix = "skiff-e2e-"
	// ownerFile records the test process that owns a work directory.
	ownerFile = "owner.pid"
	// serverPIDFile records the server process running in a cluster directory.
	serverPIDFile = "server.pid"
	// orphanAge is how old a work directory without an owner file must be
	// before it counts as abandoned; younger ones may be being created.
	orphanAge = time.Hour
)

// newWorkDir creates an empty skiff-e2e-<kind>-* directory owned by this
// process.
func newWorkDir(kind string) (string, error) {
	dir, err := os.MkdirTemp("", dirPrefix+kind+"-")
	if err != nil {
		return "", fmt.Errorf("create work directory: %w", err)
	}
	if err := writePIDFile(filepath.Join(dir, ownerFile), os.Getpid()); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// writePIDFile records pid together with its start time: a pid alone could
// have been reused by an unrelated process by the time someone reads it.
func writePIDFile(path string, pid int) error {
	start, err := procStartTime(pid)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d %s\n", pid, start), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// readPIDFile returns the pid and start time writePIDFile recorded.
func readPIDFile(path string) (int, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	return parsePIDFile(string(b))
}

func parsePIDFile(s string) (int, string, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, "", fmt.Errorf("pid file %q: want \"<pid> <start time>\"", s)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, "", fmt.Errorf("pid file %q: bad pid", s)
	}
	return pid, f[1], nil
}

// procStartTime returns a process's start time in clock ticks since boot
// (field 22 of /proc/<pid>/stat), which with the pid identifies the process.
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", fmt.Errorf("read start time of pid %d: %w", pid, err)
	}
	state, start, err := parseStat(b)
	if err != nil {
		return "", fmt.Errorf("pid %d: %w", pid, err)
	}
	if state == "Z" {
		return "", fmt.Errorf("pid %d has exited", pid)
	}
	return start, nil
}

// parseStat extracts the state and start time from a /proc/<pid>/stat line.
// The command name (field 2) may contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStat(b []byte) (state, start string, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", "", errors.New("malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return "", "", errors.New("short stat line")
	}
	return f[0], f[19], nil
}

// alive reports whether the process recorded as pid/start still runs.
func alive(pid int, start string) bool {
	s, err := procStartTime(pid)
	return err == nil && s == start
}

// RemoveStale removes the work directories that test processes which no
// longer run left behind (a crash, a kill, a `go test -timeout` panic): it
// kills the server process group recorded in each, unmounts what is mounted
// below it, and deletes it. Directories of live test processes are left
// alone, so concurrent test runs do not disturb each other. logf reports each
// removal; it may be nil.
func RemoveStale(logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	if err != nil {
		return fmt.Errorf("find stale work directories: %w", err)
	}
	var errs []error
	for _, dir := range dirs {
		info, err := os.Lstat(dir)
		if err != nil || !info.IsDir() {
			continue
		}
		pid, start, err := readPIDFile(filepath.Join(dir, ownerFile))
		switch {
		case err == nil && alive(pid, start):
			continue
		case err != nil && time.Since(info.ModTime()) < orphanAge:
			continue
		}
		if err := killRecordedServer(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeStaleRealNode(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeWorkDir(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		logf("removed %s, left behind by a test process that no longer runs", dir)
	}
	return errors.Join(errs...)
}

// killRecordedServer kills the process group of the server recorded in dir,
// if it still runs, and waits for the server to be gone.
func killRecordedServer(dir string) error {
	pid, start, err := readPIDFile(filepath.Join(dir, serverPIDFile))
	if err != nil || !alive(pid, start) {
		return nil
	}
	// The server leads its own process group (Setpgid), so -pid reaches
	// everything it started too.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill stale server %d in %s: %w", pid, dir, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid, start) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stale server %d in %s survived SIGKILL", pid, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// removeWorkDir unmounts everything mounted at or below dir, then deletes
// it. It refuses to delete while something is still mounted there: removing
// through a bind mount would delete the mounted files, not ours.
func removeWorkDir(dir string) error {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	for _, mp := range mountPointsUnder(string(info), dir) {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("remove %s: unmount %s: %w", dir, mp, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// mountPointsUnder returns the mount points in a /proc/self/mountinfo text
// that are dir or below it, deepest first so that children unmount before
// their parents.
func mountPointsUnder(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out
}

// unescapeMountPath undoes the octal escapes (\040 for a space, \011, \012,
// \134) the kernel writes into mountinfo paths.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
