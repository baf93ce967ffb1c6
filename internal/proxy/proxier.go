package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Backend programs a Ruleset into the node. A backend remembers what it
// applied and changes only what differs; after a failure its next Sync
// starts over from scratch.
type Backend interface {
	Sync(ctx context.Context, rs *Ruleset) (SyncResult, error)
}

// SyncResult says what a Backend.Sync did.
type SyncResult struct {
	// Full is true when the whole ruleset was rewritten (the first sync,
	// or the first after a failure).
	Full bool
	// Changed counts the Service ports whose rules were written or removed.
	Changed int
}

// Defaults of Config.
const (
	// DefaultMinSyncInterval is the least time between two syncs that
	// write rules: changes arriving faster are batched. kube-proxy's
	// default is 1 s, a bound set by rewriting every rule on each sync;
	// the nftables backend writes only the Service ports that changed
	// (about 20 ms for one at 10,000 Services), so the bound can be short
	// and a change reaches the kernel within ~100 ms, not a second.
	DefaultMinSyncInterval = 100 * time.Millisecond
	// DefaultSyncPeriod is how often the proxy syncs without a change,
	// kube-proxy's default --iptables-sync-period.
	DefaultSyncPeriod = 30 * time.Second
)

// Config configures a Proxier.
type Config struct {
	// Client reads Services and EndpointSlices.
	Client kubernetes.Interface
	// Node is the node the proxy programs.
	Node Node
	// Backend applies the compiled rules.
	Backend Backend
	// MinSyncInterval is the least time between two syncs;
	// DefaultMinSyncInterval when zero.
	MinSyncInterval time.Duration
	// SyncPeriod is the most time between two syncs; DefaultSyncPeriod
	// when zero.
	SyncPeriod time.Duration
	// Health, when set, is told of every successful sync, so that it
	// serves the healthCheckNodePorts the rules ask for.
	Health *HealthServer
	// Registerer, when set, receives the proxy's metrics.
	Registerer prometheus.Registerer
	// Logger receives one line per sync; slog.Default() when nil.
	Logger *slog.Logger
}

// Proxier is the service proxy of one node: it watches Services and
// EndpointSlices, compiles them (Compile) and hands the result to its
// Backend, at most once per MinSyncInterval.
type Proxier struct {
	cfg          Config
	log          *slog.Logger
	trigger      chan struct{}
	syncDuration prometheus.Histogram
	syncFailures prometheus.Counter
}

// New returns a Proxier; Run starts it.
func New(cfg Config) (*Proxier, error) {
	if cfg.Client == nil || cfg.Backend == nil {
		return nil, errors.New("proxy: a client and a backend are required")
	}
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = DefaultMinSyncInterval
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxier{
		cfg:     cfg,
		log:     cfg.Logger,
		trigger: make(chan struct{}, 1),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skiff_proxy_sync_duration_seconds",
			Help:    "Time to compile Services and EndpointSlices and program them into the node.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_proxy_sync_failures_total",
			Help: "Syncs whose rules could not be programmed.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.syncDuration, p.syncFailures} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("proxy: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Run watches the API and syncs until ctx ends. The first sync happens
// once both caches are synced.
func (p *Proxier) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(p.cfg.Client, 0)
	svcInformer := factory.Core().V1().Services()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.kick() },
		UpdateFunc: func(any, any) { p.kick() },
		DeleteFunc: func(any) { p.kick() },
	}
	if _, err := svcInformer.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("proxy: watch services: %w", err)
	}
	if _, err := sliceInformer.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("proxy: watch endpointslices: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcInformer.Informer().HasSynced, sliceInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	svcLister, sliceLister := svcInformer.Lister(), sliceInformer.Lister()

	period := time.NewTicker(p.cfg.SyncPeriod)
	defer period.Stop()
	var last time.Time
	p.kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-period.C:
		}
		// Debounce: changes arriving within MinSyncInterval of the last
		// sync that wrote rules wait for its end and are applied
		// together. A sync that changed nothing (periodic, or an
		// update the rules do not depend on) holds nothing back.
		if wait := p.cfg.MinSyncInterval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			// Whatever triggered meanwhile is covered by this sync.
			select {
			case <-p.trigger:
			default:
			}
		}
		started := time.Now()
		services, err := svcLister.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("proxy: list services: %w", err)
		}
		slices, err := sliceLister.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("proxy: list endpointslices: %w", err)
		}
		changed, err := p.sync(ctx, services, slices)
		if err != nil || changed {
			last = started
		}
		if err != nil {
			// Retry after MinSyncInterval; the backend resyncs fully.
			p.kick()
		}
	}
}

func (p *Proxier) kick() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// sync compiles and applies the rules, and reports whether it wrote any.
func (p *Proxier) sync(ctx context.Context, services []*corev1.Service, endpointSlices []*discoveryv1.EndpointSlice) (bool, error) {
	start := time.Now()
	rs := Compile(p.cfg.Node, services, endpointSlices)
	res, err := p.cfg.Backend.Sync(ctx, rs)
	elapsed := time.Since(start)
	if err != nil {
		p.syncFailures.Inc()
		p.log.Error("proxy: sync failed", "servicePorts", len(rs.Services), "err", err)
		return false, err
	}
	p.syncDuration.Observe(elapsed.Seconds())
	if p.cfg.Health != nil {
		p.cfg.Health.Update(rs)
	}
	if res.Full || res.Changed > 0 {
		p.log.Info("proxy: synced", "full", res.Full, "servicePorts", len(rs.Services),
			"endpoints", rs.Endpoints(), "changed", res.Changed, "duration", elapsed)
	}
	return res.Full || res.Changed > 0, nil
}
