package kubelet

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// Client is shared by every node of the fleet.
	Client kubernetes.Interface
	Logger *slog.Logger
	// Workers is how many pods are synced at once across the fleet
	// (default 32).
	Workers int
	Clock   clock.WithTicker
}

// Fleet runs many kubelets in one process over one client, one pod
// informer and one node informer, so a thousand simulated nodes cost the
// API server two watches, not two thousand. Add every kubelet before Run.
type Fleet struct {
	client  kubernetes.Interface
	log     *slog.Logger
	workers int
	clock   clock.WithTicker

	podSelector, nodeSelector string

	mu       sync.RWMutex
	kubelets map[string]*Kubelet // by node name
	order    []*Kubelet
	// withStatic are the kubelets that run static pods.
	withStatic []*Kubelet
	// podNode and podUID remember where a pod was and which UID it had,
	// for the cleanup after it is gone from the cache.
	podNode map[string]string
	podUID  map[string]string
	uidKey  map[string]string

	queue workqueue.TypedRateLimitingInterface[string]
	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	// synced is set once the informers have synced: only static pods
	// run before, and nothing is removed for belonging to no pod.
	synced atomic.Bool
}

// NewFleet returns an empty fleet.
func NewFleet(cfg FleetConfig) *Fleet {
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * defaultWorkers
	}
	// Only pods bound to a node concern any kubelet.
	return newFleet(cfg, "spec.nodeName!=", "")
}

func newFleet(cfg FleetConfig, podSelector, nodeSelector string) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	return &Fleet{
		client:       cfg.Client,
		log:          cfg.Logger,
		workers:      cfg.Workers,
		clock:        cfg.Clock,
		podSelector:  podSelector,
		nodeSelector: nodeSelector,
		kubelets:     map[string]*Kubelet{},
		podNode:      map[string]string{},
		podUID:       map[string]string{},
		uidKey:       map[string]string{},
		// No overall rate limit: every pod of a 10,000-replica rollout
		// must be synced at once. Failures back off per pod.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{}),
	}
}

// Add creates a kubelet for cfg in the fleet. Its Client is the fleet's.
func (f *Fleet) Add(cfg Config) (*Kubelet, error) {
	cfg.Client = f.client
	if cfg.Clock == nil {
		cfg.Clock = f.clock
	}
	if cfg.Logger == nil {
		cfg.Logger = f.log
	}
	k, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return k, f.add(k)
}

func (f *Fleet) add(k *Kubelet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.kubelets[k.name]; ok {
		return fmt.Errorf("kubelet: node %q added twice", k.name)
	}
	f.kubelets[k.name] = k
	f.order = append(f.order, k)
	if k.cfg.StaticPodPath != "" {
		f.withStatic = append(f.withStatic, k)
	}
	k.enqueue = f.queue.Add
	return nil
}

func (f *Fleet) kubelet(node string) *Kubelet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.kubelets[node]
}

// Run starts the informers, registers every node and runs them all until
// ctx ends. It returns nil when ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	// Whichever way Run returns, everything it started ends first.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var factories []informers.SharedInformerFactory
	defer func() {
		cancel()
		f.queue.ShutDown()
		wg.Wait()
		for _, fac := range factories {
			fac.Shutdown()
		}
	}()
	podFactory := informers.NewSharedInformerFactoryWithOptions(f.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = f.podSelector }),
		informers.WithTransform(dropManagedFields))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(f.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = f.nodeSelector }),
		informers.WithTransform(dropManagedFields))
	// Every Service: containers get the variables of their namespace's
	// Services when they start, as upstream's kubelet gives them from its
	// Service informer.
	svcFactory := informers.NewSharedInformerFactoryWithOptions(f.client, 0, informers.WithTransform(dropManagedFields))
	podInf := podFactory.Core().V1().Pods()
	nodeInf := nodeFactory.Core().V1().Nodes()
	svcInf := svcFactory.Core().V1().Services()
	f.pods, f.nodes = podInf.Lister(), nodeInf.Lister()
	services := svcInf.Lister()
	svcInf.Informer() // registered before Start
	// The field selectors must parse here; a typo would otherwise only
	// show as an empty watch.
	for _, s := range []string{f.podSelector, f.nodeSelector} {
		if _, err := fields.ParseSelector(s); err != nil {
			return fmt.Errorf("kubelet: selector %q: %w", s, err)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.podChanged(obj) },
		UpdateFunc: func(_, obj any) { f.podChanged(obj) },
		DeleteFunc: func(obj any) { f.podChanged(obj) },
	}); err != nil {
		return err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				if k := f.kubelet(n.Name); k != nil {
					k.setNode(n)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				if k := f.kubelet(n.Name); k != nil {
					k.nodeDeleted()
				}
			}
		},
	}); err != nil {
		return err
	}
	factories = []informers.SharedInformerFactory{podFactory, nodeFactory, svcFactory}
	for _, fac := range factories {
		fac.Start(ctx.Done())
	}

	// The runtime and the workers start before the informers sync, so
	// that static pods run while the API server cannot be reached; the
	// other pods wait for the sync (see sync).
	f.mu.RLock()
	kubelets := append([]*Kubelet(nil), f.order...)
	f.mu.RUnlock()
	delays := make([]time.Duration, len(kubelets))
	for i, k := range kubelets {
		k.nodes, k.services, k.pods = f.nodes, services, f.pods
		info, err := k.rt.Info(ctx)
		if err != nil {
			return fmt.Errorf("node %q: runtime info: %w", k.name, err)
		}
		k.rtInfo = info
		// Spread the nodes' periodic work over one interval, so a
		// thousand leases are renewed evenly rather than at once.
		if len(kubelets) > 1 {
			delays[i] = k.cfg.LeaseRenewInterval * time.Duration(i) / time.Duration(len(kubelets))
		}
	}
	for i, k := range kubelets {
		wg.Add(1)
		go func() { defer wg.Done(); f.relistLoop(ctx, k, delays[i]) }()
	}
	for range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f.processNext(ctx) {
			}
		}()
	}
	for _, fac := range factories {
		for _, ok := range fac.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return nil // ctx ended
			}
		}
	}
	f.synced.Store(true)
	for i, k := range kubelets {
		wg.Add(1)
		go func() { defer wg.Done(); k.runNode(ctx, delays[i]) }()
	}
	f.log.Info("node agent running", "nodes", len(kubelets), "workers", f.workers)
	<-ctx.Done()
	return nil
}

// podChanged records where a pod is and queues it.
func (f *Fleet) podChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || f.kubelet(pod.Spec.NodeName) == nil {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	if _, mirror := pod.Annotations[annotationMirror]; mirror {
		// Never run: it shows a static pod (see sync).
		f.queue.Add(key)
		return
	}
	f.mu.Lock()
	f.podNode[key] = pod.Spec.NodeName
	if old, ok := f.podUID[key]; ok && old != string(pod.UID) {
		delete(f.uidKey, old)
	}
	f.podUID[key] = string(pod.UID)
	f.uidKey[string(pod.UID)] = key
	f.mu.Unlock()
	f.queue.Add(key)
}

func (f *Fleet) processNext(ctx context.Context) bool {
	key, quit := f.queue.Get()
	if quit {
		return false
	}
	defer f.queue.Done(key)
	after, err := f.sync(ctx, key)
	switch {
	case err != nil && ctx.Err() == nil:
		f.log.Error("sync pod", "pod", key, "err", err)
		f.queue.AddRateLimited(key)
	case err == nil:
		f.queue.Forget(key)
		if after > 0 {
			f.queue.AddAfter(key, after)
		}
	}
	return true
}

// sync brings one pod one step toward its spec and reports when it must be
// looked at again without an event.
func (f *Fleet) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	for _, k := range f.withStatic {
		if k.static.has(key) {
			mirror, _ := f.pods.Pods(ns).Get(name)
			return k.syncStatic(ctx, key, mirror)
		}
	}
	if !f.synced.Load() {
		// Containers' environment needs every Service: wait for the
		// informers.
		return 100 * time.Millisecond, nil
	}
	pod, err := f.pods.Pods(ns).Get(name)
	if err != nil {
		// Gone: remove what is left of it.
		f.mu.Lock()
		node, uid := f.podNode[key], f.podUID[key]
		delete(f.podNode, key)
		delete(f.podUID, key)
		delete(f.uidKey, uid)
		f.mu.Unlock()
		if k := f.kubelet(node); k != nil && uid != "" {
			return 0, k.cleanup(ctx, uid)
		}
		return 0, nil
	}
	k := f.kubelet(pod.Spec.NodeName)
	if k == nil {
		return 0, nil
	}
	if _, mirror := pod.Annotations[annotationMirror]; mirror {
		// Its static pod is gone (or the node has none): as upstream,
		// an orphaned mirror pod is deleted.
		return 0, k.deleteMirrorPod(ctx, pod)
	}
	return k.syncPod(ctx, pod)
}

// relistLoop lists k's runtime every RelistPeriod and queues the pods
// whose containers changed on their own (exited), and removes what
// belongs to no pod any more.
func (f *Fleet) relistLoop(ctx context.Context, k *Kubelet, delay time.Duration) {
	if !k.sleep(ctx, delay*k.cfg.RelistPeriod/k.cfg.LeaseRenewInterval) {
		return
	}
	t := k.clock.NewTicker(k.cfg.RelistPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := f.relist(ctx, k); err != nil && ctx.Err() == nil {
			k.log.Error("relist runtime", "err", err)
		}
	}
}

func (f *Fleet) relist(ctx context.Context, k *Kubelet) error {
	sandboxes, containers, err := k.list(ctx)
	if err != nil {
		return err
	}
	sig := runtimeSignatures(sandboxes, containers)
	for uid, s := range sig {
		if k.seen[uid] == s {
			continue
		}
		f.mu.RLock()
		key, known := f.uidKey[uid]
		f.mu.RUnlock()
		if !known {
			key, known = k.static.keyOf(types.UID(uid))
		}
		if !known {
			if !f.synced.Load() {
				// Perhaps a pod the informer has not listed yet:
				// looked at again on the next relist.
				delete(sig, uid)
				continue
			}
			if err := k.cleanup(ctx, uid); err != nil {
				return err
			}
			continue
		}
		f.queue.Add(key)
	}
	k.seen = sig
	return nil
}

// dropManagedFields removes managedFields from objects entering an
// informer's cache: the node agent never reads them, and they are a third
// of a pod's size.
func dropManagedFields(obj any) (any, error) {
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetManagedFields(nil)
	}
	return obj, nil
}
