package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/cni"
	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/nodenet"
	"github.com/skiff-sh/skiff/internal/runc"
	"github.com/skiff-sh/skiff/internal/version"
)

// Runtime names.
const (
	// RuntimeRunc runs pods as real containers: images from registries,
	// runc, and a CNI bridge network. It is the default.
	RuntimeRunc = "runc"
)

// Defaults of a real node.
const (
	DefaultDataDir        = "/var/lib/skiff"
	DefaultRegistriesFile = "/etc/skiff/registries.yaml"
	DefaultCgroupRoot     = "skiff"
	DefaultStaticPodPath  = "/etc/skiff/manifests"
	DefaultClusterCIDR    = "10.244.0.0/16"
	// imageGCMinAge keeps freshly pulled images from image garbage
	// collection, as upstream's kubelet (2 min).
	imageGCMinAge = 2 * time.Minute
)

// NodeConfig configures a node with the real runtime, run by `skiff agent`
// and by `skiff server` for its own node.
type NodeConfig struct {
	// Client talks to the API server as the node.
	Client   kubernetes.Interface
	NodeName string
	NodeIP   string
	Labels   map[string]string
	Taints   []corev1.Taint
	// Capacity defaults to the machine's CPUs and memory and 110 pods.
	Capacity corev1.ResourceList
	// DataDir holds images/, runc/, cni/, pods/ and run/ (default
	// /var/lib/skiff).
	DataDir string
	// RegistriesFile is the registries.yaml of mirrors and credentials
	// (default /etc/skiff/registries.yaml; it may not exist).
	RegistriesFile string
	// CgroupRoot is the cgroup pods are created under (default "skiff").
	CgroupRoot string
	// StaticPodPath is the directory of static pod manifests (default
	// /etc/skiff/manifests; "-" for none).
	StaticPodPath string
	// FileCheckFrequency is how often StaticPodPath is read (20 s).
	FileCheckFrequency time.Duration
	// SyncFrequency is how often running pods are synced without an
	// event (1 min), which refreshes their projected volumes.
	SyncFrequency time.Duration
	// EvictionHard are the hard eviction thresholds in upstream's
	// --eviction-hard syntax; empty means upstream's defaults.
	EvictionHard string
	// ClusterCIDR is the pod network of the whole cluster, whose traffic
	// is not masqueraded (default 10.244.0.0/16).
	ClusterCIDR string
	// ClusterDNS and ClusterDomain go into the resolv.conf of pods with
	// dnsPolicy ClusterFirst (default 10.96.0.10 and cluster.local), as
	// upstream's kubelet flags --cluster-dns and --cluster-domain.
	ClusterDNS    []string
	ClusterDomain string
	// DisableProxy runs no service proxy on the node (k3s's
	// --disable-kube-proxy).
	DisableProxy bool
	// ProxyMode is the service proxy's backend: "nftables" (default),
	// "iptables" or "userspace" (see internal/proxy), kube-proxy's
	// --proxy-mode.
	ProxyMode string
	// DisableNetworkPolicy enforces no NetworkPolicy on the node (k3s's
	// --disable-network-policy).
	DisableNetworkPolicy bool
	// FlannelBackend is how pods reach pods on other nodes: "host-gw"
	// (default; the nodes share one L2 network), "vxlan" or "none" (see
	// internal/nodenet). Every node of a cluster must use the same.
	FlannelBackend string
	// ClusterCA is the PEM of the cluster CA: the kubelet server on
	// NodeIP:10250 accepts the API server's kubelet-client certificate it
	// signed. Empty runs no kubelet server (no kubectl logs).
	ClusterCA []byte
	Logger    *slog.Logger
}

// RunNode runs a node with the real runtime until ctx ends.
func RunNode(ctx context.Context, cfg NodeConfig) error {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.RegistriesFile == "" {
		cfg.RegistriesFile = DefaultRegistriesFile
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = DefaultCgroupRoot
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	switch cfg.StaticPodPath {
	case "":
		cfg.StaticPodPath = DefaultStaticPodPath
	case "-":
		cfg.StaticPodPath = ""
	}
	if cfg.Capacity == nil {
		cfg.Capacity = machineCapacity()
		if err := os.MkdirAll(cfg.DataDir, 0o700); err == nil {
			if b, err := diskBytes(cfg.DataDir); err == nil {
				cfg.Capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(b, resource.BinarySI)
			}
		}
	}
	if cfg.NodeName == "" {
		cfg.NodeName = DefaultNodeName()
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = HostIP()
	}
	if cfg.EvictionHard == "" {
		cfg.EvictionHard = DefaultEvictionHard
	}
	thresholds, err := ParseEvictionHard(cfg.EvictionHard)
	if err != nil {
		return err
	}
	if cfg.ProxyMode == "" {
		cfg.ProxyMode = DefaultProxyMode
	}
	if !slices.Contains(ProxyModes(), cfg.ProxyMode) {
		return fmt.Errorf("unknown proxy mode %q: want one of %s", cfg.ProxyMode, strings.Join(ProxyModes(), ", "))
	}
	if os.Geteuid() != 0 {
		return errors.New("a node with the runc runtime must run as root (it creates namespaces, mounts and cgroups)")
	}
	backend, err := nodenet.ParseBackend(cfg.FlannelBackend)
	if err != nil {
		return err
	}
	log := cfg.Logger
	images, err := image.New(image.Config{Root: filepath.Join(cfg.DataDir, "images"), RegistriesFile: cfg.RegistriesFile,
		Logger: log, GCMinAge: imageGCMinAge})
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	// Pods' packets to other nodes must fit into the VXLAN encapsulation.
	mtu := 0
	if backend == nodenet.VXLAN {
		mtu = nodenet.VXLANMTU
	}
	// runc's sandboxes bring lo up themselves.
	network, err := cni.New(cni.Config{StateDir: filepath.Join(cfg.DataDir, "cni"), ClusterCIDR: cfg.ClusterCIDR, MTU: mtu, Logger: log, RuntimeBringsUpLoopback: true})
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	routes, err := nodenet.New(nodenet.Config{Client: cfg.Client, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Backend: backend, Logger: log})
	if err != nil {
		return err
	}
	go func() {
		if err := routes.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("routes to other nodes' pods stopped", "err", err)
		}
	}()
	rt, err := runc.New(runc.Config{
		Root: filepath.Join(cfg.DataDir, "runc"), RunDir: filepath.Join(cfg.DataDir, "run"),
		CgroupRoot: cfg.CgroupRoot, Images: runcImages{images}, Network: network, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("runc runtime: %w", err)
	}
	go rt.Run(ctx) // container log rotation
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	// Per-pod CPU and memory from cgroups, for the summary API and
	// eviction.
	stats := kubelet.NewStats(kubelet.StatsConfig{NodeName: cfg.NodeName, CgroupRoot: cfg.CgroupRoot, Runtime: rt, Logger: log})
	go func() { _ = stats.Run(ctx) }()
	services := &serviceProxy{ctx: ctx, cfg: cfg, log: log.With("component", "proxy")}
	go runNetworkPolicies(ctx, cfg, log.With("component", "netpol"))
	go runAnnouncer(ctx, cfg, log)
	k, err := kubelet.New(kubelet.Config{
		Client: cfg.Client, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP,
		Runtime: rt, Images: images, Recorder: recorder,
		PodCIDRChanged: func(cidr string) {
			if err := network.SetPodCIDR(cidr); err != nil {
				log.Error("the node's podCIDR cannot be used for the pod network", "podCIDR", cidr, "err", err)
				return
			}
			log.Info("pod network ready", "podCIDR", cidr)
			services.start(cidr)
		},
		Pressure: pressureMonitor(cfg.DataDir, thresholds),
		// The summary API's sampler: eviction ranks pods by memory use.
		PodMemoryUsage: stats.PodMemoryUsage,
		ClusterDNS:     cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		PodsDir:       filepath.Join(cfg.DataDir, "pods"),
		StaticPodPath: cfg.StaticPodPath, FileCheckFrequency: cfg.FileCheckFrequency, SyncFrequency: cfg.SyncFrequency,
		Capacity: cfg.Capacity, Allocatable: allocatable(cfg.Capacity, thresholds), Labels: cfg.Labels, Taints: cfg.Taints,
		KubeletVersion: kubeletVersion(), OSImage: osImage(), KernelVersion: kernelVersion(),
		Logger: log,
	})
	if err != nil {
		return err
	}
	go imageGC(ctx, images, rt, log)
	startKubeletServer(ctx, cfg, rt, stats, log)
	log.Info("node starting", "node", cfg.NodeName, "runtime", RuntimeRunc, "version", version.Skiff(), "dataDir", cfg.DataDir)
	return k.Run(ctx)
}

// Thresholds are hard eviction thresholds, as upstream's --eviction-hard
// sets them: an absolute memory.available and percentages of the data
// dir's filesystem. A zero value is "no threshold".
type Thresholds struct {
	MemoryAvailable  int64 // bytes
	NodefsAvailable  int   // percent
	ImagefsAvailable int   // percent; images share the data dir's filesystem
	NodefsInodesFree int   // percent
	// PIDAvailable is a number of process IDs, or with PIDAvailablePct
	// a percentage of the machine's (pid.available; no default).
	PIDAvailable    int64
	PIDAvailablePct int
}

// DefaultEvictionHard is upstream kubelet's default --eviction-hard.
const DefaultEvictionHard = "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%"

// ParseEvictionHard parses upstream's --eviction-hard syntax
// ("memory.available<100Mi,nodefs.available<10%"); signals not listed have
// no threshold, and other signals are refused.
func ParseEvictionHard(s string) (Thresholds, error) {
	var t Thresholds
	if strings.TrimSpace(s) == "" {
		return t, nil
	}
	for _, part := range strings.Split(s, ",") {
		signal, value, ok := strings.Cut(strings.TrimSpace(part), "<")
		if !ok || value == "" {
			return t, fmt.Errorf("--eviction-hard %q: want signal<value", part)
		}
		pct := -1
		if v, isPct := strings.CutSuffix(value, "%"); isPct {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return t, fmt.Errorf("--eviction-hard %q: bad percentage", part)
			}
			pct = n
		}
		switch signal {
		case "memory.available":
			if pct >= 0 {
				return t, fmt.Errorf("--eviction-hard %q: give memory.available as a quantity (100Mi)", part)
			}
			q, err := resource.ParseQuantity(value)
			if err != nil {
				return t, fmt.Errorf("--eviction-hard %q: %w", part, err)
			}
			t.MemoryAvailable = q.Value()
		case "nodefs.available", "imagefs.available", "nodefs.inodesFree", "imagefs.inodesFree":
			if pct < 0 {
				return t, fmt.Errorf("--eviction-hard %q: give %s as a percentage", part, signal)
			}
			switch signal {
			case "nodefs.available":
				t.NodefsAvailable = pct
			case "imagefs.available":
				t.ImagefsAvailable = pct
			default:
				t.NodefsInodesFree = max(t.NodefsInodesFree, pct)
			}
		case "pid.available":
			if pct >= 0 {
				t.PIDAvailablePct = pct
				break
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return t, fmt.Errorf("--eviction-hard %q: give pid.available as a number of process IDs or a percentage", part)
			}
			t.PIDAvailable = n
		default:
			return t, fmt.Errorf("--eviction-hard %q: unknown signal %q", part, signal)
		}
	}
	return t, nil
}

// allocatable is what pods may use of capacity: capacity less the hard
// eviction thresholds (no kube- or system-reserved, upstream's defaults).
func allocatable(capacity corev1.ResourceList, t Thresholds) corev1.ResourceList {
	out := capacity.DeepCopy()
	if m, ok := out[corev1.ResourceMemory]; ok {
		out[corev1.ResourceMemory] = *resource.NewQuantity(max(0, m.Value()-t.MemoryAvailable), resource.BinarySI)
	}
	if d, ok := out[corev1.ResourceEphemeralStorage]; ok {
		out[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(d.Value()-d.Value()*int64(t.NodefsAvailable)/100, resource.BinarySI)
	}
	return out
}

// pressureMonitor reports the node's pressure against the thresholds:
// memory from /proc/meminfo's MemAvailable, disk from the data dir's
// filesystem, process IDs from pid_max less the tasks /proc/loadavg
// counts.
func pressureMonitor(dataDir string, t Thresholds) func() kubelet.Pressure {
	return func() kubelet.Pressure {
		var p kubelet.Pressure
		if kb, err := memInfoKiB("MemAvailable:"); err == nil && kb*1024 < t.MemoryAvailable {
			p.Memory, p.Reason = true, "memory"
		}
		if t.PIDAvailable > 0 || t.PIDAvailablePct > 0 {
			if pidMax, tasks, err := pidUsage(); err == nil && pidPressure(pidMax, tasks, t) {
				p.PID = true
				if p.Reason == "" {
					p.Reason = "pids"
				}
			}
		}
		var st unix.Statfs_t
		if unix.Statfs(dataDir, &st) == nil && st.Blocks > 0 {
			free := int(st.Bavail * 100 / st.Blocks)
			if free < max(t.NodefsAvailable, t.ImagefsAvailable) || (st.Files > 0 && int(st.Ffree*100/st.Files) < t.NodefsInodesFree) {
				p.Disk = true
				if p.Reason == "" {
					p.Reason = "ephemeral-storage"
				}
			}
		}
		return p
	}
}

// pidPressure reports whether fewer process IDs than the threshold are
// left: pidMax less the tasks that exist.
func pidPressure(pidMax, tasks int64, t Thresholds) bool {
	avail := pidMax - tasks
	if t.PIDAvailable > 0 && avail < t.PIDAvailable {
		return true
	}
	return t.PIDAvailablePct > 0 && avail*100 < pidMax*int64(t.PIDAvailablePct)
}

// pidUsage reads the kernel's pid_max and how many tasks (processes and
// threads, each holding an ID) exist, the fourth field of /proc/loadavg
// ("running/total").
func pidUsage() (pidMax, tasks int64, err error) {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, 0, err
	}
	if pidMax, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("pid_max: %w", err)
	}
	b, err = os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	if tasks, err = strconv.ParseInt(total, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("/proc/loadavg: %w", err)
	}
	return pidMax, tasks, nil
}

// diskBytes is the size of the filesystem holding dir.
func diskBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * st.Bsize, nil
}

// runcImages adapts the image store to what the runc runtime asks of it.
type runcImages struct{ s *image.Store }

func (a runcImages) Rootfs(ctx context.Context, ref string) (runc.Rootfs, error) {
	r, err := a.s.Rootfs(ctx, ref)
	if err != nil {
		return runc.Rootfs{}, err
	}
	return runc.Rootfs{ImageID: r.ImageID, LayerDirs: r.LayerDirs, Env: r.Config.Env,
		Entrypoint: r.Config.Entrypoint, Cmd: r.Config.Cmd, WorkingDir: r.Config.WorkingDir, User: r.Config.User}, nil
}

// imageGC removes unused images when the disk fills past upstream's
// thresholds (85% high, 80% low), every 5 minutes as upstream.
func imageGC(ctx context.Context, images *image.Store, rt *runc.Runtime, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		containers, err := rt.ListContainers(ctx)
		if err != nil {
			continue
		}
		used := map[string]bool{}
		for _, c := range containers {
			used[c.ImageID] = true
		}
		if err := images.GC(ctx, 85, 80, func(id string) bool { return used[id] }); err != nil {
			log.Warn("image garbage collection", "err", err)
		}
	}
}
