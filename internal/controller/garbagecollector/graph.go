package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// node is what the collector knows of one object: its identity, its owners
// and whether it is being deleted.
type node struct {
	gvr        schema.GroupVersionResource
	namespace  string
	name       string
	uid        types.UID
	owners     []metav1.OwnerReference
	finalizers []string
	deleting   bool
}

func (n *node) has(finalizer string) bool { return slices.Contains(n.finalizers, finalizer) }

// deletingDependents reports an owner in foreground deletion.
func (n *node) deletingDependents() bool {
	return n.deleting && n.has(metav1.FinalizerDeleteDependents)
}

// orphaning reports an owner whose dependents must be released.
func (n *node) orphaning() bool {
	return n.deleting && n.has(metav1.FinalizerOrphanDependents)
}

func (n *node) ownerRef(owner types.UID) (metav1.OwnerReference, bool) {
	for _, r := range n.owners {
		if r.UID == owner {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}

// graph is the ownership graph: every object the collector watches, and for
// every owner UID (seen or not) the UIDs that name it as an owner.
type graph struct {
	mu         sync.RWMutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]struct{}
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]struct{}{}}
}

// get returns a copy of the node for uid.
func (g *graph) get(uid types.UID) *node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	c := *n
	return &c
}

// upsert records n and returns the previous state (nil when new).
func (g *graph) upsert(n *node) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[n.uid]
	if old != nil {
		for _, r := range old.owners {
			g.unlink(r.UID, n.uid)
		}
	}
	for _, r := range n.owners {
		deps := g.dependents[r.UID]
		if deps == nil {
			deps = map[types.UID]struct{}{}
			g.dependents[r.UID] = deps
		}
		deps[n.uid] = struct{}{}
	}
	g.nodes[n.uid] = n
	return old
}

// remove forgets uid and returns what was known of it.
func (g *graph) remove(uid types.UID) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[uid]
	if old == nil {
		return nil
	}
	for _, r := range old.owners {
		g.unlink(r.UID, uid)
	}
	delete(g.nodes, uid)
	return old
}

func (g *graph) unlink(owner, dep types.UID) {
	deps := g.dependents[owner]
	delete(deps, dep)
	if len(deps) == 0 {
		delete(g.dependents, owner)
	}
}

// dependentsOf returns copies of the known dependents of owner.
func (g *graph) dependentsOf(owner types.UID) []*node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*node, 0, len(g.dependents[owner]))
	for uid := range g.dependents[owner] {
		if n := g.nodes[uid]; n != nil {
			c := *n
			out = append(out, &c)
		}
	}
	return out
}

func (g *graph) hasDependents(owner types.UID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.dependents[owner]) > 0
}
