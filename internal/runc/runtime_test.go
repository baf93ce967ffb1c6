package runc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
)

// TestMain lets the test binary play a skiff process that starts a pod
// and exits ("<test binary> start-and-exit").
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "start-and-exit" {
		if err := startAndExit(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "start-and-exit:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperRequest is what a test sends the "start-and-exit" helper process.
type helperRequest struct {
	Root, RunDir, CgroupRoot string
	Image                    Rootfs
}

// startAndExit plays a skiff process that starts a pod and exits: it runs
// a sandbox and a long-running container, prints their IDs and returns.
func startAndExit(in io.Reader, out io.Writer) error {
	var req helperRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return err
	}
	r, err := New(Config{Root: req.Root, RunDir: req.RunDir, CgroupRoot: req.CgroupRoot, Images: fakeImages{req.Image}})
	if err != nil {
		return err
	}
	ctx := context.Background()
	sb, err := r.RunSandbox(ctx, cri.SandboxConfig{Namespace: "ns", Name: "survivor", PodUID: "uid-s", Attempt: 3, Hostname: "survivor"})
	if err != nil {
		return err
	}
	id, err := r.CreateContainer(ctx, sb, cri.ContainerConfig{
		Name: "app", Image: "busybox:test", Attempt: 5, Labels: map[string]string{"k": "v"},
		Command: []string{"/bin/sh", "-c", "trap 'echo bye; exit 7' TERM; echo started; while true; do sleep 0.1; done"},
	})
	if err != nil {
		return err
	}
	if err := r.StartContainer(ctx, id); err != nil {
		return err
	}
	return json.NewEncoder(out).Encode([]string{sb, id})
}

// fakeImages serves one image built from the node's busybox, in two layers
// so the overlay order is exercised.
type fakeImages struct{ rootfs Rootfs }

func (f fakeImages) Rootfs(_ context.Context, image string) (Rootfs, error) {
	if image != "busybox:test" {
		return Rootfs{}, fmt.Errorf("image %q not found", image)
	}
	return f.rootfs, nil
}

func requireRuntime(t *testing.T) {
	t.Helper()
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "root"
	default:
		for _, bin := range []string{"runc", "conmon", "catatonit"} {
			if _, err := exec.LookPath(bin); err != nil {
				missing = bin
			}
		}
		if missing != "" {
			break
		}
		if _, err := os.Stat("/bin/busybox"); err != nil {
			missing = "/bin/busybox"
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the runc runtime tests need %s", missing)
	}
	t.Skipf("the runc runtime tests need %s", missing)
}

// busyboxImage builds the layers: busybox with its applets, /etc/passwd and
// /etc/group, and /msg "lower" in the lowest layer, /msg "upper" above.
func busyboxImage(t *testing.T) Rootfs {
	t.Helper()
	base := filepath.Join(t.TempDir(), "layers")
	lower, upper := filepath.Join(base, "0"), filepath.Join(base, "1")
	for _, d := range []string{"bin", "etc", "tmp", "root", "home/app"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(lower, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep", "cat", "echo", "id", "hostname", "ls", "env", "pwd", "tail", "readlink", "ps", "trap", "nc", "ip", "head", "true", "stty", "seq"} {
		if err := os.Symlink("busybox", filepath.Join(lower, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(lower, "etc/passwd"): "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
		filepath.Join(lower, "etc/group"):  "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
		filepath.Join(lower, "msg"):        "lower\n",
		filepath.Join(upper, "msg"):        "upper\n",
	}
	if err := os.MkdirAll(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Rootfs{
		ImageID:   "busybox@sha256:test",
		LayerDirs: []string{lower, upper},
		Env:       []string{"PATH=/bin", "FROM_IMAGE=image", "OVERRIDE=image"},
		Cmd:       []string{"/bin/sh", "-c", "echo image-cmd"},
	}
}

type testEnv struct {
	cfg Config
	r   *Runtime
}

// newTestEnv builds a Runtime with state under a temp dir and a unique
// cgroup root; everything it leaves is removed at the end of the test.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	requireRuntime(t)
	dir := t.TempDir()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cfg := Config{
		Root:       filepath.Join(dir, "root"),
		RunDir:     filepath.Join(dir, "run"),
		CgroupRoot: "skiff-test-" + hex.EncodeToString(suffix),
		Images:     fakeImages{busyboxImage(t)},
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{cfg: cfg, r: r}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sbs, _ := r.ListSandboxes(ctx)
		for _, s := range sbs {
			if err := r.RemoveSandbox(ctx, s.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		cs, _ := r.ListContainers(ctx)
		for _, c := range cs {
			if err := r.RemoveContainer(ctx, c.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		removeCgroup(cfg.CgroupRoot, "")
	})
	return env
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *testEnv) sandbox(t *testing.T, cfg cri.SandboxConfig) string {
	t.Helper()
	if cfg.Name == "" {
		cfg.Namespace, cfg.Name, cfg.PodUID = "default", "pod", "uid-1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.r.RunSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// run creates and starts a container.
func (e *testEnv) run(t *testing.T, sandboxID string, cfg cri.ContainerConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox:test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.r.CreateContainer(ctx, sandboxID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.r.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *testEnv) container(t *testing.T, id string) cri.Container {
	t.Helper()
	cs, err := e.r.ListContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("container %s not listed", id)
	return cri.Container{}
}

// waitState polls until the container reaches state.
func (e *testEnv) waitState(t *testing.T, id string, state cri.ContainerState, timeout time.Duration) cri.Container {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := e.container(t, id)
		if c.State == state {
			return c
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(filepath.Join(e.cfg.containerDir(id), conmonLogFile))
			t.Fatalf("container %s: state %s after %s, want %s; log:\n%s\nconmon log:\n%s", id, c.State, timeout, state, readLog(t, c.LogPath), data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readLog returns the container's log messages, one per line, after
// checking every entry is in the CRI format. Partial ("P") entries are
// joined with the rest of their line, as the kubelet reads them; a line
// still partial at the end stays a "P" entry.
func readLog(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	var out strings.Builder
	pending := map[string]string{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Errorf("log line %q: want 4 fields", sc.Text())
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Errorf("log line %q: %v", sc.Text(), err)
		}
		stream := parts[1]
		if parts[2] == "P" {
			if _, ok := pending[stream]; !ok {
				order = append(order, stream)
			}
			pending[stream] += parts[3]
			continue
		}
		fmt.Fprintf(&out, "%s %s %s\n", stream, parts[2], pending[stream]+parts[3])
		if _, ok := pending[stream]; ok {
			delete(pending, stream)
			order = slices.DeleteFunc(order, func(s string) bool { return s == stream })
		}
	}
	for _, stream := range order {
		fmt.Fprintf(&out, "%s P %s\n", stream, pending[stream])
	}
	return out.String()
}

// waitLog polls until the container's log contains want.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := readLog(t, path)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("log: got\n%s\nwant it to contain %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunContainerLogAndExitCode(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "pod"})
	id := e.run(t, sb, cri.ContainerConfig{
		Name: "app", Command: []string{"/bin/sh", "-c", "echo hello; echo oops >&2; printf partial; exit 3"},
	})
	c := e.waitState(t, id, cri.ContainerExited, 30*time.Second)
	if c.ExitCode != 3 || c.Reason != "Error" {
		t.Errorf("got exit code %d reason %q, want 3 Error", c.ExitCode, c.Reason)
	}
	if c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
		t.Errorf("got startedAt %v finishedAt %v, want started then finished", c.StartedAt, c.FinishedAt)
	}
	log := readLog(t, c.LogPath)
	// conmon writes output without a final newline as a partial entry.
	for _, want := range []string{"stdout F hello\n", "stderr F oops\n", "stdout P partial\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log: got\n%s\nwant %q", log, want)
		}
	}
	if want := filepath.Join(e.cfg.sandboxDir(sb), "logs", "app", "0.log"); c.LogPath != want {
		t.Errorf("log path: got %s, want %s", c.LogPath, want)
	}
	info, err := e.r.Info(context.Background())
	if err != nil || info.Name != "runc" || info.Version == "" {
		t.Errorf("info: got %+v, %v", info, err)
	}
}

func TestImageDefaultsAndOverrides(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "pod"})

	// No command: the image's cmd runs.
	id := e.run(t, sb, cri.ContainerConfig{Name: "default"})
	c := e.waitState(t, id, cri.ContainerExited, 30*time.Second)
	if log := readLog(t, c.LogPath); log != "stdout F image-cmd\n" || c.ExitCode != 0 {
		t.Errorf("image cmd: got log %q exit %d, want image-cmd 0", log, c.ExitCode)
	}

	uid := int64(1000)
	id = e.run(t, sb, cri.ContainerConfig{
		Name: "custom", Command: []string{"/bin/sh", "-c"},
		Args:       []string{`echo "cwd=$(pwd) img=$FROM_IMAGE ovr=$OVERRIDE new=$NEW host=$HOSTNAME msg=$(cat /msg) ids=$(id -u):$(id -g):$(id -G)"`},
		Env:        []cri.EnvVar{{Name: "OVERRIDE", Value: "container"}, {Name: "NEW", Value: "x y"}},
		WorkingDir: "/tmp",
		Security:   cri.Security{RunAsUser: &uid},
	})
	c = e.waitState(t, id, cri.ContainerExited, 30*time.Second)
	want := "stdout F cwd=/tmp img=image ovr=container new=x y host=pod msg=upper ids=1000:1000:1000 2000\n"
	if log := readLog(t, c.LogPath); log != want {
		t.Errorf("got log %q, want %q", log, want)
	}
}

func TestSandboxSharesNetworkAndUTS(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "shared-pod", Subdomain: "sub"})
	server := e.run(t, sb, cri.ContainerConfig{
		Name: "server", Command: []string{"/bin/sh", "-c", "echo ready; echo from-server | nc -l -p 7777"},
	})
	srv := e.container(t, server)
	waitLog(t, srv.LogPath, "stdout F ready")
	script := `hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; cat /proc/net/dev | cut -d: -f1 | tr -d ' ' | tail -n +3 | sort | tr '\n' ,; echo; cat /etc/hostname; ip link show lo | head -1;` +
		` for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 7777 </dev/null && break; sleep 0.2; done`
	client := e.run(t, sb, cri.ContainerConfig{Name: "client", Command: []string{"/bin/sh", "-c", script}})
	c := e.waitState(t, client, cri.ContainerExited, 30*time.Second)
	lines := strings.Split(strings.TrimSpace(readLog(t, c.LogPath)), "\n")
	if len(lines) < 7 {
		t.Fatalf("client log: got %q, want 7 lines", lines)
	}
	if lines[0] != "stdout F shared-pod" || lines[4] != "stdout F shared-pod" {
		t.Errorf("hostname and /etc/hostname: got %q and %q, want shared-pod", lines[0], lines[4])
	}
	if lines[3] != "stdout F lo," {
		t.Errorf("interfaces: got %q, want only lo (no network plugin)", lines[3])
	}
	if !strings.Contains(lines[5], "UP") {
		t.Errorf("loopback: got %q, want UP", lines[5])
	}
	if lines[6] != "stdout F from-server" {
		t.Errorf("connect to the other container on 127.0.0.1: got %q, want from-server", lines[6])
	}
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	if strings.Contains(lines[1], hostNet) {
		t.Errorf("network namespace: got the host's %s", hostNet)
	}
	// The server container reports the same namespaces.
	e.waitState(t, server, cri.ContainerExited, 10*time.Second)
	out := &bytes.Buffer{}
	second := e.run(t, sb, cri.ContainerConfig{Name: "second", Command: []string{"/bin/sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts"}})
	c2 := e.waitState(t, second, cri.ContainerExited, 30*time.Second)
	out.WriteString(readLog(t, c2.LogPath))
	if want := lines[1] + "\n" + lines[2] + "\n"; out.String() != want {
		t.Errorf("namespaces of a second container: got %q, want %q", out.String(), want)
	}
	hosts, err := os.ReadFile(filepath.Join(e.cfg.sandboxDir(sb), "hosts"))
	if err != nil || !strings.HasPrefix(string(hosts), managedHostsHeader) {
		t.Errorf("hosts file: got %q, %v", hosts, err)
	}
}

func TestShareProcessNamespace(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "pid", ShareProcessNamespace: true})
	sleeper := e.run(t, sb, cri.ContainerConfig{Name: "sleeper", Command: []string{"/bin/sleep", "3600"}})
	e.waitState(t, sleeper, cri.ContainerRunning, 10*time.Second)
	ps := e.run(t, sb, cri.ContainerConfig{Name: "ps", Command: []string{"/bin/sh", "-c", "ps -o pid,args"}})
	c := e.waitState(t, ps, cri.ContainerExited, 30*time.Second)
	log := readLog(t, c.LogPath)
	if !strings.Contains(log, "sleep 3600") || !strings.Contains(log, "stdout F     1 /usr/bin/catatonit -P") {
		t.Errorf("ps in a shared PID namespace: got\n%s\nwant the other container's sleep and PID 1 catatonit -P (pause)", log)
	}
	if err := e.r.StopContainer(context.Background(), sleeper, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStopContainer(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "stop"})
	graceful := e.run(t, sb, cri.ContainerConfig{Name: "graceful", Command: []string{"/bin/sh", "-c",
		`trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done`}})
	stubborn := e.run(t, sb, cri.ContainerConfig{Name: "stubborn", Command: []string{"/bin/sh", "-c",
		`trap '' TERM; echo ready; while true; do sleep 0.1; done`}})
	waitLog(t, e.container(t, graceful).LogPath, "stdout F ready")
	waitLog(t, e.container(t, stubborn).LogPath, "stdout F ready")

	start := time.Now()
	if err := e.r.StopContainer(context.Background(), graceful, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("graceful stop took %s, want well under the 20s grace", d)
	}
	c := e.container(t, graceful)
	if c.State != cri.ContainerExited || c.ExitCode != 0 || !strings.Contains(readLog(t, c.LogPath), "got-term") {
		t.Errorf("graceful: got %s exit %d log %q, want Exited 0 after got-term", c.State, c.ExitCode, readLog(t, c.LogPath))
	}

	start = time.Now()
	if err := e.r.StopContainer(context.Background(), stubborn, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("stubborn stop took %s, want at least the 1.5s grace", d)
	}
	c = e.container(t, stubborn)
	if c.State != cri.ContainerExited || c.ExitCode != 137 || c.Reason == "OOMKilled" {
		t.Errorf("stubborn: got %s exit %d reason %q, want Exited 137 (killed)", c.State, c.ExitCode, c.Reason)
	}
	// Stopping again is not an error.
	if err := e.r.StopContainer(context.Background(), stubborn, time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestOOMKilled(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "oom", CgroupParent: "kubepods/podoom"})
	id := e.run(t, sb, cri.ContainerConfig{
		Name: "hog", Command: []string{"/bin/tail", "/dev/zero"},
		Resources: cri.Resources{MemoryLimit: 8 << 20},
	})
	c := e.waitState(t, id, cri.ContainerExited, 60*time.Second)
	if c.Reason != "OOMKilled" || c.ExitCode != 137 {
		t.Errorf("got exit code %d reason %q, want 137 OOMKilled", c.ExitCode, c.Reason)
	}
}

func TestRestartAdoptsRunningContainer(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Namespace: "ns", Name: "web", PodUID: "uid-web", Attempt: 1, Hostname: "web"})
	labels := map[string]string{"io.kubernetes.container.name": "app", "hash": "abc"}
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Attempt: 2, Labels: labels, Command: []string{"/bin/sleep", "3600"}})
	before := e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	initPID, err := os.ReadFile(filepath.Join(e.cfg.containerDir(id), initPIDFile))
	if err != nil {
		t.Fatal(err)
	}

	// A new Runtime over the same directories, as after a restart of skiff.
	r2, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := r2.ListContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("got %d containers, want 1", len(cs))
	}
	got := cs[0]
	if got.ID != id || got.State != cri.ContainerRunning || got.Attempt != 2 || !maps.Equal(got.Labels, labels) ||
		got.SandboxID != sb || got.PodUID != "uid-web" || !got.StartedAt.Equal(before.StartedAt) || got.ImageID != "busybox@sha256:test" {
		t.Errorf("after restart: got %+v, want running %s attempt 2 labels %v", got, id, labels)
	}
	sbs, err := r2.ListSandboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sbs) != 1 || sbs[0].ID != sb || sbs[0].State != cri.SandboxReady || sbs[0].Attempt != 1 || sbs[0].Name != "web" {
		t.Errorf("sandboxes after restart: got %+v", sbs)
	}
	again, _ := os.ReadFile(filepath.Join(e.cfg.containerDir(id), initPIDFile))
	if !bytes.Equal(again, initPID) {
		t.Errorf("init pid: got %s, want %s (not restarted)", again, initPID)
	}
	if err := r2.StopContainer(context.Background(), id, time.Second); err != nil {
		t.Fatal(err)
	}
	if c := e.container(t, id); c.State != cri.ContainerExited {
		t.Errorf("after stop: got %s, want Exited", c.State)
	}
}

func TestExec(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "exec"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sleep", "3600"}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	var out bytes.Buffer
	code, err := e.r.Exec(context.Background(), id, []string{"/bin/sh", "-c", "cat; hostname; exit 4"}, strings.NewReader("in\n"), &out, io.Discard, false)
	if err != nil || code != 4 || out.String() != "in\nexec\n" {
		t.Errorf("exec: got code %d out %q err %v, want 4 \"in\\nexec\\n\"", code, out.String(), err)
	}
	// A command that exits 255 is not an exec failure.
	if code, err := e.r.Exec(context.Background(), id, []string{"/bin/sh", "-c", "exit 255"}, nil, io.Discard, io.Discard, false); err != nil || code != 255 {
		t.Errorf("exec exit 255: got code %d err %v, want 255 and no error", code, err)
	}
	// A command that is not in the image is, as containerd reports it.
	_, err = e.r.Exec(context.Background(), id, []string{"nosuch"}, nil, io.Discard, io.Discard, false)
	want := `failed to exec in container: OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`
	if err == nil || err.Error() != want {
		t.Errorf("exec of a missing command: got %v, want %q", err, want)
	}
}

func TestRemoveSandboxLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "gone", ShareProcessNamespace: true, CgroupParent: "kubepods/burstable/podgone"})
	s, err := e.r.loadSandbox(sb)
	if err != nil {
		t.Fatal(err)
	}
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sleep", "3600"},
		Resources: cri.Resources{MemoryLimit: 64 << 20, CPUShares: 256, PidsLimit: 50}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	created, err := e.r.CreateContainer(ctx, sb, cri.ContainerConfig{Name: "never-started", Image: "busybox:test", Command: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := e.container(t, created); c.State != cri.ContainerCreated {
		t.Errorf("created container: got %s, want Created", c.State)
	}
	memDir := filepath.Join(cgroupMount, "memory", e.cfg.CgroupRoot, "kubepods/burstable/podgone", id)
	if data, err := os.ReadFile(filepath.Join(memDir, "memory.limit_in_bytes")); err != nil || strings.TrimSpace(string(data)) != "67108864" {
		t.Errorf("memory limit in %s: got %q, %v, want 67108864", memDir, data, err)
	}
	for file, want := range map[string]string{
		filepath.Join(cgroupMount, "cpu", e.cfg.CgroupRoot, "kubepods/burstable/podgone", id, "cpu.shares"): "256",
		filepath.Join(cgroupMount, "pids", e.cfg.CgroupRoot, "kubepods/burstable/podgone", id, "pids.max"):  "50",
	} {
		if data, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s: got %q, %v, want %s", file, data, err, want)
		}
	}
	if !pauseAlive(s.PausePID) {
		t.Errorf("pause process %d not running", s.PausePID)
	}

	if err := e.r.StopSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := e.r.StopSandbox(ctx, sb); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := e.r.RemoveSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := e.r.RemoveSandbox(ctx, sb); err != nil {
		t.Errorf("second remove: %v", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, e.cfg.Root) || strings.Contains(line, e.cfg.RunDir) {
			t.Errorf("mount left: %s", line)
		}
	}
	for _, h := range hierarchies() {
		if _, err := os.Stat(filepath.Join(h, e.cfg.CgroupRoot)); !os.IsNotExist(err) {
			t.Errorf("cgroup left: %s (%v)", filepath.Join(h, e.cfg.CgroupRoot), err)
		}
	}
	if pauseAlive(s.PausePID) {
		t.Errorf("pause process %d still running", s.PausePID)
	}
	for _, p := range []string{e.cfg.sandboxDir(sb), e.cfg.containerDir(id), filepath.Join(e.cfg.nsDir(), sb)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	sbs, _ := e.r.ListSandboxes(ctx)
	cs, _ := e.r.ListContainers(ctx)
	if len(sbs) != 0 || len(cs) != 0 {
		t.Errorf("got %d sandboxes and %d containers listed, want none", len(sbs), len(cs))
	}
}

// TestContainerOutlivesProcess starts a pod from a separate process that
// then exits, as skiff would on a restart, and checks the container still
// runs, logs, and is adopted by a Runtime in this process.
func TestContainerOutlivesProcess(t *testing.T) {
	e := newTestEnv(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(helperRequest{
		Root: e.cfg.Root, RunDir: e.cfg.RunDir, CgroupRoot: e.cfg.CgroupRoot,
		Image: e.cfg.Images.(fakeImages).rootfs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "start-and-exit")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	var ids []string
	if err := json.Unmarshal(out, &ids); err != nil || len(ids) != 2 {
		t.Fatalf("helper output %q: %v", out, err)
	}
	sb, id := ids[0], ids[1]

	c := e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	if c.SandboxID != sb || c.Attempt != 5 || c.Labels["k"] != "v" || c.PodUID != "uid-s" {
		t.Errorf("adopted container: got %+v", c)
	}
	logBefore := waitLog(t, c.LogPath, "stdout F started")
	sbs, err := e.r.ListSandboxes(ctx)
	if err != nil || len(sbs) != 1 || sbs[0].Attempt != 3 || sbs[0].State != cri.SandboxReady {
		t.Errorf("adopted sandboxes: got %+v, %v", sbs, err)
	}
	// conmon is in its own session, no longer our descendant.
	pid, err := os.ReadFile(filepath.Join(e.cfg.containerDir(id), conmonPIDFile))
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile("/proc/" + string(pid) + "/stat")
	if err != nil {
		t.Fatalf("conmon %s not running: %v", pid, err)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if fields[3] != string(pid) { // session ID
		t.Errorf("conmon session: got %s, want its own (%s)", fields[3], pid)
	}
	if err := e.r.StopContainer(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c = e.container(t, id)
	if c.State != cri.ContainerExited || c.ExitCode != 7 {
		t.Errorf("after stop: got %s exit %d, want Exited 7 (its TERM trap)", c.State, c.ExitCode)
	}
	// conmon kept logging after the process that started it exited.
	if log, want := readLog(t, c.LogPath), logBefore+"stdout F bye\n"; log != want {
		t.Errorf("log: got %q, want %q", log, want)
	}
}

// TestOverlayManyLayers mounts more layers than fit in one page of mount
// options with absolute paths, and checks the stacking order.
func TestOverlayManyLayers(t *testing.T) {
	requireRuntime(t)
	dir := t.TempDir()
	base := filepath.Join(dir, strings.Repeat("long-layer-store-directory-name-", 3))
	var layers []string
	for i := range 50 {
		l := filepath.Join(base, fmt.Sprintf("sha256-%060d", i), "fs")
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "top"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	if n := len(overlayOptions(layers, "/u", "/w", "")); n < 4096 {
		t.Fatalf("options are %d bytes, want more than a page", n)
	}
	target, upper, work := filepath.Join(dir, "m"), filepath.Join(dir, "u"), filepath.Join(dir, "w")
	for _, d := range []string{target, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mountOverlay(target, layers, upper, work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountAndRemove(target) })
	top, err := os.ReadFile(filepath.Join(target, "top"))
	if err != nil || string(top) != "49" {
		t.Errorf("top: got %q, %v, want the highest layer's 49", top, err)
	}
	for _, f := range []string{"f0", "f49"} {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	wd, _ := os.Getwd()
	if wd == base {
		t.Errorf("the process's working directory changed to %s", wd)
	}
}

func TestCreateContainerErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "errors"})
	tests := []struct {
		name    string
		sandbox string
		cfg     cri.ContainerConfig
		want    string
	}{
		{"missing binary", sb, cri.ContainerConfig{Name: "a", Image: "busybox:test", Command: []string{"/no/such/binary"}}, "no such file"},
		{"unknown image", sb, cri.ContainerConfig{Name: "b", Image: "nope:1", Command: []string{"/bin/true"}}, `image "nope:1"`},
		{"unknown sandbox", "0123abcd", cri.ContainerConfig{Name: "c", Image: "busybox:test"}, "0123abcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.r.CreateContainer(ctx, tt.sandbox, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
	entries, err := os.ReadDir(e.cfg.containersDir())
	if err != nil || len(entries) != 0 {
		t.Errorf("container dirs after failed creates: got %d (%v), want none", len(entries), err)
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mountinfo), e.cfg.containersDir()) {
		t.Errorf("overlay mount left after failed creates")
	}
}

func TestHostNetworkSandbox(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "ignored", HostNetwork: true, HostIPC: true, HostIP: "192.0.2.10",
		HostAliases: []cri.HostAlias{{IP: "192.0.2.99", Hostnames: []string{"alias"}}}})
	sbs, err := e.r.ListSandboxes(context.Background())
	if err != nil || len(sbs) != 1 || len(sbs[0].IPs) != 1 || sbs[0].IPs[0] != "192.0.2.10" {
		t.Fatalf("sandbox: got %+v, %v, want the host IP", sbs, err)
	}
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sh", "-c",
		"readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; hostname; tail -n 1 /etc/hosts"}})
	c := e.waitState(t, id, cri.ContainerExited, 30*time.Second)
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	hostname, _ := os.Hostname()
	want := fmt.Sprintf("stdout F %s\nstdout F %s\nstdout F %s\nstdout F 192.0.2.99\talias\n", hostNet, hostIPC, hostname)
	if got := readLog(t, c.LogPath); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// recordingNetwork hands out a fixed IP and records calls.
type recordingNetwork struct {
	setups, teardowns []string
	netns             string
	nsOK              bool
}

func (n *recordingNetwork) Setup(_ context.Context, id, netns string, ports []cri.PortMapping) ([]string, error) {
	n.setups = append(n.setups, id)
	n.netns, n.nsOK = netns, isNsMount(netns)
	return []string{"10.244.0.7"}, nil
}

func (n *recordingNetwork) Teardown(_ context.Context, id, netns string, _ []cri.PortMapping) error {
	n.teardowns = append(n.teardowns, id)
	return nil
}

func TestSandboxNetwork(t *testing.T) {
	e := newTestEnv(t)
	net := &recordingNetwork{}
	e.cfg.Network = net
	r, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, err := r.RunSandbox(ctx, cri.SandboxConfig{Namespace: "default", Name: "web-0", Hostname: "web-0", Subdomain: "web",
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"},
		DNS:     &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.setups) != 1 || net.setups[0] != sb || !net.nsOK {
		t.Errorf("setup: got calls %v with netns %s (pinned %v), want one for %s on a pinned namespace", net.setups, net.netns, net.nsOK, sb)
	}
	sbs, _ := r.ListSandboxes(ctx)
	if len(sbs) != 1 || len(sbs[0].IPs) != 1 || sbs[0].IPs[0] != "10.244.0.7" {
		t.Errorf("sandboxes: got %+v, want IP 10.244.0.7", sbs)
	}
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sh", "-c", "tail -n 1 /etc/hosts; cat /etc/resolv.conf; cat /proc/sys/net/ipv4/ip_unprivileged_port_start"}})
	c := e.waitState(t, id, cri.ContainerExited, 30*time.Second)
	want := "stdout F 10.244.0.7\tweb-0.web.default.svc.cluster.local\tweb-0\n" +
		"stdout F nameserver 10.96.0.10\nstdout F search default.svc.cluster.local\nstdout F options ndots:5\nstdout F 80\n"
	if got := readLog(t, c.LogPath); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := r.StopSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if len(net.teardowns) != 1 {
		t.Errorf("teardown: got %d calls, want 1", len(net.teardowns))
	}
}

// TestThrowawayThreadKeepsProcessNamespaces unshares namespaces many
// times and checks the process (its main thread, and new threads) keeps
// its own.
func TestThrowawayThreadKeepsProcessNamespaces(t *testing.T) {
	requireRuntime(t)
	before, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		err := onThrowawayThread(func() error { return unix.Unshare(unix.CLONE_NEWUTS) })
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.Readlink("/proc/self/ns/uts"); got != before {
			t.Fatalf("iteration %d: main thread's uts namespace: got %s, want %s", i, got, before)
		}
		if got, _ := os.Readlink("/proc/thread-self/ns/uts"); got != before {
			t.Fatalf("iteration %d: this thread's uts namespace: got %s, want %s", i, got, before)
		}
	}
}

// TestLostConmon kills a running container's conmon: the container is
// then stopped by runc directly and reported Exited with an unknown reason.
func TestLostConmon(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "lost"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "app", Command: []string{"/bin/sleep", "3600"}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	conmonPID, err := os.ReadFile(filepath.Join(e.cfg.containerDir(id), conmonPIDFile))
	if err != nil {
		t.Fatal(err)
	}
	initPID, err := os.ReadFile(filepath.Join(e.cfg.containerDir(id), initPIDFile))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(conmonPID), &pid)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.r.conmonAlive(id) {
		if time.Now().After(deadline) {
			t.Fatal("conmon still alive after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.r.StopContainer(context.Background(), id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c := e.container(t, id)
	if c.State != cri.ContainerExited || c.Reason != "Unknown" {
		t.Errorf("got %s reason %q, want Exited Unknown", c.State, c.Reason)
	}
	if _, err := os.Stat("/proc/" + strings.TrimSpace(string(initPID))); err == nil {
		cmdline, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(initPID)) + "/cmdline")
		if strings.Contains(string(cmdline), "sleep") {
			t.Errorf("container init %s still running", initPID)
		}
	}
}

// TestDialSandbox reaches a server that listens only on the pod's own
// localhost, from the node.
func TestDialSandbox(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(t, cri.SandboxConfig{Hostname: "dial"})
	id := e.run(t, sb, cri.ContainerConfig{Name: "web", Command: []string{"/bin/sh", "-c",
		"mkdir -p /w && echo inside > /w/index.html && exec httpd -f -p 127.0.0.1:7070 -h /w"}})
	e.waitState(t, id, cri.ContainerRunning, 10*time.Second)
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		body = dialGet(t, e.r, sb, 7070)
		if strings.Contains(body, "inside") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "inside") {
		t.Fatalf("GET through DialSandbox: got %q, want the page", body)
	}
	// The node's own localhost has no such server.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:7070", time.Second); err == nil {
		c.Close()
		t.Errorf("127.0.0.1:7070 answered in the node's namespace; the test cannot tell the namespaces apart")
	}
}

// dialGet fetches / over a connection from DialSandbox, or returns the
// error's text.
func dialGet(t *testing.T, r *Runtime, sandboxID string, port uint16) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.DialSandbox(ctx, sandboxID, port)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
		return err.Error()
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
