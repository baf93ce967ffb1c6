package runc

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The records (sandbox.json, container.json, exit.json) are the truth and
// survive restarts, but the kubelet lists every sandbox and container
// several times per pod sync and every second: reading and decoding each
// file, and reading each conmon's command line, on every list made a
// node with 100 pods spend most of its CPU there. Since Root belongs to one
// Runtime, the records it read or wrote are kept in memory as well, and a
// conmon whose identity was checked once is watched through a pidfd.

// recordCache holds decoded records by file path, and pidfds of conmons.
type recordCache struct {
	mu      sync.Mutex
	records map[string]any      // path → sandboxState, containerState or exitStatus
	conmons map[string]*os.File // container ID → pidfd of its conmon
	nsOK    map[string]bool     // pinned namespace paths seen mounted
}

func newRecordCache() *recordCache {
	return &recordCache{records: map[string]any{}, conmons: map[string]*os.File{}, nsOK: map[string]bool{}}
}

// cloneRecord copies a record so callers may change their copy.
func cloneRecord(v any) any {
	switch v := v.(type) {
	case sandboxState:
		v.Labels = maps.Clone(v.Labels)
		v.Sysctls = maps.Clone(v.Sysctls)
		v.Namespaces = maps.Clone(v.Namespaces)
		v.Ports = slices.Clone(v.Ports)
		v.IPs = slices.Clone(v.IPs)
		return v
	case containerState:
		v.Labels = maps.Clone(v.Labels)
		return v
	default:
		return v
	}
}

// readRecord decodes the record at path into v (a *sandboxState,
// *containerState or *exitStatus), from memory when it was read or written
// before.
func (r *Runtime) readRecord(path string, v any) error {
	r.cache.mu.Lock()
	cached, ok := r.cache.records[path]
	r.cache.mu.Unlock()
	if !ok {
		if err := readJSON(path, v); err != nil {
			return err
		}
		r.remember(path, v)
		return nil
	}
	switch p := v.(type) {
	case *sandboxState:
		*p = cloneRecord(cached).(sandboxState)
	case *containerState:
		*p = cloneRecord(cached).(containerState)
	case *exitStatus:
		*p = cached.(exitStatus)
	default:
		return errors.New("runc: unknown record type")
	}
	return nil
}

// writeRecord writes the record at path atomically and remembers it.
func (r *Runtime) writeRecord(path string, v any) error {
	if err := writeJSON(path, v); err != nil {
		r.forgetPrefix(path)
		return err
	}
	r.remember(path, v)
	return nil
}

func (r *Runtime) remember(path string, v any) {
	var rec any
	switch p := v.(type) {
	case *sandboxState:
		rec = cloneRecord(*p)
	case *containerState:
		rec = cloneRecord(*p)
	case *exitStatus:
		rec = *p
	case sandboxState, containerState, exitStatus:
		rec = cloneRecord(p)
	default:
		return
	}
	r.cache.mu.Lock()
	r.cache.records[path] = rec
	r.cache.mu.Unlock()
}

// forgetPrefix drops the records under a path (a removed directory).
func (r *Runtime) forgetPrefix(prefix string) {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	for p := range r.cache.records {
		if p == prefix || strings.HasPrefix(p, prefix+string(os.PathSeparator)) {
			delete(r.cache.records, p)
		}
	}
	for p := range r.cache.nsOK {
		if p == prefix || strings.HasPrefix(p, prefix+string(os.PathSeparator)) {
			delete(r.cache.nsOK, p)
		}
	}
}

// forgetConmon closes the pidfd kept for a container's conmon.
func (r *Runtime) forgetConmon(id string) {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	if f := r.cache.conmons[id]; f != nil {
		f.Close()
		delete(r.cache.conmons, id)
	}
}

// watchedConmonAlive answers for a conmon watched through a pidfd: known
// is false when it is not watched.
func (r *Runtime) watchedConmonAlive(id string) (alive, known bool) {
	r.cache.mu.Lock()
	f := r.cache.conmons[id]
	r.cache.mu.Unlock()
	if f == nil {
		return false, false
	}
	// A pidfd turns readable when its process exits, zombie or not.
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		return false, false // ask the slow way
	}
	if n > 0 {
		r.forgetConmon(id)
		return false, true
	}
	return true, true
}

// watchConmon keeps a pidfd of pid, a conmon whose identity was just
// checked, so later checks need neither its PID file nor its command line.
// A kernel without pidfds leaves it unwatched.
func (r *Runtime) watchConmon(id string, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	if old := r.cache.conmons[id]; old != nil {
		old.Close()
	}
	r.cache.conmons[id] = f
}

// nsMounted reports whether a pinned namespace file is still mounted,
// remembering a yes: within this process only the runtime unmounts them.
func (r *Runtime) nsMounted(p string) bool {
	r.cache.mu.Lock()
	ok := r.cache.nsOK[p]
	r.cache.mu.Unlock()
	if ok {
		return true
	}
	if !isNsMount(p) {
		return false
	}
	r.cache.mu.Lock()
	r.cache.nsOK[p] = true
	r.cache.mu.Unlock()
	return true
}
