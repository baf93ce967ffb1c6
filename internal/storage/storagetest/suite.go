// Package storagetest is the behaviour suite every storage backend must
// pass: create/get/update/delete semantics, optimistic concurrency,
// consistent lists and pagination, and watch resumption.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/storage"
)

// Factory returns a fresh, empty, not yet running store; history is the
// number of events kept per resource.
type Factory func(t *testing.T, history int) *storage.Store

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"CreateGet", testCreateGet},
		{"UpdateConflict", testUpdateConflict},
		{"NoopUpdateKeepsVersion", testNoopUpdate},
		{"Delete", testDelete},
		{"ConsistentList", testConsistentList},
		{"PaginationUnderWrites", testPagination},
		{"Selectors", testSelectors},
		{"WatchResume", testWatchResume},
		{"WatchTooOld", testWatchTooOld},
		{"WatchFilterTransitions", testWatchFilter},
		{"RestartKeepsObjects", testRestart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func configMaps(s *storage.Store) *storage.Resource {
	return s.Register(storage.ResourceConfig{
		GroupResource: schema.GroupResource{Resource: "configmaps"},
		GVK:           corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		Namespaced:    true,
		New:           func() runtime.Object { return &corev1.ConfigMap{} },
		Attrs: func(obj runtime.Object) (labels.Set, fields.Set) {
			cm := obj.(*corev1.ConfigMap)
			return cm.Labels, fields.Set{"metadata.name": cm.Name, "metadata.namespace": cm.Namespace, "data.kind": cm.Data["kind"]}
		},
	})
}

// start registers config maps, runs the store and waits until it is ready.
func start(t *testing.T, f Factory, history int) (*storage.Store, *storage.Resource) {
	t.Helper()
	s := f(t, history)
	r := configMaps(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("store did not stop within 10s")
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("store not ready within 10s")
	}
	return s, r
}

func cm(ns, name string, lbls map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls}, Data: data}
}

func mustCreate(t *testing.T, r *storage.Resource, obj runtime.Object) *corev1.ConfigMap {
	t.Helper()
	out, err := r.Create(context.Background(), obj, false)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return out.(*corev1.ConfigMap)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func testCreateGet(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	created := mustCreate(t, r, cm("a", "one", nil, map[string]string{"k": "v"}))
	if created.ResourceVersion == "" || created.ResourceVersion == "0" {
		t.Fatalf("created resourceVersion = %q, want an etcd revision", created.ResourceVersion)
	}
	if _, err := r.Create(ctx(t), cm("a", "one", nil, nil), false); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: got %v, want AlreadyExists", err)
	}
	for _, rv := range []string{"", created.ResourceVersion} {
		obj, err := r.GetObject(ctx(t), "a", "one", rv)
		if err != nil {
			t.Fatalf("get rv=%q: %v", rv, err)
		}
		got := obj.(*corev1.ConfigMap)
		if got.ResourceVersion != created.ResourceVersion || got.Data["k"] != "v" {
			t.Fatalf("get rv=%q: got rv %s data %v, want rv %s data k=v", rv, got.ResourceVersion, got.Data, created.ResourceVersion)
		}
	}
	if _, err := r.Get(ctx(t), "a", "missing", ""); !apierrors.IsNotFound(err) {
		t.Fatalf("get missing: got %v, want NotFound", err)
	}
	if _, err := r.Create(ctx(t), cm("a", "dry", nil, nil), true); err != nil {
		t.Fatalf("dry-run create: %v", err)
	}
	if _, err := r.Get(ctx(t), "a", "dry", ""); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create stored the object: got %v, want NotFound", err)
	}
}

func testUpdateConflict(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	created := mustCreate(t, r, cm("a", "one", nil, map[string]string{"n": "0"}))
	update := func(rv, n string) error {
		_, err := r.GuaranteedUpdate(ctx(t), "a", "one", storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
			c := cur.(*corev1.ConfigMap)
			if rv != "" && c.ResourceVersion != rv {
				return nil, apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "one", errors.New("stale"))
			}
			c.Data["n"] = n
			return c, nil
		})
		return err
	}
	if err := update(created.ResourceVersion, "1"); err != nil {
		t.Fatalf("update at current version: %v", err)
	}
	if err := update(created.ResourceVersion, "2"); !apierrors.IsConflict(err) {
		t.Fatalf("update at stale version: got %v, want Conflict", err)
	}
	// Concurrent increments all land: the store retries on contention.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.GuaranteedUpdate(context.Background(), "a", "one", storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
				c := cur.(*corev1.ConfigMap)
				n, _ := strconv.Atoi(c.Data["n"])
				c.Data["n"] = strconv.Itoa(n + 1)
				return c, nil
			})
			if err != nil {
				t.Errorf("concurrent update: %v", err)
			}
		}()
	}
	wg.Wait()
	obj, err := r.GetObject(ctx(t), "a", "one", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.(*corev1.ConfigMap).Data["n"]; got != "21" {
		t.Fatalf("after 20 concurrent increments of 1: got n=%s, want 21", got)
	}
}

func testNoopUpdate(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	created := mustCreate(t, r, cm("a", "one", nil, map[string]string{"k": "v"}))
	out, err := r.GuaranteedUpdate(ctx(t), "a", "one", storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*corev1.ConfigMap).ResourceVersion; got != created.ResourceVersion {
		t.Fatalf("no-op update: got resourceVersion %s, want unchanged %s", got, created.ResourceVersion)
	}
}

func testDelete(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	mustCreate(t, r, cm("a", "one", nil, nil))
	refused := errors.New("refused")
	if _, err := r.Delete(ctx(t), "a", "one", false, func(runtime.Object) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("delete with failing check: got %v, want the check's error", err)
	}
	if _, err := r.Delete(ctx(t), "a", "one", true, nil); err != nil {
		t.Fatalf("dry-run delete: %v", err)
	}
	if _, err := r.Get(ctx(t), "a", "one", ""); err != nil {
		t.Fatalf("dry-run delete removed the object: %v", err)
	}
	if _, err := r.Delete(ctx(t), "a", "one", false, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := r.Get(ctx(t), "a", "one", ""); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: got %v, want NotFound", err)
	}
	if _, err := r.Delete(ctx(t), "a", "one", false, nil); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: got %v, want NotFound", err)
	}
}

func names(items []*storage.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Namespace+"/"+it.Name)
	}
	return out
}

func testConsistentList(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	for i := 0; i < 5; i++ {
		// A list right after each write must see it: consistent reads.
		mustCreate(t, r, cm("a", fmt.Sprintf("cm-%d", i), nil, nil))
		res, err := r.List(ctx(t), storage.ListOptions{Namespace: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != i+1 {
			t.Fatalf("list after %d creates: got %v", i+1, names(res.Items))
		}
	}
	mustCreate(t, r, cm("b", "other", nil, nil))
	res, err := r.List(ctx(t), storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/cm-0", "a/cm-1", "a/cm-2", "a/cm-3", "a/cm-4", "b/other"}
	if fmt.Sprint(names(res.Items)) != fmt.Sprint(want) {
		t.Fatalf("list all: got %v, want %v (sorted by key)", names(res.Items), want)
	}
}

func testPagination(t *testing.T, f Factory) {
	_, r := start(t, f, 1000)
	for i := 0; i < 40; i++ {
		mustCreate(t, r, cm("p", fmt.Sprintf("cm-%02d", i), nil, nil))
	}
	first, err := r.List(ctx(t), storage.ListOptions{Namespace: "p", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if first.Continue == "" || first.RemainingItemCount == nil || *first.RemainingItemCount != 30 {
		t.Fatalf("first page: continue %q remaining %v, want a token and 30", first.Continue, first.RemainingItemCount)
	}
	got := names(first.Items)
	// Writes between pages must not show up in the pages of this list.
	for i := 0; i < 5; i++ {
		mustCreate(t, r, cm("p", fmt.Sprintf("cm-%02d-new", i), nil, nil))
	}
	if _, err := r.Delete(ctx(t), "p", "cm-35", false, nil); err != nil {
		t.Fatal(err)
	}
	token := first.Continue
	for token != "" {
		page, err := r.List(ctx(t), storage.ListOptions{Namespace: "p", Limit: 10, Continue: token})
		if err != nil {
			t.Fatalf("next page: %v", err)
		}
		if page.ResourceVersion != first.ResourceVersion {
			t.Fatalf("page resourceVersion %d, want the first page's %d", page.ResourceVersion, first.ResourceVersion)
		}
		got = append(got, names(page.Items)...)
		token = page.Continue
	}
	if len(got) != 40 {
		t.Fatalf("paged list saw %d objects, want the 40 that existed at the first page: %v", len(got), got)
	}
	for i, n := range got {
		if want := fmt.Sprintf("p/cm-%02d", i); n != want {
			t.Fatalf("item %d: got %s, want %s", i, n, want)
		}
	}
	if _, err := r.List(ctx(t), storage.ListOptions{Namespace: "p", Limit: 10, Continue: "garbage"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad continue token: got %v, want BadRequest", err)
	}
}

func testSelectors(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	mustCreate(t, r, cm("s", "web-1", map[string]string{"app": "web", "tier": "front"}, map[string]string{"kind": "x"}))
	mustCreate(t, r, cm("s", "web-2", map[string]string{"app": "web"}, map[string]string{"kind": "y"}))
	mustCreate(t, r, cm("s", "db", map[string]string{"app": "db"}, nil))
	tests := []struct {
		label, field string
		want         []string
	}{
		{"app=web", "", []string{"s/web-1", "s/web-2"}},
		{"app in (web,db),tier!=front", "", []string{"s/db", "s/web-2"}},
		{"!tier", "", []string{"s/db", "s/web-2"}},
		{"", "metadata.name=db", []string{"s/db"}},
		{"app=web", "data.kind!=x", []string{"s/web-2"}},
	}
	for _, tc := range tests {
		ls, err := labels.Parse(tc.label)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := fields.ParseSelector(tc.field)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int64{0, 1} {
			var got []string
			opts := storage.ListOptions{Namespace: "s", Label: ls, Field: fs, Limit: limit}
			for {
				res, err := r.List(ctx(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, names(res.Items)...)
				if res.Continue == "" {
					break
				}
				opts.Continue = res.Continue
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("label %q field %q limit %d: got %v, want %v", tc.label, tc.field, limit, got, tc.want)
			}
		}
	}
}

func next(t *testing.T, w *storage.Watcher) storage.Event {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := w.Next(c)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return ev
}

func expect(t *testing.T, w *storage.Watcher, typ watch.EventType, name string) storage.Event {
	t.Helper()
	ev := next(t, w)
	if ev.Type != typ || ev.Item == nil || ev.Item.Name != name {
		got := "<nil>"
		if ev.Item != nil {
			got = ev.Item.Name
		}
		t.Fatalf("watch event: got %s %s, want %s %s", ev.Type, got, typ, name)
	}
	return ev
}

func testWatchResume(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	a := mustCreate(t, r, cm("w", "a", nil, nil))
	mustCreate(t, r, cm("w", "b", nil, nil))
	w, err := r.Watch(ctx(t), storage.ListOptions{Namespace: "w", ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, watch.Added, "b") // replayed: after a's version
	if _, err := r.Delete(ctx(t), "w", "a", false, nil); err != nil {
		t.Fatal(err)
	}
	ev := expect(t, w, watch.Deleted, "a")
	if ev.RV <= mustAtoi(a.ResourceVersion) {
		t.Fatalf("delete event resourceVersion %d, want newer than %s", ev.RV, a.ResourceVersion)
	}

	// resourceVersion "0" starts with the current objects.
	w0, err := r.Watch(ctx(t), storage.ListOptions{Namespace: "w", ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w0.Stop()
	expect(t, w0, watch.Added, "b")

	// sendInitialEvents ends the initial events with a bookmark.
	yes := true
	wi, err := r.Watch(ctx(t), storage.ListOptions{Namespace: "w", SendInitialEvents: &yes,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wi.Stop()
	expect(t, wi, watch.Added, "b")
	if ev := next(t, wi); ev.Type != watch.Bookmark || !ev.InitialEventsEnd {
		t.Fatalf("after initial events: got %s (end=%v), want the initial-events-end bookmark", ev.Type, ev.InitialEventsEnd)
	}
	w.Stop()
	if _, err := w.Next(ctx(t)); !errors.Is(err, io.EOF) {
		t.Fatalf("next after stop: got %v, want EOF", err)
	}
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func testWatchTooOld(t *testing.T, f Factory) {
	_, r := start(t, f, 5)
	first := mustCreate(t, r, cm("o", "c-0", nil, nil))
	for i := 1; i < 20; i++ {
		mustCreate(t, r, cm("o", fmt.Sprintf("c-%d", i), nil, nil))
	}
	if _, err := r.List(ctx(t), storage.ListOptions{}); err != nil { // wait for the cache
		t.Fatal(err)
	}
	_, err := r.Watch(ctx(t), storage.ListOptions{ResourceVersion: first.ResourceVersion})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from a forgotten version: got %v, want 410 Gone", err)
	}
}

func testWatchFilter(t *testing.T, f Factory) {
	_, r := start(t, f, 100)
	sel, _ := labels.Parse("app=web")
	w, err := r.Watch(ctx(t), storage.ListOptions{Namespace: "f", Label: sel, ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	set := func(app string) {
		_, err := r.GuaranteedUpdate(ctx(t), "f", "x", storage.UpdateOptions{AllowCreate: true}, func(cur runtime.Object) (runtime.Object, error) {
			if cur == nil {
				return cm("f", "x", map[string]string{"app": app}, nil), nil
			}
			c := cur.(*corev1.ConfigMap)
			c.Labels = map[string]string{"app": app}
			return c, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	set("db")
	set("web") // starts matching
	expect(t, w, watch.Added, "x")
	set("db") // stops matching
	expect(t, w, watch.Deleted, "x")
}

func testRestart(t *testing.T, f Factory) {
	// The factory's stores share their backend within one test, so a
	// second store sees what the first wrote.
	s1, r1 := start(t, f, 100)
	created := mustCreate(t, r1, cm("r", "kept", nil, map[string]string{"k": "v"}))
	_ = s1
	s2 := f(t, 100)
	r2 := configMaps(s2)
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s2.Run(c) }()
	select {
	case <-s2.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("second store not ready")
	}
	res, err := r2.List(ctx(t), storage.ListOptions{Namespace: "r", ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || res.Items[0].RV != mustAtoi(created.ResourceVersion) {
		t.Fatalf("fresh store over the same data: got %v, want r/kept at %s", names(res.Items), created.ResourceVersion)
	}
}
