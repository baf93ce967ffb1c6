// Package nodelifecycle watches node heartbeats, as upstream's node
// lifecycle controller does.
//
// A node's heartbeat is its Lease in kube-node-lease (renewTime) or its
// Ready condition's lastHeartbeatTime. The controller records, on its own
// clock, when either last changed (so clock skew between nodes does not
// matter). A node silent for longer than the grace period (the startup grace
// period when it never reported Ready) gets Ready, MemoryPressure,
// DiskPressure and PIDPressure set to Unknown, and its pods' Ready
// condition set to False. Taints follow the conditions: not-ready or
// unreachable with NoSchedule and NoExecute, NoSchedule for pressure and
// spec.unschedulable; they go when the condition clears.
//
// The taint manager in the same package evicts pods from nodes with
// NoExecute taints: at once when a pod does not tolerate a taint, or when
// the shortest tolerationSeconds has passed.
package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coordinformers "k8s.io/client-go/informers/coordination/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// LeaseNamespace holds node heartbeats.
const LeaseNamespace = corev1.NamespaceNodeLease

// nodeNameIndex indexes pods by spec.nodeName.
const nodeNameIndex = "skiff-nodelifecycle-nodename"

// Config holds the timings.
type Config struct {
	MonitorPeriod      time.Duration // how often every node is checked (5s)
	GracePeriod        time.Duration // silence before NotReady (50s)
	StartupGracePeriod time.Duration // for nodes that never reported Ready (60s)
}

// health is what the controller remembers of a node's heartbeats.
type health struct {
	lease     time.Time // lease renewTime last seen
	heartbeat time.Time // Ready lastHeartbeatTime last seen
	probe     time.Time // local time either last changed
}

// Controller is the node lifecycle controller and its taint manager.
type Controller struct {
	cfg      Config
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordlisters.LeaseLister
	pods     corelisters.PodLister
	podIndex cache.Indexer
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time

	nodeQueue workqueue.TypedRateLimitingInterface[string]
	podQueue  workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	health map[string]*health
}

// New returns the controller; it adds a nodeName index to the pod informer.
func New(nodes coreinformers.NodeInformer, leases coordinformers.LeaseInformer, pods coreinformers.PodInformer,
	client kubernetes.Interface, cfg Config, recorder record.EventRecorder, log *slog.Logger, now func() time.Time) (*Controller, error) {
	if err := pods.Informer().AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("pod index: %w", err)
	}
	c := &Controller{
		cfg: cfg, client: client,
		nodes: nodes.Lister(), leases: leases.Lister(), pods: pods.Lister(), podIndex: pods.Informer().GetIndexer(),
		synced:   []cache.InformerSynced{nodes.Informer().HasSynced, leases.Informer().HasSynced, pods.Informer().HasSynced},
		recorder: recorder, log: log.With("controller", "nodelifecycle"), now: now,
		nodeQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodelifecycle"}),
		podQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "taint-eviction"}),
		health: map[string]*health{},
	}
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.nodeQueue.Add(obj.(*corev1.Node).Name) },
		UpdateFunc: func(old, obj any) {
			n := obj.(*corev1.Node)
			c.nodeQueue.Add(n.Name)
			if !sameNoExecute(old.(*corev1.Node).Spec.Taints, n.Spec.Taints) {
				c.queuePodsOn(n.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				c.mu.Lock()
				delete(c.health, n.Name)
				c.mu.Unlock()
			}
		},
	})
	_, _ = leases.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.leaseChanged(obj) },
		UpdateFunc: func(_, obj any) { c.leaseChanged(obj) },
	})
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.queuePod(obj) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*corev1.Pod), obj.(*corev1.Pod)
			if o.Spec.NodeName != n.Spec.NodeName || len(o.Spec.Tolerations) != len(n.Spec.Tolerations) {
				c.queuePod(obj)
			}
		},
	})
	return c, nil
}

func (c *Controller) leaseChanged(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if ok && l.Namespace == LeaseNamespace {
		c.nodeQueue.Add(l.Name)
	}
}

func (c *Controller) queuePod(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
		if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
			c.podQueue.Add(key)
		}
	}
}

func (c *Controller) queuePodsOn(node string) {
	objs, err := c.podIndex.ByIndex(nodeNameIndex, node)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.queuePod(o)
	}
}

func sameNoExecute(a, b []corev1.Taint) bool {
	count := func(ts []corev1.Taint) map[string]int {
		m := map[string]int{}
		for _, t := range ts {
			if t.Effect == corev1.TaintEffectNoExecute {
				m[t.Key+"="+t.Value]++
			}
		}
		return m
	}
	ca, cb := count(a), count(b)
	if len(ca) != len(cb) {
		return false
	}
	for k, v := range ca {
		if cb[k] != v {
			return false
		}
	}
	return true
}

// Run checks every node each MonitorPeriod and runs the workers of both
// queues until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.nodeQueue.ShutDown()
	defer c.podQueue.ShutDown()
	if !cache.WaitForNamedCacheSync("nodelifecycle", ctx.Done(), c.synced...) {
		return
	}
	log := controller.SyncLog{Logger: c.log, Level: slog.LevelDebug}
	controller.StartWorkers(ctx, c.nodeQueue, workers, c.syncNode, log)
	controller.StartWorkers(ctx, c.podQueue, workers, c.syncPod, log)
	wait.UntilWithContext(ctx, func(context.Context) {
		nodes, err := c.nodes.List(labels.Everything())
		if err != nil {
			return
		}
		for _, n := range nodes {
			c.nodeQueue.Add(n.Name)
		}
	}, c.cfg.MonitorPeriod)
}

// observe updates a node's heartbeat record and returns the local time of
// its last heartbeat.
func (c *Controller) observe(node *corev1.Node) time.Time {
	var lease, beat time.Time
	if l, err := c.leases.Leases(LeaseNamespace).Get(node.Name); err == nil && l.Spec.RenewTime != nil {
		lease = l.Spec.RenewTime.Time
	}
	if r := condition(node, corev1.NodeReady); r != nil {
		beat = r.LastHeartbeatTime.Time
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[node.Name]
	if h == nil {
		h = &health{lease: lease, heartbeat: beat, probe: now}
		c.health[node.Name] = h
	}
	if !lease.Equal(h.lease) || !beat.Equal(h.heartbeat) {
		h.lease, h.heartbeat, h.probe = lease, beat, now
	}
	return h.probe
}

// syncNode checks one node's heartbeat, marks it Unknown when silent too
// long, and makes its taints follow its conditions.
func (c *Controller) syncNode(ctx context.Context, name string) error {
	cached, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Most syncs are a renewed Lease that changes nothing: copy the node
	// only when it is about to be changed.
	node := cached
	probe := c.observe(node)
	grace := c.cfg.GracePeriod
	ready := condition(node, corev1.NodeReady)
	if ready == nil {
		grace = c.cfg.StartupGracePeriod
	}
	wasReady := ready != nil && ready.Status == corev1.ConditionTrue
	now := c.now()
	if now.Sub(probe) > grace {
		node = cached.DeepCopy()
		if MarkUnknown(&node.Status, metav1.NewTime(now.Truncate(time.Second))) {
			updated, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			if err != nil {
				return fmt.Errorf("mark node %s unknown: %w", name, err)
			}
			node = updated
			c.log.Info("node stopped posting status", "node", name, "silentFor", now.Sub(probe).Round(time.Second))
			c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", name)
		}
	}
	if r := condition(node, corev1.NodeReady); r != nil && r.Status != corev1.ConditionTrue {
		if wasReady || r.Status == corev1.ConditionUnknown {
			if err := c.markPodsNotReady(ctx, name); err != nil {
				return err
			}
		}
	}
	taints, changed := ReconcileTaints(node.Spec.Taints, WantTaints(node), metav1.NewTime(now.Truncate(time.Second)))
	if !changed {
		return nil
	}
	if node == cached {
		node = cached.DeepCopy()
	}
	node.Spec.Taints = taints
	if _, err := c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update taints of node %s: %w", name, err)
	}
	c.log.Info("node taints updated", "node", name, "taints", taintString(taints))
	return nil
}

func taintString(ts []corev1.Taint) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ","
		}
		s += t.ToString()
	}
	return s
}

func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID}
}

// markPodsNotReady sets the Ready condition of the node's pods to False.
func (c *Controller) markPodsNotReady(ctx context.Context, node string) error {
	objs, err := c.podIndex.ByIndex(nodeNameIndex, node)
	if err != nil {
		return err
	}
	now := metav1.NewTime(c.now().Truncate(time.Second))
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		next := p.DeepCopy()
		changed := false
		for i := range next.Status.Conditions {
			cnd := &next.Status.Conditions[i]
			if cnd.Type == corev1.PodReady && cnd.Status != corev1.ConditionFalse {
				cnd.Status, cnd.LastTransitionTime = corev1.ConditionFalse, now
				changed = true
			}
		}
		if !changed {
			continue
		}
		if _, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("mark pod %s/%s not ready: %w", p.Namespace, p.Name, err)
		}
		c.recorder.Eventf(p, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	}
	return nil
}

// syncPod is the taint manager: evict a pod its node's NoExecute taints no
// longer let stay.
func (c *Controller) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := DecideEviction(pod, node.Spec.Taints, c.now())
	switch {
	case d.Never:
		return nil
	case !d.Now:
		c.podQueue.AddAfter(key, d.After)
		return nil
	}
	return c.evict(ctx, pod)
}

func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	next := pod.DeepCopy()
	now := metav1.NewTime(c.now().Truncate(time.Second))
	cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager",
		Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: now}
	replaced := false
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == cond.Type {
			next.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		next.Status.Conditions = append(next.Status.Conditions, cond)
	}
	if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		c.log.Debug("set DisruptionTarget", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	uid := pod.UID
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.log.Info("evicted pod from tainted node", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	return nil
}
