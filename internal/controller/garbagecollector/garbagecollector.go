package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// ignored are resources the collector does not watch, as upstream.
var ignored = sets.New(
	schema.GroupResource{Resource: "events"},
	schema.GroupResource{Group: "events.k8s.io", Resource: "events"},
)

// Mapper resolves an owner reference's apiVersion and kind to a resource.
type Mapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// resettable is a Mapper that can forget what it discovered.
type resettable interface{ Reset() }

// Controller is the garbage collector.
type Controller struct {
	meta   metadata.Interface
	disco  discovery.DiscoveryInterface
	mapper Mapper
	log    *slog.Logger
	graph  *graph
	queue  workqueue.TypedRateLimitingInterface[types.UID]

	factory metadatainformer.SharedInformerFactory
	mu      sync.Mutex
	watched map[schema.GroupVersionResource]cache.SharedIndexInformer

	// absent remembers owner UIDs confirmed gone: a UID never comes back.
	absentMu sync.Mutex
	absent   map[types.UID]struct{}

	// Resync is how often discovery is repeated to watch new resources.
	Resync time.Duration
}

// New returns a collector using the metadata client for reads and writes,
// disco to find resources and mapper to resolve owner kinds.
func New(metaClient metadata.Interface, disco discovery.DiscoveryInterface, mapper Mapper, log *slog.Logger) *Controller {
	return &Controller{
		meta:    metaClient,
		disco:   disco,
		mapper:  mapper,
		log:     log.With("controller", "garbagecollector"),
		graph:   newGraph(),
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](), workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbagecollector"}),
		factory: metadatainformer.NewSharedInformerFactory(metaClient, 0),
		watched: map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		absent:  map[types.UID]struct{}{},
		Resync:  30 * time.Second,
	}
}

// Run watches every deletable resource, waits for the caches and runs
// workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	defer c.factory.Shutdown()
	if err := c.sync(ctx); err != nil {
		c.log.Warn("discover resources", "err", err)
	}
	c.waitSynced(ctx)
	c.log.Info("started", "resources", c.watchedCount())
	controller.StartWorkers(ctx, c.queue, workers, c.process, controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "uid"})
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := c.sync(ctx); err != nil {
			c.log.Debug("rediscover resources", "err", err)
		}
	}, c.Resync)
}

func (c *Controller) watchedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watched)
}

// waitSynced waits, at most a minute, for every watched resource's cache:
// a resource that cannot be listed must not stop collection of the rest.
func (c *Controller) waitSynced(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c.mu.Lock()
	var synced []cache.InformerSynced
	for _, inf := range c.watched {
		synced = append(synced, inf.HasSynced)
	}
	c.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		c.log.Warn("some resource caches did not sync; collecting anyway")
	}
}

// Resources lists the resources to watch from discovery: those that can be
// listed, watched and deleted.
func Resources(disco discovery.DiscoveryInterface) ([]schema.GroupVersionResource, error) {
	lists, err := discovery.ServerPreferredResources(disco)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, perr := schema.ParseGroupVersion(l.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			verbs := sets.New(r.Verbs...)
			if !verbs.HasAll("list", "watch", "delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			if ignored.Has(gvr.GroupResource()) {
				continue
			}
			out = append(out, gvr)
		}
	}
	return out, err
}

// sync starts watching resources discovery names that are not watched yet.
func (c *Controller) sync(ctx context.Context) error {
	gvrs, err := Resources(c.disco)
	c.mu.Lock()
	added := 0
	for _, gvr := range gvrs {
		if _, ok := c.watched[gvr]; ok {
			continue
		}
		inf := c.factory.ForResource(gvr).Informer()
		// The graph needs owners, finalizers and deletion state, not
		// managedFields (most of a metadata object's size).
		_ = inf.SetTransform(func(obj any) (any, error) {
			if acc, err := meta.Accessor(obj); err == nil {
				acc.SetManagedFields(nil)
			}
			return obj, nil
		})
		if _, herr := inf.AddEventHandler(c.handler(gvr)); herr != nil {
			continue
		}
		c.watched[gvr] = inf
		added++
	}
	c.mu.Unlock()
	if added > 0 {
		if r, ok := c.mapper.(resettable); ok {
			r.Reset()
		}
		c.factory.Start(ctx.Done())
	}
	return err
}

func (c *Controller) handler(gvr schema.GroupVersionResource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(gvr, obj) },
		UpdateFunc: func(_, obj any) { c.observe(gvr, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			acc, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			c.forget(acc.GetUID())
		},
	}
}

func toNode(gvr schema.GroupVersionResource, acc metav1.Object) *node {
	return &node{
		gvr: gvr, namespace: acc.GetNamespace(), name: acc.GetName(), uid: acc.GetUID(),
		owners:     slices.Clone(acc.GetOwnerReferences()),
		finalizers: slices.Clone(acc.GetFinalizers()),
		deleting:   acc.GetDeletionTimestamp() != nil,
	}
}

// observe records an added or updated object and queues what it affects.
func (c *Controller) observe(gvr schema.GroupVersionResource, obj any) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	n := toNode(gvr, acc)
	old := c.graph.upsert(n)
	if n.deletingDependents() || n.orphaning() {
		c.queue.Add(n.uid)
	}
	if len(n.owners) > 0 && (old == nil || !slices.Equal(ownerUIDs(old.owners), ownerUIDs(n.owners))) {
		c.queue.Add(n.uid)
	}
	if old != nil {
		// An owner waiting for this object stops waiting when the
		// reference goes, stops blocking, or the object starts going.
		for _, r := range old.owners {
			nr, still := n.ownerRef(r.UID)
			if !still || blocks(r) != blocks(nr) || (n.deleting && !old.deleting) {
				c.queueIfDeletingDependents(r.UID)
			}
		}
	}
}

// forget drops a deleted object and queues its dependents (their owner is
// gone) and its owners (one may be waiting for it).
func (c *Controller) forget(uid types.UID) {
	old := c.graph.remove(uid)
	for _, d := range c.graph.dependentsOf(uid) {
		c.queue.Add(d.uid)
	}
	if old != nil {
		for _, r := range old.owners {
			c.queueIfDeletingDependents(r.UID)
		}
	}
}

func (c *Controller) queueIfDeletingDependents(uid types.UID) {
	if o := c.graph.get(uid); o != nil && o.deletingDependents() {
		c.queue.Add(uid)
	}
}

func ownerUIDs(refs []metav1.OwnerReference) []types.UID {
	out := make([]types.UID, len(refs))
	for i, r := range refs {
		out[i] = r.UID
	}
	return out
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// process moves one object one step: releasing or deleting its dependents
// when it is being deleted with a finalizer of the collector, or checking
// its owners.
func (c *Controller) process(ctx context.Context, uid types.UID) error {
	n := c.graph.get(uid)
	if n == nil {
		return nil
	}
	switch {
	case n.orphaning():
		return c.orphanDependents(ctx, n)
	case n.deletingDependents():
		return c.deleteDependents(ctx, n)
	case n.deleting:
		return nil
	case len(n.owners) > 0:
		return c.checkOwners(ctx, n)
	}
	return nil
}

// ownerState is what a check found about one owner.
type ownerState int

const (
	ownerSolid   ownerState = iota // exists, not waiting for dependents
	ownerAbsent                    // gone: no object with that UID
	ownerWaiting                   // in foreground deletion
)

// classify finds an owner's state: from the graph when it is there,
// otherwise from a live GET, so that a lagging cache never reports a live
// owner gone.
func (c *Controller) classify(ctx context.Context, dep *node, ref metav1.OwnerReference) (ownerState, error) {
	if o := c.graph.get(ref.UID); o != nil {
		if o.deletingDependents() {
			return ownerWaiting, nil
		}
		return ownerSolid, nil
	}
	c.absentMu.Lock()
	_, gone := c.absent[ref.UID]
	c.absentMu.Unlock()
	if gone {
		return ownerAbsent, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return ownerAbsent, nil
	}
	mapping, err := c.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	if err != nil {
		if r, ok := c.mapper.(resettable); ok {
			r.Reset()
		}
		return ownerSolid, fmt.Errorf("owner %s %s of %s/%s: %w", ref.APIVersion, ref.Kind, dep.namespace, dep.name, err)
	}
	ns := ""
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = dep.namespace
	}
	live, err := c.meta.Resource(mapping.Resource).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.markAbsent(ref.UID)
		return ownerAbsent, nil
	case err != nil:
		return ownerSolid, fmt.Errorf("get owner %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
	case live.UID != ref.UID:
		c.markAbsent(ref.UID)
		return ownerAbsent, nil
	}
	if live.DeletionTimestamp != nil && slices.Contains(live.Finalizers, metav1.FinalizerDeleteDependents) {
		return ownerWaiting, nil
	}
	return ownerSolid, nil
}

func (c *Controller) markAbsent(uid types.UID) {
	c.absentMu.Lock()
	defer c.absentMu.Unlock()
	if len(c.absent) > 10000 {
		clear(c.absent)
	}
	c.absent[uid] = struct{}{}
}

// checkOwners deletes an object none of whose owners remain, or drops the
// references to owners that are gone or waiting while others remain.
func (c *Controller) checkOwners(ctx context.Context, n *node) error {
	var solid, drop []metav1.OwnerReference
	waiting := false
	for _, ref := range n.owners {
		st, err := c.classify(ctx, n, ref)
		if err != nil {
			return err
		}
		switch st {
		case ownerSolid:
			solid = append(solid, ref)
		case ownerWaiting:
			waiting = true
			drop = append(drop, ref)
		case ownerAbsent:
			drop = append(drop, ref)
		}
	}
	switch {
	case len(drop) == 0:
		return nil
	case len(solid) > 0:
		c.log.Debug("removing references to gone owners", "resource", n.gvr.Resource, "namespace", n.namespace, "name", n.name)
		return c.removeOwnerRefs(ctx, n, ownerUIDs(drop))
	}
	policy := metav1.DeletePropagationBackground
	switch {
	case waiting && c.graph.hasDependents(n.uid):
		policy = metav1.DeletePropagationForeground
	case n.has(metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case n.has(metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	c.log.Info("deleting object whose owners are gone", "resource", n.gvr.Resource, "namespace", n.namespace, "name", n.name, "propagation", policy)
	return c.deleteObject(ctx, n, policy)
}

func (c *Controller) deleteObject(ctx context.Context, n *node, policy metav1.DeletionPropagation) error {
	uid := n.uid
	err := c.meta.Resource(n.gvr).Namespace(n.namespace).Delete(ctx, n.name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &policy,
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or a new object took the name.
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %s/%s: %w", n.gvr.Resource, n.namespace, n.name, err)
	}
	return nil
}

// deleteDependents moves a foreground deletion on: dependents are queued
// for their owner check (which deletes them), and the owner's finalizer
// goes once nothing blocks it.
func (c *Controller) deleteDependents(ctx context.Context, owner *node) error {
	blocking := 0
	for _, d := range c.graph.dependentsOf(owner.uid) {
		if r, ok := d.ownerRef(owner.uid); ok && blocks(r) {
			blocking++
		}
		if !d.deleting {
			c.queue.Add(d.uid)
		}
	}
	if blocking > 0 {
		return nil
	}
	c.log.Info("dependents deleted, removing foreground finalizer", "resource", owner.gvr.Resource, "namespace", owner.namespace, "name", owner.name)
	return c.removeFinalizer(ctx, owner, metav1.FinalizerDeleteDependents)
}

// orphanDependents removes the owner's reference from every dependent,
// then the orphan finalizer.
func (c *Controller) orphanDependents(ctx context.Context, owner *node) error {
	var errs []error
	for _, d := range c.graph.dependentsOf(owner.uid) {
		if err := c.removeOwnerRefs(ctx, d, []types.UID{owner.uid}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.log.Info("dependents orphaned, removing orphan finalizer", "resource", owner.gvr.Resource, "namespace", owner.namespace, "name", owner.name)
	return c.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents)
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// RemoveRefsPatch is a JSON patch removing the owner references with the
// given UIDs from refs, each guarded by a test of its UID so that a patch
// computed from a stale view fails instead of removing the wrong entry.
func RemoveRefsPatch(refs []metav1.OwnerReference, uids []types.UID) []byte {
	var ops []patchOp
	for i := len(refs) - 1; i >= 0; i-- {
		if !slices.Contains(uids, refs[i].UID) {
			continue
		}
		p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
		ops = append(ops, patchOp{Op: "test", Path: p + "/uid", Value: string(refs[i].UID)}, patchOp{Op: "remove", Path: p})
	}
	if ops == nil {
		return nil
	}
	b, _ := json.Marshal(ops)
	return b
}

func (c *Controller) removeOwnerRefs(ctx context.Context, n *node, uids []types.UID) error {
	patch := RemoveRefsPatch(n.owners, uids)
	if patch == nil {
		return nil
	}
	_, err := c.meta.Resource(n.gvr).Namespace(n.namespace).Patch(ctx, n.name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove owner references from %s %s/%s: %w", n.gvr.Resource, n.namespace, n.name, err)
	}
	return nil
}

func (c *Controller) removeFinalizer(ctx context.Context, n *node, finalizer string) error {
	i := slices.Index(n.finalizers, finalizer)
	if i < 0 {
		return nil
	}
	p := fmt.Sprintf("/metadata/finalizers/%d", i)
	patch, _ := json.Marshal([]patchOp{{Op: "test", Path: p, Value: finalizer}, {Op: "remove", Path: p}})
	_, err := c.meta.Resource(n.gvr).Namespace(n.namespace).Patch(ctx, n.name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove finalizer %s from %s %s/%s: %w", finalizer, n.gvr.Resource, n.namespace, n.name, err)
	}
	return nil
}
