// Package resourcequota recomputes ResourceQuota status from what exists,
// as upstream's resource quota controller does: status.hard mirrors
// spec.hard and status.used sums the usage (internal/quota) of the objects
// in the namespace that the quota tracks. Admission charges new objects
// between recomputations; this controller corrects the totals (deleted
// objects, failed creates). Any change to a tracked object queues its
// namespace's quotas; every quota is also recomputed each ResyncPeriod.
package resourcequota

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
	"github.com/skiff-sh/skiff/internal/quota"
)

// tracked is one kind of object the controller counts.
type tracked struct {
	gr   schema.GroupResource
	list func(namespace string) ([]runtime.Object, error)
}

// Controller recomputes quota usage.
type Controller struct {
	client  kubernetes.Interface
	quotas  corelisters.ResourceQuotaLister
	tracked []tracked
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	log     *slog.Logger
	// ResyncPeriod recomputes every quota (5 minutes, as upstream).
	ResyncPeriod time.Duration
}

func listOf[T runtime.Object](l func(sel labels.Selector) ([]T, error)) func() ([]runtime.Object, error) {
	return func() ([]runtime.Object, error) {
		items, err := l(labels.Everything())
		out := make([]runtime.Object, len(items))
		for i, x := range items {
			out[i] = x
		}
		return out, err
	}
}

// New returns the controller over the factory's core informers.
func New(f informers.SharedInformerFactory, client kubernetes.Interface, log *slog.Logger) *Controller {
	core := f.Core().V1()
	c := &Controller{
		client: client, quotas: core.ResourceQuotas().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "resourcequota"}),
		log: log.With("controller", "resourcequota"), ResyncPeriod: 5 * time.Minute,
	}
	add := func(resource string, inf cache.SharedIndexInformer, list func(ns string) ([]runtime.Object, error)) {
		c.tracked = append(c.tracked, tracked{gr: schema.GroupResource{Resource: resource}, list: list})
		c.synced = append(c.synced, inf.HasSynced)
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.objectChanged,
			UpdateFunc: func(_, o any) { c.objectChanged(o) },
			DeleteFunc: c.objectChanged,
		})
	}
	add("pods", core.Pods().Informer(), func(ns string) ([]runtime.Object, error) { return listOf(core.Pods().Lister().Pods(ns).List)() })
	add("services", core.Services().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.Services().Lister().Services(ns).List)()
	})
	add("configmaps", core.ConfigMaps().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.ConfigMaps().Lister().ConfigMaps(ns).List)()
	})
	add("secrets", core.Secrets().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.Secrets().Lister().Secrets(ns).List)()
	})
	add("persistentvolumeclaims", core.PersistentVolumeClaims().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.PersistentVolumeClaims().Lister().PersistentVolumeClaims(ns).List)()
	})
	add("replicationcontrollers", core.ReplicationControllers().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.ReplicationControllers().Lister().ReplicationControllers(ns).List)()
	})
	add("resourcequotas", core.ResourceQuotas().Informer(), func(ns string) ([]runtime.Object, error) {
		return listOf(core.ResourceQuotas().Lister().ResourceQuotas(ns).List)()
	})
	return c
}

// objectChanged queues the quotas of the object's namespace.
func (c *Controller) objectChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	if q, ok := obj.(*corev1.ResourceQuota); ok {
		c.queue.Add(q.Namespace + "/" + q.Name)
		return
	}
	qs, err := c.quotas.ResourceQuotas(acc.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, q := range qs {
		c.queue.Add(q.Namespace + "/" + q.Name)
	}
}

// Run runs workers and the periodic full recomputation until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync("resourcequota", ctx.Done(), c.synced...) {
		return
	}
	controller.StartWorkers(ctx, c.queue, workers, c.sync, controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "quota"})
	wait.UntilWithContext(ctx, func(context.Context) {
		qs, _ := c.quotas.List(labels.Everything())
		for _, q := range qs {
			c.queue.Add(q.Namespace + "/" + q.Name)
		}
	}, c.ResyncPeriod)
}

// Used computes a quota's usage from the objects of its namespace.
func Used(q *corev1.ResourceQuota, objects map[schema.GroupResource][]runtime.Object) corev1.ResourceList {
	used := corev1.ResourceList{}
	for gr, objs := range objects {
		for _, o := range objs {
			if !quota.Matches(q, o) {
				continue
			}
			used = quota.Add(used, quota.Restrict(quota.Usage(gr, o), q.Spec.Hard))
		}
	}
	// Every tracked resource is reported, zero when nothing uses it.
	for k := range q.Spec.Hard {
		if _, ok := used[k]; !ok {
			if known(k, objects) {
				used[k] = *newZero()
			}
		}
	}
	return used
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	q, err := c.quotas.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	objects := map[schema.GroupResource][]runtime.Object{}
	for _, t := range c.tracked {
		objs, err := t.list(ns)
		if err != nil {
			return err
		}
		objects[t.gr] = objs
	}
	used := Used(q, objects)
	if apiequality.Semantic.DeepEqual(q.Status.Hard, q.Spec.Hard) && apiequality.Semantic.DeepEqual(q.Status.Used, used) {
		return nil
	}
	next := q.DeepCopy()
	next.Status.Hard = q.Spec.Hard.DeepCopy()
	next.Status.Used = used
	if _, err := c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update quota %s status: %w", key, err)
	}
	return nil
}
