package cronjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller"
)

var (
	controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")
	jobKind        = batchv1.SchemeGroupVersion.WithKind("Job")
)

// Controller is the cronjob controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.Clock

	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on the given informers. clk may be nil.
func New(cronJobs batchinformers.CronJobInformer, jobs batchinformers.JobInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.Clock) *Controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, recorder: recorder, log: log.With("controller", "cronjob"), clock: clk,
		cronJobs: cronJobs.Lister(), jobs: jobs.Lister(),
		synced: []cache.InformerSynced{cronJobs.Informer().HasSynced, jobs.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob"}),
	}
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if cj, ok := obj.(*batchv1.CronJob); ok {
			c.queue.Add(controller.KeyFunc(cj))
		}
	}
	_, _ = cronJobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	})
	jobOwner := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.Kind == controllerKind.Kind {
			c.queue.Add(j.Namespace + "/" + ref.Name)
		}
	}
	_, _ = jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: jobOwner, UpdateFunc: func(_, n any) { jobOwner(n) }, DeleteFunc: jobOwner,
	})
	return c
}

// Run syncs cron jobs with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "cronjob", c.queue, workers, controller.RequeueAfter(c.queue, c.Sync),
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "cronjob"}, c.synced...)
}

func jobFinished(j *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, true
		}
	}
	return "", false
}

// JobName is the name of the job a cron job starts for scheduled: the cron
// job's name and the scheduled time in minutes since the epoch.
func JobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// Sync reconciles one cron job and returns when to look at it again.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cj := cached.DeepCopy()
	all, err := c.jobs.Jobs(ns).List(labels.Everything())
	if err != nil {
		return 0, err
	}
	var owned []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.UID == cj.UID {
			owned = append(owned, j)
		}
	}
	now := c.clock.Now()
	var errs []error

	// Active list and last success, from the jobs as they are.
	byUID := map[string]*batchv1.Job{}
	for _, j := range owned {
		byUID[string(j.UID)] = j
	}
	var active []corev1.ObjectReference
	for _, ref := range cj.Status.Active {
		j := byUID[string(ref.UID)]
		if j == nil {
			if _, err := c.client.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
				continue
			}
			active = append(active, ref)
			continue
		}
		if _, done := jobFinished(j); !done {
			active = append(active, ref)
		}
	}
	for _, j := range owned {
		cond, done := jobFinished(j)
		inActive := slices.ContainsFunc(active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
		if !done && !inActive && j.DeletionTimestamp == nil {
			active = append(active, jobRef(j))
		}
		if done && slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID }) {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
		}
		if cond == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if cj.Status.LastSuccessfulTime == nil || cj.Status.LastSuccessfulTime.Before(j.Status.CompletionTime) {
				cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
			}
		}
	}
	cj.Status.Active = active
	errs = append(errs, c.cleanupHistory(ctx, cj, owned)...)

	requeue, err := c.schedule(ctx, cj, owned, now)
	if err != nil {
		errs = append(errs, err)
	}
	if !statusEqual(&cached.Status, &cj.Status) {
		if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("update status of cronjob %s: %w", key, err))
		}
	}
	return requeue, errors.Join(errs...)
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: jobKind.Kind, APIVersion: jobKind.GroupVersion().String(), Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion}
}

// schedule starts the job due now, if any, and returns the wait until the
// next activation.
func (c *Controller) schedule(ctx context.Context, cj *batchv1.CronJob, owned []*batchv1.Job, now time.Time) (time.Duration, error) {
	if cj.DeletionTimestamp != nil {
		return 0, nil
	}
	loc := time.Local
	if cj.Spec.TimeZone != nil {
		l, err := time.LoadLocation(*cj.Spec.TimeZone)
		if err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *cj.Spec.TimeZone, err)
			return 0, nil
		}
		loc = l
	}
	sched, err := Parse(cj.Spec.Schedule)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	nowLoc := now.In(loc)
	next := sched.Next(nowLoc)
	wait := time.Duration(0)
	if !next.IsZero() {
		wait = next.Sub(now) + 100*time.Millisecond
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return 0, nil
	}
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if w := now.Add(-time.Duration(*d) * time.Second); w.After(earliest) {
			earliest = w
		}
	}
	scheduled, missed := MostRecent(sched, earliest.In(loc), nowLoc)
	if scheduled.IsZero() {
		return wait, nil
	}
	if missed > 100 {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
		c.log.Info("too many missed start times", "cronjob", controller.KeyFunc(cj))
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return wait, nil
	}
	name := JobName(cj, scheduled)
	for _, j := range owned {
		if j.Name == name {
			return wait, nil // already started (cache or status lagging)
		}
	}
	if len(cj.Status.Active) > 0 {
		switch cj.Spec.ConcurrencyPolicy {
		case batchv1.ForbidConcurrent:
			c.log.Info("not starting job: concurrency forbidden and a job is active", "cronjob", controller.KeyFunc(cj))
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return wait, nil
		case batchv1.ReplaceConcurrent:
			for _, ref := range cj.Status.Active {
				err := c.client.BatchV1().Jobs(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
				if err != nil && !apierrors.IsNotFound(err) {
					c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
					return 0, fmt.Errorf("replace job %s/%s: %w", ref.Namespace, ref.Name, err)
				}
				c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", ref.Name)
			}
			cj.Status.Active = nil
		}
	}
	job := newJob(cj, scheduled, name)
	created, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		existing, gerr := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{})
		if gerr != nil || !metav1.IsControlledBy(existing, cj) {
			return wait, nil
		}
		created = existing
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return 0, fmt.Errorf("create job %s/%s: %w", cj.Namespace, name, err)
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", created.Name)
		c.log.Info("created job", "cronjob", controller.KeyFunc(cj), "job", created.Name, "scheduled", scheduled)
	}
	if _, done := jobFinished(created); !done && !slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == created.UID }) {
		cj.Status.Active = append(cj.Status.Active, jobRef(created))
	}
	cj.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
	return wait, nil
}

// newJob is the job a cron job starts for the scheduled time.
func newJob(cj *batchv1.CronJob, scheduled time.Time, name string) *batchv1.Job {
	annotations := maps.Clone(cj.Spec.JobTemplate.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cj.Namespace,
			Labels:          maps.Clone(cj.Spec.JobTemplate.Labels),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
}

// cleanupHistory deletes the oldest finished jobs beyond the history limits.
func (c *Controller) cleanupHistory(ctx context.Context, cj *batchv1.CronJob, owned []*batchv1.Job) []error {
	var succeeded, failed []*batchv1.Job
	for _, j := range owned {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch cond, _ := jobFinished(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var errs []error
	trim := func(jobs []*batchv1.Job, limit *int32) {
		if limit == nil || len(jobs) <= int(*limit) {
			return
		}
		slices.SortFunc(jobs, func(a, b *batchv1.Job) int {
			ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
			if a.Status.StartTime != nil {
				ta = a.Status.StartTime.Time
			}
			if b.Status.StartTime != nil {
				tb = b.Status.StartTime.Time
			}
			return ta.Compare(tb)
		})
		for _, j := range jobs[:len(jobs)-int(*limit)] {
			err := c.client.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete old job %s/%s: %w", j.Namespace, j.Name, err))
				continue
			}
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
		}
	}
	trim(succeeded, cj.Spec.SuccessfulJobsHistoryLimit)
	trim(failed, cj.Spec.FailedJobsHistoryLimit)
	return errs
}

func statusEqual(a, b *batchv1.CronJobStatus) bool {
	if len(a.Active) != len(b.Active) || !ptr.Equal(a.LastScheduleTime, b.LastScheduleTime) || !ptr.Equal(a.LastSuccessfulTime, b.LastSuccessfulTime) {
		return false
	}
	for i := range a.Active {
		if a.Active[i].UID != b.Active[i].UID {
			return false
		}
	}
	return true
}
