package runc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
)

func TestParseExitCode(t *testing.T) {
	tests := []struct {
		in      string
		want    int32
		wantErr bool
	}{
		{"0", 0, false},
		{"137", 137, false},
		{"3\n", 3, false},
		{"", 0, true},
		{"x", 0, true},
	}
	for _, tt := range tests {
		got, err := parseExitCode([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseExitCode(%q): got %d, %v, want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExitReason(t *testing.T) {
	tests := []struct {
		code int32
		oom  bool
		want string
	}{
		{0, false, "Completed"},
		{1, false, "Error"},
		{137, false, "Error"},
		{137, true, "OOMKilled"},
		{0, true, "OOMKilled"}, // a child was OOM-killed; upstream reports it too
	}
	for _, tt := range tests {
		if got := exitReason(tt.code, tt.oom); got != tt.want {
			t.Errorf("exitReason(%d, %v): got %s, want %s", tt.code, tt.oom, got, tt.want)
		}
	}
}

func TestCreateFailure(t *testing.T) {
	tests := []struct{ conmon, runc, want string }{
		{"", "", "failed"},
		{"Failed to create container: exit status 1", "", "Failed to create container: exit status 1"},
		{"", "exec: no such file", "exec: no such file"},
		{"Failed to create container: exit status 1", "exec: no such file", "Failed to create container: exit status 1: exec: no such file"},
		{"runc create failed: exec: no such file", "exec: no such file", "exec: no such file"},
	}
	for _, tt := range tests {
		if got := createFailure(tt.conmon, tt.runc); got != tt.want {
			t.Errorf("createFailure(%q, %q): got %q, want %q", tt.conmon, tt.runc, got, tt.want)
		}
	}
}

func TestLogsToDrop(t *testing.T) {
	rotated := []string{"0.log.20260102-000000.000000000", "0.log.20260101-000000.000000000", "0.log.20260103-000000.000000000"}
	tests := []struct {
		maxFiles int
		want     []string
	}{
		{5, nil},
		{4, nil},
		{3, []string{"0.log.20260101-000000.000000000"}},
		{2, []string{"0.log.20260101-000000.000000000", "0.log.20260102-000000.000000000"}},
		{1, []string{"0.log.20260101-000000.000000000", "0.log.20260102-000000.000000000", "0.log.20260103-000000.000000000"}},
	}
	for _, tt := range tests {
		if got := logsToDrop(rotated, tt.maxFiles); !slices.Equal(got, tt.want) {
			t.Errorf("logsToDrop(maxFiles %d): got %v, want %v", tt.maxFiles, got, tt.want)
		}
	}
	ts := time.Date(2026, 11, 24, 20, 1, 2, 3000, time.FixedZone("x", 3600))
	if got, want := rotatedLogName("/l/0.log", ts), "/l/0.log.20261124-190102.000003000"; got != want {
		t.Errorf("rotatedLogName: got %s, want %s", got, want)
	}
}

func TestConmonArgs(t *testing.T) {
	args := conmonArgs("/usr/bin/runc", "/run/r", "/b", "id1", "ns_pod_c", "/l/0.log", true, true, false)
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"--bundle /b", "--cid id1", "--runtime /usr/bin/runc", "--runtime-arg --root=/run/r",
		"--log-path k8s-file:/l/0.log", "--exit-dir /b", "--persist-dir /b", "--full-attach",
		"--conmon-pidfile /b/conmon.pid", "--container-pidfile /b/init.pid",
		"--terminal", "--stdin --leave-stdin-open",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("conmon args %q: want %q", joined, want)
		}
	}
	plain := strings.Join(conmonArgs("/usr/bin/runc", "/run/r", "/b", "id1", "n", "/l", false, false, false), " ")
	if strings.Contains(plain, "--terminal") || strings.Contains(plain, "--stdin") {
		t.Errorf("conmon args without TTY and stdin: got %q", plain)
	}
	once := strings.Join(conmonArgs("/usr/bin/runc", "/run/r", "/b", "id1", "n", "/l", false, true, true), " ")
	if !strings.Contains(once, "--stdin") || strings.Contains(once, "--leave-stdin-open") {
		t.Errorf("conmon args with stdinOnce: got %q, want --stdin without --leave-stdin-open", once)
	}
}

func TestIsPauseCmdline(t *testing.T) {
	tests := []struct {
		cmdline string
		want    bool
	}{
		{"/usr/bin/catatonit\x00-P\x00", true},
		{"catatonit\x00-P\x00", true},
		{"/usr/bin/catatonit\x00--\x00sleep\x00", false},
		{"/bin/sleep\x00-P\x00", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isPauseCmdline([]byte(tt.cmdline)); got != tt.want {
			t.Errorf("isPauseCmdline(%q): got %v, want %v", tt.cmdline, got, tt.want)
		}
	}
	if got := resizeMessage(cri.TerminalSize{Width: 80, Height: 24}); got != "1 24 80\n" {
		t.Errorf("resizeMessage: got %q, want \"1 24 80\\n\"", got)
	}
}

// TestLogRotation fills a running container's log past a small size and
// checks that the runtime rotates it while conmon keeps writing: rotated
// names, the number of files kept, and no line lost or split.
func TestLogRotation(t *testing.T) {
	e := newTestEnv(t)
	e.cfg.LogMaxSize, e.cfg.LogMaxFiles = 2048, 3
	r, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "rotate"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "chatty", Command: []string{"/bin/sh", "-c",
		`i=0; while true; do i=$((i+1)); echo "line-$i"; [ -e /tmp/stop ] && sleep 3600; sleep 0.005; done`}})
	c := e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	// Run's loop rotates on its own; then the passes are driven here so
	// that their number is known.
	r.cfg.LogRotateInterval = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	waitFor(t, "a rotation by Run", func() bool {
		m, _ := filepath.Glob(c.LogPath + ".*")
		return len(m) > 0
	}, func() string { return "no rotated file" })
	cancel()
	<-ran
	rotations := 1
	deadline := time.Now().Add(30 * time.Second)
	for rotations < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rotations in 30s, want 4", rotations)
		}
		if fi, err := os.Stat(c.LogPath); err == nil && fi.Size() >= e.cfg.LogMaxSize {
			r.rotateLogs(context.Background())
			rotations++
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Stop writing, then check every line is in exactly one file, whole.
	if code, err := r.Exec(context.Background(), id, []string{"/bin/sh", "-c", "touch /tmp/stop"}, nil, io.Discard, io.Discard, false); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	time.Sleep(300 * time.Millisecond)
	rotated, _ := filepath.Glob(c.LogPath + ".*")
	if len(rotated) != 2 {
		t.Errorf("rotated files: got %v, want the newest 2 (3 files in all)", rotated)
	}
	for _, f := range rotated {
		name := strings.TrimPrefix(f, c.LogPath+".")
		if _, err := time.Parse(rotatedTimeFormat, name); err != nil {
			t.Errorf("rotated file %s: %v", f, err)
		}
	}
	var all strings.Builder
	slices.Sort(rotated)
	for _, f := range append(rotated, c.LogPath) {
		all.WriteString(readLog(t, f))
	}
	lines := strings.Split(strings.TrimSuffix(all.String(), "\n"), "\n")
	var prev int
	for i, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l, "stdout F line-%d", &n); err != nil {
			t.Fatalf("line %d: %q: %v", i, l, err)
		}
		if i > 0 && n != prev+1 {
			t.Fatalf("line %d: got line-%d after line-%d, want consecutive lines across files", i, n, prev)
		}
		prev = n
	}
	if cur := readLog(t, c.LogPath); cur == "" {
		t.Errorf("the current log is empty after rotation: conmon did not reopen it")
	}
}

// TestAttachTTY attaches to an interactive shell with a terminal, runs a
// command through it and resizes its terminal.
func TestAttachTTY(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "tty"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "shell", Command: []string{"/bin/sh"}, TTY: true, Stdin: true})
	c := e.waitState(t, id, cri.ContainerRunning, 10*time.Second)

	inR, inW := io.Pipe()
	out := &syncBuffer{}
	resize := make(chan cri.TerminalSize, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.r.Attach(ctx, id, inR, out, nil, resize) }()
	time.Sleep(200 * time.Millisecond) // let conmon accept the connection
	resize <- cri.TerminalSize{Width: 91, Height: 37}
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(inW, "echo hi-$((40+2)); stty size\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "attached output", func() bool { return strings.Contains(out.String(), "hi-42") && strings.Contains(out.String(), "37 91") }, out.String)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Attach did not return after its context ended")
	}
	// Detaching left the shell running, and its output is in the log.
	if got := e.container(t, id); got.State != cri.ContainerRunning {
		t.Errorf("after detach: got %s, want Running", got.State)
	}
	waitLog(t, c.LogPath, "stdout F hi-42")

	// Attached again, exit the shell: Attach returns when output ends.
	inR2, inW2 := io.Pipe()
	out2 := &syncBuffer{}
	done2 := make(chan error, 1)
	go func() { done2 <- e.r.Attach(context.Background(), id, inR2, out2, nil, nil) }()
	time.Sleep(200 * time.Millisecond)
	_, _ = io.WriteString(inW2, "exit 5\n")
	select {
	case err := <-done2:
		if err != nil {
			t.Errorf("attach until exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Attach did not return after the container exited")
	}
	if got := e.waitState(t, id, cri.ContainerExited, 10*time.Second); got.ExitCode != 5 {
		t.Errorf("exit code: got %d, want 5", got.ExitCode)
	}
}

// TestAttachStreams attaches to a container without a terminal: stdin
// reaches it, and its stdout and stderr come back apart.
func TestAttachStreams(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "streams"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "echo", Stdin: true, Command: []string{"/bin/sh", "-c",
		`while read l; do echo "out-$l"; echo "err-$l" >&2; done; echo stdin-closed`}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.r.Attach(ctx, id, strings.NewReader("a\nb\n"), stdout, stderr, nil) }()
	waitFor(t, "stdout and stderr", func() bool {
		return stdout.String() == "out-a\nout-b\n" && stderr.String() == "err-a\nerr-b\n"
	}, func() string { return "stdout " + stdout.String() + " stderr " + stderr.String() })
	// The client's stdin ended, but the container's stays open
	// (no StdinOnce): the container still runs.
	time.Sleep(200 * time.Millisecond)
	if got := e.container(t, id); got.State != cri.ContainerRunning || strings.Contains(stdout.String(), "stdin-closed") {
		t.Errorf("after the client's stdin ended: got %s, output %q, want Running with stdin open", got.State, stdout.String())
	}
	cancel()
	<-done

	// Only stdin, no output wanted: Attach returns when stdin ends.
	if err := e.r.Attach(context.Background(), id, strings.NewReader("c\n"), nil, nil, nil); err != nil {
		t.Errorf("stdin-only attach: %v", err)
	}
	waitLog(t, e.container(t, id).LogPath, "stderr F err-c")

	// A container that exited cannot be attached to.
	if err := e.r.StopContainer(context.Background(), id, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Attach(context.Background(), id, nil, io.Discard, nil, nil); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("attach to an exited container: got %v, want not running", err)
	}
}

// TestExecTTYResize runs `runc exec --tty` on a pty slave, as the kubelet
// does, and resizes the master while the process runs: the size must
// reach the process's terminal.
func TestExecTTYResize(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "exectty"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sleep", "3600"}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	master, slave := openPty(t)
	setSize(t, master, 10, 20)
	out := &syncBuffer{}
	go func() { _, _ = io.Copy(out, master) }()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Exit code 0 only once stty has seen the new size; 1 after 10 s
		// without it. The exit code is the proof: output written just
		// before the command exits may not reach the terminal, as runc
		// stops copying when the process is gone.
		code, err := e.r.Exec(context.Background(), id, []string{"/bin/sh", "-c", "i=0; while [ $i -lt 50 ]; do stty size; case $(stty size) in '33 77') exit 0;; esac; sleep 0.2; i=$((i+1)); done; exit 1"}, slave, slave, slave, true)
		done <- result{code, err}
	}()
	waitFor(t, "first size", func() bool { return strings.Contains(out.String(), "10 20") }, out.String)
	setSize(t, master, 33, 77)
	select {
	case r := <-done:
		if r.err != nil || r.code != 0 {
			t.Fatalf("exec after the resize: exit code %d, %v; want 0 (stty saw 33 77); output %q", r.code, r.err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exec did not end")
	}
}

func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func setSize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen in 15s; got %q", what, state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConmonMemory checks that what runs per container outside the
// container is small: conmon's own (anonymous) memory stays under 1 MiB;
// the rest of its RSS is shared library pages. It logs RSS and PSS.
func TestConmonMemory(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "mem"})
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		id := e.run(t, sb, cri.ContainerConfig{Name: name, Command: []string{"/bin/sh", "-c", "echo up; sleep 3600"}})
		ids = append(ids, id)
	}
	for _, id := range ids {
		c := e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
		waitLog(t, c.LogPath, "stdout F up")
		pid, err := os.ReadFile(filepath.Join(e.cfg.containerDir(id), conmonPIDFile))
		if err != nil {
			t.Fatal(err)
		}
		proc := "/proc/" + strings.TrimSpace(string(pid))
		if exe, _ := os.Readlink(proc + "/exe"); exe != e.r.cfg.ConmonPath {
			t.Errorf("container %s is supervised by %q, want %s", id, exe, e.r.cfg.ConmonPath)
		}
		rollup, err := os.ReadFile(proc + "/smaps_rollup")
		if err != nil {
			t.Skipf("no smaps_rollup: %v", err)
		}
		rss, _ := smapsKB(rollup, "Rss")
		pss, _ := smapsKB(rollup, "Pss")
		anon, ok := smapsKB(rollup, "Anonymous")
		if !ok {
			t.Fatalf("smaps_rollup without Anonymous:\n%s", rollup)
		}
		t.Logf("conmon of %s: RSS %d kB, PSS %d kB, anonymous %d kB", id[:12], rss, pss, anon)
		if anon >= 1024 {
			t.Errorf("conmon of %s: %d kB anonymous memory, want under 1024 kB", id[:12], anon)
		}
	}
}

// smapsKB reads a "Key:   123 kB" line of /proc/<pid>/smaps_rollup.
func smapsKB(data []byte, key string) (int, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == key+":" {
			var n int
			_, err := fmt.Sscan(f[1], &n)
			return n, err == nil
		}
	}
	return 0, false
}
