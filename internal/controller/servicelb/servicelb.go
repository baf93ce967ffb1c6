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
package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
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
}

// New builds the controller on the service and node informers.
func New(services coreinformers.ServiceInformer, nodes coreinformers.NodeInformer, client kubernetes.Interface, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, log: log.With("controller", "servicelb"),
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
	})
	nodeChanged := func(old, obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		o, _ := old.(*corev1.Node)
		n, _ := obj.(*corev1.Node)
		if o != nil && n != nil && NodeAddress(o) == NodeAddress(n) {
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
	return nil
}
