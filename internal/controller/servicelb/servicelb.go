// Package servicelb is Skiff's built-in load balancer, in the manner of
// k3s's ServiceLB (klipper-lb) but without pods: a Service of type
// LoadBalancer that names no loadBalancerClass, or names Class, gets the
// InternalIP of every Ready node as status.loadBalancer.ingress (ipMode
// VIP). The service proxy on every node already forwards those addresses
// to the Service's endpoints, so any node's address answers.
//
// The addresses follow the nodes: a node that becomes Ready, stops being
// Ready, changes its InternalIP, is labelled
// node.kubernetes.io/exclude-from-external-load-balancers or is deleted
// updates every such Service. A Service that stops being of type
// LoadBalancer has its status.loadBalancer cleared, as upstream's service
// controller does. Services of another loadBalancerClass are left alone.
//
// With an address pool (New's pool, `skiff server --lb-address-pool`) a
// Service gets one address of the pool instead (Pool.Allocate): its
// spec.loadBalancerIP when that is in the pool and free, else the lowest
// free one. Which Service has which address is read back from the
// Services' statuses, so it survives restarts without storage of its own;
// the controller only remembers, in memory, what it wrote and its cache may
// not show yet. A Service that gets none (pool exhausted, loadBalancerIP
// taken or outside the pool) has no ingress and a Warning event
// AllocationFailed. The nodes' announcers (internal/announce) make the
// address reachable on the nodes' network.
package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Class is the spec.loadBalancerClass that names this load balancer
// explicitly; a LoadBalancer Service without a class is served too.
const Class = "skiff.sh/servicelb"

// LabelExcludeFromLB is upstream's node label that keeps a node out of
// every load balancer's backends.
const LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Controller is the built-in load balancer's controller.
type Controller struct {
	client         kubernetes.Interface
	log            *slog.Logger
	services       corelisters.ServiceLister
	nodes          corelisters.NodeLister
	servicesSynced cache.InformerSynced
	nodesSynced    cache.InformerSynced
	queue          workqueue.TypedRateLimitingInterface[string]
	recorder       record.EventRecorder
	pool           Pool

	// mu guards written: the pool address (by Service key) of every
	// status this controller wrote, which the informer cache may not show
	// yet; without it two workers, or a sync right after a write, could
	// hand out one address twice.
	mu      sync.Mutex
	written map[string]netip.Addr
}

// ReasonAllocationFailed is the reason of the Warning event on a Service
// that gets no address from the pool.
const ReasonAllocationFailed = "AllocationFailed"

// New builds the controller on the service and node informers. An empty
// pool lends the nodes' addresses; otherwise Services get pool addresses,
// and recorder (nil: none) reports those that get none.
func New(services coreinformers.ServiceInformer, nodes coreinformers.NodeInformer, client kubernetes.Interface,
	recorder record.EventRecorder, pool Pool, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{} // drops events
	}
	c := &Controller{
		client: client, log: log.With("controller", "servicelb"), recorder: recorder, pool: pool, written: map[string]netip.Addr{},
		services: services.Lister(), nodes: nodes.Lister(),
		servicesSynced: services.Informer().HasSynced, nodesSynced: nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"}),
	}
	enqueue := controller.EnqueueKey(c.queue)
	_, _ = services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*corev1.Service); ok && concerned(s) {
				enqueue(s)
			}
		},
		UpdateFunc: func(_, obj any) {
			if s, ok := obj.(*corev1.Service); ok && concerned(s) {
				enqueue(s)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			// A deleted Service's pool address is free for a waiting one.
			if s, ok := obj.(*corev1.Service); ok && !c.pool.Empty() && Ours(s) {
				c.forget(controller.KeyFunc(s))
				c.enqueueAll()
			}
		},
	})
	nodeChanged := func(old, obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		o, _ := old.(*corev1.Node)
		n, _ := obj.(*corev1.Node)
		if !c.pool.Empty() || (o != nil && n != nil && NodeAddress(o) == NodeAddress(n)) {
			// Pool addresses do not follow the nodes.
			return
		}
		c.enqueueAll()
	}
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { nodeChanged(nil, obj) },
		UpdateFunc: nodeChanged,
		DeleteFunc: func(obj any) { nodeChanged(nil, obj) },
	})
	return c
}

// concerned reports whether the controller may have to write s's status:
// it is ours, or it carries load balancer addresses it may no longer want.
func concerned(s *corev1.Service) bool {
	return Ours(s) || (s.Spec.Type != corev1.ServiceTypeLoadBalancer && len(s.Status.LoadBalancer.Ingress) > 0)
}

func (c *Controller) enqueueAll() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if Ours(s) {
			c.queue.Add(controller.KeyFunc(s))
		}
	}
}

// Run processes Services with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "servicelb", c.queue, workers, c.Sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "service"}, c.servicesSynced, c.nodesSynced)
}

// Ours reports whether s is a LoadBalancer Service this controller serves:
// of type LoadBalancer with no loadBalancerClass or with Class.
func Ours(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && (s.Spec.LoadBalancerClass == nil || *s.Spec.LoadBalancerClass == Class)
}

// NodeAddress is the address a node lends the load balancer: its first
// InternalIP (IPv4, as the service proxy programs) when it is Ready and not
// excluded, else "".
func NodeAddress(n *corev1.Node) string {
	if n == nil || n.DeletionTimestamp != nil {
		return ""
	}
	if _, excluded := n.Labels[LabelExcludeFromLB]; excluded {
		return ""
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return ""
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip.String()
		}
	}
	return ""
}

// Ingress is the status.loadBalancer.ingress the Service should have:
// for a Service it serves, one VIP entry per distinct node address, in
// address order; otherwise none. keep reports whether the controller must
// leave the status alone (a LoadBalancer Service of another class).
func Ingress(s *corev1.Service, nodes []*corev1.Node) (ingress []corev1.LoadBalancerIngress, keep bool) {
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer && !Ours(s) {
		return nil, true
	}
	if !Ours(s) {
		return nil, false
	}
	var addrs []netip.Addr
	for _, n := range nodes {
		if a := NodeAddress(n); a != "" {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	for _, a := range addrs {
		mode := corev1.LoadBalancerIPModeVIP
		ingress = append(ingress, corev1.LoadBalancerIngress{IP: a.String(), IPMode: &mode})
	}
	return ingress, false
}

// sameIngress compares two ingress lists by address and mode.
func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		xm, ym := "", ""
		if x.IPMode != nil {
			xm = string(*x.IPMode)
		}
		if y.IPMode != nil {
			ym = string(*y.IPMode)
		}
		return x.IP == y.IP && x.Hostname == y.Hostname && xm == ym && len(x.Ports) == 0 && len(y.Ports) == 0
	})
}

// Sync brings one Service's status.loadBalancer to what Ingress says.
func (c *Controller) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	s, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	want, keep := Ingress(s, nodes)
	switch {
	case c.pool.Empty():
	case keep:
		c.forget(key) // another class now: its address is not ours to keep
	default:
		if want, err = c.poolIngress(s, key); err != nil {
			return err
		}
	}
	if keep || sameIngress(s.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	upd := s.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if _, err := c.client.CoreV1().Services(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update load balancer status of service %s: %w", key, err)
	}
	ips := make([]string, 0, len(want))
	for _, in := range want {
		ips = append(ips, in.IP)
	}
	c.log.Info("load balancer addresses set", "service", key, "ingress", ips)
	if old, ok := poolAddress(s); ok && c.pool.Contains(old) && (len(want) == 0 || want[0].IP != old.String()) {
		// The old address is free now: a Service waiting for one may take it.
		c.enqueueAll()
	}
	return nil
}

// poolIngress is the ingress s should have from the pool: one VIP entry,
// or none (and an AllocationFailed event) when it gets no address. It
// remembers the decision, which the next syncs of other Services rely on
// before the cache shows the status.
func (c *Controller) poolIngress(s *corev1.Service, key string) ([]corev1.LoadBalancerIngress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !Ours(s) {
		delete(c.written, key)
		return nil, nil
	}
	all, err := c.services.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ours []*corev1.Service
	current := map[string]netip.Addr{}
	for _, o := range all {
		if !Ours(o) {
			continue
		}
		ours = append(ours, o)
		k := controller.KeyFunc(o)
		if a, ok := c.written[k]; ok {
			current[k] = a
		} else if a, ok := poolAddress(o); ok {
			current[k] = a
		}
	}
	got, ok := c.pool.Allocate(ours, current)[key]
	if !ok {
		return nil, nil // not in the cache any more: deleted
	}
	if got.Err != nil {
		delete(c.written, key)
		c.recorder.Eventf(s, corev1.EventTypeWarning, ReasonAllocationFailed, "Failed to allocate a load balancer address: %v", got.Err)
		return nil, nil
	}
	c.written[key] = got.Addr
	mode := corev1.LoadBalancerIPModeVIP
	return []corev1.LoadBalancerIngress{{IP: got.Addr.String(), IPMode: &mode}}, nil
}

// forget drops what the controller remembers of a deleted Service.
func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, key)
}
