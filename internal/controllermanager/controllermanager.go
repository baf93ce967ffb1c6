// Package controllermanager runs Skiff's controllers, as kube-controller-manager
// does upstream: one process-wide set of shared informers, one start function
// per controller, and leader election through a coordination.k8s.io Lease so
// that, when several servers run, exactly one of them runs the controllers.
//
// Lifecycle: New checks the Config; Run campaigns for the Lease
// kube-system/kube-controller-manager, and once leading starts every enabled
// controller, then the informers, and blocks until ctx ends or leadership is
// lost (then it returns an error, as upstream exits, so the process restarts
// clean rather than running controllers on a stale view).
//
// Controllers live in internal/controller/<name>; each one's start function
// is in this package (start_<name>.go) and registered in initFuncs.
package controllermanager

import (
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/servicelb"
)

// Options are the knobs controllers read; zero values take upstream's
// defaults (see withDefaults).
type Options struct {
	// NodeMonitorGracePeriod is how long a node may miss heartbeats before
	// it is marked NotReady (upstream --node-monitor-grace-period, 50s).
	NodeMonitorGracePeriod time.Duration
	// NodeMonitorPeriod is how often node health is checked (5s).
	NodeMonitorPeriod time.Duration
	// NodeStartupGracePeriod is how long a new node may take to report
	// Ready before it is considered unhealthy (60s).
	NodeStartupGracePeriod time.Duration
	// ClusterCIDR is the pod network nodes get podCIDRs from (10.244.0.0/16).
	ClusterCIDR string
	// NodeCIDRMaskSize is the size of each node's podCIDR (24).
	NodeCIDRMaskSize int
	// TerminatedPodGCThreshold is how many terminated pods may exist before
	// the pod garbage collector deletes the oldest (12500).
	TerminatedPodGCThreshold int
	// Workers is the number of concurrent syncs per controller (5).
	Workers int
	// LBAddressPool, when not empty, is the address pool of the built-in
	// load balancer (servicelb): IPv4 CIDRs and first-last ranges that
	// LoadBalancer Services get addresses from instead of the nodes'.
	LBAddressPool []string
}

// Validate checks the options that can be wrong, so that a server with a
// bad one fails when it starts rather than when it becomes the leader.
func (o Options) Validate() error {
	if _, err := servicelb.ParsePool(o.LBAddressPool); err != nil {
		return fmt.Errorf("--lb-address-pool: %w", err)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.NodeMonitorGracePeriod == 0 {
		o.NodeMonitorGracePeriod = 50 * time.Second
	}
	if o.NodeMonitorPeriod == 0 {
		o.NodeMonitorPeriod = 5 * time.Second
	}
	if o.NodeStartupGracePeriod == 0 {
		o.NodeStartupGracePeriod = 60 * time.Second
	}
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = "10.244.0.0/16"
	}
	if o.NodeCIDRMaskSize == 0 {
		o.NodeCIDRMaskSize = 24
	}
	if o.TerminatedPodGCThreshold == 0 {
		o.TerminatedPodGCThreshold = 12500
	}
	if o.Workers == 0 {
		o.Workers = 5
	}
	return o
}

// Config configures the controller manager.
type Config struct {
	// RestConfig reaches the API server.
	RestConfig *rest.Config
	// Disabled names controllers not to run ("deployment", ...).
	Disabled []string
	// LeaderElect campaigns for the Lease before running controllers; when
	// false the controllers start at once (tests, single-server clusters
	// that want no delay).
	LeaderElect bool
	// Identity is this candidate's name in the Lease (default: hostname
	// plus a random suffix).
	Identity string
	Options  Options
	Logger   *slog.Logger
	// Informers, when set, is an informer factory shared with other
	// components of the process; it must have been made with
	// InformerOptions. The manager starts the informers its controllers
	// use, and leaves the factory running when it stops.
	Informers informers.SharedInformerFactory
	// RootCA is the cluster CA published as kube-root-ca.crt in every
	// namespace (upstream --root-ca-file); empty means the CA RestConfig
	// trusts.
	RootCA []byte
}

// InformerOptions are the options of the manager's informer factory, for
// a factory made elsewhere to share: managedFields are dropped from the
// caches, as upstream's controller manager and scheduler do (no controller
// reads them, and they are a third of a pod's size).
func InformerOptions() []informers.SharedInformerOption {
	return []informers.SharedInformerOption{informers.WithTransform(dropManagedFields)}
}

// ControllerContext is what a controller's start function gets.
type ControllerContext struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Options   Options
	Logger    *slog.Logger
	// RestConfig is the API server's address and credentials, for
	// controllers that need another kind of client (dynamic, discovery).
	RestConfig *rest.Config
	// RootCA is Config.RootCA.
	RootCA []byte
	// Recorder returns an event recorder reporting as component (for
	// example "deployment-controller"), writing core/v1 Events.
	Recorder func(component string) record.EventRecorder
}

// InitFunc constructs a controller and starts its goroutines, which must end
// when ctx ends. It returns without blocking.
type InitFunc func(ctx context.Context, cc *ControllerContext) error

// Manager runs the controllers.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	funcs map[string]InitFunc
}

// Names lists every controller Skiff knows, sorted.
func Names() []string {
	names := make([]string, 0, len(initFuncs()))
	for n := range initFuncs() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New checks cfg and returns a Manager ready to Run.
func New(cfg Config) (*Manager, error) {
	if cfg.RestConfig == nil {
		return nil, errors.New("controller manager: a rest config is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	funcs := initFuncs()
	for _, d := range cfg.Disabled {
		name := canonicalName(d)
		if _, ok := funcs[name]; !ok {
			return nil, fmt.Errorf("--disable-controllers: unknown controller %q (known: %s)", d, strings.Join(Names(), ", "))
		}
		delete(funcs, name)
	}
	if cfg.Identity == "" {
		h, _ := os.Hostname()
		cfg.Identity = fmt.Sprintf("%s_%d", h, time.Now().UnixNano())
	}
	if err := cfg.Options.Validate(); err != nil {
		return nil, err
	}
	cfg.Options = cfg.Options.withDefaults()
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "controller-manager"), funcs: funcs}, nil
}

// canonicalName accepts upstream's long names too ("deployment-controller").
func canonicalName(s string) string {
	return strings.TrimSuffix(strings.TrimSpace(s), "-controller")
}

// Run runs the controllers until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	rc := rest.CopyConfig(m.cfg.RestConfig)
	if rc.QPS == 0 {
		// Upstream's controller manager defaults to 20/30, sized for big
		// control planes sharing an API server. Skiff's is in the same
		// process: its CPU, not a token bucket, should set the pace (a
		// 10,000-replica Deployment is 10,000 creates).
		rc.QPS, rc.Burst = 2000, 4000
	}
	rc.UserAgent = "skiff-controller-manager"
	// Protobuf, as upstream's components speak: decoding it costs a
	// fraction of JSON's, and here the clients share the server's cores.
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("controller manager client: %w", err)
	}
	if !m.cfg.LeaderElect {
		return m.runControllers(ctx, rc, client)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta("kube-system", "kube-controller-manager"),
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.cfg.Identity},
	}
	runErr := make(chan error, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "kube-controller-manager",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				m.log.Info("became leader", "identity", m.cfg.Identity)
				runErr <- m.runControllers(ctx, rc, client)
				cancel()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(lctx)
	select {
	case err := <-runErr:
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("controller manager lost its lease")
	default:
		return nil
	}
}

func (m *Manager) runControllers(ctx context.Context, rc *rest.Config, client kubernetes.Interface) error {
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	factory := m.cfg.Informers
	if factory == nil {
		factory = informers.NewSharedInformerFactoryWithOptions(client, 0, InformerOptions()...)
		defer factory.Shutdown()
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	cc := &ControllerContext{
		Client:     client,
		Metadata:   meta,
		Informers:  factory,
		Options:    m.cfg.Options,
		Logger:     m.log,
		RestConfig: rc,
		RootCA:     m.cfg.RootCA,
		Recorder: func(component string) record.EventRecorder {
			return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
		},
	}
	names := make([]string, 0, len(m.funcs))
	for n := range m.funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := m.funcs[n](ctx, cc); err != nil {
			return fmt.Errorf("start %s controller: %w", n, err)
		}
	}
	factory.Start(ctx.Done())
	m.log.Info("controllers started", "controllers", strings.Join(names, ","))
	<-ctx.Done()
	return nil
}

// dropManagedFields removes managedFields from objects entering the
// informers' caches.
func dropManagedFields(obj any) (any, error) {
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetManagedFields(nil)
	}
	return obj, nil
}
