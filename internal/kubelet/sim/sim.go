// Package sim is a container runtime that runs nothing: sandboxes and
// containers exist only in memory, so one process can hold the pods of a
// thousand nodes for scale tests. It implements kubelet.Runtime.
//
// A simulated container runs until it is stopped, unless its environment
// says otherwise (values are read when the container is created):
//
//	SKIFF_SIM_RUN_SECONDS  how long the container runs before it exits:
//	                       seconds ("30", "1.5") or a Go duration ("500ms")
//	SKIFF_SIM_EXIT_CODE    the code it exits with (default 0)
//	SKIFF_SIM_FAIL_TIMES   the first N runs of the container (restartCount
//	                       0..N-1) exit with SKIFF_SIM_EXIT_CODE (default
//	                       1 here); later runs exit 0 after
//	                       SKIFF_SIM_RUN_SECONDS when it is set, and
//	                       otherwise run until stopped
//
// Without SKIFF_SIM_FAIL_TIMES, setting either of the first two makes the
// container exit: after SKIFF_SIM_RUN_SECONDS (default 0) with
// SKIFF_SIM_EXIT_CODE (default 0). A stopped container exits 0 at once, as
// a process that handles SIGTERM would.
//
// Pod IPs come from the sandbox's PodCIDR, lowest free address first,
// starting at .2 (.1 is the bridge's in a real node).
package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

// Environment variables that script a container's life.
const (
	EnvRunSeconds = "SKIFF_SIM_RUN_SECONDS"
	EnvExitCode   = "SKIFF_SIM_EXIT_CODE"
	EnvFailTimes  = "SKIFF_SIM_FAIL_TIMES"
)

// Runtime is one node's simulated runtime. The zero value is not usable;
// call New.
type Runtime struct {
	clock   clock.PassiveClock
	version string

	mu         sync.Mutex
	sandboxes  map[string]*kubelet.Sandbox
	containers map[string]*container
	used       map[string]map[netip.Addr]bool // by pod CIDR
}

type container struct {
	kubelet.Container
	// exitAfter and exitCode script the container; exits false runs it
	// until stopped.
	exits     bool
	exitAfter time.Duration
	exitCode  int32
}

// Options configure a Runtime.
type Options struct {
	// Clock defaults to the real one.
	Clock clock.PassiveClock
	// Version is reported as the runtime version (default "0.1.0").
	Version string
}

// New returns an empty simulated runtime.
func New(opts Options) *Runtime {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Version == "" {
		opts.Version = "0.1.0"
	}
	return &Runtime{
		clock:      opts.Clock,
		version:    opts.Version,
		sandboxes:  map[string]*kubelet.Sandbox{},
		containers: map[string]*container{},
		used:       map[string]map[netip.Addr]bool{},
	}
}

var _ kubelet.Runtime = (*Runtime)(nil)

// Info implements kubelet.Runtime.
func (r *Runtime) Info(context.Context) (kubelet.RuntimeInfo, error) {
	return kubelet.RuntimeInfo{Name: "sim", Version: r.version}, nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunSandbox implements kubelet.Runtime.
func (r *Runtime) RunSandbox(_ context.Context, cfg kubelet.SandboxConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb := &kubelet.Sandbox{
		ID: newID(), PodUID: cfg.PodUID, Namespace: cfg.Namespace, Name: cfg.Name,
		Attempt: cfg.Attempt, State: kubelet.SandboxReady, CreatedAt: r.clock.Now(),
	}
	switch {
	case cfg.HostNetwork:
		if cfg.HostIP != "" {
			sb.IPs = []string{cfg.HostIP}
		}
	case cfg.PodCIDR != "":
		ip, err := r.allocate(cfg.PodCIDR)
		if err != nil {
			return "", err
		}
		sb.IPs = []string{ip.String()}
	}
	r.sandboxes[sb.ID] = sb
	return sb.ID, nil
}

// allocate takes the lowest free address of cidr from .2 on.
func (r *Runtime) allocate(cidr string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	used := r.used[p.String()]
	if used == nil {
		used = map[netip.Addr]bool{}
		r.used[p.String()] = used
	}
	ip := p.Addr().Next()
	for ip = ip.Next(); p.Contains(ip); ip = ip.Next() {
		if !used[ip] && p.Contains(ip.Next()) { // the last one is broadcast
			used[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s: no free address", cidr)
}

func (r *Runtime) release(ips []string) {
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		for _, used := range r.used {
			delete(used, ip)
		}
	}
}

// StopSandbox implements kubelet.Runtime.
func (r *Runtime) StopSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb, ok := r.sandboxes[id]
	if !ok || sb.State == kubelet.SandboxNotReady {
		return nil
	}
	now := r.clock.Now()
	for _, c := range r.containers {
		if c.SandboxID == id {
			r.stop(c, now)
		}
	}
	sb.State = kubelet.SandboxNotReady
	r.release(sb.IPs)
	return nil
}

// RemoveSandbox implements kubelet.Runtime.
func (r *Runtime) RemoveSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb, ok := r.sandboxes[id]
	if !ok {
		return nil
	}
	if sb.State == kubelet.SandboxReady {
		r.release(sb.IPs)
	}
	for cid, c := range r.containers {
		if c.SandboxID == id {
			delete(r.containers, cid)
		}
	}
	delete(r.sandboxes, id)
	return nil
}

// CreateContainer implements kubelet.Runtime.
func (r *Runtime) CreateContainer(_ context.Context, sandboxID string, cfg kubelet.ContainerConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb, ok := r.sandboxes[sandboxID]
	if !ok {
		return "", fmt.Errorf("sandbox %s not found", sandboxID)
	}
	if sb.State != kubelet.SandboxReady {
		return "", fmt.Errorf("sandbox %s is not ready", sandboxID)
	}
	exits, after, code, err := script(cfg.Env, cfg.Attempt)
	if err != nil {
		return "", fmt.Errorf("container %q: %w", cfg.Name, err)
	}
	sum := sha256.Sum256([]byte(cfg.Image))
	c := &container{
		Container: kubelet.Container{
			ID: newID(), SandboxID: sandboxID, PodUID: sb.PodUID, Name: cfg.Name, Attempt: cfg.Attempt,
			Image: cfg.Image, ImageID: cfg.Image + "@sha256:" + hex.EncodeToString(sum[:]),
			State: kubelet.ContainerCreated, CreatedAt: r.clock.Now(), Labels: cfg.Labels,
		},
		exits: exits, exitAfter: after, exitCode: code,
	}
	r.containers[c.ID] = c
	return c.ID, nil
}

// script reads a container's scripted life from its environment.
func script(env []kubelet.EnvVar, attempt uint32) (exits bool, after time.Duration, code int32, err error) {
	vals := map[string]string{}
	for _, e := range env {
		vals[e.Name] = e.Value
	}
	runS, hasRun := vals[EnvRunSeconds]
	codeS, hasCode := vals[EnvExitCode]
	failS, hasFail := vals[EnvFailTimes]
	if hasRun {
		if after, err = parseSeconds(runS); err != nil {
			return false, 0, 0, fmt.Errorf("%s=%q: %w", EnvRunSeconds, runS, err)
		}
	}
	if hasCode {
		n, err := strconv.ParseInt(codeS, 10, 32)
		if err != nil {
			return false, 0, 0, fmt.Errorf("%s=%q: %w", EnvExitCode, codeS, err)
		}
		code = int32(n)
	}
	if !hasFail {
		return hasRun || hasCode, after, code, nil
	}
	times, err := strconv.ParseUint(failS, 10, 32)
	if err != nil {
		return false, 0, 0, fmt.Errorf("%s=%q: %w", EnvFailTimes, failS, err)
	}
	if uint64(attempt) < times {
		if !hasCode || code == 0 {
			code = 1
		}
		return true, after, code, nil
	}
	return hasRun, after, 0, nil
}

// parseSeconds reads "30", "1.5" or "500ms".
func parseSeconds(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("negative")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, fmt.Errorf("negative")
	}
	return d, err
}

// StartContainer implements kubelet.Runtime.
func (r *Runtime) StartContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %s not found", id)
	}
	if c.State != kubelet.ContainerCreated {
		return fmt.Errorf("container %s is %s, not created", id, c.State)
	}
	c.State = kubelet.ContainerRunning
	c.StartedAt = r.clock.Now()
	return nil
}

// stop makes a running container exit 0 now; r.mu is held.
func (r *Runtime) stop(c *container, now time.Time) {
	r.advance(c, now)
	if c.State == kubelet.ContainerRunning || c.State == kubelet.ContainerCreated {
		c.State = kubelet.ContainerExited
		c.ExitCode = 0
		c.FinishedAt = now
		if c.StartedAt.IsZero() {
			c.StartedAt = now
		}
	}
}

// advance moves a scripted container to Exited once its time is up; r.mu
// is held.
func (r *Runtime) advance(c *container, now time.Time) {
	if c.State != kubelet.ContainerRunning || !c.exits {
		return
	}
	if end := c.StartedAt.Add(c.exitAfter); !now.Before(end) {
		c.State = kubelet.ContainerExited
		c.ExitCode = c.exitCode
		c.FinishedAt = end
	}
}

// StopContainer implements kubelet.Runtime.
func (r *Runtime) StopContainer(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		r.stop(c, r.clock.Now())
	}
	return nil
}

// RemoveContainer implements kubelet.Runtime.
func (r *Runtime) RemoveContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		r.advance(c, r.clock.Now())
		if c.State == kubelet.ContainerRunning {
			return fmt.Errorf("container %s is running", id)
		}
		delete(r.containers, id)
	}
	return nil
}

// ListSandboxes implements kubelet.Runtime.
func (r *Runtime) ListSandboxes(context.Context) ([]kubelet.Sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]kubelet.Sandbox, 0, len(r.sandboxes))
	for _, sb := range r.sandboxes {
		s := *sb
		s.IPs = append([]string(nil), sb.IPs...)
		out = append(out, s)
	}
	return out, nil
}

// ListContainers implements kubelet.Runtime.
func (r *Runtime) ListContainers(context.Context) ([]kubelet.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	out := make([]kubelet.Container, 0, len(r.containers))
	for _, c := range r.containers {
		r.advance(c, now)
		out = append(out, c.Container)
	}
	return out, nil
}

// Exec implements kubelet.Runtime: a simulated container runs no command,
// so every command succeeds at once, printing nothing; a container that
// is not running is an error, as for a real runtime.
func (r *Runtime) Exec(_ context.Context, id string, _ []string, _ io.Reader, _, _ io.Writer, _ bool) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return -1, fmt.Errorf("container %q not found", id)
	}
	r.advance(c, r.clock.Now())
	if c.State != kubelet.ContainerRunning {
		return -1, fmt.Errorf("container %q is not running", id)
	}
	return 0, nil
}
