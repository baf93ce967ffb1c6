// Package endpointslicemirroring mirrors the Endpoints a user writes for a
// Service without a selector into EndpointSlices, as upstream's
// endpointslicemirroring controller does, so that everything that reads
// EndpointSlices (the service proxy, cluster DNS) sees them.
//
// For each such Endpoints object, one EndpointSlice per subset carries its
// addresses (ready) and notReadyAddresses (not ready) and its ports,
// labelled kubernetes.io/service-name and endpointslice.kubernetes.io/
// managed-by=endpointslicemirroring-controller.k8s.io and owned by the
// Service. Endpoints of Services with a selector (the endpoints
// controller's), Endpoints labelled endpointslice.kubernetes.io/
// skip-mirror=true, and Endpoints whose Service does not exist are not
// mirrored, and slices mirrored earlier for them are deleted.
package endpointslicemirroring

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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

// Upstream's names.
const (
	// ManagedBy is the managed-by label value of mirrored slices.
	ManagedBy = "endpointslicemirroring-controller.k8s.io"
	// LabelSkipMirror on an Endpoints object keeps it from being
	// mirrored.
	LabelSkipMirror = "endpointslice.kubernetes.io/skip-mirror"
	// maxEndpointsPerSubset is how many addresses of one subset are
	// mirrored, as upstream's default --mirroring-max-endpoints-per-subset.
	maxEndpointsPerSubset = 1000
)

// Controller mirrors Endpoints into EndpointSlices.
type Controller struct {
	client    kubernetes.Interface
	log       *slog.Logger
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on the Service, Endpoints and EndpointSlice
// informers.
func New(services coreinformers.ServiceInformer, endpoints coreinformers.EndpointsInformer, eps discoveryinformers.EndpointSliceInformer, client kubernetes.Interface, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, log: log.With("controller", "endpointslicemirroring"),
		services: services.Lister(), endpoints: endpoints.Lister(), slices: eps.Lister(),
		synced: []cache.InformerSynced{services.Informer().HasSynced, endpoints.Informer().HasSynced, eps.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpointslicemirroring"}),
	}
	enqueue := controller.EnqueueKey(c.queue)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
	_, _ = services.Informer().AddEventHandler(handler)
	_, _ = endpoints.Informer().AddEventHandler(handler)
	// A mirrored slice changed or deleted behind the controller's back
	// is put right.
	sliceChanged := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels[discoveryv1.LabelServiceName] == "" {
			return
		}
		c.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
	}
	_, _ = eps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sliceChanged,
		UpdateFunc: func(_, obj any) { sliceChanged(obj) },
		DeleteFunc: sliceChanged,
	})
	return c
}

// Run processes Services with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "endpointslicemirroring", c.queue, workers, c.Sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "service"}, c.synced...)
}

// Sync makes the mirrored slices of the Service (or Endpoints) named by
// key what its Endpoints say.
func (c *Controller) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	var want []discoveryv1.EndpointSlice
	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if svc != nil && ep != nil && svc.Spec.Selector == nil && ep.Labels[LabelSkipMirror] != "true" {
		want = Desired(svc, ep)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ManagedBy})
	have, err := c.slices.EndpointSlices(ns).List(sel)
	if err != nil {
		return err
	}
	slices.SortFunc(have, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	api := c.client.DiscoveryV1().EndpointSlices(ns)
	for i, w := range want {
		if i < len(have) {
			cur := have[i]
			if apiequality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) && apiequality.Semantic.DeepEqual(cur.Ports, w.Ports) &&
				cur.AddressType == w.AddressType && labelsMatch(cur.Labels, w.Labels) {
				continue
			}
			if cur.AddressType != w.AddressType {
				// Immutable: replace it.
				if err := api.Delete(ctx, cur.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return err
				}
				if _, err := api.Create(ctx, &w, metav1.CreateOptions{}); err != nil {
					return err
				}
				continue
			}
			upd := cur.DeepCopy()
			upd.Endpoints, upd.Ports, upd.Labels, upd.OwnerReferences = w.Endpoints, w.Ports, w.Labels, w.OwnerReferences
			if _, err := api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return err
			}
			continue
		}
		if _, err := api.Create(ctx, &w, metav1.CreateOptions{}); err != nil {
			return err
		}
		c.log.Info("endpoints mirrored", "service", key, "addresses", len(w.Endpoints))
	}
	for _, extra := range have[min(len(want), len(have)):] {
		if err := api.Delete(ctx, extra.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// labelsMatch reports whether have carries every label of want.
func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Desired is the mirror of ep for svc: one EndpointSlice per subset and
// address family with its addresses, each named "<service>-" plus a
// generated suffix.
func Desired(svc *corev1.Service, ep *corev1.Endpoints) []discoveryv1.EndpointSlice {
	var out []discoveryv1.EndpointSlice
	for _, subset := range ep.Subsets {
		var ports []discoveryv1.EndpointPort
		for _, p := range subset.Ports {
			ports = append(ports, discoveryv1.EndpointPort{
				Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol), AppProtocol: p.AppProtocol,
			})
		}
		byFamily := map[discoveryv1.AddressType][]discoveryv1.Endpoint{}
		add := func(a corev1.EndpointAddress, ready bool) {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				return
			}
			family := discoveryv1.AddressTypeIPv4
			if ip.Is6() && !ip.Is4In6() {
				family = discoveryv1.AddressTypeIPv6
			}
			if len(byFamily[family]) >= maxEndpointsPerSubset {
				return
			}
			e := discoveryv1.Endpoint{
				Addresses:  []string{ip.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
				NodeName:   a.NodeName,
				TargetRef:  a.TargetRef,
			}
			if a.Hostname != "" {
				e.Hostname = ptr.To(a.Hostname)
			}
			byFamily[family] = append(byFamily[family], e)
		}
		for _, a := range subset.Addresses {
			add(a, true)
		}
		for _, a := range subset.NotReadyAddresses {
			add(a, false)
		}
		for _, family := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			eps := byFamily[family]
			if len(eps) == 0 {
				continue
			}
			lbls := map[string]string{}
			for k, v := range ep.Labels {
				lbls[k] = v
			}
			lbls[discoveryv1.LabelServiceName] = svc.Name
			lbls[discoveryv1.LabelManagedBy] = ManagedBy
			out = append(out, discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: svc.Name + "-",
					Namespace:    svc.Namespace,
					Labels:       lbls,
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
						Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
					}},
				},
				AddressType: family,
				Endpoints:   eps,
				Ports:       ports,
			})
		}
	}
	return out
}
