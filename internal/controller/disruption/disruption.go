// Package disruption keeps PodDisruptionBudget status, as upstream's
// disruption controller does: expectedPods (the scale of the pods'
// controllers, or the pod count for an integer minAvailable),
// desiredHealthy, currentHealthy (Ready pods not being deleted and not
// recently evicted), disruptionsAllowed, the DisruptionAllowed condition and
// observedGeneration. The eviction subresource consumes disruptionsAllowed
// and records disruptedPods; this controller drops those records once the
// pod is gone or after DeletionTimeout.
package disruption

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// DeletionTimeout is how long an evicted pod counts as disrupted while it
// still exists.
const DeletionTimeout = 2 * time.Minute

// Controller keeps PDB status.
type Controller struct {
	client kubernetes.Interface
	pdbs   policylisters.PodDisruptionBudgetLister
	pods   corelisters.PodLister
	rcs    corelisters.ReplicationControllerLister
	rss    appslisters.ReplicaSetLister
	deps   appslisters.DeploymentLister
	sts    appslisters.StatefulSetLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	log    *slog.Logger
	now    func() time.Time
}

// New returns the controller over the factory's informers.
func New(f informers.SharedInformerFactory, client kubernetes.Interface, log *slog.Logger, now func() time.Time) *Controller {
	c := &Controller{
		client: client,
		pdbs:   f.Policy().V1().PodDisruptionBudgets().Lister(),
		pods:   f.Core().V1().Pods().Lister(),
		rcs:    f.Core().V1().ReplicationControllers().Lister(),
		rss:    f.Apps().V1().ReplicaSets().Lister(),
		deps:   f.Apps().V1().Deployments().Lister(),
		sts:    f.Apps().V1().StatefulSets().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption"}),
		log: log.With("controller", "disruption"), now: now,
	}
	for _, inf := range []cache.SharedIndexInformer{f.Core().V1().ReplicationControllers().Informer(), f.Apps().V1().ReplicaSets().Informer(),
		f.Apps().V1().Deployments().Informer(), f.Apps().V1().StatefulSets().Informer()} {
		c.synced = append(c.synced, inf.HasSynced)
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { c.namespaceChanged(o) }})
	}
	pdbInf := f.Policy().V1().PodDisruptionBudgets().Informer()
	podInf := f.Core().V1().Pods().Informer()
	c.synced = append(c.synced, pdbInf.HasSynced, podInf.HasSynced)
	enqueue := func(o any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err == nil {
			c.queue.Add(key)
		}
	}
	_, _ = pdbInf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }})
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.podChanged, UpdateFunc: func(_, o any) { c.podChanged(o) }, DeleteFunc: c.podChanged,
	})
	return c
}

// namespaceChanged queues every PDB of the object's namespace (a scale
// changed).
func (c *Controller) namespaceChanged(o any) {
	acc, err := apimeta.Accessor(o)
	if err != nil {
		return
	}
	pdbs, _ := c.pdbs.PodDisruptionBudgets(acc.GetNamespace()).List(labels.Everything())
	for _, p := range pdbs {
		c.queue.Add(p.Namespace + "/" + p.Name)
	}
}

func (c *Controller) podChanged(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	pdbs, _ := c.pdbs.PodDisruptionBudgets(pod.Namespace).List(labels.Everything())
	for _, p := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(pod.Labels)) {
			c.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "disruption", c.queue, workers, c.sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "pdb"}, c.synced...)
}

// scaleOf returns the desired replicas of a pod's controller, keyed by the
// controller's UID, or false when the pod has no known controller.
func (c *Controller) scaleOf(pod *corev1.Pod) (types.UID, int32, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "", 0, false
	}
	ns := pod.Namespace
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.rss.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return "", 0, false
		}
		if dref := metav1.GetControllerOf(rs); dref != nil && dref.Kind == "Deployment" {
			if d, err := c.deps.Deployments(ns).Get(dref.Name); err == nil && d.UID == dref.UID {
				return d.UID, deref(d.Spec.Replicas), true
			}
		}
		return rs.UID, deref(rs.Spec.Replicas), true
	case "StatefulSet":
		s, err := c.sts.StatefulSets(ns).Get(ref.Name)
		if err != nil || s.UID != ref.UID {
			return "", 0, false
		}
		return s.UID, deref(s.Spec.Replicas), true
	case "ReplicationController":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return "", 0, false
		}
		return rc.UID, deref(rc.Spec.Replicas), true
	}
	return "", 0, false
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// Expected computes expectedPods and desiredHealthy of a budget, given the
// number of pods and the total scale of their controllers (ok false when
// some pod has no controller with a scale).
func Expected(spec policyv1.PodDisruptionBudgetSpec, pods int32, scale int32, ok bool) (expected, desired int32, err error) {
	switch {
	case spec.MaxUnavailable != nil:
		if !ok {
			return 0, 0, fmt.Errorf("found no controllers for pods")
		}
		mu, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxUnavailable, int(scale), true)
		if err != nil {
			return 0, 0, err
		}
		return scale, max(0, scale-int32(mu)), nil
	case spec.MinAvailable != nil:
		if spec.MinAvailable.Type == intstr.Int {
			return pods, spec.MinAvailable.IntVal, nil
		}
		if !ok {
			return 0, 0, fmt.Errorf("found no controllers for pods")
		}
		ma, err := intstr.GetScaledValueFromIntOrPercent(spec.MinAvailable, int(scale), true)
		if err != nil {
			return 0, 0, err
		}
		return scale, int32(ma), nil
	}
	return pods, 0, nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return c.write(ctx, pdb, status(pdb, 0, 0, 0, nil, "SyncFailed", err.Error()))
	}
	pods, err := c.pods.Pods(ns).List(sel)
	if err != nil {
		return err
	}
	now := c.now()
	seen := map[types.UID]bool{}
	var scale int32
	ok := true
	live := map[string]*corev1.Pod{}
	for _, p := range pods {
		live[p.Name] = p
		uid, n, found := c.scaleOf(p)
		if !found {
			ok = false
			continue
		}
		if !seen[uid] {
			seen[uid] = true
			scale += n
		}
	}
	disrupted := map[string]metav1.Time{}
	for podName, t := range pdb.Status.DisruptedPods {
		p := live[podName]
		if p == nil || p.DeletionTimestamp != nil || now.Sub(t.Time) > DeletionTimeout {
			continue
		}
		disrupted[podName] = t
	}
	var healthy int32
	for _, p := range pods {
		if p.DeletionTimestamp != nil || !ready(p) {
			continue
		}
		if _, gone := disrupted[p.Name]; gone {
			continue
		}
		healthy++
	}
	expected, desired, err := Expected(pdb.Spec, int32(len(pods)), scale, ok)
	if err != nil {
		return c.write(ctx, pdb, status(pdb, 0, 0, healthy, disrupted, "SyncFailed", err.Error()))
	}
	allowed := healthy - desired
	if expected <= 0 || allowed < 0 {
		allowed = 0
	}
	st := status(pdb, expected, desired, healthy, disrupted, "", "")
	st.DisruptionsAllowed = allowed
	setCondition(&st, pdb, allowed)
	return c.write(ctx, pdb, st)
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func status(pdb *policyv1.PodDisruptionBudget, expected, desired, healthy int32, disrupted map[string]metav1.Time, failReason, failMsg string) policyv1.PodDisruptionBudgetStatus {
	st := policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation, ExpectedPods: expected, DesiredHealthy: desired, CurrentHealthy: healthy,
		DisruptedPods: disrupted, Conditions: append([]metav1.Condition(nil), pdb.Status.Conditions...),
	}
	if len(st.DisruptedPods) == 0 {
		st.DisruptedPods = nil
	}
	if failReason != "" {
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: policyv1.DisruptionAllowedCondition,
			Status: metav1.ConditionFalse, Reason: failReason, Message: failMsg, ObservedGeneration: pdb.Generation})
	}
	return st
}

func setCondition(st *policyv1.PodDisruptionBudgetStatus, pdb *policyv1.PodDisruptionBudget, allowed int32) {
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue,
		Reason: policyv1.SufficientPodsReason, ObservedGeneration: pdb.Generation}
	if allowed <= 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
	}
	apimeta.SetStatusCondition(&st.Conditions, cond)
}

func (c *Controller) write(ctx context.Context, pdb *policyv1.PodDisruptionBudget, st policyv1.PodDisruptionBudgetStatus) error {
	cur := pdb.Status
	if apiequality.Semantic.DeepEqual(cur, st) {
		return nil
	}
	next := pdb.DeepCopy()
	next.Status = st
	if _, err := c.client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update pdb %s/%s status: %w", pdb.Namespace, pdb.Name, err)
	}
	return nil
}
