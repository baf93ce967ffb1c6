package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/cri"
)

// containerState is a container's record on disk (container.json). The
// exit.json beside it, once present, says how it ended.
type containerState struct {
	ID          string
	SandboxID   string
	PodUID      types.UID
	Namespace   string
	PodName     string
	Name        string
	Attempt     uint32
	Image       string
	ImageID     string
	Labels      map[string]string
	CreatedAt   time.Time
	StartedAt   time.Time
	LogPath     string
	CgroupsPath string
	// TTY and Stdin are the container's settings, which attach needs.
	TTY, Stdin bool
}

// How long the runtime waits for conmon to report that runc created the
// container, and for a killed container to be reaped.
const (
	createTimeout = 60 * time.Second
	killTimeout   = 15 * time.Second
)

func (r *Runtime) containerFile(id string) string {
	return filepath.Join(r.cfg.containerDir(id), "container.json")
}

func (r *Runtime) loadContainer(id string) (*containerState, error) {
	if !validID(id) {
		return nil, fmt.Errorf("container %q: %w", id, os.ErrNotExist)
	}
	var c containerState
	if err := r.readRecord(r.containerFile(id), &c); err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	return &c, nil
}

// CreateContainer mounts the container's overlay root filesystem, writes
// its OCI bundle and starts its conmon, which runs `runc create`.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, cfg cri.ContainerConfig) (string, error) {
	s, err := r.loadSandbox(sandboxID)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", cfg.Name, err)
	}
	pod := s.Namespace + "/" + s.Name
	if s.Stopped {
		return "", fmt.Errorf("pod %q: create container %q: sandbox %s is stopped", pod, cfg.Name, sandboxID)
	}
	img, err := r.cfg.Images.Rootfs(ctx, cfg.Image)
	if err != nil {
		return "", fmt.Errorf("pod %q: container %q: image %q: %w", pod, cfg.Name, cfg.Image, err)
	}
	id := newID()
	c := &containerState{
		ID: id, SandboxID: sandboxID, PodUID: s.PodUID, Namespace: s.Namespace, PodName: s.Name,
		Name: cfg.Name, Attempt: cfg.Attempt, Image: cfg.Image, ImageID: img.ImageID,
		Labels: cfg.Labels, CreatedAt: time.Now(),
		LogPath:     filepath.Join(r.cfg.sandboxDir(sandboxID), "logs", cfg.Name, strconv.FormatUint(uint64(cfg.Attempt), 10)+".log"),
		CgroupsPath: cgroupsPath(r.cfg.CgroupRoot, s.CgroupParent, id),
		TTY:         cfg.TTY, Stdin: cfg.Stdin,
	}
	if err := r.createContainer(ctx, s, c, cfg, img); err != nil {
		if rmErr := r.removeContainerFiles(context.WithoutCancel(ctx), id); rmErr != nil {
			r.logger.Warn("clean up failed container", "pod", pod, "container", cfg.Name, "id", id, "err", rmErr)
		}
		return "", fmt.Errorf("pod %q: create container %q: %w", pod, cfg.Name, err)
	}
	r.logger.Info("container created", "pod", pod, "container", cfg.Name, "id", id, "attempt", cfg.Attempt)
	return id, nil
}

func (r *Runtime) createContainer(ctx context.Context, s *sandboxState, c *containerState, cfg cri.ContainerConfig, img Rootfs) error {
	dir := r.cfg.containerDir(c.ID)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{rootfs, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Dir(c.LogPath)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	if err := r.writeRecord(r.containerFile(c.ID), c); err != nil {
		return err
	}
	if err := mountOverlay(rootfs, img.LayerDirs, filepath.Join(dir, "upper"), filepath.Join(dir, "work")); err != nil {
		return err
	}
	in := SpecInput{
		Config: cfg, Image: img, RootfsPath: rootfs, Hostname: s.Hostname,
		NetNS: s.Namespaces[nsNet], IPCNS: s.Namespaces[nsIPC], UTSNS: s.Namespaces[nsUTS],
		HostPID:      s.HostPID,
		HostsPath:    filepath.Join(r.cfg.sandboxDir(s.ID), "hosts"),
		ResolvPath:   filepath.Join(r.cfg.sandboxDir(s.ID), "resolv.conf"),
		HostnamePath: filepath.Join(r.cfg.sandboxDir(s.ID), "hostname"),
		CgroupsPath:  c.CgroupsPath, Sysctls: s.Sysctls,
		Passwd: readInRoot(rootfs, "etc/passwd"), Group: readInRoot(rootfs, "etc/group"),
	}
	if s.HostNetwork {
		in.Hostname, _ = os.Hostname()
	}
	if s.PausePID != 0 {
		if !pauseAlive(s.PausePID) {
			return fmt.Errorf("the pod's pause process %d is gone", s.PausePID)
		}
		in.PIDNS = pidNSPath(s.PausePID)
	}
	if cfg.Security.Privileged {
		in.HostDevices = hostDevices()
	}
	spec, err := Spec(in)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return err
	}
	return r.startConmon(ctx, c, cfg)
}

// readInRoot reads a file of the container's root filesystem, resolving
// symbolic links inside it, never outside; nil when it is absent.
func readInRoot(root, name string) []byte {
	dirfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil
	}
	return data
}

// hostDevices lists the node's device nodes directly under /dev, given to
// privileged containers.
func hostDevices() []specs.LinuxDevice {
	entries, err := os.ReadDir("/dev")
	if err != nil {
		return nil
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		if e.Type()&fs.ModeDevice == 0 {
			continue
		}
		p := filepath.Join("/dev", e.Name())
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			continue
		}
		typ := "c"
		if e.Type()&fs.ModeCharDevice == 0 {
			typ = "b"
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
	}
	return out
}

// StartContainer starts a created container.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.loadContainer(id)
	if err != nil {
		return err
	}
	c.StartedAt = time.Now()
	if err := r.writeRecord(r.containerFile(id), c); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if _, err := r.runc(ctx, "start", id); err != nil && !r.ranAndExited(id) {
		c.StartedAt = time.Time{}
		_ = r.writeRecord(r.containerFile(id), c)
		return fmt.Errorf("pod %q: start container %q: %w", c.Namespace+"/"+c.PodName, c.Name, err)
	}
	r.logger.Info("container started", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", id)
	return nil
}

// ranAndExited reports whether a container whose `runc start` failed did
// start after all: a process that exits at once may be gone while runc
// start still cleans up after it; conmon then writes the exit code within
// moments.
func (r *Runtime) ranAndExited(id string) bool {
	for range 50 {
		if _, ok := r.exitStatus(id); ok {
			return true
		}
		if !r.conmonAlive(id) {
			_, ok := r.exitStatus(id)
			return ok
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// StopContainer sends SIGTERM, and SIGKILL to every process of the
// container when it is still running after grace; it returns once the
// exit has been recorded.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	c, err := r.loadContainer(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := r.exitStatus(id); ok {
		return nil
	}
	if !r.conmonAlive(id) {
		if _, ok := r.exitStatus(id); ok { // conmon just finished
			return nil
		}
		return r.recordLostContainer(ctx, id)
	}
	if grace > 0 {
		if _, err := r.runc(ctx, "kill", id, "TERM"); err != nil {
			r.logger.Debug("sigterm", "id", id, "err", err)
		}
		if r.waitExit(ctx, id, grace) {
			r.logger.Info("container stopped", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", id)
			return nil
		}
	}
	if _, err := r.runc(ctx, "kill", "--all", id, "KILL"); err != nil {
		r.logger.Debug("sigkill", "id", id, "err", err)
	}
	if r.waitExit(ctx, id, killTimeout) {
		r.logger.Info("container killed", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", id, "grace", grace)
		return nil
	}
	if !r.conmonAlive(id) {
		if _, ok := r.exitStatus(id); ok {
			return nil
		}
		return r.recordLostContainer(ctx, id)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stop container %q: %w", id, ctx.Err())
	}
	return fmt.Errorf("stop container %q: still running %s after SIGKILL", id, killTimeout)
}

// recordLostContainer ends a container whose conmon is gone without an
// exit code (it was killed, or the node rebooted): whatever runc still
// has is killed and deleted, and the exit is recorded as unknown.
func (r *Runtime) recordLostContainer(ctx context.Context, id string) error {
	_, _ = r.runc(ctx, "delete", "--force", id)
	st := exitStatus{ExitCode: 137, Reason: "Unknown", Message: "the container's conmon is gone", FinishedAt: time.Now()}
	if err := r.writeRecord(filepath.Join(r.cfg.containerDir(id), exitFile), &st); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	r.logger.Warn("container lost its conmon", "id", id)
	return nil
}

// waitExit polls for the container's exit until timeout.
func (r *Runtime) waitExit(ctx context.Context, id string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if _, ok := r.exitStatus(id); ok {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// RemoveContainer kills the container if it still runs, deletes it from
// runc, unmounts its root filesystem and removes its bundle. Its log stays
// with the sandbox until RemoveSandbox.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	c, err := r.loadContainer(id)
	if errors.Is(err, os.ErrNotExist) {
		// A half-created container may have left files.
		return r.removeContainerFiles(ctx, id)
	}
	if err != nil {
		return err
	}
	if _, ok := r.exitStatus(id); !ok {
		if err := r.StopContainer(ctx, id, 0); err != nil {
			return err
		}
	}
	if err := r.removeContainerFiles(ctx, id); err != nil {
		return err
	}
	r.logger.Info("container removed", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", id)
	return nil
}

func (r *Runtime) removeContainerFiles(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	if _, err := r.runc(ctx, "delete", "--force", id); err != nil && !strings.Contains(err.Error(), "not exist") {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	dir := r.cfg.containerDir(id)
	rootfs := filepath.Join(dir, "rootfs")
	for range 8 {
		if unix.Unmount(rootfs, unix.MNT_DETACH) != nil {
			break
		}
	}
	r.forgetConmon(id)
	err := os.RemoveAll(dir)
	r.forgetPrefix(dir)
	if err != nil {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	return nil
}

// ListContainers reports every container recorded under Root with its
// current state: Exited once conmon wrote the exit code, else Created or
// Running while conmon lives, Unknown when it is gone.
func (r *Runtime) ListContainers(ctx context.Context) ([]cri.Container, error) {
	entries, err := os.ReadDir(r.cfg.containersDir())
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []cri.Container
	for _, e := range entries {
		c, err := r.loadContainer(e.Name())
		if err != nil {
			continue // being created or removed
		}
		out = append(out, r.status(ctx, c))
	}
	return out, nil
}

func (r *Runtime) status(_ context.Context, c *containerState) cri.Container {
	out := cri.Container{
		ID: c.ID, SandboxID: c.SandboxID, PodUID: c.PodUID, Name: c.Name, Attempt: c.Attempt,
		Image: c.Image, ImageID: c.ImageID, CreatedAt: c.CreatedAt, StartedAt: c.StartedAt,
		Labels: c.Labels, LogPath: c.LogPath, State: cri.ContainerUnknown,
	}
	// A watched conmon that still runs needs no file read: it exits
	// right after writing the exit code, so the next list sees the end.
	if alive, known := r.watchedConmonAlive(c.ID); known && alive {
		out.State = cri.ContainerCreated
		if !c.StartedAt.IsZero() {
			out.State = cri.ContainerRunning
		}
		return out
	}
	if st, ok := r.exitStatus(c.ID); ok {
		out.State = cri.ContainerExited
		out.ExitCode, out.Reason, out.Message, out.FinishedAt = st.ExitCode, st.Reason, st.Message, st.FinishedAt
		return out
	}
	// No process per container and call: the relist asks every second.
	// While conmon lives it waits on the container, so the container is
	// Created until started and Running after; a dead conmon without an
	// exit code is Unknown.
	if r.conmonAlive(c.ID) {
		out.State = cri.ContainerCreated
		if !c.StartedAt.IsZero() {
			out.State = cri.ContainerRunning
		}
	}
	return out
}

// Exec runs cmd in a running container with `runc exec` and returns its
// exit code. With tty, runc gives the process a terminal of its own and
// copies it to and from stdin and stdout; when stdin is a terminal (the
// slave of the kubelet's pty), its size follows that terminal's.
func (r *Runtime) Exec(ctx context.Context, containerID string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	if !validID(containerID) || len(cmd) == 0 {
		return -1, fmt.Errorf("exec in container %q: bad arguments", containerID)
	}
	// runc's own errors (the command cannot be started) go to a log of
	// their own, to tell them from a command that exits with 255.
	logFile, err := os.CreateTemp(r.cfg.containerDir(containerID), "exec-*.log")
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", containerID, err)
	}
	logFile.Close()
	defer os.Remove(logFile.Name())
	args := []string{"--root", r.cfg.runcRoot(), "--log", logFile.Name(), "--log-format", "json", "exec"}
	if tty {
		args = append(args, "--tty")
	}
	args = append(append(args, containerID), cmd...)
	c := exec.CommandContext(ctx, r.cfg.RuncPath, args...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	var term *os.File
	if f, ok := stdin.(*os.File); ok && tty && isTerminal(f) {
		// The terminal becomes runc's controlling terminal, so resizing
		// its master sends runc SIGWINCH and runc resizes the
		// container's console.
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		term = f
	}
	if err := c.Start(); err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", containerID, err)
	}
	if term != nil {
		// A size set while runc was starting, before it listened for
		// SIGWINCH, would be lost: runc is told again whenever the
		// terminal's size is not the one it was last told.
		stop := make(chan struct{})
		defer close(stop)
		go pokeOnResize(term, c.Process, stop)
	}
	err = c.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if msg := lastRuncError(logFile.Name()); msg != "" {
			// As containerd reports it, and the kubelet passes it on.
			return -1, fmt.Errorf("failed to exec in container: OCI runtime exec failed: %s", msg)
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", containerID, err)
	}
	return 0, nil
}

// resizePoll is how often an exec's terminal size is looked at.
const resizePoll = 250 * time.Millisecond

// pokeOnResize sends p SIGWINCH whenever term's size differs from the
// size p was last sent, until stop is closed.
func pokeOnResize(term *os.File, p *os.Process, stop <-chan struct{}) {
	var last unix.Winsize
	t := time.NewTicker(resizePoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ws, err := unix.IoctlGetWinsize(int(term.Fd()), unix.TIOCGWINSZ)
		if err != nil || (ws.Row == last.Row && ws.Col == last.Col) {
			continue
		}
		last = *ws
		_ = p.Signal(syscall.SIGWINCH)
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
