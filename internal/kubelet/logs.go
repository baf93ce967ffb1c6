package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Container logs, as upstream's kubelet serves them: the runtime writes
// each container's output to a file in the CRI log format, one entry a
// line,
//
//	2016-10-06T00:17:09.669794202Z stdout F the message
//
// where the tag is F for the last (or only) entry of a line and P for the
// leading parts of a line the runtime split. The reader here joins a
// line's parts, filters and formats the lines as PodLogOptions ask, and in
// follow mode waits for more until the container stops.

// logTimeFormat is how timestamps are written with timestamps=true:
// RFC 3339 with nanoseconds always nine digits wide, as upstream's kubelet
// writes them (so lines align).
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Follow mode polls the log file at EOF every logPollInterval and asks
// whether the container still runs every logRunningCheck.
const (
	logPollInterval = 200 * time.Millisecond
	logRunningCheck = time.Second
)

// errLogLimit ends a read once limitBytes were written.
var errLogLimit = errors.New("log limit reached")

// logOptions are the PodLogOptions the kubelet acts on.
type logOptions struct {
	follow     bool
	previous   bool
	timestamps bool
	// tail is the number of complete lines to show from the end; negative
	// means all.
	tail int64
	// since drops lines written before it; zero keeps all.
	since time.Time
	// limit ends the output after this many bytes; zero means no limit.
	limit int64
}

// parseLogOptions reads the PodLogOptions query parameters of a
// containerLogs request (follow, previous, timestamps, tailLines,
// sinceSeconds, sinceTime, limitBytes), validated as upstream validates
// them. now resolves sinceSeconds.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	o := logOptions{tail: -1}
	o.follow = queryBool(q, "follow")
	o.previous = queryBool(q, "previous")
	o.timestamps = queryBool(q, "timestamps")
	// "tail" is the kubelet's older name for tailLines; "all" means all.
	if t := q.Get("tail"); t != "" && t != "all" && q.Get("tailLines") == "" {
		q = cloneValues(q)
		q.Set("tailLines", t)
	}
	ints := map[string]*int64{}
	for _, name := range []string{"tailLines", "sinceSeconds", "limitBytes"} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return logOptions{}, fmt.Errorf("%s: invalid value %q: %w", name, s, err)
		}
		ints[name] = &v
	}
	var sinceTime *time.Time
	if s := q.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return logOptions{}, fmt.Errorf("sinceTime: invalid value %q: %w", s, err)
		}
		sinceTime = &t
	}
	if v := ints["tailLines"]; v != nil {
		if *v < 0 {
			return logOptions{}, fmt.Errorf("tailLines: Invalid value: %d: must be greater than or equal to 0", *v)
		}
		o.tail = *v
	}
	if v := ints["limitBytes"]; v != nil {
		if *v < 1 {
			return logOptions{}, fmt.Errorf("limitBytes: Invalid value: %d: must be greater than 0", *v)
		}
		o.limit = *v
	}
	switch v := ints["sinceSeconds"]; {
	case v != nil && sinceTime != nil:
		return logOptions{}, errors.New("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
	case v != nil:
		if *v < 1 {
			return logOptions{}, fmt.Errorf("sinceSeconds: Invalid value: %d: must be greater than 0", *v)
		}
		o.since = now.Add(-time.Duration(*v) * time.Second)
	case sinceTime != nil:
		o.since = *sinceTime
	}
	return o, nil
}

// queryBool reads a boolean query parameter as the API machinery does:
// present and neither "0" nor "false" means true.
func queryBool(q url.Values, name string) bool {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return false
	}
	return vs[0] != "0" && !strings.EqualFold(vs[0], "false")
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// logContainerID picks, from the pod's status, the runtime ID of the
// container whose log is asked for, as upstream's kubelet does: the
// previous attempt's with previous=true; otherwise the running one, else
// the last one that ran. A container that has not run yet is an error
// naming why it waits.
func logContainerID(pod *corev1.Pod, container string, previous bool) (string, error) {
	var cs *corev1.ContainerStatus
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				cs = &list[i]
				break
			}
		}
		if cs != nil {
			break
		}
	}
	if cs == nil {
		return "", fmt.Errorf("container %q in pod %q is not available", container, pod.Name)
	}
	last := cs.LastTerminationState.Terminated
	var id string
	switch st := cs.State; {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod.Name)
		}
		id = last.ContainerID
	case st.Running != nil:
		id = cs.ContainerID
	case st.Terminated != nil:
		id = st.Terminated.ContainerID
		if id == "" {
			if last == nil || last.ContainerID == "" {
				return "", fmt.Errorf("container %q in pod %q is terminated", container, pod.Name)
			}
			id = last.ContainerID
		}
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", container, pod.Name)
		}
		id = last.ContainerID
	case st.Waiting != nil:
		switch st.Waiting.Reason {
		case "ErrImagePull":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", container, pod.Name)
		case "ImagePullBackOff":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", container, pod.Name)
		}
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod.Name, st.Waiting.Reason)
	default:
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, pod.Name)
	}
	// Status IDs are "<runtime>://<id>"; the runtime knows the bare ID.
	if _, bare, ok := strings.Cut(id, "://"); ok {
		id = bare
	}
	return id, nil
}

// logEntry is one line of a CRI log file.
type logEntry struct {
	ts      time.Time
	stream  string
	partial bool
	content []byte
}

// parseCRILogLine parses one CRI log line without its newline:
// "<RFC3339Nano> <stream> <tag>[:<more tags>] <content>".
func parseCRILogLine(line []byte) (logEntry, error) {
	var e logEntry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, errors.New("no stream after the timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("timestamp %q: %w", ts, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, errors.New("no tag after the stream")
	}
	if s := string(stream); s != "stdout" && s != "stderr" {
		return e, fmt.Errorf("unknown stream %q", s)
	}
	tags, content, _ := bytes.Cut(rest, []byte{' '})
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	switch string(tag) {
	case "F":
	case "P":
		e.partial = true
	default:
		return e, fmt.Errorf("unknown tag %q", tag)
	}
	e.ts, e.stream, e.content = t, string(stream), content
	return e, nil
}

// criLogTail finds where in a CRI log of size bytes its last n complete
// lines start: the offset to read from, and how many complete lines read
// from there come before them. A line is complete with its F entry; its
// P entries may be interleaved with the other stream's lines, which is
// why some may have to be skipped. A trailing entry without a newline is
// still being written and does not count, nor do malformed lines.
func criLogTail(r io.ReaderAt, size, n int64) (offset, skip int64, err error) {
	if n < 0 {
		return 0, 0, nil
	}
	const block = 32 * 1024
	buf := make([]byte, block)
	// lastNewline finds the last '\n' before end, or -1.
	lastNewline := func(end int64) (int64, error) {
		for end > 0 {
			start := max(0, end-block)
			b := buf[:end-start]
			if _, err := r.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
			if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
				return start + int64(i), nil
			}
			end = start
		}
		return -1, nil
	}
	end, err := lastNewline(size)
	if err != nil || end < 0 {
		return 0, 0, err
	}
	offset = end + 1
	head := make([]byte, 128)
	var found int64
	// open holds the streams whose oldest counted line may have earlier
	// parts; fulls are the offsets of the F entries seen.
	open := map[string]bool{}
	var fulls []int64
	for end >= 0 {
		prev, err := lastNewline(end)
		if err != nil {
			return 0, 0, err
		}
		start := prev + 1
		h := head[:min(int64(len(head)), end-start)]
		if _, err := r.ReadAt(h, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		end = prev
		e, err := parseCRILogLine(h)
		if err != nil {
			continue
		}
		if e.partial {
			if open[e.stream] {
				offset = start
			}
			continue
		}
		delete(open, e.stream)
		if found < n {
			found++
			open[e.stream] = true
			offset = start
		}
		fulls = append(fulls, start)
		if found == n && len(open) == 0 {
			break
		}
	}
	for _, o := range fulls {
		if o >= offset {
			skip++
		}
	}
	return offset, skip - found, nil
}

// logWriter turns CRI entries into the lines a client sees.
type logWriter struct {
	w    io.Writer
	opts logOptions
	// written counts bytes against opts.limit.
	written int64
	// skip is how many complete lines to drop before writing (see
	// criLogTail).
	skip int64
	// pending holds, per stream, the parts of a line not yet complete and
	// the timestamp of its first part.
	pending map[string]*pendingLine
}

type pendingLine struct {
	ts      time.Time
	content []byte
}

func newLogWriter(w io.Writer, opts logOptions) *logWriter {
	return &logWriter{w: w, opts: opts, pending: map[string]*pendingLine{}}
}

// entry takes one CRI entry; a complete line is written at once.
func (lw *logWriter) entry(e logEntry) error {
	p := lw.pending[e.stream]
	if e.partial {
		if p == nil {
			p = &pendingLine{ts: e.ts}
			lw.pending[e.stream] = p
		}
		p.content = append(p.content, e.content...)
		return nil
	}
	ts, content := e.ts, e.content
	if p != nil {
		ts, content = p.ts, append(p.content, e.content...)
		delete(lw.pending, e.stream)
	}
	if lw.skip > 0 {
		lw.skip--
		return nil
	}
	if !lw.opts.since.IsZero() && ts.Before(lw.opts.since) {
		return nil
	}
	line := make([]byte, 0, len(content)+len(logTimeFormat)+2)
	if lw.opts.timestamps {
		line = ts.UTC().AppendFormat(line, logTimeFormat)
		line = append(line, ' ')
	}
	line = append(line, content...)
	line = append(line, '\n')
	if lw.opts.limit > 0 {
		left := lw.opts.limit - lw.written
		if int64(len(line)) >= left {
			_, err := lw.w.Write(line[:left])
			lw.written += left
			if err != nil {
				return err
			}
			return errLogLimit
		}
	}
	_, err := lw.w.Write(line)
	lw.written += int64(len(line))
	return err
}

// readLogs writes the log at path to w as opts ask. With opts.follow it
// keeps reading what is appended until running reports the container
// stopped (then the rest is read) or ctx ends. A parse error skips the
// line, as upstream's kubelet does; lines are complete CRI entries, so a
// partly written last entry waits for its newline.
func readLogs(ctx context.Context, path string, opts logOptions, w io.Writer, running func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	var skipLines int64
	if opts.tail >= 0 {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat log: %w", err)
		}
		off, skip, err := criLogTail(f, st.Size(), opts.tail)
		if err != nil {
			return fmt.Errorf("find the log's last %d lines: %w", opts.tail, err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("seek log: %w", err)
		}
		skipLines = skip
	}
	lw := newLogWriter(w, opts)
	lw.skip = skipLines
	br := bufio.NewReaderSize(f, 64*1024)
	var carry []byte
	var lastCheck time.Time
	stopped := false
	for {
		data, err := br.ReadSlice('\n')
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, bufio.ErrBufferFull) || len(carry) > 0 {
				carry = append(carry, data...)
				if errors.Is(err, bufio.ErrBufferFull) {
					continue
				}
				data = carry
			}
			e, perr := parseCRILogLine(bytes.TrimSuffix(data, []byte{'\n'}))
			carry = carry[:0]
			if perr != nil {
				continue
			}
			if werr := lw.entry(e); werr != nil {
				if errors.Is(werr, errLogLimit) {
					return nil
				}
				return werr
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log: %w", err)
		}
		carry = append(carry, data...)
		// At the end of what is written so far.
		if !opts.follow || stopped {
			return nil
		}
		if time.Since(lastCheck) >= logRunningCheck {
			lastCheck = time.Now()
			if !running() {
				// One more pass reads what the container wrote last.
				stopped = true
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPollInterval):
		}
	}
}
