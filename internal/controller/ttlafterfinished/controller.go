// Package ttlafterfinished deletes finished Jobs once
// spec.ttlSecondsAfterFinished has passed since they finished (the
// lastTransitionTime of their Complete or Failed condition), as upstream's
// TTL-after-finished controller does: with foreground propagation, after
// re-reading the job from the API server so that a ttl the user just
// changed is honoured, and with a uid precondition so a re-created job of
// the same name is never deleted by mistake.
package ttlafterfinished

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Controller is the ttl-after-finished controller.
type Controller struct {
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.Clock
	jobs   batchlisters.JobLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on the job informer. clk may be nil.
func New(jobs batchinformers.JobInformer, client kubernetes.Interface, log *slog.Logger, clk clock.Clock) *Controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, log: log.With("controller", "ttl-after-finished"), clock: clk,
		jobs: jobs.Lister(), synced: jobs.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete"}),
	}
	enqueue := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.DeletionTimestamp == nil && j.Spec.TTLSecondsAfterFinished != nil && finished(j) {
			c.queue.Add(controller.KeyFunc(j))
		}
	}
	_, _ = jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	})
	return c
}

// Run processes jobs with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "ttlafterfinished", c.queue, workers, controller.RequeueAfter(c.queue, c.Sync),
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "job"}, c.synced)
}

func finishTime(j *batchv1.Job) (time.Time, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func finished(j *batchv1.Job) bool { _, ok := finishTime(j); return ok }

// Remaining is how long until a finished job with a ttl expires (zero or
// less: expired); ok is false when the job has no ttl or is not finished.
func Remaining(j *batchv1.Job, now time.Time) (time.Duration, bool) {
	if j.Spec.TTLSecondsAfterFinished == nil || j.DeletionTimestamp != nil {
		return 0, false
	}
	t, ok := finishTime(j)
	if !ok {
		return 0, false
	}
	return t.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second).Sub(now), true
}

// Sync deletes the job if its ttl has run out, or returns the time left.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	j, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	left, ok := Remaining(j, c.clock.Now())
	if !ok {
		return 0, nil
	}
	if left > 0 {
		return left, nil
	}
	// The cache may be stale: the ttl may just have been changed.
	fresh, err := c.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get job %s: %w", key, err)
	}
	left, ok = Remaining(fresh, c.clock.Now())
	if !ok {
		return 0, nil
	}
	if left > 0 {
		return left, nil
	}
	err = c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("delete expired job %s: %w", key, err)
	}
	c.log.Info("deleted finished job after its ttl", "job", key)
	return 0, nil
}
