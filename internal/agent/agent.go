// Package agent is the composition root of a node: it joins the API server
// with a join token and runs the node agent (internal/kubelet) with the
// chosen runtime; the service proxy and pod networking come later. Sim runs
// many simulated nodes in one process for scale tests.
package agent

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
	"github.com/skiff-sh/skiff/internal/version"
)

// RuntimeSimulated is the only runtime so far: containers that exist in
// memory only.
const RuntimeSimulated = "simulated"

// Config configures one node.
type Config struct {
	Join JoinConfig
	// Runtime names the container runtime: "runc" (default) or
	// "simulated".
	Runtime string
	// DataDir, RegistriesFile, CgroupRoot and ClusterCIDR configure the
	// runc runtime (see NodeConfig).
	DataDir        string
	RegistriesFile string
	CgroupRoot     string
	ClusterCIDR    string
	StaticPodPath  string
	// ClusterDNS and ClusterDomain configure pods' resolv.conf (see
	// NodeConfig).
	ClusterDNS    []string
	ClusterDomain string
	// FileCheckFrequency is how often StaticPodPath is read (20 s).
	FileCheckFrequency time.Duration
	// SyncFrequency is how often running pods are synced without an
	// event (1 min).
	SyncFrequency time.Duration
	// EvictionHard are the hard eviction thresholds ("" for upstream's).
	EvictionHard string
	// FlannelBackend is the runc node's backend between nodes (see
	// NodeConfig).
	FlannelBackend string
	// DisableProxy runs no service proxy on the node.
	DisableProxy bool
	// ProxyMode is the service proxy's backend (NodeConfig.ProxyMode).
	ProxyMode string
	// DisableNetworkPolicy enforces no NetworkPolicy on the node.
	DisableNetworkPolicy bool
	// NodeName defaults to the host name, lowercased.
	NodeName string
	// NodeIP defaults to the first non-loopback IPv4 address.
	NodeIP string
	Labels map[string]string
	Taints []corev1.Taint
	// Capacity defaults to the machine's CPUs and memory and 110 pods.
	Capacity corev1.ResourceList
	Logger   *slog.Logger
}

// Agent is one node joined to a server.
type Agent struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns an agent; nothing connects until Run.
func New(cfg Config) (*Agent, error) {
	if cfg.Runtime == "" {
		cfg.Runtime = RuntimeRunc
	}
	if cfg.Runtime != RuntimeSimulated && cfg.Runtime != RuntimeRunc {
		return nil, fmt.Errorf("--runtime %q: want %q or %q", cfg.Runtime, RuntimeRunc, RuntimeSimulated)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.NodeName == "" {
		cfg.NodeName = DefaultNodeName()
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = HostIP()
	} else if net.ParseIP(cfg.NodeIP) == nil {
		return nil, fmt.Errorf("--node-ip %q is not an IP address", cfg.NodeIP)
	}
	if cfg.Capacity == nil {
		cfg.Capacity = machineCapacity()
	}
	if cfg.Join.QPS == 0 {
		cfg.Join.QPS, cfg.Join.Burst = 100, 200
	}
	if cfg.Join.UserAgent == "" {
		cfg.Join.UserAgent = "skiff-agent/" + cfg.NodeName
	}
	return &Agent{cfg: cfg, log: cfg.Logger}, nil
}

// Run joins the server and runs the node until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	rc, err := Join(ctx, a.cfg.Join)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	a.log.Info("joined", "server", a.cfg.Join.Server, "node", a.cfg.NodeName, "runtime", a.cfg.Runtime)
	if a.cfg.Runtime == RuntimeRunc {
		go releaseStartupPagesLater(ctx, a.log)
		return RunNode(ctx, NodeConfig{
			Client: cs, NodeName: a.cfg.NodeName, NodeIP: a.cfg.NodeIP, Labels: a.cfg.Labels, Taints: a.cfg.Taints,
			Capacity: a.cfg.Capacity, DataDir: a.cfg.DataDir, RegistriesFile: a.cfg.RegistriesFile,
			CgroupRoot: a.cfg.CgroupRoot, ClusterCIDR: a.cfg.ClusterCIDR, Logger: a.log,
			ClusterCA: rc.TLSClientConfig.CAData, StaticPodPath: a.cfg.StaticPodPath,
			FileCheckFrequency: a.cfg.FileCheckFrequency, SyncFrequency: a.cfg.SyncFrequency, EvictionHard: a.cfg.EvictionHard,
			ClusterDNS: a.cfg.ClusterDNS, ClusterDomain: a.cfg.ClusterDomain, FlannelBackend: a.cfg.FlannelBackend,
			DisableProxy: a.cfg.DisableProxy, ProxyMode: a.cfg.ProxyMode, DisableNetworkPolicy: a.cfg.DisableNetworkPolicy,
		})
	}
	k, err := kubelet.New(kubelet.Config{
		Client: cs, NodeName: a.cfg.NodeName, NodeIP: a.cfg.NodeIP,
		Runtime: sim.New(sim.Options{Version: version.Skiff()}), Capacity: a.cfg.Capacity,
		Labels: a.cfg.Labels, Taints: a.cfg.Taints, KubeletVersion: kubeletVersion(), Logger: a.log,
		OSImage: osImage(), KernelVersion: kernelVersion(),
	})
	if err != nil {
		return err
	}
	return k.Run(ctx)
}

// kubeletVersion is the Kubernetes version the node reports, e.g. v1.37.2.
func kubeletVersion() string {
	return version.Info().GitVersion
}

// SimConfig configures many simulated nodes in one process.
type SimConfig struct {
	Join JoinConfig
	// Count nodes are named NamePrefix + a zero-padded index.
	Count      int
	NamePrefix string
	Capacity   corev1.ResourceList
	Labels     map[string]string
	Taints     []corev1.Taint
	Logger     *slog.Logger
}

// Sim runs simulated nodes over one client and one pod informer.
type Sim struct {
	cfg SimConfig
}

// NewSim checks cfg and returns the nodes; nothing connects until Run.
func NewSim(cfg SimConfig) (*Sim, error) {
	if cfg.Count <= 0 || cfg.Count > 1<<16 {
		return nil, fmt.Errorf("--count %d: want 1 to 65536", cfg.Count)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Join.QPS == 0 {
		// Every pod transition is one status write; a 10,000-pod rollout
		// must not queue behind client-side throttling.
		cfg.Join.QPS, cfg.Join.Burst = 1000, 2000
	}
	if cfg.Join.UserAgent == "" {
		cfg.Join.UserAgent = "skiff-sim-nodes"
	}
	if cfg.Capacity == nil {
		c, err := kubelet.ParseCapacity("8", "32Gi", "110", "100Gi")
		if err != nil {
			return nil, err
		}
		cfg.Capacity = c
	}
	return &Sim{cfg: cfg}, nil
}

// Names returns the node names Run registers.
func (s *Sim) Names() []string {
	width := len(strconv.Itoa(s.cfg.Count - 1))
	names := make([]string, s.cfg.Count)
	for i := range names {
		names[i] = fmt.Sprintf("%s%0*d", s.cfg.NamePrefix, width, i)
	}
	return names
}

// Run joins the server and runs every node until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	rc, err := Join(ctx, s.cfg.Join)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	f := kubelet.NewFleet(kubelet.FleetConfig{Client: cs, Logger: s.cfg.Logger})
	osImg, kernel := osImage(), kernelVersion()
	for i, name := range s.Names() {
		// Loopback addresses: nothing is ever sent to a simulated node.
		ip := fmt.Sprintf("127.2.%d.%d", i/254, i%254+1)
		if _, err := f.Add(kubelet.Config{
			NodeName: name, NodeIP: ip, Runtime: sim.New(sim.Options{Version: version.Skiff()}),
			Capacity: s.cfg.Capacity, Labels: s.cfg.Labels, Taints: s.cfg.Taints,
			KubeletVersion: kubeletVersion(), Logger: s.cfg.Logger, OSImage: osImg, KernelVersion: kernel,
		}); err != nil {
			return err
		}
	}
	s.cfg.Logger.Info("joined", "server", s.cfg.Join.Server, "nodes", s.cfg.Count)
	return f.Run(ctx)
}

// ParseLabels reads "k=v,k2=v2".
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ParseTaints reads "k=v:Effect,k2:Effect", as --register-with-taints.
func ParseTaints(s string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, spec := range strings.Split(s, ",") {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		kv, effect, ok := strings.Cut(spec, ":")
		if !ok {
			return nil, fmt.Errorf("taint %q: want key[=value]:Effect", spec)
		}
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("taint %q: effect must be NoSchedule, PreferNoSchedule or NoExecute", spec)
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("taint %q: empty key", spec)
		}
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}

// machineCapacity is this machine's CPUs and memory, and upstream's
// default of 110 pods.
func machineCapacity() corev1.ResourceList {
	out := corev1.ResourceList{
		corev1.ResourceCPU:  *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods: *resource.NewQuantity(110, resource.DecimalSI),
	}
	if kb, err := memTotalKiB(); err == nil {
		out[corev1.ResourceMemory] = *resource.NewQuantity(kb*1024, resource.BinarySI)
	}
	return out
}

func memTotalKiB() (int64, error) { return memInfoKiB("MemTotal:") }

// memInfoKiB reads one "Name: N kB" line of /proc/meminfo.
func memInfoKiB(field string) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", field)
}

// HostIP is the address a node advertises when --node-ip is not given: the
// first IPv4 of the interface that carries the default route, as upstream's
// kubelet chooses, else the first IPv4 of an interface that is up, not a
// loopback and not one Skiff or CNI created (a bridge, a veth, a VXLAN
// device, or the interfaces that hold Service and load balancer
// addresses, which must never become the node's address after a restart),
// else 127.0.0.1.
func HostIP() string {
	if name := defaultRouteInterface(); name != "" {
		if ifc, err := net.InterfaceByName(name); err == nil {
			if ip := firstIPv4(ifc); ip != "" {
				return ip
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || createdInterface(ifc.Name) {
			continue
		}
		if ip := firstIPv4(&ifc); ip != "" {
			return ip
		}
	}
	return "127.0.0.1"
}

// createdInterface reports whether an interface's name is one that Skiff,
// its CNI plugins or its overlay create.
func createdInterface(name string) bool {
	for _, p := range []string{"skiff", "cni", "veth", "flannel", "vxlan"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func firstIPv4(ifc *net.Interface) string {
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// defaultRouteInterface is the interface of the main table's IPv4 default
// route (from /proc/net/route), "" when there is none.
func defaultRouteInterface() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	return parseDefaultRoute(string(b))
}

// parseDefaultRoute finds, in the text of /proc/net/route, the interface
// of the default route (destination and mask 0) with the lowest metric.
func parseDefaultRoute(table string) string {
	best, bestMetric := "", -1
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if i == 0 || len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best
}

// osImage is the host's PRETTY_NAME from /etc/os-release, as upstream
// reports it.
func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// kernelVersion is the running kernel's release.
func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// DefaultNodeName is the machine's host name, lowercased, as upstream's
// kubelet names its node; "localhost" when it has none.
func DefaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.ToLower(h)
}
