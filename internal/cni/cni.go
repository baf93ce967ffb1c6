package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
)

// ErrNoPodCIDR is returned by Setup and Status while the node has no
// podCIDR yet (see Manager.SetPodCIDR).
var ErrNoPodCIDR = errors.New("pod network: the node has no pod CIDR yet")

// Defaults of Config.
const (
	DefaultBridgeName  = "skiff0"
	DefaultClusterCIDR = "10.244.0.0/16"
)

// DefaultPluginDirs are where Debian's containernetworking-plugins and the
// upstream release tarball put the plugins.
func DefaultPluginDirs() []string { return []string{"/usr/lib/cni", "/opt/cni/bin"} }

// pluginTypes are the plugin types the generated configuration uses.
func pluginTypes() []string { return []string{"bridge", "host-local", "portmap", "loopback"} }

// Config configures a Manager.
type Config struct {
	// PluginDirs are searched for the CNI plugin binaries, in order.
	// Empty means DefaultPluginDirs.
	PluginDirs []string
	// StateDir holds host-local's IP allocations (StateDir/ipam) and
	// libcni's cache of what each pod was set up with (StateDir/cache),
	// e.g. /var/lib/skiff/cni. Required; it must survive restarts.
	StateDir string
	// BridgeName is the Linux bridge pods attach to, at most 15
	// characters. Empty means DefaultBridgeName.
	BridgeName string
	// PodCIDR is the node's pod range (Node.spec.podCIDR), e.g.
	// 10.244.0.0/24. It may be empty and arrive later via SetPodCIDR.
	PodCIDR string
	// ClusterCIDR is the pod range of the whole cluster; traffic from it
	// to outside it is masqueraded. Empty means DefaultClusterCIDR.
	ClusterCIDR string
	// MTU of the bridge and the pods' interfaces; 0 leaves the plugin's
	// default (1500).
	MTU int
	// Logger receives one line per pod set up or torn down. Nil discards.
	Logger *slog.Logger
	// RuntimeBringsUpLoopback skips the loopback plugin: the runtime
	// brings lo up when it creates a pod's network namespace.
	RuntimeBringsUpLoopback bool
}

// Manager sets up and tears down the network of pods on this node.
// Its methods are safe for concurrent use.
type Manager struct {
	stateDir   string
	pluginDirs []string
	bridge     string
	cluster    netip.Prefix
	mtu        int
	loopback   bool // run the loopback plugin
	log        *slog.Logger
	cni        *libcni.CNIConfig

	mu       sync.Mutex
	podCIDR  string // guarded by mu
	hostDone bool   // guarded by mu: host prepared (forwarding, nft)
}

// New validates cfg and returns a Manager. It creates StateDir and changes
// nothing else.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("pod network: state dir is required")
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs()
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if len(cfg.BridgeName) > 15 || strings.ContainsAny(cfg.BridgeName, "/ \t\n:") {
		return nil, fmt.Errorf("pod network: bridge name %q: want at most 15 characters, no '/', ':' or spaces", cfg.BridgeName)
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.MTU < 0 || (cfg.MTU > 0 && cfg.MTU < 576) {
		return nil, fmt.Errorf("pod network: mtu %d: want 0 (default) or at least 576", cfg.MTU)
	}
	cluster, err := parseIPv4Prefix("cluster CIDR", cfg.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	if cfg.PodCIDR != "" {
		if _, err := checkPodCIDR(cfg.PodCIDR, cluster); err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{cfg.StateDir, ipamDir(cfg.StateDir), cacheDir(cfg.StateDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pod network: state dir: %w", err)
		}
	}
	return &Manager{
		stateDir:   cfg.StateDir,
		pluginDirs: cfg.PluginDirs,
		bridge:     cfg.BridgeName,
		cluster:    cluster,
		mtu:        cfg.MTU,
		loopback:   !cfg.RuntimeBringsUpLoopback,
		log:        log,
		cni:        libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cacheDir(cfg.StateDir), nil),
		podCIDR:    cfg.PodCIDR,
	}, nil
}

// SetPodCIDR records the node's podCIDR (Node.spec.podCIDR). Pods set up
// before a change keep their addresses until they are torn down.
func (m *Manager) SetPodCIDR(cidr string) error {
	if _, err := checkPodCIDR(cidr, m.cluster); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.podCIDR != cidr {
		m.log.Info("pod CIDR set", "podCIDR", cidr, "previous", m.podCIDR)
		m.podCIDR = cidr
	}
	return nil
}

// PodCIDR reports the node's podCIDR as last set; empty when not known yet.
func (m *Manager) PodCIDR() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.podCIDR
}

// networkList is the configuration for the current podCIDR, with portmap
// when the pod has hostPorts.
func (m *Manager) networkList(subnet string, portmap bool) (*libcni.NetworkConfigList, error) {
	b, err := conflist(netConf{bridge: m.bridge, subnet: subnet, mtu: m.mtu, ipamDir: ipamDir(m.stateDir), portmap: portmap})
	if err != nil {
		return nil, err
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	return l, nil
}

// cachedLoopback reports whether the sandbox was set up with the loopback
// plugin (by a Manager that ran it), so that its DEL releases the cache
// entry.
func (m *Manager) cachedLoopback(sandboxID string) bool {
	atts, err := m.cni.GetCachedAttachments(sandboxID)
	if err != nil {
		return false
	}
	for _, a := range atts {
		if a.Network == loopbackName {
			return true
		}
	}
	return false
}

func (m *Manager) loopbackConfig() (*libcni.NetworkConfig, error) {
	c, err := libcni.ConfFromBytes(loopbackConf())
	if err != nil {
		return nil, fmt.Errorf("cni loopback config: %w", err)
	}
	return c, nil
}

// Status reports whether pods can be set up: the plugins are present, the
// node has a podCIDR and the configuration is valid. It runs no plugin.
func (m *Manager) Status(ctx context.Context) error {
	for _, p := range pluginTypes() {
		if p == "loopback" && !m.loopback {
			continue
		}
		if _, err := invoke.FindInPath(p, m.pluginDirs); err != nil {
			return fmt.Errorf("pod network: plugin %q not found in %s", p, strings.Join(m.pluginDirs, ":"))
		}
	}
	cidr := m.PodCIDR()
	if cidr == "" {
		return ErrNoPodCIDR
	}
	if _, err := m.networkList(cidr, true); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	return ctx.Err()
}

// Setup attaches the sandbox's network namespace to the pod network (CNI
// ADD) and returns the pod's IPs, the primary first. lo comes up and eth0
// gets an address from the podCIDR; ports become hostPorts. On failure,
// what was set up is torn down again.
func (m *Manager) Setup(ctx context.Context, sandboxID, netnsPath string, ports []cri.PortMapping) ([]string, error) {
	if sandboxID == "" || netnsPath == "" {
		return nil, fmt.Errorf("pod network: sandbox ID %q and netns %q are required", sandboxID, netnsPath)
	}
	cidr := m.PodCIDR()
	if cidr == "" {
		return nil, fmt.Errorf("sandbox %q: %w", sandboxID, ErrNoPodCIDR)
	}
	if err := m.prepareHost(ctx); err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", sandboxID, err)
	}
	list, err := m.networkList(cidr, len(portMappings(ports)) > 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", sandboxID, err)
	}
	rt := m.runtimeConf(sandboxID, netnsPath, podIfName, ports)
	if ips, ok := m.existing(ctx, rt); ok {
		return ips, nil
	}
	if m.loopback {
		lo, err := m.loopbackConfig()
		if err != nil {
			return nil, fmt.Errorf("sandbox %q: %w", sandboxID, err)
		}
		if _, err := m.cni.AddNetwork(ctx, lo, m.runtimeConf(sandboxID, netnsPath, "lo", nil)); err != nil {
			return nil, fmt.Errorf("sandbox %q: pod network: loopback: %w", sandboxID, err)
		}
	}
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// The bridge plugin may have allocated an address before a later
		// step failed; give it back now rather than leak it.
		if derr := m.Teardown(context.WithoutCancel(ctx), sandboxID, netnsPath, ports); derr != nil {
			m.log.Warn("pod network: cleanup after failed setup", "sandbox", sandboxID, "err", derr)
		}
		return nil, fmt.Errorf("sandbox %q: pod network: %w", sandboxID, err)
	}
	ips, err := resultIPs(res)
	if err != nil {
		if derr := m.Teardown(context.WithoutCancel(ctx), sandboxID, netnsPath, ports); derr != nil {
			m.log.Warn("pod network: cleanup after failed setup", "sandbox", sandboxID, "err", derr)
		}
		return nil, fmt.Errorf("sandbox %q: pod network: %w", sandboxID, err)
	}
	m.log.Info("pod network set up", "sandbox", sandboxID, "ips", ips, "hostPorts", len(portMappings(ports)))
	return ips, nil
}

// existing reports the IPs of an earlier Setup of the same sandbox in the
// same namespace that is still intact (the plugins' CHECK passes), so that
// a repeated Setup neither fails nor allocates a second address. A setup
// that is not intact is torn down, for a fresh ADD to replace it.
func (m *Manager) existing(ctx context.Context, rt *libcni.RuntimeConf) ([]string, bool) {
	atts, err := m.cni.GetCachedAttachments(rt.ContainerID)
	if err != nil {
		return nil, false
	}
	for _, a := range atts {
		if a.Network != networkName || a.IfName != podIfName {
			continue
		}
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil {
			return nil, false
		}
		res, err := m.cni.GetNetworkListCachedResult(list, rt)
		if err != nil || res == nil {
			return nil, false
		}
		ips, err := resultIPs(res)
		if err == nil && a.NetNS != rt.NetNS {
			err = fmt.Errorf("set up in netns %q", a.NetNS)
		}
		if err == nil {
			if err = m.cni.CheckNetworkList(ctx, list, rt); err == nil {
				return ips, true
			}
		}
		m.log.Info("pod network: replacing an earlier setup", "sandbox", rt.ContainerID, "netns", a.NetNS, "reason", err)
		if err := m.Teardown(ctx, rt.ContainerID, a.NetNS, nil); err != nil {
			m.log.Warn("pod network: tear down an earlier setup", "sandbox", rt.ContainerID, "err", err)
		}
		return nil, false
	}
	return nil, false
}

// Teardown detaches the sandbox from the pod network (CNI DEL) and releases
// its IP and hostPorts. It is idempotent: a sandbox never set up, already
// torn down, or whose network namespace is gone is no error, and its IP is
// released all the same. The configuration the sandbox was set up with is
// taken from libcni's cache, so a Manager over the same StateDir tears down
// pods a previous process set up, whatever the podCIDR now is.
func (m *Manager) Teardown(ctx context.Context, sandboxID, netnsPath string, ports []cri.PortMapping) error {
	if sandboxID == "" {
		return errors.New("pod network: sandbox ID is required")
	}
	// A namespace that is gone (or a path that no longer holds one) is
	// passed as "": the plugins then only release what they hold on the
	// host (IP, hostPort rules).
	if netnsPath != "" && !isNetns(netnsPath) {
		netnsPath = ""
	}
	rt := m.runtimeConf(sandboxID, netnsPath, podIfName, ports)
	list, err := m.teardownList(rt)
	if err != nil {
		return fmt.Errorf("sandbox %q: pod network: %w", sandboxID, err)
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("sandbox %q: pod network: %w", sandboxID, err)
	}
	if m.loopback || m.cachedLoopback(sandboxID) {
		lo, err := m.loopbackConfig()
		if err != nil {
			return fmt.Errorf("sandbox %q: %w", sandboxID, err)
		}
		if err := m.cni.DelNetwork(ctx, lo, m.runtimeConf(sandboxID, netnsPath, "lo", nil)); err != nil {
			return fmt.Errorf("sandbox %q: pod network: loopback: %w", sandboxID, err)
		}
	}
	m.log.Info("pod network torn down", "sandbox", sandboxID)
	return nil
}

// teardownList is the configuration to DEL a sandbox with: the cached one
// it was set up with when there is one, else the current one (host-local
// releases by sandbox ID, whatever the range; before a podCIDR is known the
// cluster range stands in).
func (m *Manager) teardownList(rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, error) {
	cidr := m.PodCIDR()
	if cidr == "" {
		cidr = m.cluster.String()
	}
	cur, err := m.networkList(cidr, true)
	if err != nil {
		return nil, err
	}
	cached, _, err := m.cni.GetNetworkListCachedConfig(cur, rt)
	if err != nil || len(cached) == 0 {
		if err != nil {
			m.log.Warn("pod network: unreadable cache entry, tearing down with the current config", "sandbox", rt.ContainerID, "err", err)
		}
		return cur, nil
	}
	l, err := libcni.ConfListFromBytes(cached)
	if err != nil {
		m.log.Warn("pod network: invalid cached config, tearing down with the current config", "sandbox", rt.ContainerID, "err", err)
		return cur, nil
	}
	return l, nil
}

func (m *Manager) runtimeConf(sandboxID, netnsPath, ifName string, ports []cri.PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: sandboxID, NetNS: netnsPath, IfName: ifName}
	if pm := portMappings(ports); len(pm) > 0 && ifName == podIfName {
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

// resultIPs returns the addresses of the pod's own interfaces (those in the
// sandbox) in the order the plugins reported them.
func resultIPs(res types.Result) ([]string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert result: %w", err)
	}
	var ips []string
	for _, ip := range r.IPs {
		if ip.Interface != nil {
			i := *ip.Interface
			if i < 0 || i >= len(r.Interfaces) || r.Interfaces[i].Sandbox == "" {
				continue
			}
		}
		ips = append(ips, ip.Address.IP.String())
	}
	if len(ips) == 0 {
		return nil, errors.New("the plugins returned no pod IP")
	}
	return ips, nil
}

// isNetns reports whether path is a network namespace (an nsfs file).
func isNetns(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// prepareHost makes the node able to route pod traffic: IPv4 forwarding,
// bridge netfilter (so Service and hostPort NAT see traffic between pods on
// the same bridge), and the masquerade table. It runs until it succeeds
// once per Manager.
func (m *Manager) prepareHost(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hostDone {
		return nil
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("pod network: enable IPv4 forwarding: %w", err)
	}
	if err := writeSysctl("net/bridge/bridge-nf-call-iptables", "1"); err != nil {
		// The file exists only with br_netfilter loaded; without it pods
		// still get a network, only Service/hostPort traffic between two
		// pods on this node's bridge is not un-NATed on the way back.
		m.log.Warn("pod network: bridge netfilter unavailable (load br_netfilter); Service and hostPort traffic between pods on this node may fail", "err", err)
	}
	if err := runNft(ctx, masqueradeScript(m.cluster.String())); err != nil {
		return fmt.Errorf("pod network: masquerade table: %w", err)
	}
	m.log.Info("pod network host ready", "bridge", m.bridge, "clusterCIDR", m.cluster.String(), "nftTable", "ip "+natTable)
	m.hostDone = true
	return nil
}

// Cleanup removes the masquerade table. The bridge stays: pods may still be
// attached to it. A later Setup puts the table back.
func (m *Manager) Cleanup(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := runNft(ctx, deleteScript()); err != nil {
		return fmt.Errorf("pod network: remove masquerade table: %w", err)
	}
	m.hostDone = false
	return nil
}

func writeSysctl(name, value string) error {
	p := "/proc/sys/" + name
	cur, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	return os.WriteFile(p, []byte(value), 0o644)
}

// runNft applies an nft script in one transaction.
func runNft(ctx context.Context, script string) error {
	bin, err := exec.LookPath("nft")
	if err != nil {
		bin = "/usr/sbin/nft"
		if _, serr := os.Stat(bin); serr != nil {
			return fmt.Errorf("nft not found (install nftables): %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, bin, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f -: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
