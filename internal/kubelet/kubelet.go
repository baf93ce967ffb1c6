package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Defaults, as upstream's kubelet.
const (
	DefaultLeaseDuration         = 40 * time.Second
	DefaultLeaseRenewInterval    = 10 * time.Second
	DefaultStatusUpdateFrequency = 10 * time.Second
	DefaultStatusReportFrequency = 5 * time.Minute
	DefaultRelistPeriod          = time.Second
	DefaultSyncFrequency         = time.Minute
	defaultWorkers               = 16
)

// Config configures one node agent.
type Config struct {
	// Client talks to the API server. Raise its QPS: every pod transition
	// is one status write.
	Client kubernetes.Interface
	// NodeName is the Node's name; required.
	NodeName string
	// Hostname is reported as the node's Hostname address; default
	// NodeName.
	Hostname string
	// NodeIP is the node's InternalIP and its pods' hostIP.
	NodeIP string
	// Runtime runs the pods; required.
	Runtime Runtime
	// Images pulls the pods' images before their containers are created;
	// nil for a runtime that needs no images (the simulated one).
	Images ImageService
	// Recorder records the node's events about pods (Pulling, Pulled,
	// Failed, BackOff); nil records none.
	Recorder record.EventRecorder
	// PodCIDRChanged is told the node's podCIDR when node IPAM assigns
	// it, for the pod network.
	PodCIDRChanged func(cidr string)
	// Pressure reports whether the node is past its hard eviction
	// thresholds; under memory or disk pressure the node evicts pods. Nil
	// (the simulated runtime) never is.
	Pressure func() Pressure
	// StaticPodPath is a directory of pod manifests this node runs as
	// static pods (shown as mirror pods in the API); empty for none.
	StaticPodPath string
	// FileCheckFrequency is how often StaticPodPath is read (20 s).
	FileCheckFrequency time.Duration
	// SyncFrequency is how often a running pod is synced again without an
	// event (upstream's syncFrequency, 1 min): its configMap, secret,
	// downward API and projected volumes are refreshed then.
	SyncFrequency time.Duration
	// PodsDir holds the pods' volumes (PodsDir/<uid>/volumes/...); empty
	// for a runtime without volumes (the simulated one).
	PodsDir string
	// PodMemoryUsage, when set, reports pods' memory working set in bytes
	// by UID; eviction under memory pressure ranks pods by it.
	PodMemoryUsage func(ctx context.Context) map[types.UID]uint64
	// ClusterDNS and ClusterDomain go into the resolv.conf of pods with
	// dnsPolicy ClusterFirst (default 10.96.0.10 and cluster.local).
	ClusterDNS    []string
	ClusterDomain string
	// Capacity is what the node offers (cpu, memory, pods,
	// ephemeral-storage); Allocatable defaults to it.
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	// Labels are added to the well-known ones (kubernetes.io/hostname, os,
	// arch); Taints are set when the node registers.
	Labels map[string]string
	Taints []corev1.Taint
	// KubeletVersion is reported in nodeInfo, e.g. "v1.37.2"; OSImage
	// ("Debian GNU/Linux 12 (bookworm)") and KernelVersion too.
	KubeletVersion string
	OSImage        string
	KernelVersion  string
	Logger         *slog.Logger
	// Clock defaults to the real one.
	Clock clock.WithTicker
	// LeaseDuration (40 s) is written into the node's Lease, which is
	// renewed every LeaseRenewInterval (10 s).
	LeaseDuration      time.Duration
	LeaseRenewInterval time.Duration
	// StatusUpdateFrequency (10 s) is how often the node's status is
	// computed; it is written when it changed, or at the latest every
	// StatusReportFrequency (5 min).
	StatusUpdateFrequency time.Duration
	StatusReportFrequency time.Duration
	// RelistPeriod (1 s) is how often the runtime is listed to notice
	// containers that exited on their own.
	RelistPeriod time.Duration
	// Workers is how many pods are synced at once (16); it applies to a
	// kubelet run on its own, a Fleet has its own.
	Workers int
}

func (c *Config) setDefaults() error {
	if c.Client == nil {
		return errors.New("kubelet: no client")
	}
	if c.NodeName == "" {
		return errors.New("kubelet: no node name")
	}
	if c.Runtime == nil {
		return errors.New("kubelet: no runtime")
	}
	if c.Hostname == "" {
		c.Hostname = c.NodeName
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.LeaseDuration, DefaultLeaseDuration},
		{&c.LeaseRenewInterval, DefaultLeaseRenewInterval},
		{&c.StatusUpdateFrequency, DefaultStatusUpdateFrequency},
		{&c.StatusReportFrequency, DefaultStatusReportFrequency},
		{&c.RelistPeriod, DefaultRelistPeriod},
		{&c.SyncFrequency, DefaultSyncFrequency},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers
	}
	if len(c.ClusterDNS) == 0 {
		c.ClusterDNS = []string{"10.96.0.10"}
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	return nil
}

// Kubelet is the agent of one node: it registers the Node, keeps its Lease
// and status current, and runs the pods bound to it through its Runtime.
type Kubelet struct {
	cfg    Config
	name   string
	client kubernetes.Interface
	rt     Runtime
	rtInfo RuntimeInfo
	log    *slog.Logger
	clock  clock.WithTicker

	// nodes is the shared node cache when the kubelet runs in a fleet.
	nodes corelisters.NodeLister
	// services, when set, answers the Service lookups for containers'
	// environment; otherwise they go to the API.
	services corelisters.ServiceLister
	// pods is the fleet's cache of the pods bound to its nodes, where
	// static pods find their mirror pods.
	pods corelisters.PodLister
	// static holds the pods read from StaticPodPath.
	static *staticPods

	mu      sync.Mutex
	node    *corev1.Node
	backoff map[string]backoffEntry
	// pulls holds failed image pulls by pod UID and container name.
	pulls map[string]pullState
	// volumes sets up pod volumes; nil without a PodsDir.
	volumes *volumeManager
	written map[string]writtenStatus // by pod UID

	// kick wakes the node loop.
	kick chan struct{}

	// runner carries out probes and hooks; probes runs the probe workers.
	runner *probeRunner
	probes *prober
	// killed holds, by pod UID, the containers the kubelet killed for a
	// failed probe or postStart hook (guarded by mu).
	killed map[types.UID]map[string]bool
	// startErrs stands in, by pod UID and container name, for containers
	// the runtime could not create or start (guarded by mu; see
	// startFailed in pod.go).
	startErrs map[string]Container
	// enqueue queues a pod's sync by its "namespace/name" key; the fleet
	// sets it.
	enqueue func(key string)

	// Used by the node loop only.
	lease      *coordinationv1.Lease
	lastReport time.Time

	// Used by the relist loop only.
	seen map[string]string // pod UID -> runtime signature
}

// writtenStatus is the last status this kubelet wrote for a pod.
type writtenStatus struct {
	status          corev1.PodStatus
	resourceVersion string
}

// New returns a kubelet for cfg. It does nothing until Run.
func New(cfg Config) (*Kubelet, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	k := &Kubelet{
		cfg:     cfg,
		name:    cfg.NodeName,
		client:  cfg.Client,
		rt:      cfg.Runtime,
		log:     cfg.Logger.With("node", cfg.NodeName),
		clock:   cfg.Clock,
		backoff: map[string]backoffEntry{},
		pulls:   map[string]pullState{},
		written: map[string]writtenStatus{},
		seen:    map[string]string{},
		kick:    make(chan struct{}, 1),
		volumes: newVolumes(cfg),
		killed:  map[types.UID]map[string]bool{},
		static:  newStaticPods(),
		runner:  newProbeRunner(cfg.Runtime, cfg.KubeletVersion),
	}
	k.probes = newProber(cfg.Clock, k.log)
	k.probes.run = k.runProbe
	k.probes.event = k.event
	k.probes.wake = func(pod *corev1.Pod) {
		if k.enqueue != nil {
			k.enqueue(pod.Namespace + "/" + pod.Name)
		}
	}
	return k, nil
}

// newVolumes is the volume manager of a kubelet with a PodsDir.
func newVolumes(cfg Config) *volumeManager {
	if cfg.PodsDir == "" {
		return nil
	}
	m := newVolumeManager(cfg.Client, cfg.PodsDir, cfg.Logger)
	m.clock = cfg.Clock
	m.nodeAllocatable = func() corev1.ResourceList {
		if cfg.Allocatable != nil {
			return cfg.Allocatable
		}
		return cfg.Capacity
	}
	return m
}

// Name is the node's name.
func (k *Kubelet) Name() string { return k.name }

// Run registers the node and runs it until ctx ends, watching only the
// pods bound to it. It returns nil when ctx ends.
func (k *Kubelet) Run(ctx context.Context) error {
	f := newFleet(FleetConfig{Client: k.client, Logger: k.cfg.Logger, Workers: k.cfg.Workers, Clock: k.clock},
		"spec.nodeName="+k.name, "metadata.name="+k.name)
	if err := f.add(k); err != nil {
		return err
	}
	if k.cfg.StaticPodPath != "" {
		// Read before the workers start, so that no mirror pod in the
		// cache looks orphaned for want of its manifest.
		reported := map[string]bool{}
		k.loadStaticPods(reported)
		go k.runStaticPods(ctx, reported)
	}
	return f.Run(ctx)
}

func (k *Kubelet) setNode(n *corev1.Node) {
	k.mu.Lock()
	prev, had := "", k.node != nil
	if had {
		prev = k.node.Spec.PodCIDR
	}
	k.node = n
	k.mu.Unlock()
	if !had && n != nil && k.enqueue != nil {
		// Static pods' mirror pods wait for the Node: create them now.
		for _, key := range k.static.keys() {
			k.enqueue(key)
		}
	}
	if n != nil && n.Spec.PodCIDR != prev && n.Spec.PodCIDR != "" && k.cfg.PodCIDRChanged != nil {
		k.cfg.PodCIDRChanged(n.Spec.PodCIDR)
	}
}

func (k *Kubelet) getNode() *corev1.Node {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.node
}

// hostIPs are the node's addresses pods report as hostIPs.
func (k *Kubelet) hostIPs() []string {
	if n := k.getNode(); n != nil {
		var ips []string
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ips = append(ips, a.Address)
			}
		}
		if len(ips) > 0 {
			return ips
		}
	}
	if k.cfg.NodeIP != "" {
		return []string{k.cfg.NodeIP}
	}
	return nil
}

// podCIDR is the node's pod range, or a stand-in for a node that has none
// (no node IPAM): a /24 in 100.64.0.0/10 derived from the node name, so
// pods still get stable, mostly distinct addresses.
func (k *Kubelet) podCIDR() string {
	if n := k.getNode(); n != nil && n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR
	}
	return fallbackPodCIDR(k.name)
}

func fallbackPodCIDR(name string) string {
	idx := fnvSum(name) % (1 << 14)
	return fmt.Sprintf("100.%d.%d.0/24", 64+idx>>8, idx&0xff)
}

// runNode registers the node, then renews its lease and reports its status
// until ctx ends. delay staggers the loops of many nodes in one process.
func (k *Kubelet) runNode(ctx context.Context, delay time.Duration) {
	for {
		_, err := k.register(ctx)
		if err == nil {
			break
		}
		k.log.Error("register node", "err", err)
		if !k.sleep(ctx, min(2*time.Second, k.cfg.LeaseRenewInterval)) {
			return
		}
	}
	if err := k.renewLease(ctx); err != nil {
		k.log.Error("renew lease", "err", err)
	}
	if !k.sleep(ctx, delay) {
		return
	}
	lease := k.clock.NewTicker(k.cfg.LeaseRenewInterval)
	defer lease.Stop()
	status := k.clock.NewTicker(k.cfg.StatusUpdateFrequency)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C():
			if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
				k.log.Error("renew lease", "err", err)
			}
		case <-k.kick:
			if err := k.syncNodeStatus(ctx); err != nil && ctx.Err() == nil {
				k.log.Error("node status", "err", err)
			}
		case <-status.C():
			if err := k.syncNodeStatus(ctx); err != nil && ctx.Err() == nil {
				k.log.Error("node status", "err", err)
			}
		}
	}
}

// nodeDeleted makes the node loop look at the node at once rather than at
// the next status tick, so a deleted Node is registered again promptly.
func (k *Kubelet) nodeDeleted() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func (k *Kubelet) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := k.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
