package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
)

// records keeps the log records a worker writes.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func fastQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
}

func TestRunWorkersRetriesThenForgets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantLevel slog.Level
		wantMsg   string
	}{
		{"failure", errors.New("boom"), slog.LevelWarn, "sync failed, requeued"},
		{"conflict", apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", errors.New("stale")), slog.LevelDebug, "conflict, requeued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := fastQueue()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var (
				calls           int
				requeuesOnRetry int
			)
			retried := make(chan struct{})
			sync := func(_ context.Context, key string) error {
				calls++
				if calls == 1 {
					return tc.err
				}
				requeuesOnRetry = q.NumRequeues(key)
				close(retried)
				return nil
			}
			log := &records{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				RunWorkers(ctx, "test", q, 1, sync, SyncLog{Logger: slog.New(log), Level: slog.LevelWarn, Key: "thing"})
			}()
			q.Add("a")
			select {
			case <-retried:
			case <-time.After(10 * time.Second):
				t.Fatal("a failed sync was not retried")
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("RunWorkers did not return when ctx ended")
			}
			if calls != 2 {
				t.Errorf("sync calls: got %d, want 2", calls)
			}
			if requeuesOnRetry != 1 {
				t.Errorf("requeues seen by the retry: got %d, want 1", requeuesOnRetry)
			}
			if n := q.NumRequeues("a"); n != 0 {
				t.Errorf("requeues after success: got %d, want 0 (forgotten)", n)
			}
			if !q.ShuttingDown() {
				t.Error("queue: got running, want shut down")
			}
			if len(log.got) != 1 {
				t.Fatalf("log lines: got %d, want 1", len(log.got))
			}
			rec := log.got[0]
			if rec.Level != tc.wantLevel || rec.Message != tc.wantMsg {
				t.Errorf("log line: got %v %q, want %v %q", rec.Level, rec.Message, tc.wantLevel, tc.wantMsg)
			}
			var key string
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "thing" {
					key = a.Value.String()
				}
				return true
			})
			if key != "a" {
				t.Errorf("logged key: got %q, want %q", key, "a")
			}
		})
	}
}

func TestRunWorkersCachesNeverSync(t *testing.T) {
	q := fastQueue()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	called := false
	go func() {
		defer close(done)
		RunWorkers(ctx, "test", q, 1, func(context.Context, string) error { called = true; return nil },
			SyncLog{Logger: slog.New(&records{})}, func() bool { return false })
	}()
	q.Add("a")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunWorkers did not return when ctx ended before the caches synced")
	}
	if called {
		t.Error("sync: got called before the caches synced, want not")
	}
	if !q.ShuttingDown() {
		t.Error("queue: got running, want shut down")
	}
}

func TestRequeueAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		err   error
		want  bool
	}{
		{"asks again", time.Millisecond, nil, true},
		{"done", 0, nil, false},
		{"failed", time.Millisecond, errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := fastQueue()
			defer q.ShutDown()
			sync := RequeueAfter(q, func(context.Context, string) (time.Duration, error) { return tc.after, tc.err })
			if err := sync(context.Background(), "a"); !errors.Is(err, tc.err) {
				t.Fatalf("err: got %v, want %v", err, tc.err)
			}
			time.Sleep(50 * time.Millisecond)
			if got := q.Len() == 1; got != tc.want {
				t.Errorf("key queued again: got %v, want %v", got, tc.want)
			}
		})
	}
}
