package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Syncer programs a Ruleset; *Backend is one. force asks for a rewrite
// even when rs equals the last one applied.
type Syncer interface {
	Sync(rs *Ruleset, force bool) (changed bool, err error)
}

// Defaults of ControllerConfig.
const (
	// DefaultMinSyncInterval batches changes arriving faster.
	DefaultMinSyncInterval = time.Second
	// DefaultSyncPeriod is how often the rules are rewritten without a
	// change, repairing any outside edit.
	DefaultSyncPeriod = time.Minute
)

// ControllerConfig configures a Controller.
type ControllerConfig struct {
	// Client reads Pods, Namespaces and NetworkPolicies.
	Client kubernetes.Interface
	// NodeName is the node whose pods are enforced.
	NodeName string
	// Backend applies the compiled rules.
	Backend Syncer
	// MinSyncInterval is the least time between two syncs;
	// DefaultMinSyncInterval when zero.
	MinSyncInterval time.Duration
	// SyncPeriod is the most time between two syncs; DefaultSyncPeriod
	// when zero.
	SyncPeriod time.Duration
	// Logger receives one line per sync that writes; slog.Default() when
	// nil.
	Logger *slog.Logger
}

// Controller enforces NetworkPolicies on one node: it watches every Pod
// (peers are selected among all of them), Namespace and NetworkPolicy,
// compiles them for the node's pods and hands the Ruleset to its backend,
// at most once per MinSyncInterval.
type Controller struct {
	cfg     ControllerConfig
	log     *slog.Logger
	trigger chan struct{}
}

// NewController returns a Controller; Run starts it.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Client == nil || cfg.Backend == nil || cfg.NodeName == "" {
		return nil, errors.New("netpol: a client, a backend and a node name are required")
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
	return &Controller{cfg: cfg, log: cfg.Logger, trigger: make(chan struct{}, 1)}, nil
}

// Run watches the API and syncs until ctx ends; the first sync happens
// once the caches are synced.
func (c *Controller) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.cfg.Client, 0)
	pods := factory.Core().V1().Pods()
	nss := factory.Core().V1().Namespaces()
	pols := factory.Networking().V1().NetworkPolicies()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.kick() },
		UpdateFunc: func(any, any) { c.kick() },
		DeleteFunc: func(any) { c.kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), nss.Informer(), pols.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("netpol: watch: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, nss.Informer().HasSynced, pols.Informer().HasSynced) {
		return ctx.Err()
	}
	period := time.NewTicker(c.cfg.SyncPeriod)
	defer period.Stop()
	var last time.Time
	c.kick()
	for {
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-c.trigger:
		case <-period.C:
			force = true
		}
		if wait := c.cfg.MinSyncInterval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			select {
			case <-c.trigger:
			default:
			}
		}
		last = time.Now()
		podList, err := pods.Lister().List(labels.Everything())
		if err != nil {
			return fmt.Errorf("netpol: list pods: %w", err)
		}
		nsList, err := nss.Lister().List(labels.Everything())
		if err != nil {
			return fmt.Errorf("netpol: list namespaces: %w", err)
		}
		polList, err := pols.Lister().List(labels.Everything())
		if err != nil {
			return fmt.Errorf("netpol: list networkpolicies: %w", err)
		}
		rs := Compile(c.cfg.NodeName, podList, nsList, polList)
		changed, err := c.cfg.Backend.Sync(rs, force)
		if err != nil {
			c.log.Error("netpol: sync failed", "isolatedPods", len(rs.Pods), "err", err)
			c.kick() // retried after MinSyncInterval
			continue
		}
		if changed {
			c.log.Info("netpol: synced", "policies", len(polList), "isolatedPods", len(rs.Pods), "forced", force, "duration", time.Since(last))
		}
	}
}

func (c *Controller) kick() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}
