package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Item is one stored object as the cache keeps it.
type Item struct {
	Key       string // etcd key
	Namespace string
	Name      string
	RV        int64
	// Data is the object's JSON with metadata.resourceVersion set. It is
	// shared: never modify it.
	Data   []byte
	Labels labels.Set
	Fields fields.Set

	proto derived
}

// derived is an encoding computed from Data once, on first use.
type derived struct {
	once  sync.Once
	data  []byte
	err   error
	ready atomic.Bool // data is set and err is nil
}

// Proto returns the item's protobuf encoding, computing it with encode on
// first use and keeping it with the item: an object sent to many watchers,
// or listed by many clients, is encoded once. encode must be a pure
// function of Data (every caller must pass the same one).
func (it *Item) Proto(encode func(data []byte) ([]byte, error)) ([]byte, error) {
	it.proto.once.Do(func() {
		it.proto.data, it.proto.err = encode(it.Data)
		it.proto.ready.Store(it.proto.err == nil)
	})
	return it.proto.data, it.proto.err
}

// readyProto returns the protobuf encoding if one was made already.
func (it *Item) readyProto() []byte {
	if it.proto.ready.Load() {
		return it.proto.data
	}
	return nil
}

// protoUnmarshaler is what every built-in API type implements.
type protoUnmarshaler interface {
	Unmarshal(data []byte) error
}

// Event is a change delivered to a watcher.
type Event struct {
	Type watch.EventType
	// Item is the object after the change (for Deleted, the last state,
	// carrying the deletion's resourceVersion). Nil for bookmarks.
	Item *Item
	// RV is the resourceVersion of the event; for bookmarks the revision
	// the watcher has seen everything up to.
	RV int64
	// InitialEventsEnd marks the bookmark that ends the initial events of a
	// watch with sendInitialEvents=true.
	InitialEventsEnd bool
}

type change struct {
	rv        int64
	cur, prev *Item // cur nil on delete; prev nil on create
	gone      *Item // on delete: the last state at the deletion revision
}

// Resource is the store of one resource. Its methods are safe for
// concurrent use.
type Resource struct {
	s      *Store
	cfg    ResourceConfig
	prefix string

	mu       sync.RWMutex
	items    map[string]*Item
	lastRV   int64     // revision of the newest change applied
	startRV  int64     // every change after startRV is in events
	events   []*change // ring buffer
	head, n  int
	watchers map[*Watcher]struct{}
}

// Config returns the configuration the resource was registered with.
func (r *Resource) Config() ResourceConfig { return r.cfg }

// Key returns the etcd key of an object.
func (r *Resource) Key(namespace, name string) string {
	if r.cfg.Namespaced {
		return r.prefix + namespace + "/" + name
	}
	return r.prefix + name
}

func (r *Resource) nsPrefix(namespace string) string {
	if r.cfg.Namespaced && namespace != "" {
		return r.prefix + namespace + "/"
	}
	return r.prefix
}

// Decode returns a fresh typed object from an item.
func (r *Resource) Decode(it *Item) (runtime.Object, error) {
	// From the protobuf encoding when a client already asked for one: it
	// decodes several times faster than JSON, and every write decodes the
	// current object.
	if pb := it.readyProto(); pb != nil {
		obj := r.cfg.New()
		if u, ok := obj.(protoUnmarshaler); ok && u.Unmarshal(pb) == nil {
			obj.GetObjectKind().SetGroupVersionKind(r.cfg.GVK)
			return obj, nil
		}
	}
	obj := r.cfg.New()
	if err := json.Unmarshal(it.Data, obj); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decode %s: %w", it.Key, err))
	}
	return obj, nil
}

// itemFromKV builds an item from a stored value seen at revision rv.
func (r *Resource) itemFromKV(key, value []byte, rv int64) (*Item, error) {
	data := withResourceVersion(value, rv)
	obj := r.cfg.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	it := &Item{Key: string(key), Namespace: acc.GetNamespace(), Name: acc.GetName(), RV: rv, Data: data}
	if r.cfg.Attrs != nil {
		it.Labels, it.Fields = r.cfg.Attrs(obj)
	} else {
		it.Labels = acc.GetLabels()
		it.Fields = fields.Set{"metadata.name": it.Name}
		if r.cfg.Namespaced {
			it.Fields["metadata.namespace"] = it.Namespace
		}
	}
	return it, nil
}

// withResourceVersion splices metadata.resourceVersion into an encoding
// that has none (the store never writes one), sparing a decode and encode.
func withResourceVersion(data []byte, rv int64) []byte {
	const marker = `"metadata":{`
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		return data
	}
	i += len(marker)
	field := `"resourceVersion":"` + strconv.FormatInt(rv, 10) + `"`
	out := make([]byte, 0, len(data)+len(field)+1)
	out = append(out, data[:i]...)
	out = append(out, field...)
	if i < len(data) && data[i] != '}' {
		out = append(out, ',')
	}
	return append(out, data[i:]...)
}

func (r *Resource) encode(obj runtime.Object) ([]byte, metav1.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.cfg.GVK)
	acc.SetResourceVersion("")
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("encode: %w", err))
	}
	return data, acc, nil
}

// Create stores a new object and returns it with its resourceVersion set.
// With dryRun everything but the write happens.
func (r *Resource) Create(ctx context.Context, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	data, acc, err := r.encode(obj)
	if err != nil {
		return nil, err
	}
	key := r.Key(acc.GetNamespace(), acc.GetName())
	if dryRun {
		resp, err := r.s.client.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			return nil, etcdError(err)
		}
		if resp.Count > 0 {
			return nil, apierrors.NewAlreadyExists(r.cfg.GroupResource, acc.GetName())
		}
		return obj, nil
	}
	resp, err := r.s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, etcdError(err)
	}
	if !resp.Succeeded {
		return nil, apierrors.NewAlreadyExists(r.cfg.GroupResource, acc.GetName())
	}
	acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
	return obj, nil
}

// Get returns one object. resourceVersion "" reads etcd; any other value
// reads the cache once it is at least that new.
func (r *Resource) Get(ctx context.Context, namespace, name, resourceVersion string) (*Item, error) {
	key := r.Key(namespace, name)
	if resourceVersion != "" {
		rv, err := parseRV(resourceVersion)
		if err != nil {
			return nil, err
		}
		if err := r.s.waitFor(ctx, rv); err != nil {
			return nil, err
		}
		r.mu.RLock()
		it := r.items[key]
		r.mu.RUnlock()
		if it == nil {
			return nil, apierrors.NewNotFound(r.cfg.GroupResource, name)
		}
		return it, nil
	}
	resp, err := r.s.client.Get(ctx, key)
	if err != nil {
		return nil, etcdError(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, apierrors.NewNotFound(r.cfg.GroupResource, name)
	}
	kv := resp.Kvs[0]
	return &Item{Key: key, Namespace: namespace, Name: name, RV: kv.ModRevision, Data: withResourceVersion(kv.Value, kv.ModRevision)}, nil
}

// GetObject is Get followed by Decode.
func (r *Resource) GetObject(ctx context.Context, namespace, name, resourceVersion string) (runtime.Object, error) {
	it, err := r.Get(ctx, namespace, name, resourceVersion)
	if err != nil {
		return nil, err
	}
	return r.Decode(it)
}

// UpdateFunc computes the new state of an object from its current one.
// cur is nil when the object does not exist and creation is allowed. It may
// modify cur and return it.
type UpdateFunc func(cur runtime.Object) (runtime.Object, error)

// UpdateOptions tune GuaranteedUpdate.
type UpdateOptions struct {
	DryRun bool
	// AllowCreate lets the update create a missing object (update with
	// create-on-update semantics, server-side apply).
	AllowCreate bool
}

// GuaranteedUpdate reads the object, applies update and writes the result
// only if nobody wrote in between, retrying with the fresh state otherwise.
// An update that changes nothing writes nothing and keeps the
// resourceVersion. Conflicts returned by update are retried once against
// etcd when the state came from the cache, so a lagging cache never makes a
// precondition fail.
func (r *Resource) GuaranteedUpdate(ctx context.Context, namespace, name string, opts UpdateOptions, update UpdateFunc) (runtime.Object, error) {
	key := r.Key(namespace, name)
	r.mu.RLock()
	cur := r.items[key]
	r.mu.RUnlock()
	fromCache := cur != nil
	if cur == nil {
		var err error
		if cur, err = r.fetch(ctx, key); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 100 {
			return nil, apierrors.NewConflict(r.cfg.GroupResource, name, fmt.Errorf("too many concurrent updates"))
		}
		if cur == nil && !opts.AllowCreate {
			return nil, apierrors.NewNotFound(r.cfg.GroupResource, name)
		}
		var in runtime.Object
		if cur != nil {
			var err error
			if in, err = r.Decode(cur); err != nil {
				return nil, err
			}
		}
		out, err := update(in)
		if err != nil {
			if fromCache && apierrors.IsConflict(err) {
				fromCache = false
				if cur, err = r.fetch(ctx, key); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		data, acc, err := r.encode(out)
		if err != nil {
			return nil, err
		}
		if acc.GetName() != name || (r.cfg.Namespaced && acc.GetNamespace() != namespace) {
			return nil, apierrors.NewBadRequest("the name or namespace of the object does not match the request")
		}
		if cur == nil {
			if opts.DryRun {
				return out, nil
			}
			resp, err := r.s.client.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(data))).
				Else(clientv3.OpGet(key)).
				Commit()
			if err != nil {
				return nil, etcdError(err)
			}
			if resp.Succeeded {
				acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
				return out, nil
			}
			cur = itemFromTxnGet(key, namespace, name, resp)
			fromCache = false
			continue
		}
		if bytes.Equal(withResourceVersion(data, cur.RV), cur.Data) || opts.DryRun {
			acc.SetResourceVersion(strconv.FormatInt(cur.RV, 10))
			return out, nil
		}
		resp, err := r.s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.RV)).
			Then(clientv3.OpPut(key, string(data))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, etcdError(err)
		}
		if resp.Succeeded {
			acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			return out, nil
		}
		cur = itemFromTxnGet(key, namespace, name, resp)
		fromCache = false
	}
}

// Delete removes an object after check approves its current state (for
// preconditions). It returns the deleted object.
func (r *Resource) Delete(ctx context.Context, namespace, name string, dryRun bool, check func(cur runtime.Object) error) (runtime.Object, error) {
	key := r.Key(namespace, name)
	r.mu.RLock()
	cur := r.items[key]
	r.mu.RUnlock()
	fromCache := cur != nil
	if cur == nil {
		var err error
		if cur, err = r.fetch(ctx, key); err != nil {
			return nil, err
		}
	}
	for attempt := 0; attempt < 100; attempt++ {
		if cur == nil {
			return nil, apierrors.NewNotFound(r.cfg.GroupResource, name)
		}
		obj, err := r.Decode(cur)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(obj); err != nil {
				if fromCache && apierrors.IsConflict(err) {
					fromCache = false
					if cur, err = r.fetch(ctx, key); err != nil {
						return nil, err
					}
					continue
				}
				return nil, err
			}
		}
		if dryRun {
			return obj, nil
		}
		resp, err := r.s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.RV)).
			Then(clientv3.OpDelete(key)).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, etcdError(err)
		}
		if resp.Succeeded {
			return obj, nil
		}
		cur = itemFromTxnGet(key, namespace, name, resp)
		fromCache = false
	}
	return nil, apierrors.NewConflict(r.cfg.GroupResource, name, fmt.Errorf("too many concurrent updates"))
}

func (r *Resource) fetch(ctx context.Context, key string) (*Item, error) {
	resp, err := r.s.client.Get(ctx, key)
	if err != nil {
		return nil, etcdError(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	return &Item{Key: key, RV: kv.ModRevision, Data: withResourceVersion(kv.Value, kv.ModRevision)}, nil
}

func itemFromTxnGet(key, namespace, name string, resp *clientv3.TxnResponse) *Item {
	if len(resp.Responses) == 0 {
		return nil
	}
	rr := resp.Responses[0].GetResponseRange()
	if rr == nil || len(rr.Kvs) == 0 {
		return nil
	}
	kv := rr.Kvs[0]
	return &Item{Key: key, Namespace: namespace, Name: name, RV: kv.ModRevision, Data: withResourceVersion(kv.Value, kv.ModRevision)}
}

func parseRV(s string) (int64, error) {
	rv, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rv < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", s))
	}
	return rv, nil
}

// cache maintenance, called by the Store's watch loop.

func (r *Resource) reset(items map[string]*Item, rv int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = items
	r.lastRV = rv
	r.startRV = rv
	r.head, r.n = 0, 0
	clear(r.events)
}

func (r *Resource) apply(it *Item, deleted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.items[it.Key]
	c := &change{rv: it.RV, prev: prev}
	if deleted {
		delete(r.items, it.Key)
		c.gone = it
		if prev == nil {
			c.prev = it
		}
	} else {
		r.items[it.Key] = it
		c.cur = it
	}
	r.push(c)
	for w := range r.watchers {
		if ev, ok := w.filter.translate(c); ok {
			r.send(w, ev)
		}
	}
}

func (r *Resource) applyDelete(key string, rv int64) {
	r.mu.RLock()
	prev := r.items[key]
	r.mu.RUnlock()
	if prev == nil {
		return
	}
	// A new item: the deleted object's last state at the deletion's
	// revision (its derived encodings are made anew for that revision).
	it := &Item{Key: prev.Key, Namespace: prev.Namespace, Name: prev.Name, RV: rv,
		Data: withResourceVersion(stripResourceVersion(prev.Data), rv), Labels: prev.Labels, Fields: prev.Fields}
	r.apply(it, true)
}

func (r *Resource) push(c *change) {
	size := len(r.events)
	if r.n == size {
		old := r.events[r.head]
		r.startRV = old.rv
		r.events[r.head] = c
		r.head = (r.head + 1) % size
	} else {
		r.events[(r.head+r.n)%size] = c
		r.n++
	}
	r.lastRV = c.rv
}

// changesAfter returns the retained changes newer than rv, oldest first.
func (r *Resource) changesAfter(rv int64) []*change {
	var out []*change
	size := len(r.events)
	for i := 0; i < r.n; i++ {
		c := r.events[(r.head+i)%size]
		if c.rv > rv {
			out = append(out, c)
		}
	}
	return out
}

func (r *Resource) bookmark(rv int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rv = max(rv, r.lastRV)
	for w := range r.watchers {
		if w.bookmarks {
			r.send(w, Event{Type: watch.Bookmark, RV: rv})
		}
	}
}

// send delivers an event without blocking; a watcher too slow to keep up is
// ended, and its client resumes from the last resourceVersion it saw.
func (r *Resource) send(w *Watcher, ev Event) {
	select {
	case w.ch <- ev:
	default:
		r.s.log.Info("ending slow watcher", "resource", r.cfg.GroupResource.String())
		delete(r.watchers, w)
		close(w.ch)
	}
}

func (r *Resource) stopWatchers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.watchers {
		delete(r.watchers, w)
		close(w.ch)
	}
}

// snapshotRV is the revision the cache of this resource is complete up to.
// Callers hold r.mu.
func (r *Resource) snapshotRV() int64 {
	return max(r.s.rv.Load(), r.lastRV)
}

func stripResourceVersion(data []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return data
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
	}
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

// sortedItems returns the items under prefix that match f, sorted by key.
// Callers hold r.mu.
func (r *Resource) sortedItems(prefix string, f filter) []*Item {
	out := make([]*Item, 0, len(r.items))
	for k, it := range r.items {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix && f.match(it) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *Item) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// filter selects the objects a list or watch wants.
type filter struct {
	namespace string
	label     labels.Selector
	field     fields.Selector
}

func (f filter) match(it *Item) bool {
	if f.namespace != "" && it.Namespace != f.namespace {
		return false
	}
	if f.label != nil && !f.label.Empty() && !f.label.Matches(it.Labels) {
		return false
	}
	if f.field != nil && !f.field.Empty() && !f.field.Matches(it.Fields) {
		return false
	}
	return true
}

func (f filter) empty() bool {
	return (f.label == nil || f.label.Empty()) && (f.field == nil || f.field.Empty())
}

// translate turns a change into the event a filtered watcher sees: an object
// that starts matching is Added, one that stops matching is Deleted.
func (f filter) translate(c *change) (Event, bool) {
	curMatch := c.cur != nil && f.match(c.cur)
	prevMatch := c.prev != nil && f.match(c.prev)
	switch {
	case c.cur == nil && prevMatch:
		return Event{Type: watch.Deleted, Item: c.gone, RV: c.rv}, true
	case c.cur == nil:
		return Event{}, false
	case curMatch && prevMatch:
		return Event{Type: watch.Modified, Item: c.cur, RV: c.rv}, true
	case curMatch:
		return Event{Type: watch.Added, Item: c.cur, RV: c.rv}, true
	case prevMatch:
		return Event{Type: watch.Deleted, Item: c.cur, RV: c.rv}, true
	}
	return Event{}, false
}

// ListOptions select and page a list or a watch.
type ListOptions struct {
	Namespace            string
	Label                labels.Selector
	Field                fields.Selector
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
	// Watch only.
	SendInitialEvents *bool
	AllowBookmarks    bool
}

func (o ListOptions) filter() filter {
	return filter{namespace: o.Namespace, label: o.Label, field: o.Field}
}
