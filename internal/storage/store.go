package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// AttrFunc returns the labels and selectable fields of an object.
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set)

// ResourceConfig describes one resource to the store.
type ResourceConfig struct {
	GroupResource schema.GroupResource
	// GVK is what objects are stored as; it is set on every object written.
	GVK        schema.GroupVersionKind
	Namespaced bool
	New        func() runtime.Object
	Attrs      AttrFunc
}

// Options configures a Store.
type Options struct {
	// Prefix of every key, default "/registry/".
	Prefix string
	// History is the number of events per resource kept for watch
	// resumption, default 10000: enough for an informer that fell behind
	// during a burst (a 10,000-replica rollout is 30,000 pod events) to
	// resume instead of listing everything again.
	History int
	// CompactInterval is how often old etcd revisions are compacted, default
	// 5 minutes; each compaction keeps one interval of history.
	CompactInterval time.Duration
	Logger          *slog.Logger
}

// Store is the object store. See the package documentation.
type Store struct {
	client  *clientv3.Client
	prefix  string
	history int
	compact time.Duration
	log     *slog.Logger

	resources map[string]*Resource // by key prefix, e.g. "/registry/apps/deployments/"

	// rv is the etcd revision up to which every cache is complete.
	rv       atomic.Int64
	progress sync.Mutex
	advanced chan struct{} // closed and replaced whenever rv advances

	ready     chan struct{}
	readyOnce sync.Once
	watchCtx  context.Context // the context the etcd watch runs under, for RequestProgress
	watchMu   sync.Mutex
}

// New returns a store over client. Register resources, then Run it.
func New(client *clientv3.Client, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "/registry/"
	}
	if opts.History <= 0 {
		opts.History = 10000
	}
	if opts.CompactInterval <= 0 {
		opts.CompactInterval = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Store{
		client:    client,
		prefix:    opts.Prefix,
		history:   opts.History,
		compact:   opts.CompactInterval,
		log:       opts.Logger,
		resources: map[string]*Resource{},
		advanced:  make(chan struct{}),
		ready:     make(chan struct{}),
	}
}

// Register adds a resource. It must be called before Run.
func (s *Store) Register(cfg ResourceConfig) *Resource {
	p := s.prefix
	if cfg.GroupResource.Group != "" {
		p += cfg.GroupResource.Group + "/"
	}
	p += cfg.GroupResource.Resource + "/"
	r := &Resource{
		s:        s,
		cfg:      cfg,
		prefix:   p,
		items:    map[string]*Item{},
		events:   make([]*change, s.history),
		watchers: map[*Watcher]struct{}{},
	}
	s.resources[p] = r
	return r
}

// Ready is closed once the caches are filled.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Revision returns the revision the caches are complete up to.
func (s *Store) Revision() int64 { return s.rv.Load() }

// Client returns the etcd client the store writes through.
func (s *Store) Client() *clientv3.Client { return s.client }

// Run fills the caches and keeps them current until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	go s.compactLoop(ctx)
	for {
		rev, err := s.fill(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fill watch cache: %w", err)
		}
		s.readyOnce.Do(func() { close(s.ready) })
		err = s.watch(ctx, rev)
		if ctx.Err() != nil {
			s.stopAllWatchers()
			return nil
		}
		// The etcd watch broke (typically compacted while we lagged): start
		// again from a fresh list. Watchers are ended so that clients
		// re-list, as upstream does when its cacher restarts.
		s.log.Warn("watch cache restarting", "err", err)
		s.stopAllWatchers()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fill lists every key under the prefix at one revision and rebuilds each
// cache from it.
func (s *Store) fill(ctx context.Context) (int64, error) {
	const page = 5000
	fresh := map[*Resource]map[string]*Item{}
	for _, r := range s.resources {
		fresh[r] = map[string]*Item{}
	}
	key := s.prefix
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, key, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		// Reading every object (its resourceVersion spliced in; objects
		// stored otherwise than protobuf decoded) dominates a start on a
		// full data dir: spread it over the cores.
		items := make([]*Item, len(resp.Kvs))
		owners := make([]*Resource, len(resp.Kvs))
		workers := min(goruntime.GOMAXPROCS(0), len(resp.Kvs))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(resp.Kvs); i += workers {
					kv := resp.Kvs[i]
					r := s.resourceFor(string(kv.Key))
					if r == nil {
						continue
					}
					it, err := r.itemFromKV(kv.Key, kv.Value, kv.ModRevision)
					if err != nil {
						s.log.Warn("skipping undecodable object", "key", string(kv.Key), "err", err)
						continue
					}
					items[i], owners[i] = it, r
				}
			}()
		}
		wg.Wait()
		for i, it := range items {
			if it != nil {
				fresh[owners[i]][it.Key] = it
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for r, items := range fresh {
		r.reset(items, rev)
	}
	s.advance(rev)
	return rev, nil
}

func (s *Store) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	s.watchMu.Lock()
	s.watchCtx = wctx
	s.watchMu.Unlock()
	// No WithPrevKV: etcd would read every changed key's previous value
	// back from its backend to send it along, and only a deletion needs
	// it, which the cache holds (it has applied every change before).
	wch := s.client.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1),
		clientv3.WithProgressNotify())
	bookmarks := time.NewTicker(bookmarkInterval)
	defer bookmarks.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bookmarks.C:
			for _, r := range s.resources {
				r.bookmark(s.rv.Load())
			}
		case resp, ok := <-wch:
			if !ok {
				return errors.New("etcd watch channel closed")
			}
			if err := resp.Err(); err != nil {
				return err
			}
			last := int64(0)
			for _, ev := range resp.Events {
				s.dispatch(ev)
				last = ev.Kv.ModRevision
			}
			if resp.IsProgressNotify() {
				last = resp.Header.Revision
			}
			if last > 0 {
				s.advance(last)
			}
		}
	}
}

const bookmarkInterval = 30 * time.Second

func (s *Store) dispatch(ev *clientv3.Event) {
	r := s.resourceFor(string(ev.Kv.Key))
	if r == nil {
		return
	}
	rev := ev.Kv.ModRevision
	switch ev.Type {
	case mvccpb.PUT:
		it, err := r.itemFromKV(ev.Kv.Key, ev.Kv.Value, rev)
		if err != nil {
			s.log.Warn("skipping undecodable object", "key", string(ev.Kv.Key), "err", err)
			return
		}
		r.apply(it, false)
	case mvccpb.DELETE:
		// The deleted object is the previous state at the deletion
		// revision: the cached one, unless etcd sent it along.
		if ev.PrevKv == nil {
			r.applyDelete(string(ev.Kv.Key), rev)
			return
		}
		it, err := r.itemFromKV(ev.PrevKv.Key, ev.PrevKv.Value, rev)
		if err != nil {
			r.applyDelete(string(ev.Kv.Key), rev)
			return
		}
		r.apply(it, true)
	}
}

func (s *Store) resourceFor(key string) *Resource {
	if !strings.HasPrefix(key, s.prefix) {
		return nil
	}
	rest := key[len(s.prefix):]
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return nil
	}
	if r, ok := s.resources[s.prefix+rest[:i+1]]; ok {
		return r
	}
	j := strings.IndexByte(rest[i+1:], '/')
	if j < 0 {
		return nil
	}
	return s.resources[s.prefix+rest[:i+1+j+1]]
}

func (s *Store) advance(rev int64) {
	s.progress.Lock()
	defer s.progress.Unlock()
	if rev <= s.rv.Load() {
		return
	}
	s.rv.Store(rev)
	close(s.advanced)
	s.advanced = make(chan struct{})
}

func (s *Store) advancedChan() chan struct{} {
	s.progress.Lock()
	defer s.progress.Unlock()
	return s.advanced
}

// waitFor blocks until the caches are complete up to rev.
func (s *Store) waitFor(ctx context.Context, rev int64) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	nudge := time.NewTimer(50 * time.Millisecond)
	defer nudge.Stop()
	for {
		ch := s.advancedChan()
		if s.rv.Load() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-nudge.C:
			// Revisions can advance through keys the cache does not see; ask
			// etcd to tell the watch how far it is.
			s.watchMu.Lock()
			wctx := s.watchCtx
			s.watchMu.Unlock()
			if wctx != nil {
				_ = s.client.RequestProgress(wctx)
			}
			nudge.Reset(250 * time.Millisecond)
		case <-deadline.C:
			return tooLargeResourceVersion(rev, s.rv.Load())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// currentRevision asks etcd for its current revision with a linearizable read.
func (s *Store) currentRevision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.prefix+"\x00rev", clientv3.WithCountOnly())
	if err != nil {
		return 0, etcdError(err)
	}
	return resp.Header.Revision, nil
}

func (s *Store) stopAllWatchers() {
	for _, r := range s.resources {
		r.stopWatchers()
	}
}

func (s *Store) compactLoop(ctx context.Context) {
	t := time.NewTicker(s.compact)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := s.rv.Load()
		if prev > 0 && prev < cur {
			if _, err := s.client.Compact(ctx, prev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
				s.log.Warn("etcd compaction failed", "revision", prev, "err", err)
			} else {
				s.log.Debug("compacted etcd", "revision", prev)
			}
		}
		prev = cur
	}
}
