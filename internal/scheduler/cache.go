package scheduler

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Cache keeps a Snapshot current from informer events and from the
// scheduler's own assumptions, incrementally: a node's sums change by one
// pod at a time, never recomputed per decision.
//
// Every method locks; View runs a function on the snapshot under the same
// lock, so a decision never sees a half-applied event.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*NodeInfo // includes nodes not seen yet that have pods
	pos   map[string]int       // index in snap.Nodes of each known node
	snap  Snapshot
	// podNode is the node each counted pod is counted on.
	podNode map[types.UID]string
	assumed map[types.UID]bool
	// nominated is the node each nominated pending pod waits for.
	nominated map[types.UID]string
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		nodes:     map[string]*NodeInfo{},
		pos:       map[string]int{},
		podNode:   map[types.UID]string{},
		assumed:   map[types.UID]bool{},
		nominated: map[types.UID]string{},
		snap: Snapshot{
			NamespaceLabels: map[string]labels.Set{},
			ImageNodes:      map[string]int{},
			Nominated:       map[string][]*PodInfo{},
			journal:         &journal{},
		},
	}
}

// View runs fn with the current snapshot; fn must not keep it.
func (c *Cache) View(fn func(*Snapshot)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.snap)
}

// SetNode adds or updates a node.
func (c *Cache) SetNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodes[node.Name]
	if ni == nil {
		ni = &NodeInfo{}
		c.nodes[node.Name] = ni
	}
	c.countImages(ni, -1)
	ni.SetNode(node)
	c.countImages(ni, 1)
	i, ok := c.pos[node.Name]
	if !ok {
		i = len(c.snap.Nodes)
		c.pos[node.Name] = i
		c.snap.Nodes = append(c.snap.Nodes, ni)
	}
	c.snap.touch(i)
}

func (c *Cache) countImages(ni *NodeInfo, sign int) {
	for img := range ni.images {
		c.snap.ImageNodes[img] += sign
		if c.snap.ImageNodes[img] <= 0 {
			delete(c.snap.ImageNodes, img)
		}
	}
}

// RemoveNode removes a node; pods still bound to it stay counted against
// its name until they are deleted.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodes[name]
	if ni == nil {
		return
	}
	c.countImages(ni, -1)
	if i, ok := c.pos[name]; ok {
		last := len(c.snap.Nodes) - 1
		moved := c.snap.Nodes[last]
		c.snap.Nodes[i] = moved
		c.pos[moved.Node.Name] = i
		c.snap.Nodes[last] = nil
		c.snap.Nodes = c.snap.Nodes[:last]
		delete(c.pos, name)
		c.snap.touch(i)
		if i != last {
			c.snap.touch(last)
		}
	}
	ni.SetNode(nil)
	if len(ni.Pods) == 0 {
		delete(c.nodes, name)
	}
}

// SetPod records a pod bound to a node, as the informer reports it. It
// confirms an assumed pod. Terminal pods hold no resources and are removed.
func (c *Cache) SetPod(pod *v1.Pod) {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		c.RemovePod(pod)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unnominate(pod.UID)
	delete(c.assumed, pod.UID)
	c.removeLocked(pod.UID)
	c.addLocked(pod)
}

// RemovePod forgets a pod (deleted or terminal).
func (c *Cache) RemovePod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unnominate(pod.UID)
	delete(c.assumed, pod.UID)
	c.removeLocked(pod.UID)
}

// Assume counts pod (with spec.nodeName already set to the chosen node)
// before the API server confirms the binding, so the next decision sees it.
func (c *Cache) Assume(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unnominate(pod.UID)
	c.removeLocked(pod.UID)
	c.addLocked(pod)
	c.assumed[pod.UID] = true
}

// Forget drops an assumption whose binding failed.
func (c *Cache) Forget(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.assumed[pod.UID] {
		delete(c.assumed, pod.UID)
		c.removeLocked(pod.UID)
	}
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assumed[uid]
}

// IsCounted reports whether the pod is counted on a node (bound or assumed).
func (c *Cache) IsCounted(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.podNode[uid]
	return ok
}

func (c *Cache) addLocked(pod *v1.Pod) {
	ni := c.nodes[pod.Spec.NodeName]
	if ni == nil {
		ni = &NodeInfo{}
		c.nodes[pod.Spec.NodeName] = ni
	}
	pi := NewPodInfo(pod)
	ni.AddPod(pi)
	c.countAffinity(pi, 1)
	c.podNode[pod.UID] = pod.Spec.NodeName
	c.touchNode(pod.Spec.NodeName)
}

func (c *Cache) countAffinity(pi *PodInfo, sign int) {
	if len(pi.RequiredAntiAffinity) > 0 {
		c.snap.antiPods += sign
	}
	if pi.scoresOthers() {
		c.snap.scoringAffPods += sign
	}
}

// touchNode journals a change to the pods of the named node, when the
// node is in the snapshot.
func (c *Cache) touchNode(name string) {
	if i, ok := c.pos[name]; ok {
		c.snap.touch(i)
	}
}

func (c *Cache) removeLocked(uid types.UID) {
	name, ok := c.podNode[uid]
	if !ok {
		return
	}
	delete(c.podNode, uid)
	ni := c.nodes[name]
	if ni == nil {
		return
	}
	if pi := ni.removePod(uid); pi != nil {
		c.countAffinity(pi, -1)
	}
	c.touchNode(name)
	if ni.Node == nil && len(ni.Pods) == 0 {
		delete(c.nodes, name)
	}
}

// SetNominated records where a pending pod was nominated by preemption
// ("" clears it).
func (c *Cache) SetNominated(pod *v1.Pod, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unnominate(pod.UID)
	if node == "" {
		return
	}
	c.nominated[pod.UID] = node
	c.snap.Nominated[node] = append(c.snap.Nominated[node], NewPodInfo(pod))
}

func (c *Cache) unnominate(uid types.UID) {
	node, ok := c.nominated[uid]
	if !ok {
		return
	}
	delete(c.nominated, uid)
	list := removeUID(c.snap.Nominated[node], uid)
	if len(list) == 0 {
		delete(c.snap.Nominated, node)
	} else {
		c.snap.Nominated[node] = list
	}
}

// SetNamespace records a namespace's labels.
func (c *Cache) SetNamespace(ns *v1.Namespace) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.snap.NamespaceLabels[ns.Name]; !ok || !labels.Equals(old, labels.Set(ns.Labels)) {
		// Affinity terms' namespaceSelector reads these: what was
		// derived from them is stale.
		c.snap.invalidate()
	}
	c.snap.NamespaceLabels[ns.Name] = labels.Set(ns.Labels)
}

// RemoveNamespace forgets a namespace.
func (c *Cache) RemoveNamespace(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.snap.NamespaceLabels[name]; ok {
		c.snap.invalidate()
	}
	delete(c.snap.NamespaceLabels, name)
}
