package runc

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// maxLogLine is the longest log line written whole; longer lines are
// split into partial ("P") entries, as containerd does at 16 KiB.
const maxLogLine = 16 * 1024

// criLogLine formats one entry of the CRI log format kubelet reads:
// "<RFC3339Nano UTC> <stream> <F|P> <content>\n".
func criLogLine(ts time.Time, stream string, partial bool, content []byte) []byte {
	tag := "F"
	if partial {
		tag = "P"
	}
	b := make([]byte, 0, len(content)+64)
	b = ts.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, content...)
	return append(b, '\n')
}

// logWriter writes a container's streams to one CRI log file; each entry
// is written with a single Write under a lock, so stdout and stderr lines
// never interleave within a line.
type logWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// copy reads r until EOF and writes its lines tagged with stream. A
// trailing line without a newline is written as a full line at EOF.
func (l *logWriter) copy(r io.Reader, stream string) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		data, err := br.ReadSlice('\n')
		if len(data) > 0 {
			partial := errors.Is(err, bufio.ErrBufferFull)
			content := data
			if !partial && content[len(content)-1] == '\n' {
				content = content[:len(content)-1]
			}
			line := criLogLine(l.now(), stream, partial, content)
			l.mu.Lock()
			_, werr := l.w.Write(line)
			l.mu.Unlock()
			if werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// Container log rotation, as upstream's kubelet does it by default
// (containerLogMaxSize 10Mi, containerLogMaxFiles 5): the shim writes the
// current file and, when it would grow past the size, renames it to
// "<path>.<timestamp>" and starts a new one, keeping the newest rotated
// files. `kubectl logs` reads the current file.
const (
	logMaxSize  = 10 << 20
	logMaxFiles = 5
)

// rotatingFile is an append-only log file that rotates itself.
type rotatingFile struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time
	f        *os.File
	size     int64
}

// openRotating opens (appends to) the log file at path.
func openRotating(path string, maxSize int64, maxFiles int, now func() time.Time) (*rotatingFile, error) {
	r := &rotatingFile{path: path, maxSize: maxSize, maxFiles: maxFiles, now: now}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past its
// size. Callers write whole entries, so entries are never split.
func (r *rotatingFile) Write(p []byte) (int, error) {
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate renames the current file aside, drops the oldest rotated ones
// beyond maxFiles-1, and opens a new current file.
func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	rotated := r.path + "." + r.now().UTC().Format("20060102-150405.000000000")
	if err := os.Rename(r.path, rotated); err != nil {
		return err
	}
	old, _ := filepath.Glob(r.path + ".*")
	sort.Strings(old) // timestamps sort by time
	for len(old) > r.maxFiles-1 {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	return r.open()
}

// Close closes the current file.
func (r *rotatingFile) Close() error { return r.f.Close() }
