// Package namespace empties namespaces being deleted, as upstream's
// namespace controller does: a namespace with a deletionTimestamp and the
// "kubernetes" finalizer in spec.finalizers has every namespaced object
// deleted (deletecollection per resource found by discovery); its status
// conditions say what is left; once nothing is left the finalizer is removed
// through namespaces/finalize and the API server deletes the namespace.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Condition types and reasons, as upstream.
const (
	condDiscovery  = corev1.NamespaceDeletionDiscoveryFailure
	condParsing    = corev1.NamespaceDeletionGVParsingFailure
	condContent    = corev1.NamespaceDeletionContentFailure
	condRemaining  = corev1.NamespaceContentRemaining
	condFinalizers = corev1.NamespaceFinalizersRemaining
)

// Controller deletes the content of terminating namespaces.
type Controller struct {
	client kubernetes.Interface
	meta   metadata.Interface
	disco  discovery.DiscoveryInterface
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	log    *slog.Logger
	now    func() time.Time
	// RetryAfter is how long to wait before looking again at a namespace
	// whose content is still going.
	RetryAfter time.Duration
}

// New returns a namespace controller.
func New(namespaces coreinformers.NamespaceInformer, client kubernetes.Interface, metaClient metadata.Interface,
	disco discovery.DiscoveryInterface, log *slog.Logger, now func() time.Time) *Controller {
	c := &Controller{
		client: client, meta: metaClient, disco: disco,
		lister: namespaces.Lister(), synced: namespaces.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
		log: log.With("controller", "namespace"), now: now,
		RetryAfter: time.Second,
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	_, _ = namespaces.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "namespace", c.queue, workers, c.syncOrWait,
		controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "namespace"}, c.synced)
}

// syncOrWait checks again after RetryAfter, not with backoff, while content
// remains: deletion is progressing, not failing.
func (c *Controller) syncOrWait(ctx context.Context, key string) error {
	err := c.sync(ctx, key)
	if errors.Is(err, errContentRemains) {
		c.queue.AddAfter(key, c.RetryAfter)
		return nil
	}
	return err
}

var errContentRemains = errors.New("content remains")

func hasFinalizer(ns *corev1.Namespace) bool {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return true
		}
	}
	return false
}

func (c *Controller) sync(ctx context.Context, name string) error {
	cached, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cached.DeletionTimestamp == nil || !hasFinalizer(cached) {
		return nil
	}
	// Act on the live object: the cache may lag a namespace recreated
	// under the same name.
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil || !hasFinalizer(ns) {
		return nil
	}
	res := c.deleteContent(ctx, name)
	if err := c.updateConditions(ctx, ns, res); err != nil {
		return err
	}
	if res.discoveryErr != nil || len(res.failed) > 0 || len(res.remaining) > 0 {
		return errContentRemains
	}
	return c.finalize(ctx, ns)
}

// result is what one pass of content deletion found.
type result struct {
	discoveryErr error
	// failed names the resources whose deletion or listing failed.
	failed []string
	// remaining counts objects left per "resource.group".
	remaining map[string]int
	// finalizers counts objects left per finalizer.
	finalizers map[string]int
}

func (c *Controller) deleteContent(ctx context.Context, ns string) result {
	res := result{remaining: map[string]int{}, finalizers: map[string]int{}}
	lists, err := discovery.ServerPreferredNamespacedResources(c.disco)
	if err != nil {
		res.discoveryErr = err
	}
	policy := metav1.DeletePropagationBackground
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			verbs := sets.New(r.Verbs...)
			if strings.Contains(r.Name, "/") || !verbs.HasAll("list", "delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			rc := c.meta.Resource(gvr).Namespace(ns)
			if verbs.Has("deletecollection") {
				if err := rc.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &policy}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
					res.failed = append(res.failed, key(gvr))
					continue
				}
			}
			list, err := rc.List(ctx, metav1.ListOptions{})
			if err != nil {
				if !apierrors.IsNotFound(err) {
					res.failed = append(res.failed, key(gvr))
				}
				continue
			}
			for _, it := range list.Items {
				if it.DeletionTimestamp == nil {
					if err := rc.Delete(ctx, it.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
						res.failed = append(res.failed, key(gvr))
					}
				}
				res.remaining[key(gvr)]++
				for _, f := range it.Finalizers {
					res.finalizers[f]++
				}
			}
		}
	}
	return res
}

// key names a resource as upstream's messages do: "pods." for the core group.
func key(gvr schema.GroupVersionResource) string { return gvr.Resource + "." + gvr.Group }

// Conditions computes the deletion conditions upstream reports for a pass's
// result.
func Conditions(res result, now metav1.Time) []corev1.NamespaceCondition {
	cond := func(t corev1.NamespaceConditionType, bad bool, reasonBad, msgBad, reasonOK, msgOK string) corev1.NamespaceCondition {
		if bad {
			return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: reasonBad, Message: msgBad, LastTransitionTime: now}
		}
		return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: reasonOK, Message: msgOK, LastTransitionTime: now}
	}
	discMsg := ""
	if res.discoveryErr != nil {
		discMsg = "Discovery failed for some groups: " + res.discoveryErr.Error()
	}
	failed := sets.List(sets.New(res.failed...))
	var rem, fins []string
	for k, n := range res.remaining {
		rem = append(rem, fmt.Sprintf("%s has %d resource instances", k, n))
	}
	for k, n := range res.finalizers {
		fins = append(fins, fmt.Sprintf("%s in %d resource instances", k, n))
	}
	sort.Strings(rem)
	sort.Strings(fins)
	return []corev1.NamespaceCondition{
		cond(condDiscovery, res.discoveryErr != nil, "DiscoveryFailed", discMsg, "ResourcesDiscovered", "All resources successfully discovered"),
		cond(condParsing, false, "GroupVersionParsingFailed", "", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
		cond(condContent, len(failed) > 0, "ContentDeletionFailed", fmt.Sprintf("Failed to delete all resource types, %d remaining: %s", len(failed), strings.Join(failed, ", ")),
			"ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
		cond(condRemaining, len(rem) > 0, "SomeResourcesRemain", "Some resources are remaining: "+strings.Join(rem, ", "), "ContentRemoved", "All content successfully removed"),
		cond(condFinalizers, len(fins) > 0, "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+strings.Join(fins, ", "),
			"ContentHasNoFinalizers", "All content-preserving finalizers finished"),
	}
}

// updateConditions writes the conditions when they changed, keeping the
// transition time of those that did not.
func (c *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, res result) error {
	want := Conditions(res, metav1.NewTime(c.now().Truncate(time.Second)))
	changed := false
	next := ns.DeepCopy()
	for _, w := range want {
		found := false
		for i := range next.Status.Conditions {
			cur := &next.Status.Conditions[i]
			if cur.Type != w.Type {
				continue
			}
			found = true
			if cur.Status != w.Status || cur.Reason != w.Reason || cur.Message != w.Message {
				if cur.Status == w.Status {
					w.LastTransitionTime = cur.LastTransitionTime
				}
				*cur = w
				changed = true
			}
		}
		if !found {
			next.Status.Conditions = append(next.Status.Conditions, w)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update namespace %s status: %w", ns.Name, err)
	}
	return nil
}

// finalize removes the kubernetes finalizer; the API server then deletes
// the namespace.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	next, err := c.client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	next = next.DeepCopy()
	var keep []corev1.FinalizerName
	for _, f := range next.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			keep = append(keep, f)
		}
	}
	next.Spec.Finalizers = keep
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
	}
	c.log.Info("namespace emptied and finalized", "namespace", ns.Name)
	return nil
}
