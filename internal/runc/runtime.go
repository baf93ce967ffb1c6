package runc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skiff-sh/skiff/internal/cri"
)

// Images resolves an image reference to the directories its container's
// root filesystem is stacked from. The image store implements it.
type Images interface {
	Rootfs(ctx context.Context, image string) (Rootfs, error)
}

// Rootfs is an unpacked image: its layers and the defaults of its config.
type Rootfs struct {
	// ImageID is reported as the container's imageID ("repo@sha256:...").
	ImageID string
	// LayerDirs are the unpacked layers, lowest first. They are used as
	// read-only overlayfs lower directories and never written.
	LayerDirs []string
	// Env, Entrypoint, Cmd, WorkingDir and User are the image config's.
	Env             []string
	Entrypoint, Cmd []string
	WorkingDir      string
	User            string
}

// Network attaches a sandbox's network namespace to the pod network. The
// CNI package implements it. Both calls must be idempotent.
type Network interface {
	// Setup returns the pod's IPs, the primary first.
	Setup(ctx context.Context, sandboxID, netnsPath string, ports []cri.PortMapping) (ips []string, err error)
	Teardown(ctx context.Context, sandboxID, netnsPath string, ports []cri.PortMapping) error
}

// Config configures a Runtime.
type Config struct {
	// Root holds the persistent state: sandboxes, container bundles and
	// their overlay directories, logs (e.g. /var/lib/skiff/runc).
	Root string
	// RunDir holds state that lives until reboot: runc's own state and the
	// pinned namespaces (e.g. /run/skiff/runc).
	RunDir string
	// RuncPath is the runc binary; default "runc" from PATH.
	RuncPath string
	// CgroupRoot is the cgroup every pod cgroup is created under, relative
	// to each hierarchy's root (e.g. "skiff" -> /sys/fs/cgroup/memory/skiff).
	CgroupRoot string
	// ClusterDomain completes a pod's fully qualified name in /etc/hosts;
	// default "cluster.local".
	ClusterDomain string
	// ResolvConf is the node's resolver configuration, copied into pods
	// that have no DNS config; default /etc/resolv.conf.
	ResolvConf string
	// HostsFile is the node's hosts file, copied into host-network pods;
	// default /etc/hosts.
	HostsFile string
	Images    Images
	// Network may be nil: sandboxes then have only a loopback interface.
	Network Network
	// ConmonPath is the conmon binary that supervises each container;
	// default "conmon" from PATH.
	ConmonPath string
	// CatatonitPath is the catatonit binary run in pause mode as PID 1 of
	// pods that share a PID namespace; default "catatonit" from PATH.
	CatatonitPath string
	// LogMaxSize and LogMaxFiles bound each container's log, as the
	// kubelet's containerLogMaxSize and containerLogMaxFiles; defaults
	// 10 MiB and 5 files.
	LogMaxSize  int64
	LogMaxFiles int
	// LogRotateInterval is how often Run checks the logs' sizes; default
	// 10 s.
	LogRotateInterval time.Duration
	Logger            *slog.Logger
}

// Runtime runs pods' containers with runc. The zero value is not usable;
// call New.
type Runtime struct {
	cfg    Config
	logger *slog.Logger

	// mu serialises changes to state files; it is never held while
	// waiting for a container.
	mu sync.Mutex
	// collectMu serialises collecting exits (see exitStatus).
	collectMu sync.Mutex
	// cache keeps the records in memory (records.go).
	cache *recordCache
}

var _ cri.Runtime = (*Runtime)(nil)

// New returns a Runtime over cfg.Root. Sandboxes and containers left there
// by an earlier process are reported as they are; nothing is restarted.
func New(cfg Config) (*Runtime, error) {
	if cfg.Root == "" || cfg.RunDir == "" {
		return nil, errors.New("runc runtime: root and run dir are required")
	}
	if cfg.Images == nil {
		return nil, errors.New("runc runtime: image source is required")
	}
	if cfg.RuncPath == "" {
		cfg.RuncPath = "runc"
	}
	if cfg.ConmonPath == "" {
		cfg.ConmonPath = "conmon"
	}
	if cfg.CatatonitPath == "" {
		cfg.CatatonitPath = "catatonit"
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = logMaxSize
	}
	if cfg.LogMaxFiles <= 0 {
		cfg.LogMaxFiles = logMaxFiles
	}
	if cfg.LogRotateInterval <= 0 {
		cfg.LogRotateInterval = logRotateInterval
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.HostsFile == "" {
		cfg.HostsFile = "/etc/hosts"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, bin := range []*string{&cfg.RuncPath, &cfg.ConmonPath, &cfg.CatatonitPath} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return nil, fmt.Errorf("runc runtime: %w", err)
		}
		*bin = p
	}
	for _, d := range []string{cfg.sandboxesDir(), cfg.containersDir(), cfg.runcRoot(), cfg.nsDir()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("runc runtime: %w", err)
		}
	}
	return &Runtime{cfg: cfg, logger: cfg.Logger.With("component", "runc"), cache: newRecordCache()}, nil
}

func (c Config) sandboxesDir() string          { return filepath.Join(c.Root, "sandboxes") }
func (c Config) containersDir() string         { return filepath.Join(c.Root, "containers") }
func (c Config) runcRoot() string              { return filepath.Join(c.RunDir, "runc") }
func (c Config) nsDir() string                 { return filepath.Join(c.RunDir, "ns") }
func (c Config) sandboxDir(id string) string   { return filepath.Join(c.sandboxesDir(), id) }
func (c Config) containerDir(id string) string { return filepath.Join(c.containersDir(), id) }

// Info reports "runc" and the installed runc's version.
func (r *Runtime) Info(ctx context.Context) (cri.RuntimeInfo, error) {
	out, err := exec.CommandContext(ctx, r.cfg.RuncPath, "--version").Output()
	if err != nil {
		return cri.RuntimeInfo{}, fmt.Errorf("runc --version: %w", err)
	}
	return cri.RuntimeInfo{Name: "runc", Version: parseRuncVersion(string(out))}, nil
}

// parseRuncVersion takes "1.1.5" from "runc version 1.1.5+ds1\ncommit: ...".
func parseRuncVersion(out string) string {
	first, _, _ := strings.Cut(out, "\n")
	v := strings.TrimSpace(strings.TrimPrefix(first, "runc version"))
	if i := strings.IndexAny(v, "+-~ "); i > 0 {
		v = v[:i]
	}
	return v
}

// runc runs a runc subcommand against the runtime's runc root and returns
// its standard output; failures carry runc's standard error.
func (r *Runtime) runc(ctx context.Context, args ...string) ([]byte, error) {
	return runRunc(ctx, r.cfg.RuncPath, r.cfg.runcRoot(), args...)
}

func runRunc(ctx context.Context, runcPath, root string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, runcPath, append([]string{"--root", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runc %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// newID returns a 64-hex-digit identifier, as containerd's.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validID rejects IDs that could escape the state directories.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// writeJSON replaces path atomically with v.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
