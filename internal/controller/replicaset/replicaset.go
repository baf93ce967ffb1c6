package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/controller"
)

// BurstReplicas is the most pods one sync creates or deletes, as upstream's
// --concurrent-... burstReplicas default.
const BurstReplicas = 500

// Controller keeps ReplicaSets' (or ReplicationControllers') pods at their
// desired count.
type Controller struct {
	kind       ownerKind
	client     kubernetes.Interface
	podLister  corelisters.PodLister
	podIndex   cache.Indexer // with podOwnerIndex when it could be added
	podSynced  cache.InformerSynced
	podControl controller.PodControl
	queue      workqueue.TypedRateLimitingInterface[string]
	// exp counts outstanding creations and deletions per owner key (and
	// expires them, so a lost event cannot wedge an owner); deleting holds
	// the uids of the pods being deleted, so that a pod seen both
	// terminating and gone, or deleted by someone else, is counted once and
	// only when it was ours to delete.
	exp      *controller.Expectations
	deleting *controller.UIDSet
	burst    int
	clock    clock.PassiveClock
	log      *slog.Logger
}

// New returns the replicaset controller. clk may be nil (the real clock).
func New(rsInformer appsinformers.ReplicaSetInformer, podInformer coreinformers.PodInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.PassiveClock) *Controller {
	return newController(replicaSetKind(rsInformer, client), podInformer, client, recorder, log, clk, "replicaset")
}

// NewForReplicationControllers returns the replicationcontroller
// controller: the same logic over core/v1 ReplicationControllers.
func NewForReplicationControllers(rcInformer coreinformers.ReplicationControllerInformer, podInformer coreinformers.PodInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.PassiveClock) *Controller {
	return newController(replicationControllerKind(rcInformer, client), podInformer, client, recorder, log, clk, "replicationcontroller")
}

func newController(kind ownerKind, podInformer coreinformers.PodInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.PassiveClock, name string) *Controller {
	if log == nil {
		log = slog.Default()
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	c := &Controller{
		kind:       kind,
		client:     client,
		podLister:  podInformer.Lister(),
		podIndex:   podInformer.Informer().GetIndexer(),
		podSynced:  podInformer.Informer().HasSynced,
		podControl: controller.PodControl{Client: client, Recorder: recorder},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		exp:      controller.NewExpectations(clk.Now),
		deleting: controller.NewUIDSet(),
		burst:    BurstReplicas,
		clock:    clk,
		log:      log.With("controller", name),
	}
	// Index pods by controller so that a sync looks at its own pods and
	// the namespace's orphans, not every pod in the namespace. Another
	// controller may have added the same index on the shared informer.
	if _, ok := c.podIndex.GetIndexers()[podOwnerIndex]; !ok {
		_ = podInformer.Informer().AddIndexers(cache.Indexers{podOwnerIndex: podOwnerIndexFunc})
	}
	_, _ = kind.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: c.updateOwner,
		DeleteFunc: c.deleteOwner,
	})
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run waits for the caches and runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.kind.gvk.Kind, c.queue, workers, c.sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelWarn}, c.kind.informer.HasSynced, c.podSynced)
}

// ---- event handlers: they only enqueue and record observations ----

func (c *Controller) enqueueOwner(obj any) {
	if rs := c.kind.asReplicaSet(obj); rs != nil {
		c.queue.Add(controller.KeyFunc(rs))
	}
}

func (c *Controller) updateOwner(oldObj, curObj any) {
	old, cur := c.kind.asReplicaSet(oldObj), c.kind.asReplicaSet(curObj)
	if old == nil || cur == nil {
		return
	}
	if old.UID != cur.UID {
		// Deleted and recreated under the same name between two events.
		c.deleteOwner(cache.DeletedFinalStateUnknown{Key: controller.KeyFunc(old), Obj: oldObj})
	}
	c.queue.Add(controller.KeyFunc(cur))
}

func (c *Controller) deleteOwner(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs := c.kind.asReplicaSet(obj)
	if rs == nil {
		return
	}
	key := controller.KeyFunc(rs)
	c.exp.Delete(key)
	c.deleting.Delete(key)
	c.queue.Add(key)
}

// resolveControllerRef returns the owner ref points to, when it is of this
// controller's kind and still the same object.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != c.kind.gvk.Kind || ref.APIVersion != c.kind.gvk.GroupVersion().String() {
		return nil
	}
	rs, _, err := c.kind.get(namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// ownersOfOrphan returns the owners whose selector matches an orphan pod.
func (c *Controller) ownersOfOrphan(pod *corev1.Pod) []*appsv1.ReplicaSet {
	all, err := c.kind.list(pod.Namespace)
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || rs.Spec.Selector == nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, rs)
		}
	}
	return out
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (a restart).
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		rs := c.resolveControllerRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key := controller.KeyFunc(rs)
		c.exp.CreationObserved(key)
		c.queue.Add(key)
		return
	}
	for _, rs := range c.ownersOfOrphan(pod) {
		c.queue.Add(controller.KeyFunc(rs))
	}
}

// statusBatchDelay is how long a sync waits after a pod's status change,
// so that the changes of many pods are counted in one sync.
const statusBatchDelay = 250 * time.Millisecond

func (c *Controller) updatePod(oldObj, curObj any) {
	old, cur := oldObj.(*corev1.Pod), curObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return // a resync
	}
	labelsChanged := !apiequality.Semantic.DeepEqual(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// A graceful deletion: the pod no longer counts, so act now rather
		// than when the kubelet finishes it.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	refChanged := !apiequality.Semantic.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.resolveControllerRef(old.Namespace, oldRef); rs != nil {
			c.queue.Add(controller.KeyFunc(rs))
		}
	}
	if curRef != nil {
		rs := c.resolveControllerRef(cur.Namespace, curRef)
		if rs == nil {
			return
		}
		key := controller.KeyFunc(rs)
		if labelsChanged || refChanged {
			c.queue.Add(key)
		} else {
			// A status change only moves the counts in status. A large
			// ReplicaSet sees thousands of these a second while its pods
			// start, and each sync walks all its pods: gather them.
			c.queue.AddAfter(key, statusBatchDelay)
		}
		// Becoming ready starts the minReadySeconds clock: look again when
		// it runs out, since nothing else will change to wake us.
		if rs.Spec.MinReadySeconds > 0 && !controller.IsPodReady(old) && controller.IsPodReady(cur) {
			c.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.ownersOfOrphan(cur) {
			c.queue.Add(controller.KeyFunc(rs))
		}
	}
}

func (c *Controller) deletePod(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return
	}
	rs := c.resolveControllerRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := controller.KeyFunc(rs)
	if c.deleting.Observed(key, string(pod.UID)) {
		c.exp.DeletionObserved(key)
	}
	c.queue.Add(key)
}

// ---- sync ----

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, orig, err := c.kind.get(namespace, name)
	if apierrors.IsNotFound(err) {
		c.exp.Delete(key)
		c.deleting.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	if rs.Spec.Selector == nil || rs.Spec.Replicas == nil {
		return nil // not valid; the API server does not let this happen
	}
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || selector.Empty() {
		c.log.Warn("invalid selector, not syncing", "key", key, "err", err)
		return nil
	}
	satisfied := c.exp.Satisfied(key)

	all, err := c.candidatePods(rs)
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, rs, selector, controller.FilterActivePods(all))
	if err != nil {
		return err
	}

	var manageErr error
	diff := len(pods) - int(*rs.Spec.Replicas)
	if satisfied && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, key, rs, orig, pods)
	}

	st := calculateStatus(rs, pods, manageErr, diff, c.clock.Now())
	if !apiequality.Semantic.DeepEqual(st, rs.Status) {
		if err := c.kind.updateStatus(ctx, orig, st); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			if manageErr == nil {
				return fmt.Errorf("update status of %s %s: %w", c.kind.gvk.Kind, key, err)
			}
		}
	}
	if manageErr == nil && rs.Spec.MinReadySeconds > 0 && st.ReadyReplicas != st.AvailableReplicas {
		c.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second)
	}
	return manageErr
}

func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	cl := &controller.Claimer{
		Owner:    rs,
		OwnerRef: *metav1.NewControllerRef(rs, c.kind.gvk),
		Selector: selector,
		CanAdopt: controller.RecheckOwner(rs, func(ctx context.Context) (metav1.Object, error) {
			return c.kind.getLive(ctx, rs.Namespace, rs.Name)
		}),
		Patch: func(ctx context.Context, ns, name string, patch []byte) error {
			_, err := c.client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	}
	objs := make([]metav1.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	claimed, err := cl.Claim(ctx, objs)
	out := make([]*corev1.Pod, len(claimed))
	for i, o := range claimed {
		out[i] = o.(*corev1.Pod)
	}
	return out, err
}

// manageReplicas creates or deletes pods to move toward spec.replicas, at
// most c.burst of them.
func (c *Controller) manageReplicas(ctx context.Context, key string, rs *appsv1.ReplicaSet, orig runtime.Object, pods []*corev1.Pod) error {
	diff := len(pods) - int(*rs.Spec.Replicas)
	switch {
	case diff < 0:
		n := min(-diff, c.burst)
		c.exp.ExpectCreations(key, n)
		ref := metav1.NewControllerRef(rs, c.kind.gvk)
		c.log.Info("creating pods", "key", key, "count", n, "want", *rs.Spec.Replicas, "have", len(pods))
		ok, err := slowStartBatch(n, 1, func() error {
			pod := controller.PodFromTemplate(&rs.Spec.Template, rs, ref)
			_, err := c.podControl.CreatePod(ctx, pod, orig)
			if err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				// Every further creation would fail the same way; the
				// namespace is going, so this is not a failure to retry.
				c.exp.CreationObserved(key)
				return nil
			}
			return err
		})
		if skipped := n - ok; skipped > 0 {
			c.exp.LowerCreations(key, skipped)
		}
		if err != nil {
			return fmt.Errorf("create pods for %s %s: %w", c.kind.gvk.Kind, key, err)
		}
	case diff > 0:
		n := min(diff, c.burst)
		victims := podsToDelete(pods, n)
		uids := make([]string, len(victims))
		for i, p := range victims {
			uids[i] = string(p.UID)
		}
		c.deleting.Delete(key) // uids left from an expired round
		c.deleting.Add(key, uids...)
		c.exp.ExpectDeletions(key, len(victims))
		c.log.Info("deleting pods", "key", key, "count", n, "want", *rs.Spec.Replicas, "have", len(pods))
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.podControl.DeletePod(ctx, p.Namespace, p.Name, orig); err != nil {
					if c.deleting.Observed(key, string(p.UID)) {
						c.exp.DeletionObserved(key)
					}
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err, ok := <-errs; ok {
			return fmt.Errorf("delete pods of %s %s: %w", c.kind.gvk.Kind, key, err)
		}
	}
	return nil
}

// podsToDelete returns the n pods to delete first.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.Sort(controller.PodsForDeletion(sorted))
	return sorted[:min(n, len(sorted))]
}

// podOwnerIndex indexes pods by their controller's uid, orphans by
// "orphan/<namespace>".
const podOwnerIndex = "skiff.controller.uid"

func podOwnerIndexFunc(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return []string{"orphan/" + p.Namespace}, nil
}

// candidatePods returns the pods rs may own: those it controls and the
// namespace's orphans (all pods of the namespace without the index).
func (c *Controller) candidatePods(rs *appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	if _, ok := c.podIndex.GetIndexers()[podOwnerIndex]; !ok {
		return c.podLister.Pods(rs.Namespace).List(labels.Everything())
	}
	var out []*corev1.Pod
	for _, key := range []string{string(rs.UID), "orphan/" + rs.Namespace} {
		objs, err := c.podIndex.ByIndex(podOwnerIndex, key)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok && p.Namespace == rs.Namespace {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
