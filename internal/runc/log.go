package runc

import (
	"bufio"
	"errors"
	"io"
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
