package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

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
	// Proto is the object's protobuf message (Kubernetes' wire encoding,
	// without the envelope) with metadata.resourceVersion set. It is
	// shared: never modify it.
	Proto []byte

	// attrs are the labels and selectable fields lists and watches filter
	// on. An item read from etcd gets them on first use (from lazy): most
	// objects are never filtered on, and a start on a full data dir need
	// not decode every object before it serves.
	attrs     sync.Once
	lazy      *Resource
	labelSet  labels.Set
	fieldVals fieldValues

	json derived
}

// Labels returns the object's labels.
func (it *Item) Labels() labels.Set {
	it.fillAttrs()
	return it.labelSet
}

// Fields returns the object's selectable fields.
func (it *Item) Fields() fields.Fields {
	it.fillAttrs()
	return it.fieldVals
}

// fillAttrs computes a lazy item's labels and fields, once. An object that
// cannot be decoded has none (it matches no selector), with a warning; a
// GET of it fails as it did before the cache held it lazily.
func (it *Item) fillAttrs() {
	it.attrs.Do(func() {
		r := it.lazy
		if r == nil {
			return
		}
		obj, err := r.Decode(it)
		if err != nil {
			r.s.log.Warn("cached object undecodable", "key", it.Key, "err", err)
			return
		}
		it.labelSet, it.fieldVals = r.attrsOf(obj, it.Name, it.Namespace)
		it.lazy = nil
	})
}

// withAttrs returns an item whose labels and fields are already known.
func withAttrs(it *Item, l labels.Set, f fieldValues) *Item {
	it.labelSet, it.fieldVals = l, f
	it.attrs.Do(func() {})
	return it
}

// derived is an encoding computed from Proto once, on first use.
type derived struct {
	once sync.Once
	data []byte
	err  error
}

// protoMessage is what every built-in API type implements.
type protoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal(data []byte) error
}

// protoMagic starts Kubernetes' protobuf envelope, as stored in etcd.
const protoMagic = "k8s\x00"

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
	keys     fieldKeys // shared by the items' Fields
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
	obj := r.cfg.New()
	m, ok := obj.(protoMessage)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("%T has no protobuf encoding", obj))
	}
	if err := m.Unmarshal(it.Proto); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decode %s: %w", it.Key, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(r.cfg.GVK)
	return obj, nil
}

// JSON returns the item's JSON encoding, made on first use and kept with
// the item: an object sent to many JSON watchers is encoded once.
func (r *Resource) JSON(it *Item) ([]byte, error) {
	it.json.once.Do(func() { it.json.data, it.json.err = r.EncodeJSON(it) })
	return it.json.data, it.json.err
}

// EncodeJSON returns the item's JSON encoding without keeping it, for
// one-off uses such as a large list.
func (r *Resource) EncodeJSON(it *Item) ([]byte, error) {
	obj, err := r.Decode(it)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("encode %s: %w", it.Key, err))
	}
	return data, nil
}

// itemFromKV builds an item from a stored value seen at revision rv. The
// value is Kubernetes' protobuf envelope, or JSON as older Skiff releases
// wrote it. The protobuf message is used as stored, with the revision
// spliced in as its resourceVersion (see spliceRV), and the labels and
// fields wait for their first use; anything else is decoded and encoded
// again.
func (r *Resource) itemFromKV(key, value []byte, rv int64) (*Item, error) {
	if raw, ok := envelopedRaw(value); ok {
		if pb, name, ns, ok := spliceRV(raw, strconv.FormatInt(rv, 10)); ok {
			return &Item{Key: string(key), Namespace: ns, Name: name, RV: rv, Proto: pb, lazy: r}, nil
		}
	}
	obj := r.cfg.New()
	if err := r.decodeValue(value, obj); err != nil {
		return nil, err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	acc.SetResourceVersion(strconv.FormatInt(rv, 10))
	pb, err := obj.(protoMessage).Marshal()
	if err != nil {
		return nil, err
	}
	it := &Item{Key: string(key), Namespace: acc.GetNamespace(), Name: acc.GetName(), RV: rv, Proto: pb}
	l, f := r.attrsOf(obj, it.Name, it.Namespace)
	return withAttrs(it, l, f), nil
}

// attrsOf computes an object's labels and selectable fields.
func (r *Resource) attrsOf(obj runtime.Object, name, namespace string) (labels.Set, fieldValues) {
	var l labels.Set
	var set fields.Set
	if r.cfg.Attrs != nil {
		l, set = r.cfg.Attrs(obj)
	} else {
		if acc, err := meta.Accessor(obj); err == nil {
			l = acc.GetLabels()
		}
		set = fields.Set{"metadata.name": name}
		if r.cfg.Namespaced {
			set["metadata.namespace"] = namespace
		}
	}
	return l, r.keys.values(set)
}

// decodeValue decodes a stored value into obj.
func (r *Resource) decodeValue(value []byte, obj runtime.Object) error {
	if !bytes.HasPrefix(value, []byte(protoMagic)) {
		return json.Unmarshal(value, obj)
	}
	var u runtime.Unknown
	if err := u.Unmarshal(value[len(protoMagic):]); err != nil {
		return err
	}
	m, ok := obj.(protoMessage)
	if !ok {
		return fmt.Errorf("%T has no protobuf encoding", obj)
	}
	return m.Unmarshal(u.Raw)
}

// encode returns what the store writes for obj: its protobuf message in
// Kubernetes' envelope (the kind named, as upstream stores objects), with
// no resourceVersion (the etcd revision is the resourceVersion).
func (r *Resource) encode(obj runtime.Object) ([]byte, metav1.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.cfg.GVK)
	acc.SetResourceVersion("")
	m, ok := obj.(protoMessage)
	if !ok {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("%T has no protobuf encoding", obj))
	}
	raw, err := m.Marshal()
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("encode: %w", err))
	}
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: r.cfg.GVK.GroupVersion().String(), Kind: r.cfg.GVK.Kind}, Raw: raw}
	env, err := u.Marshal()
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("encode: %w", err))
	}
	return append([]byte(protoMagic), env...), acc, nil
}

// messageWithRV returns the message of obj, which encode made data of,
// with resourceVersion rv: spliced into data's, or encoded again.
func messageWithRV(data []byte, obj runtime.Object, acc metav1.Object, rv int64) ([]byte, error) {
	if raw, ok := envelopedRaw(data); ok {
		if pb, _, _, ok := spliceRV(raw, strconv.FormatInt(rv, 10)); ok {
			return pb, nil
		}
	}
	return withRV(obj, acc, rv)
}

// withRV returns obj's message with resourceVersion rv, leaving obj's own
// resourceVersion as it was.
func withRV(obj runtime.Object, acc metav1.Object, rv int64) ([]byte, error) {
	old := acc.GetResourceVersion()
	acc.SetResourceVersion(strconv.FormatInt(rv, 10))
	defer acc.SetResourceVersion(old)
	return obj.(protoMessage).Marshal()
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
	it, err := r.itemFromKV(kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decode %s: %w", key, err))
	}
	return it, nil
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
			if cur, err = r.itemFromTxnGet(resp); err != nil {
				return nil, err
			}
			fromCache = false
			continue
		}
		same := opts.DryRun
		if !same {
			pb, err := messageWithRV(data, out, acc, cur.RV)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			same = bytes.Equal(pb, cur.Proto)
		}
		if same {
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
		if cur, err = r.itemFromTxnGet(resp); err != nil {
			return nil, err
		}
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
		if cur, err = r.itemFromTxnGet(resp); err != nil {
			return nil, err
		}
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
	it, err := r.itemFromKV(kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decode %s: %w", key, err))
	}
	return it, nil
}

// itemFromTxnGet is the current state a failed compare-and-swap read back,
// or nil when the object is gone.
func (r *Resource) itemFromTxnGet(resp *clientv3.TxnResponse) (*Item, error) {
	if len(resp.Responses) == 0 {
		return nil, nil
	}
	rr := resp.Responses[0].GetResponseRange()
	if rr == nil || len(rr.Kvs) == 0 {
		return nil, nil
	}
	kv := rr.Kvs[0]
	it, err := r.itemFromKV(kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decode %s: %w", kv.Key, err))
	}
	return it, nil
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
	// revision.
	if pb, _, _, ok := spliceRV(prev.Proto, strconv.FormatInt(rv, 10)); ok {
		r.apply(&Item{Key: prev.Key, Namespace: prev.Namespace, Name: prev.Name, RV: rv, Proto: pb, lazy: r}, true)
		return
	}
	obj, err := r.Decode(prev)
	if err != nil {
		r.s.log.Warn("deleted object undecodable", "key", key, "err", err)
		return
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	pb, err := withRV(obj, acc, rv)
	if err != nil {
		return
	}
	r.apply(withAttrs(&Item{Key: prev.Key, Namespace: prev.Namespace, Name: prev.Name, RV: rv, Proto: pb}, prev.Labels(), prev.fieldVals), true)
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
	if f.label != nil && !f.label.Empty() && !f.label.Matches(it.Labels()) {
		return false
	}
	if f.field != nil && !f.field.Empty() && !f.field.Matches(it.Fields()) {
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
