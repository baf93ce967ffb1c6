// Package endpointslice keeps the EndpointSlices of every Service with a
// selector, as upstream's endpointslice controller does: one endpoint per
// pod with an IP (terminating pods included, with their conditions), ports
// resolved per pod, slices grouped by address type and port set with at
// most MaxEndpoints each, labelled kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by, owned by the Service.
//
// Reconciliation reuses the service's existing slices of the same group,
// updating only those whose content changed; slices it created or deleted
// and has not yet seen in its cache hold further syncs of that service, so
// a lagging cache never makes it create twice.
package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Labels and limits, as upstream.
const (
	ManagedBy    = "endpointslice-controller.k8s.io"
	MaxEndpoints = 100
)

// Controller writes EndpointSlices.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	pending map[string]map[string]expectation // service key -> slice name -> what we wait to see
}

// New returns the endpointslice controller.
func New(services coreinformers.ServiceInformer, pods coreinformers.PodInformer, nodes coreinformers.NodeInformer,
	slices discoveryinformers.EndpointSliceInformer, client kubernetes.Interface, log *slog.Logger, now func() time.Time) *Controller {
	c := &Controller{
		client: client, services: services.Lister(), pods: pods.Lister(), nodes: nodes.Lister(), slices: slices.Lister(),
		synced: []cache.InformerSynced{services.Informer().HasSynced, pods.Informer().HasSynced, nodes.Informer().HasSynced, slices.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpointslice"}),
		log: log.With("controller", "endpointslice"), now: now,
		pending: map[string]map[string]expectation{},
	}
	enqueueSvc := controller.EnqueueKey(c.queue)
	_, _ = services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueSvc, UpdateFunc: func(_, o any) { enqueueSvc(o) }, DeleteFunc: enqueueSvc,
	})
	_, _ = pods.Informer().AddEventHandler(controller.PodServicesHandler(c.services, c.queue))
	_, _ = slices.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { c.sliceSeen(o, true) },
		UpdateFunc: func(_, o any) { c.sliceSeen(o, true) },
		DeleteFunc: func(o any) { c.sliceSeen(o, false) },
	})
	return c
}

func (c *Controller) sliceSeen(obj any, present bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		return
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := s.Namespace + "/" + svc
	c.mu.Lock()
	if p := c.pending[key]; p != nil {
		if e, ok := p[s.Name]; ok && (e.created == present || !present) {
			delete(p, s.Name)
		}
		if len(p) == 0 {
			delete(c.pending, key)
		}
	}
	c.mu.Unlock()
	if !present {
		// Someone deleted a slice we manage: put it back.
		c.queue.Add(key)
	}
}

// expectation is a write the cache has not shown yet.
type expectation struct {
	created bool
	at      time.Time
}

// expectTimeout bounds how long a write may stay unseen before the
// controller stops waiting for it (upstream's expectations do the same).
const expectTimeout = 30 * time.Second

func (c *Controller) expect(key, name string, created bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[key] == nil {
		c.pending[key] = map[string]expectation{}
	}
	c.pending[key][name] = expectation{created: created, at: c.now()}
}

func (c *Controller) waiting(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, _, _ := cache.SplitMetaNamespaceKey(key)
	for name, e := range c.pending[key] {
		// The informer's event may have come before the expectation was
		// recorded: the cache itself settles it.
		_, err := c.slices.EndpointSlices(ns).Get(name)
		if (err == nil) == e.created || c.now().Sub(e.at) > expectTimeout {
			delete(c.pending[key], name)
		}
	}
	if len(c.pending[key]) == 0 {
		delete(c.pending, key)
		return false
	}
	return true
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "endpointslice", c.queue, workers, c.sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "service"}, c.synced...)
}

// group is the endpoints sharing an address type and port set.
type group struct {
	addrType  discoveryv1.AddressType
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

func (g *group) key() string { return string(g.addrType) + "|" + portsKey(g.ports) }

func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s/%d/%s", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0), ptr.Deref(p.Protocol, ""))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func resolvePort(sp corev1.ServicePort, pod *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.String {
		for _, ctr := range pod.Spec.Containers {
			for _, p := range ctr.Ports {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && proto == sp.Protocol {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if tp.IntVal == 0 {
		return sp.Port, true
	}
	return tp.IntVal, true
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Groups computes the desired endpoints of svc, grouped and sorted. zone
// returns a node's zone ("" when unknown).
func Groups(svc *corev1.Service, pods []*corev1.Pod, zone func(node string) string) []*group {
	groups := map[string]*group{}
	for _, pod := range pods {
		if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ip := net.ParseIP(pod.Status.PodIP)
		if ip == nil {
			continue
		}
		addrType := discoveryv1.AddressTypeIPv4
		if ip.To4() == nil {
			addrType = discoveryv1.AddressTypeIPv6
		}
		var ports []discoveryv1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			port, ok := resolvePort(sp, pod)
			if !ok {
				continue
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(port), Protocol: ptr.To(sp.Protocol), AppProtocol: sp.AppProtocol})
		}
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		terminating := pod.DeletionTimestamp != nil
		ready := podReady(pod)
		ep := discoveryv1.Endpoint{
			Addresses: []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(svc.Spec.PublishNotReadyAddresses || (ready && !terminating)),
				Serving:     ptr.To(svc.Spec.PublishNotReadyAddresses || ready),
				Terminating: ptr.To(terminating),
			},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			ep.NodeName = ptr.To(pod.Spec.NodeName)
			if z := zone(pod.Spec.NodeName); z != "" {
				ep.Zone = ptr.To(z)
			}
		}
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && svc.Spec.ClusterIP == corev1.ClusterIPNone {
			ep.Hostname = ptr.To(pod.Spec.Hostname)
		}
		g := &group{addrType: addrType, ports: ports}
		if cur := groups[g.key()]; cur != nil {
			g = cur
		} else {
			groups[g.key()] = g
		}
		g.endpoints = append(g.endpoints, ep)
	}
	out := make([]*group, 0, len(groups))
	for _, g := range groups {
		sort.Slice(g.endpoints, func(i, j int) bool {
			a, b := g.endpoints[i], g.endpoints[j]
			if a.Addresses[0] != b.Addresses[0] {
				return a.Addresses[0] < b.Addresses[0]
			}
			return a.TargetRef.Name < b.TargetRef.Name
		})
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// Chunk splits endpoints into slices of at most max.
func Chunk(eps []discoveryv1.Endpoint, max int) [][]discoveryv1.Endpoint {
	var out [][]discoveryv1.Endpoint
	for len(eps) > max {
		out = append(out, eps[:max])
		eps = eps[max:]
	}
	return append(out, eps)
}

func (c *Controller) zone(node string) string {
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

func (c *Controller) sync(ctx context.Context, key string) error {
	if c.waiting(key) {
		c.queue.AddAfter(key, 200*time.Millisecond)
		return nil
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ManagedBy})
	existing, err := c.slices.EndpointSlices(ns).List(sel)
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // the garbage collector deletes slices it owns
	}
	if err != nil {
		return err
	}
	var groups []*group
	if svc.Spec.Selector != nil && svc.Spec.Type != corev1.ServiceTypeExternalName {
		pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
		if err != nil {
			return err
		}
		groups = Groups(svc, pods, c.zone)
		if len(groups) == 0 {
			// Upstream keeps one empty slice so consumers see the service
			// has no endpoints rather than no data.
			groups = []*group{{addrType: discoveryv1.AddressTypeIPv4, ports: servicePorts(svc)}}
		}
	}
	return c.reconcile(ctx, key, svc, groups, existing)
}

func servicePorts(svc *corev1.Service) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		if sp.TargetPort.Type == intstr.String {
			continue
		}
		port := sp.TargetPort.IntVal
		if port == 0 {
			port = sp.Port
		}
		out = append(out, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(port), Protocol: ptr.To(sp.Protocol), AppProtocol: sp.AppProtocol})
	}
	return out
}

func (c *Controller) labelsFor(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		out[k] = v
	}
	out[discoveryv1.LabelServiceName] = svc.Name
	out[discoveryv1.LabelManagedBy] = ManagedBy
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[corev1.IsHeadlessService] = ""
	}
	return out
}

// reconcile makes the service's managed slices hold exactly the groups.
func (c *Controller) reconcile(ctx context.Context, key string, svc *corev1.Service, groups []*group, existing []*discoveryv1.EndpointSlice) error {
	byGroup := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		g := &group{addrType: s.AddressType, ports: s.Ports}
		byGroup[g.key()] = append(byGroup[g.key()], s)
	}
	for _, ss := range byGroup {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
	}
	wantLabels := c.labelsFor(svc)
	trigger := c.now().UTC().Format(time.RFC3339Nano)
	ownerRef := metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	for _, g := range groups {
		have := byGroup[g.key()]
		delete(byGroup, g.key())
		for i, chunk := range Chunk(g.endpoints, MaxEndpoints) {
			if chunk == nil {
				chunk = []discoveryv1.Endpoint{}
			}
			if i < len(have) {
				cur := have[i]
				if apiequality.Semantic.DeepEqual(cur.Endpoints, chunk) && apiequality.Semantic.DeepEqual(cur.Labels, wantLabels) && cur.AddressType == g.addrType {
					continue
				}
				next := cur.DeepCopy()
				next.Endpoints, next.Labels = chunk, wantLabels
				if next.Annotations == nil {
					next.Annotations = map[string]string{}
				}
				next.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger
				if _, err := api.Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("update endpointslice %s/%s: %w", svc.Namespace, cur.Name, err)
				}
				continue
			}
			s := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{GenerateName: svc.Name + "-", Namespace: svc.Namespace, Labels: wantLabels,
					Annotations:     map[string]string{corev1.EndpointsLastChangeTriggerTime: trigger},
					OwnerReferences: []metav1.OwnerReference{ownerRef}},
				AddressType: g.addrType, Endpoints: chunk, Ports: g.ports,
			}
			created, err := api.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("create endpointslice for %s: %w", key, err)
			}
			c.expect(key, created.Name, true)
		}
		if n := len(Chunk(g.endpoints, MaxEndpoints)); n < len(have) {
			for _, s := range have[n:] {
				if err := c.deleteSlice(ctx, key, s); err != nil {
					return err
				}
			}
		}
	}
	for _, ss := range byGroup {
		for _, s := range ss {
			if err := c.deleteSlice(ctx, key, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Controller) deleteSlice(ctx context.Context, key string, s *discoveryv1.EndpointSlice) error {
	err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err)
	}
	c.expect(key, s.Name, false)
	return nil
}
