package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/cri"
)

// sandboxState is a sandbox's record on disk (sandbox.json).
type sandboxState struct {
	ID        string
	PodUID    types.UID
	Namespace string
	Name      string
	Attempt   uint32
	Labels    map[string]string
	CreatedAt time.Time

	Hostname              string
	HostNetwork           bool
	HostIPC, HostPID      bool
	ShareProcessNamespace bool
	CgroupParent          string
	Sysctls               map[string]string
	Ports                 []cri.PortMapping

	// Namespaces maps "net", "ipc", "uts" to the pinned namespace files;
	// a missing kind is the host's.
	Namespaces map[string]string
	// PausePID holds the pod's shared PID namespace; 0 when none.
	PausePID int
	IPs      []string
	Stopped  bool
}

func (s *sandboxState) netns() string { return s.Namespaces[nsNet] }

func (r *Runtime) sandboxFile(id string) string {
	return filepath.Join(r.cfg.sandboxDir(id), "sandbox.json")
}

func (r *Runtime) loadSandbox(id string) (*sandboxState, error) {
	if !validID(id) {
		return nil, fmt.Errorf("sandbox %q: %w", id, os.ErrNotExist)
	}
	var s sandboxState
	if err := r.readRecord(r.sandboxFile(id), &s); err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", id, err)
	}
	return &s, nil
}

// RunSandbox pins the pod's namespaces, starts the shared-PID pause
// process when asked, attaches the network and writes the pod's /etc
// files.
func (r *Runtime) RunSandbox(ctx context.Context, cfg cri.SandboxConfig) (string, error) {
	id := newID()
	s := &sandboxState{
		ID: id, PodUID: cfg.PodUID, Namespace: cfg.Namespace, Name: cfg.Name,
		Attempt: cfg.Attempt, Labels: cfg.Labels, CreatedAt: time.Now(),
		Hostname: cfg.Hostname, HostNetwork: cfg.HostNetwork, HostIPC: cfg.HostIPC,
		HostPID: cfg.HostPID, ShareProcessNamespace: cfg.ShareProcessNamespace,
		CgroupParent: cfg.CgroupParent, Sysctls: cfg.Sysctls, Ports: cfg.PortMappings,
	}
	pod := cfg.Namespace + "/" + cfg.Name
	if err := r.runSandbox(ctx, cfg, s); err != nil {
		if rmErr := r.RemoveSandbox(context.WithoutCancel(ctx), id); rmErr != nil {
			r.logger.Warn("clean up failed sandbox", "pod", pod, "sandbox", id, "err", rmErr)
		}
		return "", fmt.Errorf("pod %q: run sandbox: %w", pod, err)
	}
	r.logger.Info("sandbox ready", "pod", pod, "sandbox", id, "ips", s.IPs)
	return id, nil
}

func (r *Runtime) runSandbox(ctx context.Context, cfg cri.SandboxConfig, s *sandboxState) error {
	dir := r.cfg.sandboxDir(s.ID)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o711); err != nil {
		return err
	}
	// The record goes first, so a crash part-way leaves something that
	// RemoveSandbox can clean up.
	if err := r.writeRecord(r.sandboxFile(s.ID), s); err != nil {
		return err
	}
	var kinds []string
	if !cfg.HostNetwork {
		kinds = append(kinds, nsNet, nsUTS)
	}
	if !cfg.HostIPC {
		kinds = append(kinds, nsIPC)
	}
	if len(kinds) > 0 {
		paths, err := pinNamespaces(filepath.Join(r.cfg.nsDir(), s.ID), kinds, cfg.Hostname)
		if err != nil {
			return err
		}
		s.Namespaces = paths
		if err := r.writeRecord(r.sandboxFile(s.ID), s); err != nil {
			return err
		}
	}
	if cfg.ShareProcessNamespace && !cfg.HostPID {
		pid, err := r.startPause(s.ID)
		if err != nil {
			return err
		}
		s.PausePID = pid
		if err := r.writeRecord(r.sandboxFile(s.ID), s); err != nil {
			return err
		}
	}
	switch {
	case cfg.HostNetwork:
		if cfg.HostIP != "" {
			s.IPs = []string{cfg.HostIP}
		}
	case r.cfg.Network != nil:
		ips, err := r.cfg.Network.Setup(ctx, s.ID, s.netns(), cfg.PortMappings)
		if err != nil {
			return fmt.Errorf("network setup: %w", err)
		}
		s.IPs = ips
	}
	if err := r.writeRecord(r.sandboxFile(s.ID), s); err != nil {
		return err
	}
	return r.writeEtcFiles(cfg, s)
}

// writeEtcFiles writes the hosts, resolv.conf and hostname files that are
// bind mounted into each container of the pod.
func (r *Runtime) writeEtcFiles(cfg cri.SandboxConfig, s *sandboxState) error {
	dir := r.cfg.sandboxDir(s.ID)
	var nodeHosts []byte
	if cfg.HostNetwork {
		nodeHosts, _ = os.ReadFile(r.cfg.HostsFile)
	}
	hostname := cfg.Hostname
	if cfg.HostNetwork {
		hostname, _ = os.Hostname()
	}
	var nodeResolv []byte
	if cfg.DNS == nil {
		var err error
		if nodeResolv, err = os.ReadFile(r.cfg.ResolvConf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read node resolv.conf: %w", err)
		}
	}
	files := map[string][]byte{
		"hosts":       hostsFile(cfg, s.IPs, r.cfg.ClusterDomain, nodeHosts),
		"resolv.conf": resolvConf(cfg.DNS, nodeResolv),
		"hostname":    []byte(hostname + "\n"),
	}
	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startPause starts the pod's pause process, `catatonit -P`, as PID 1 of a
// new PID namespace, in its own session so it outlives this process.
func (r *Runtime) startPause(sandboxID string) (int, error) {
	cmd := exec.Command(r.cfg.CatatonitPath, "-P")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start pause process: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we run
	r.logger.Info("pause process started", "sandbox", sandboxID, "pid", cmd.Process.Pid)
	return cmd.Process.Pid, nil
}

// pauseAlive reports whether pid is still a pause process. It guards
// against PID reuse after the pause process died.
func pauseAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return isPauseCmdline(cmdline)
}

// isPauseCmdline reports whether a /proc/<pid>/cmdline is catatonit's in
// pause mode.
func isPauseCmdline(cmdline []byte) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return len(args) == 2 && filepath.Base(args[0]) == "catatonit" && args[1] == "-P"
}

func killPause(pid int) {
	if !pauseAlive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for pauseAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// StopSandbox stops the sandbox's containers and detaches it from the
// network. The pinned namespaces stay until RemoveSandbox.
func (r *Runtime) StopSandbox(ctx context.Context, id string) error {
	s, err := r.loadSandbox(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.stopSandboxContainers(ctx, id); err != nil {
		return err
	}
	if err := r.teardownNetwork(ctx, s); err != nil {
		return err
	}
	killPause(s.PausePID)
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Stopped = true
	if err := r.writeRecord(r.sandboxFile(id), s); err != nil {
		return fmt.Errorf("sandbox %q: %w", id, err)
	}
	r.logger.Info("sandbox stopped", "pod", s.Namespace+"/"+s.Name, "sandbox", id)
	return nil
}

func (r *Runtime) teardownNetwork(ctx context.Context, s *sandboxState) error {
	if s.HostNetwork || r.cfg.Network == nil || s.netns() == "" {
		return nil
	}
	if err := r.cfg.Network.Teardown(ctx, s.ID, s.netns(), s.Ports); err != nil {
		return fmt.Errorf("sandbox %q: network teardown: %w", s.ID, err)
	}
	return nil
}

func (r *Runtime) stopSandboxContainers(ctx context.Context, sandboxID string) error {
	cs, err := r.ListContainers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if c.SandboxID == sandboxID && c.State != cri.ContainerExited {
			errs = append(errs, r.StopContainer(ctx, c.ID, 0))
		}
	}
	return errors.Join(errs...)
}

// RemoveSandbox removes the sandbox's containers, namespaces, cgroup,
// files and logs.
func (r *Runtime) RemoveSandbox(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	s, err := r.loadSandbox(id)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cs, err := r.ListContainers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if c.SandboxID == id {
			errs = append(errs, r.RemoveContainer(ctx, c.ID))
		}
	}
	if s != nil {
		if !s.Stopped {
			errs = append(errs, r.teardownNetwork(ctx, s))
		}
		killPause(s.PausePID)
		errs = append(errs, unpinNamespaces(s.Namespaces))
		if s.CgroupParent != "" {
			removeCgroup(r.cfg.CgroupRoot, s.CgroupParent)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(r.cfg.nsDir(), id)); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", id, err)
	}
	err = os.RemoveAll(r.cfg.sandboxDir(id))
	r.forgetPrefix(r.cfg.sandboxDir(id))
	r.forgetPrefix(filepath.Join(r.cfg.nsDir(), id))
	if err != nil {
		return fmt.Errorf("remove sandbox %q: %w", id, err)
	}
	if s != nil {
		r.logger.Info("sandbox removed", "pod", s.Namespace+"/"+s.Name, "sandbox", id)
	}
	return nil
}

// ListSandboxes reports every sandbox recorded under Root. A sandbox whose
// network namespace is gone (after a reboot) is NotReady.
func (r *Runtime) ListSandboxes(_ context.Context) ([]cri.Sandbox, error) {
	entries, err := os.ReadDir(r.cfg.sandboxesDir())
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []cri.Sandbox
	for _, e := range entries {
		s, err := r.loadSandbox(e.Name())
		if err != nil {
			continue // a sandbox being created or removed
		}
		state := cri.SandboxReady
		if s.Stopped {
			state = cri.SandboxNotReady
		} else if p := s.netns(); p != "" && !r.nsMounted(p) {
			state = cri.SandboxNotReady
		}
		out = append(out, cri.Sandbox{
			ID: s.ID, PodUID: s.PodUID, Namespace: s.Namespace, Name: s.Name,
			Attempt: s.Attempt, State: state, IPs: append([]string(nil), s.IPs...),
			CreatedAt: s.CreatedAt,
		})
	}
	return out, nil
}

// isNsMount reports whether p is a pinned namespace (a file on nsfs).
func isNsMount(p string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return false
	}
	const nsfsMagic = 0x6e736673
	return st.Type == nsfsMagic
}

// pidNSPath is the namespace file containers of a shared-PID pod join.
func pidNSPath(pid int) string {
	return "/proc/" + strconv.Itoa(pid) + "/ns/pid"
}
