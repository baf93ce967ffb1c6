// Package podgc deletes pods nobody else will, as upstream's pod garbage
// collector does, every GCPeriod:
//   - terminated pods (Succeeded or Failed) beyond the threshold, oldest
//     first;
//   - pods bound to a node that does not exist, once the node has been
//     missing for the quarantine period and a live GET confirms it (they are
//     marked Failed with a DisruptionTarget condition, then force-deleted);
//   - terminating pods that were never scheduled (force-deleted).
package podgc

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Defaults as upstream.
const (
	GCPeriod   = 20 * time.Second
	Quarantine = 40 * time.Second
)

// Controller is the pod garbage collector.
type Controller struct {
	client    kubernetes.Interface
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	synced    []cache.InformerSynced
	threshold int
	log       *slog.Logger
	now       func() time.Time

	// Period and QuarantineTime default to GCPeriod and Quarantine.
	Period, QuarantineTime time.Duration

	mu      sync.Mutex
	missing map[string]time.Time // node name -> when first seen missing
}

// New returns a pod GC; threshold <= 0 disables the terminated-pod limit.
func New(pods coreinformers.PodInformer, nodes coreinformers.NodeInformer, client kubernetes.Interface, threshold int,
	log *slog.Logger, now func() time.Time) *Controller {
	return &Controller{
		client: client, pods: pods.Lister(), nodes: nodes.Lister(),
		synced:    []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced},
		threshold: threshold, log: log.With("controller", "podgc"), now: now,
		Period: GCPeriod, QuarantineTime: Quarantine,
		missing: map[string]time.Time{},
	}
}

// Run collects every Period until ctx ends.
func (c *Controller) Run(ctx context.Context, _ int) {
	defer utilruntime.HandleCrash()
	if !cache.WaitForNamedCacheSync("podgc", ctx.Done(), c.synced...) {
		return
	}
	wait.UntilWithContext(ctx, c.gc, c.Period)
}

func (c *Controller) gc(ctx context.Context) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return
	}
	c.gcTerminated(ctx, pods)
	c.gcOrphaned(ctx, pods)
	c.gcUnscheduledTerminating(ctx, pods)
}

// TerminatedToDelete returns the terminated pods beyond threshold, oldest
// first.
func TerminatedToDelete(pods []*corev1.Pod, threshold int) []*corev1.Pod {
	if threshold <= 0 {
		return nil
	}
	var term []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			term = append(term, p)
		}
	}
	n := len(term) - threshold
	if n <= 0 {
		return nil
	}
	sort.SliceStable(term, func(i, j int) bool {
		a, b := term[i].CreationTimestamp, term[j].CreationTimestamp
		if a.Equal(&b) {
			return term[i].Name < term[j].Name
		}
		return a.Before(&b)
	})
	return term[:n]
}

func (c *Controller) gcTerminated(ctx context.Context, pods []*corev1.Pod) {
	del := TerminatedToDelete(pods, c.threshold)
	if len(del) == 0 {
		return
	}
	c.log.Info("deleting terminated pods over the threshold", "count", len(del), "threshold", c.threshold)
	for _, p := range del {
		c.forceDelete(ctx, p, nil)
	}
}

func (c *Controller) gcOrphaned(ctx context.Context, pods []*corev1.Pod) {
	now := c.now()
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	c.mu.Lock()
	for name := range c.missing {
		if _, err := c.nodes.Get(name); err == nil || byNode[name] == nil {
			delete(c.missing, name)
		}
	}
	var gone []string
	for name := range byNode {
		if _, err := c.nodes.Get(name); err == nil {
			continue
		}
		first, ok := c.missing[name]
		if !ok {
			c.missing[name] = now
			continue
		}
		if now.Sub(first) >= c.QuarantineTime {
			gone = append(gone, name)
		}
	}
	c.mu.Unlock()
	for _, name := range gone {
		// The cache may lag a node that just registered: ask the server.
		if _, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			continue
		}
		for _, p := range byNode[name] {
			c.log.Info("deleting pod bound to a node that does not exist", "pod", p.Namespace+"/"+p.Name, "node", name)
			c.forceDelete(ctx, p, &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists"})
		}
	}
}

func (c *Controller) gcUnscheduledTerminating(ctx context.Context, pods []*corev1.Pod) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			c.log.Info("deleting unscheduled terminating pod", "pod", p.Namespace+"/"+p.Name)
			c.forceDelete(ctx, p, nil)
		}
	}
}

// forceDelete deletes a pod with no grace period; with cond, it first marks
// a non-terminal pod Failed with that condition, as upstream does.
func (c *Controller) forceDelete(ctx context.Context, p *corev1.Pod, cond *corev1.PodCondition) {
	if cond != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		next := p.DeepCopy()
		next.Status.Phase = corev1.PodFailed
		cond.LastTransitionTime = metav1.NewTime(c.now().Truncate(time.Second))
		replaced := false
		for i := range next.Status.Conditions {
			if next.Status.Conditions[i].Type == cond.Type {
				next.Status.Conditions[i], replaced = *cond, true
			}
		}
		if !replaced {
			next.Status.Conditions = append(next.Status.Conditions, *cond)
		}
		if _, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			c.log.Debug("mark pod failed", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
	}
	uid := p.UID
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		c.log.Warn("delete pod", "pod", p.Namespace+"/"+p.Name, "err", err)
	}
}
