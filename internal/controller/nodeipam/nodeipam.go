// Package nodeipam gives every node a podCIDR from the cluster CIDR, as
// upstream's range allocator does. Allocation state lives only in the
// nodes' spec.podCIDR fields: at start the controller rebuilds it from the
// existing nodes, so it survives restarts; a deleted node's subnet is
// released.
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Controller allocates node podCIDRs.
type Controller struct {
	client   kubernetes.Interface
	lister   corelisters.NodeLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger

	mu   sync.Mutex
	set  *CIDRSet
	mine map[string]*net.IPNet // node name -> subnet it holds (allocated or observed)
}

// New returns a node IPAM controller for clusterCIDR split in /maskSize.
func New(nodes coreinformers.NodeInformer, client kubernetes.Interface, clusterCIDR string, maskSize int,
	recorder record.EventRecorder, log *slog.Logger) (*Controller, error) {
	_, cidr, err := net.ParseCIDR(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
	}
	set, err := NewCIDRSet(cidr, maskSize)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		client: client, lister: nodes.Lister(), synced: nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"}),
		recorder: recorder, log: log.With("controller", "nodeipam"),
		set: set, mine: map[string]*net.IPNet{},
	}
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.queue.Add(obj.(*corev1.Node).Name) },
		UpdateFunc: func(_, obj any) { c.queue.Add(obj.(*corev1.Node).Name) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				c.queue.Add(n.Name)
			}
		},
	})
	return c, nil
}

// Run rebuilds the allocation from existing nodes, then allocates for new
// ones until ctx ends. Allocation is serial: one worker.
func (c *Controller) Run(ctx context.Context, _ int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync("nodeipam", ctx.Done(), c.synced) {
		return
	}
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		c.log.Error("list nodes", "err", err)
		return
	}
	c.mu.Lock()
	for _, n := range nodes {
		c.observe(n)
	}
	c.mu.Unlock()
	controller.StartWorkers(ctx, c.queue, 1, c.sync, controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "node"})
	<-ctx.Done()
}

// observe records the subnet a node holds; c.mu is held.
func (c *Controller) observe(n *corev1.Node) bool {
	if n.Spec.PodCIDR == "" {
		return false
	}
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return true
	}
	if old := c.mine[n.Name]; old != nil && old.String() != cidr.String() {
		c.set.Release(old)
	}
	if err := c.set.Occupy(cidr); err != nil {
		c.log.Warn("node podCIDR outside the cluster CIDR", "node", n.Name, "podCIDR", n.Spec.PodCIDR)
		return true
	}
	c.mine[n.Name] = cidr
	return true
}

func (c *Controller) sync(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		if cidr := c.mine[name]; cidr != nil {
			c.set.Release(cidr)
			delete(c.mine, name)
			c.log.Info("released podCIDR of deleted node", "node", name, "podCIDR", cidr.String())
		}
		return nil
	}
	if err != nil {
		return err
	}
	if c.observe(node) {
		return nil
	}
	if cidr := c.mine[name]; cidr != nil {
		// Allocated a moment ago; the cache has not seen it yet.
		return c.patch(ctx, node, cidr)
	}
	cidr, err := c.set.Allocate()
	if err != nil {
		c.recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)},
			corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
		return fmt.Errorf("allocate podCIDR for node %s: %w", name, err)
	}
	c.mine[name] = cidr
	if err := c.patch(ctx, node, cidr); err != nil {
		c.set.Release(cidr)
		delete(c.mine, name)
		return err
	}
	c.log.Info("assigned podCIDR", "node", name, "podCIDR", cidr.String())
	return nil
}

func (c *Controller) patch(ctx context.Context, node *corev1.Node, cidr *net.IPNet) error {
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": node.UID},
		"spec":     map[string]any{"podCIDR": cidr.String(), "podCIDRs": []string{cidr.String()}},
	})
	_, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("set podCIDR of node %s: %w", node.Name, err)
	}
	return nil
}
