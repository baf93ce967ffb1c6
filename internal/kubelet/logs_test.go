package kubelet

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseCRILogLine(t *testing.T) {
	ts := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)
	tests := []struct {
		line    string
		want    logEntry
		wantErr bool
	}{
		{line: "2016-10-06T00:17:09.669794202Z stdout F the message", want: logEntry{ts: ts, stream: "stdout", content: []byte("the message")}},
		{line: "2016-10-06T00:17:09.669794202Z stderr P part", want: logEntry{ts: ts, stream: "stderr", partial: true, content: []byte("part")}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F ", want: logEntry{ts: ts, stream: "stdout", content: []byte{}}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F", want: logEntry{ts: ts, stream: "stdout"}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F  two  spaces ", want: logEntry{ts: ts, stream: "stdout", content: []byte(" two  spaces ")}},
		{line: "2016-10-06T00:17:09.669794202Z stdout P:extra x", want: logEntry{ts: ts, stream: "stdout", partial: true, content: []byte("x")}},
		{line: "2016-10-06T02:17:09.669794202+02:00 stdout F tz", want: logEntry{ts: ts, stream: "stdout", content: []byte("tz")}},
		{line: "not-a-time stdout F x", wantErr: true},
		{line: "2016-10-06T00:17:09Z stdin F x", wantErr: true},
		{line: "2016-10-06T00:17:09Z stdout X x", wantErr: true},
		{line: "2016-10-06T00:17:09Z stdout", wantErr: true},
		{line: "", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseCRILogLine([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseCRILogLine(%q): got err %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if !got.ts.Equal(tc.want.ts) || got.stream != tc.want.stream || got.partial != tc.want.partial || !bytes.Equal(got.content, tc.want.content) {
			t.Errorf("parseCRILogLine(%q): got %v %s partial=%v %q, want %v %s partial=%v %q", tc.line,
				got.ts, got.stream, got.partial, got.content, tc.want.ts, tc.want.stream, tc.want.partial, tc.want.content)
		}
	}
}

// testLog has a malformed line (skipped), a line split into three parts,
// interleaved stderr, and at the end a line still being written: parts
// without their F entry and an entry without its newline.
const testLog = `garbage that is not a CRI line
2024-01-01T00:00:01.000000001Z stdout F one
2024-01-01T00:00:02Z stderr F two
2024-01-01T00:00:03Z stdout P thr
2024-01-01T00:00:03.2Z stderr F err
2024-01-01T00:00:03.5Z stdout P e
2024-01-01T00:00:04Z stdout F e!
2024-01-01T00:00:05Z stdout F four
2024-01-01T00:00:06Z stdout F five
2024-01-01T00:00:07Z stdout P incomplete
2024-01-01T00:00:08Z stdout F no newline yet`

func TestReadLogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(testLog), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	all := "one\ntwo\nerr\nthree!\nfour\nfive\n"
	tests := []struct {
		name string
		opts logOptions
		want string
	}{
		{name: "all", opts: logOptions{tail: -1}, want: all},
		{name: "tail 0", opts: logOptions{tail: 0}, want: ""},
		{name: "tail 1", opts: logOptions{tail: 1}, want: "five\n"},
		{name: "tail 2", opts: logOptions{tail: 2}, want: "four\nfive\n"},
		// The third line from the end starts with its first part.
		{name: "tail 3 joins parts", opts: logOptions{tail: 3}, want: "three!\nfour\nfive\n"},
		// Counting back from three!, the stderr line written between its
		// parts is inside the tail too.
		{name: "tail 4", opts: logOptions{tail: 4}, want: "err\nthree!\nfour\nfive\n"},
		{name: "tail beyond the start", opts: logOptions{tail: 100}, want: all},
		// A joined line carries its first part's time.
		{name: "since a line's first part", opts: logOptions{tail: -1, since: at("2024-01-01T00:00:03Z")}, want: "err\nthree!\nfour\nfive\n"},
		{name: "since after its first part", opts: logOptions{tail: -1, since: at("2024-01-01T00:00:03.1Z")}, want: "err\nfour\nfive\n"},
		{name: "since and tail", opts: logOptions{tail: 2, since: at("2024-01-01T00:00:05.5Z")}, want: "five\n"},
		{name: "timestamps", opts: logOptions{tail: 3, timestamps: true},
			want: "2024-01-01T00:00:03.000000000Z three!\n2024-01-01T00:00:05.000000000Z four\n2024-01-01T00:00:06.000000000Z five\n"},
		{name: "timestamps keep nanoseconds", opts: logOptions{tail: -1, timestamps: true, limit: 35},
			want: "2024-01-01T00:00:01.000000001Z one\n"},
		{name: "limit cuts a line", opts: logOptions{tail: -1, limit: 6}, want: "one\ntw"},
		{name: "limit at a line's end", opts: logOptions{tail: -1, limit: 4}, want: "one\n"},
		{name: "limit beyond the end", opts: logOptions{tail: -1, limit: 1000}, want: all},
		{name: "limit after tail", opts: logOptions{tail: 2, limit: 7}, want: "four\nfi"},
		// Without follow, an exited container's log is read once.
		{name: "follow of a stopped container", opts: logOptions{tail: 1, follow: true}, want: "five\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := readLogs(t.Context(), path, tc.opts, &out, func() bool { return false }); err != nil {
				t.Fatalf("readLogs: %v", err)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLogTailOffsetLongLines(t *testing.T) {
	// Entries longer than the backwards scan's block.
	long := strings.Repeat("x", 70*1024)
	content := "2024-01-01T00:00:01Z stdout F " + long + "\n" +
		"2024-01-01T00:00:02Z stdout P " + long + "\n" +
		"2024-01-01T00:00:02Z stdout F end\n" +
		"2024-01-01T00:00:03Z stdout F last\n"
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tail int64
		want string
	}{
		{1, "last\n"},
		{2, long + "end\nlast\n"},
		{3, long + "\n" + long + "end\nlast\n"},
	} {
		var out bytes.Buffer
		if err := readLogs(t.Context(), path, logOptions{tail: tc.tail}, &out, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != tc.want {
			t.Errorf("tail %d: got %d bytes ending %q, want %d bytes ending %q", tc.tail, len(got), got[max(0, len(got)-20):], len(tc.want), tc.want[max(0, len(tc.want)-20):])
		}
	}
}

// syncBuffer is a buffer written by readLogs and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadLogsFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("2024-01-01T00:00:01Z stdout F old\n2024-01-01T00:00:02Z stdout F first\n")

	var running atomic.Bool
	running.Store(true)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- readLogs(t.Context(), path, logOptions{tail: 1, follow: true}, &out, running.Load)
	}()
	waitFor(t, "the tail line", func() bool { return out.String() == "first\n" })

	// An entry written in two writes is shown once whole.
	write("2024-01-01T00:00:03Z stdout P sec")
	time.Sleep(3 * logPollInterval)
	write("ond half\n2024-01-01T00:00:03Z stdout F !\n")
	waitFor(t, "the appended line", func() bool { return out.String() == "first\nsecond half!\n" })
	select {
	case err := <-done:
		t.Fatalf("readLogs returned while the container runs: %v", err)
	default:
	}

	// What the container writes before it stops is read, then the stream
	// ends.
	write("2024-01-01T00:00:04Z stderr F last words\n")
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("readLogs: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readLogs still following a stopped container after 5 s")
	}
	if got, want := out.String(), "first\nsecond half!\nlast words\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadLogsFollowEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte("2024-01-01T00:00:01Z stdout F x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var out syncBuffer
	go func() {
		done <- readLogs(ctx, path, logOptions{tail: -1, follow: true}, &out, func() bool { return true })
	}()
	waitFor(t, "the line", func() bool { return out.String() == "x\n" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("readLogs: got %v, want nil when the client goes", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readLogs did not return after its context ended")
	}
}

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		query   string
		want    logOptions
		wantErr string
	}{
		{query: "", want: logOptions{tail: -1}},
		{query: "follow=true&previous=true&timestamps=true", want: logOptions{tail: -1, follow: true, previous: true, timestamps: true}},
		{query: "follow=false&previous=0", want: logOptions{tail: -1}},
		{query: "follow", want: logOptions{tail: -1, follow: true}},
		{query: "tailLines=5", want: logOptions{tail: 5}},
		{query: "tail=7", want: logOptions{tail: 7}},
		{query: "tail=all", want: logOptions{tail: -1}},
		{query: "limitBytes=10", want: logOptions{tail: -1, limit: 10}},
		{query: "sinceSeconds=60", want: logOptions{tail: -1, since: now.Add(-time.Minute)}},
		{query: "sinceTime=2024-01-01T11:00:00Z", want: logOptions{tail: -1, since: now.Add(-time.Hour)}},
		{query: "tailLines=-1", wantErr: "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{query: "tailLines=x", wantErr: "tailLines: invalid value"},
		{query: "limitBytes=0", wantErr: "limitBytes: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=0", wantErr: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=1&sinceTime=2024-01-01T11:00:00Z", wantErr: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{query: "sinceTime=yesterday", wantErr: "sinceTime: invalid value"},
	}
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLogOptions(q, now)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseLogOptions(%q): got error %v, want %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLogOptions(%q): %v", tc.query, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseLogOptions(%q): got %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestLogContainerID(t *testing.T) {
	term := func(id string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ContainerID: id, FinishedAt: metav1.Now()}
	}
	pod := func(cs corev1.ContainerStatus) *corev1.Pod {
		cs.Name = "c"
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{cs}}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		previous bool
		want     string
		wantErr  string
	}{
		{name: "running", pod: pod(corev1.ContainerStatus{ContainerID: "runc://new", State: running}), want: "new"},
		{name: "previous", pod: pod(corev1.ContainerStatus{ContainerID: "runc://new", State: running,
			LastTerminationState: corev1.ContainerState{Terminated: term("runc://old")}}), previous: true, want: "old"},
		{name: "no previous", pod: pod(corev1.ContainerStatus{ContainerID: "runc://new", State: running}), previous: true,
			wantErr: `previous terminated container "c" in pod "p" not found`},
		{name: "terminated", pod: pod(corev1.ContainerStatus{ContainerID: "runc://done", State: corev1.ContainerState{Terminated: term("runc://done")}}), want: "done"},
		// In CrashLoopBackOff the last run's log is shown.
		{name: "back-off", pod: pod(corev1.ContainerStatus{ContainerID: "runc://old",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: term("runc://old")}}), want: "old"},
		{name: "creating", pod: pod(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}),
			wantErr: `container "c" in pod "p" is waiting to start: ContainerCreating`},
		{name: "pull failing", pod: pod(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}),
			wantErr: `container "c" in pod "p" is waiting to start: trying and failing to pull image`},
		{name: "no state", pod: pod(corev1.ContainerStatus{}), wantErr: `container "c" in pod "p" is waiting to start - no logs yet`},
		{name: "no status", pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, wantErr: `container "c" in pod "p" is not available`},
		{name: "init container", pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "c", ContainerID: "runc://init", State: corev1.ContainerState{Terminated: term("runc://init")}}}}}, want: "init"},
	}
	for _, tc := range tests {
		got, err := logContainerID(tc.pod, "c", tc.previous)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: got %q, %v, want error %q", tc.name, got, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("%s: got %q, %v, want %q", tc.name, got, err, tc.want)
		}
	}
}
