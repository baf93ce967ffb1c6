package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SyncLog says how a worker reports a failed sync: a line to Logger at
// Level, with the key under the attribute Key ("key" when empty). A
// conflict is reported at Debug whatever Level says: it means the cache
// was stale, and the next event brings the fresh object.
type SyncLog struct {
	Logger *slog.Logger
	Level  slog.Level
	Key    string
}

// RunWorkers waits for the caches, then runs workers goroutines that take
// keys from q and call syncKey, requeueing a key with rate limiting when
// syncKey fails and forgetting its failures when it succeeds, until ctx
// ends. It shuts q down and waits for the workers before it returns.
func RunWorkers[K comparable](ctx context.Context, name string, q workqueue.TypedRateLimitingInterface[K], workers int,
	syncKey func(context.Context, K) error, log SyncLog, synced ...cache.InformerSynced) {
	defer utilruntime.HandleCrash()
	defer q.ShutDown()
	if !cache.WaitForNamedCacheSync(name, ctx.Done(), synced...) {
		return
	}
	wg := StartWorkers(ctx, q, workers, syncKey, log)
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

// StartWorkers starts the workers of RunWorkers for a controller whose Run
// does more than wait for ctx: they end when q shuts down, and the returned
// group is done when they have.
func StartWorkers[K comparable](ctx context.Context, q workqueue.TypedRateLimitingInterface[K], workers int,
	syncKey func(context.Context, K) error, log SyncLog) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for processNext(ctx, q, syncKey, log) {
				}
			}, time.Second)
		})
	}
	return &wg
}

func processNext[K comparable](ctx context.Context, q workqueue.TypedRateLimitingInterface[K],
	syncKey func(context.Context, K) error, log SyncLog) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	if err := syncKey(ctx, key); err != nil {
		attr := log.Key
		if attr == "" {
			attr = "key"
		}
		if apierrors.IsConflict(err) {
			log.Logger.Debug("conflict, requeued", attr, key)
		} else {
			log.Logger.Log(ctx, log.Level, "sync failed, requeued", attr, key, "err", err)
		}
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

// RequeueAfter adapts, for RunWorkers, a sync that asks to run again after
// a delay (none when zero) once it has succeeded.
func RequeueAfter[K comparable](q workqueue.TypedDelayingInterface[K],
	sync func(context.Context, K) (time.Duration, error)) func(context.Context, K) error {
	return func(ctx context.Context, key K) error {
		after, err := sync(ctx, key)
		if err == nil && after > 0 {
			q.AddAfter(key, after)
		}
		return err
	}
}
