package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller"
)

var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

// podKeyPrefix marks queue keys naming a pod whose job is gone, so that
// its tracking finalizer is removed.
const podKeyPrefix = "pod:"

// Condition reasons and messages upstream uses.
const (
	reasonBackoffLimitExceeded = "BackoffLimitExceeded"
	reasonDeadlineExceeded     = "DeadlineExceeded"
	reasonPodFailurePolicy     = "PodFailurePolicy"
	reasonCompletionsReached   = "CompletionsReached"
	reasonSuspended            = "JobSuspended"
	reasonResumed              = "JobResumed"
	maxCreatesPerSync          = 500
)

// Controller is the job controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.Clock

	jobs    batchlisters.JobLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	podCtrl controller.PodControl
	expect  *controller.Expectations

	mu      sync.Mutex
	backoff map[types.UID]backoffRecord
}

type backoffRecord struct {
	failures    int
	lastFailure time.Time
}

// New builds the controller on the given informers. clk may be nil.
func New(jobs batchinformers.JobInformer, pods coreinformers.PodInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.Clock) *Controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, recorder: recorder, log: log.With("controller", "job"), clock: clk,
		jobs: jobs.Lister(), pods: pods.Lister(),
		synced: []cache.InformerSynced{jobs.Informer().HasSynced, pods.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job"}),
		podCtrl: controller.PodControl{Client: client, Recorder: recorder},
		expect:  controller.NewExpectations(clk.Now),
		backoff: map[types.UID]backoffRecord{},
	}
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if j, ok := obj.(*batchv1.Job); ok {
			c.queue.Add(controller.KeyFunc(j))
		}
	}
	_, _ = jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	})
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.podEvent(obj, true, false) },
		UpdateFunc: func(_, n any) {
			c.podEvent(n, false, false)
		},
		DeleteFunc: func(obj any) { c.podEvent(obj, false, true) },
	})
	return c
}

func (c *Controller) podEvent(obj any, added, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return
	}
	key := p.Namespace + "/" + ref.Name
	if added {
		c.expect.CreationObserved(key)
	}
	if deleted {
		c.expect.DeletionObserved(key)
	}
	if j, err := c.jobs.Jobs(p.Namespace).Get(ref.Name); (err != nil || j.UID != ref.UID) && !deleted && hasFinalizer(p) {
		c.queue.Add(podKeyPrefix + p.Namespace + "/" + p.Name)
		return
	}
	c.queue.Add(key)
}

// Run syncs jobs with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "job", c.queue, workers, c.Sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "job"}, c.synced...)
}

func hasFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

func (c *Controller) removeFinalizer(ctx context.Context, p *corev1.Pod) error {
	if !hasFinalizer(p) {
		return nil
	}
	patch := []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batchv1.JobTrackingFinalizer + `"]}}`)
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove tracking finalizer of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// Sync moves one job a step toward completion.
func (c *Controller) Sync(ctx context.Context, key string) error {
	if rest, ok := cutPrefix(key, podKeyPrefix); ok {
		ns, name, _ := cache.SplitMetaNamespaceKey(rest)
		p, err := c.pods.Pods(ns).Get(name)
		if err != nil {
			return nil
		}
		return c.removeFinalizer(ctx, p)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	job := cached.DeepCopy()
	pods, err := c.claimPods(ctx, job)
	if err != nil {
		return err
	}
	if finished(job) || job.DeletionTimestamp != nil {
		var errs []error
		for _, p := range pods {
			errs = append(errs, c.removeFinalizer(ctx, p))
		}
		c.forget(job.UID)
		return errors.Join(errs...)
	}
	now := c.clock.Now()
	st := &job.Status
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	indexed := isIndexed(job)
	completions := int(ptr.Deref(job.Spec.Completions, 0))
	completed := ParseIndexes(st.CompletedIndexes, completions)
	perIndex := indexed && job.Spec.BackoffLimitPerIndex != nil
	failedIx := Indexes{}
	if perIndex {
		failedIx = ParseIndexes(ptr.Deref(st.FailedIndexes, ""), completions)
	}

	// Phase 1: record newly finished pods in uncountedTerminatedPods, the
	// durable note that they are being counted.
	uncounted := map[types.UID]bool{}
	for _, u := range st.UncountedTerminatedPods.Succeeded {
		uncounted[u] = true
	}
	for _, u := range st.UncountedTerminatedPods.Failed {
		uncounted[u] = true
	}
	var failJobMsg string
	var ignored []*corev1.Pod
	added := false
	rec := c.record(job.UID)
	for _, p := range pods {
		if !hasFinalizer(p) || uncounted[p.UID] {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			if indexed {
				ix := podIndex(p)
				if ix < 0 || ix >= completions || completed[ix] {
					ignored = append(ignored, p)
					continue
				}
				completed[ix] = true
			}
			st.UncountedTerminatedPods.Succeeded = append(st.UncountedTerminatedPods.Succeeded, p.UID)
			rec.failures = 0
			added = true
		case podFailed(job, p):
			action, msg := MatchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
			if action != nil && *action == batchv1.PodFailurePolicyActionIgnore {
				ignored = append(ignored, p)
				continue
			}
			if action != nil && *action == batchv1.PodFailurePolicyActionFailJob && failJobMsg == "" {
				failJobMsg = msg
			}
			if perIndex {
				ix := podIndex(p)
				failIndex := action != nil && *action == batchv1.PodFailurePolicyActionFailIndex
				if ix >= 0 && ix < completions && !completed[ix] && !failedIx[ix] &&
					IndexFailed(podFailureCount(p), *job.Spec.BackoffLimitPerIndex, failIndex) {
					failedIx[ix] = true
					c.log.Info("job index failed", "job", key, "index", ix, "failures", podFailureCount(p)+1, "failIndexRule", failIndex)
				}
			}
			st.UncountedTerminatedPods.Failed = append(st.UncountedTerminatedPods.Failed, p.UID)
			rec.failures++
			rec.lastFailure = finishTime(p, now)
			added = true
		}
	}
	c.setRecord(job.UID, rec)
	if indexed {
		st.CompletedIndexes = completed.String()
	}
	if perIndex {
		st.FailedIndexes = ptr.To(failedIx.String())
	}
	if failJobMsg != "" && findCondition(job, batchv1.JobFailureTarget) == nil {
		setCondition(job, batchv1.JobFailureTarget, reasonPodFailurePolicy, failJobMsg, now)
	}
	if added || failJobMsg != "" {
		updated, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("record finished pods of job %s: %w", key, err)
		}
		job = updated
		st = &job.Status
	}

	// Phase 2: remove the finalizers, then move the pods into the counters.
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range pods {
		byUID[p.UID] = p
	}
	var errs []error
	for _, p := range ignored {
		errs = append(errs, c.removeFinalizer(ctx, p))
	}
	moveCounted := func(uids []types.UID, counter *int32) []types.UID {
		var keep []types.UID
		for _, u := range uids {
			p := byUID[u]
			if p != nil {
				if err := c.removeFinalizer(ctx, p); err != nil {
					errs = append(errs, err)
					keep = append(keep, u)
					continue
				}
			}
			*counter++
		}
		return keep
	}
	var succ int32
	st.UncountedTerminatedPods.Succeeded = moveCounted(st.UncountedTerminatedPods.Succeeded, &succ)
	st.UncountedTerminatedPods.Failed = moveCounted(st.UncountedTerminatedPods.Failed, &st.Failed)
	if indexed {
		st.Succeeded = int32(len(ParseIndexes(st.CompletedIndexes, completions)))
	} else {
		st.Succeeded += succ
	}
	pending := len(st.UncountedTerminatedPods.Succeeded) + len(st.UncountedTerminatedPods.Failed)

	// Phase 3: decide.
	var active, terminating []*corev1.Pod
	var ready int32
	for _, p := range pods {
		switch {
		case p.DeletionTimestamp != nil && !controller.IsPodTerminal(p):
			terminating = append(terminating, p)
		case controller.IsPodActive(p):
			active = append(active, p)
			if controller.IsPodReady(p) {
				ready++
			}
		}
	}
	suspended := ptr.Deref(job.Spec.Suspend, false)
	var requeue time.Duration
	if findCondition(job, batchv1.JobFailureTarget) == nil && findCondition(job, batchv1.JobSuccessCriteriaMet) == nil {
		switch {
		case job.Spec.BackoffLimit != nil && st.Failed > *job.Spec.BackoffLimit:
			setCondition(job, batchv1.JobFailureTarget, reasonBackoffLimitExceeded, "Job has reached the specified backoff limit", now)
		case !suspended && st.StartTime != nil && job.Spec.ActiveDeadlineSeconds != nil:
			deadline := st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second)
			if !now.Before(deadline) {
				setCondition(job, batchv1.JobFailureTarget, reasonDeadlineExceeded, "Job was active longer than specified deadline", now)
			} else {
				requeue = deadline.Sub(now)
			}
		}
		if perIndex && findCondition(job, batchv1.JobFailureTarget) == nil {
			if reason, msg := FailedIndexesOutcome(completions, completed, failedIx, job.Spec.MaxFailedIndexes); reason != "" {
				setCondition(job, batchv1.JobFailureTarget, reason, msg, now)
			}
		}
		if findCondition(job, batchv1.JobFailureTarget) == nil && succeededEnough(job, int(st.Succeeded), len(active)) {
			setCondition(job, batchv1.JobSuccessCriteriaMet, reasonCompletionsReached, "Reached expected number of succeeded pods", now)
		}
	}
	target := findCondition(job, batchv1.JobFailureTarget)
	if target == nil {
		target = findCondition(job, batchv1.JobSuccessCriteriaMet)
	}
	switch {
	case target != nil:
		// Finishing: no pod may keep running; the final condition waits
		// for all of them to be gone and counted.
		errs = append(errs, c.deletePods(ctx, key, job, active)...)
		if len(active) == 0 && len(terminating) == 0 && pending == 0 {
			c.finish(job, target, now)
		}
	case suspended:
		errs = append(errs, c.deletePods(ctx, key, job, active)...)
		if cond := findCondition(job, batchv1.JobSuspended); cond == nil || cond.Status != corev1.ConditionTrue {
			setCondition(job, batchv1.JobSuspended, reasonSuspended, "Job suspended", now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			c.log.Info("job suspended", "job", key)
		}
	default:
		if cond := findCondition(job, batchv1.JobSuspended); cond != nil && cond.Status == corev1.ConditionTrue {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, reasonResumed, "Job resumed"
			cond.LastProbeTime, cond.LastTransitionTime = metav1.NewTime(now), metav1.NewTime(now)
			st.StartTime = nil // upstream restarts the clock on resume
			c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
		}
		if st.StartTime == nil {
			st.StartTime = ptr.To(metav1.NewTime(now))
			if job.Spec.ActiveDeadlineSeconds != nil {
				requeue = time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second
			}
		}
		if c.expect.Satisfied(key) && pending == 0 {
			wait, err := c.manage(ctx, key, job, pods, active, completed, failedIx, rec, now)
			if err != nil {
				errs = append(errs, err)
			}
			if wait > 0 && (requeue == 0 || wait < requeue) {
				requeue = wait
			}
		}
	}
	st.Active = int32(len(active))
	st.Ready = &ready
	st.Terminating = ptr.To(int32(len(terminating)))
	if !statusEqual(&cached.Status, st) {
		if _, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("update status of job %s: %w", key, err))
		}
	}
	if requeue > 0 {
		c.queue.AddAfter(key, requeue+10*time.Millisecond)
	}
	return errors.Join(errs...)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func (c *Controller) record(uid types.UID) backoffRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backoff[uid]
}

func (c *Controller) setRecord(uid types.UID, r backoffRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backoff[uid] = r
}

func (c *Controller) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.backoff, uid)
}

// finish turns the FailureTarget or SuccessCriteriaMet condition into the
// final Failed or Complete one.
func (c *Controller) finish(job *batchv1.Job, target *batchv1.JobCondition, now time.Time) {
	if target.Type == batchv1.JobFailureTarget {
		setCondition(job, batchv1.JobFailed, target.Reason, target.Message, now)
		c.recorder.Event(job, corev1.EventTypeWarning, target.Reason, target.Message)
		c.log.Info("job failed", "job", controller.KeyFunc(job), "reason", target.Reason)
		return
	}
	setCondition(job, batchv1.JobComplete, target.Reason, target.Message, now)
	job.Status.CompletionTime = ptr.To(metav1.NewTime(now))
	c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
	c.log.Info("job completed", "job", controller.KeyFunc(job))
}

// succeededEnough reports whether the job met its completions: all
// indexes or completions successes, or for a work queue (no completions)
// one success and nothing left running.
func succeededEnough(job *batchv1.Job, succeeded, active int) bool {
	if job.Spec.Completions == nil {
		return succeeded > 0 && active == 0
	}
	return succeeded >= int(*job.Spec.Completions)
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// podFailed reports whether a pod counts as failed: phase Failed, or (with
// podReplacementPolicy TerminatingOrFailed, or when never scheduled) being
// deleted before it succeeded.
func podFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if p.DeletionTimestamp == nil || p.Status.Phase == corev1.PodSucceeded {
		return false
	}
	if job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed && p.Spec.NodeName != "" {
		return false
	}
	return true
}

// finishTime is when a failed pod's last container ended (now if unknown).
func finishTime(p *corev1.Pod, now time.Time) time.Time {
	var t time.Time
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Terminated != nil && s.State.Terminated.FinishedAt.After(t) {
			t = s.State.Terminated.FinishedAt.Time
		}
	}
	if t.IsZero() || t.After(now) {
		return now
	}
	return t
}

// manage creates or deletes pods so that the job runs as many as it
// should; it returns how long creation must wait for backoff.
func (c *Controller) manage(ctx context.Context, key string, job *batchv1.Job, pods, active []*corev1.Pod, completed, failedIx Indexes, rec backoffRecord, now time.Time) (time.Duration, error) {
	parallelism := int(ptr.Deref(job.Spec.Parallelism, 1))
	indexed := isIndexed(job)
	perIndex := indexed && job.Spec.BackoffLimitPerIndex != nil
	var create []int // indexes to create (-1: non-indexed)
	var excess []*corev1.Pod
	var failures map[int]IndexFailures
	var indexWait time.Duration // shortest per-index backoff still running
	if indexed {
		completions := int(ptr.Deref(job.Spec.Completions, 0))
		running := map[int]bool{}
		var keep []*corev1.Pod
		for _, p := range active {
			ix := podIndex(p)
			if ix < 0 || ix >= completions || completed[ix] || failedIx[ix] || running[ix] {
				excess = append(excess, p)
				continue
			}
			running[ix] = true
			keep = append(keep, p)
		}
		if len(keep) > parallelism {
			sort.Sort(controller.PodsForDeletion(keep))
			excess = append(excess, keep[:len(keep)-parallelism]...)
			keep = keep[len(keep)-parallelism:]
		}
		waiting := Indexes{}
		if perIndex {
			failures = CountIndexFailures(job, pods, now)
			for ix, f := range failures {
				if ix >= completions || completed[ix] || failedIx[ix] || running[ix] {
					continue
				}
				if w := RemainingBackoff(f.Count, f.Last, now); w > 0 {
					waiting[ix] = true
					if indexWait == 0 || w < indexWait {
						indexWait = w
					}
				}
			}
		}
		create = IndexesToCreate(completions, max(parallelism-len(keep), 0), completed, failedIx, running, waiting)
	} else {
		want := parallelism
		if job.Spec.Completions != nil {
			want = min(want, int(*job.Spec.Completions)-int(job.Status.Succeeded))
		} else if job.Status.Succeeded > 0 {
			want = 0 // a work queue stops starting pods after a success
		}
		want = max(want, 0)
		if len(active) > want {
			sorted := slices.Clone(active)
			sort.Sort(controller.PodsForDeletion(sorted))
			excess = sorted[:len(active)-want]
		}
		for i := len(active); i < want; i++ {
			create = append(create, -1)
		}
	}
	var errs []error
	if len(excess) > 0 {
		errs = append(errs, c.deletePods(ctx, key, job, excess)...)
	}
	if len(create) == 0 {
		return indexWait, errors.Join(errs...)
	}
	// With backoffLimitPerIndex each index waits out its own backoff
	// (above) instead of the job's.
	if wait := RemainingBackoff(rec.failures, rec.lastFailure, now); !perIndex && wait > 0 {
		return wait, errors.Join(errs...)
	}
	if len(create) > maxCreatesPerSync {
		create = create[:maxCreatesPerSync]
	}
	c.expect.ExpectCreations(key, len(create))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, ix := range create {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			failCount := -1
			if perIndex {
				failCount = failures[ix].Count
			}
			if _, err := c.podCtrl.CreatePod(ctx, newPod(job, ix, failCount), job); err != nil {
				c.expect.CreationObserved(key)
				mu.Lock()
				errs = append(errs, fmt.Errorf("create pod of job %s: %w", key, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.log.Info("created job pods", "job", key, "count", len(create))
	return indexWait, errors.Join(errs...)
}

func (c *Controller) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) []error {
	var errs []error
	for _, p := range pods {
		if err := c.podCtrl.DeletePod(ctx, p.Namespace, p.Name, job); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// newPod is a pod of the job; ix >= 0 is its completion index and
// failCount >= 0 the failures of that index so far (backoffLimitPerIndex).
func newPod(job *batchv1.Job, ix, failCount int) *corev1.Pod {
	p := controller.PodFromTemplate(&job.Spec.Template, job, metav1.NewControllerRef(job, controllerKind))
	p.Finalizers = append(p.Finalizers, batchv1.JobTrackingFinalizer)
	if ix < 0 {
		return p
	}
	s := strconv.Itoa(ix)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Annotations[batchv1.JobCompletionIndexAnnotation] = s
	p.Labels[batchv1.JobCompletionIndexAnnotation] = s
	if failCount >= 0 {
		p.Annotations[IndexFailureCountAnnotation] = strconv.Itoa(failCount)
	}
	p.GenerateName = job.Name + "-" + s + "-"
	p.Spec.Hostname = job.Name + "-" + s
	env := corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
	}}}
	addEnv := func(cs []corev1.Container) {
		for i := range cs {
			if !slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == env.Name }) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	addEnv(p.Spec.Containers)
	addEnv(p.Spec.InitContainers)
	return p
}

func (c *Controller) claimPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, nil
	}
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	objs := make([]metav1.Object, 0, len(all))
	byName := map[string]*corev1.Pod{}
	for _, p := range all {
		objs = append(objs, p)
		byName[p.Name] = p
	}
	cl := &controller.Claimer{
		Owner: job, OwnerRef: *metav1.NewControllerRef(job, controllerKind), Selector: sel,
		CanAdopt: controller.RecheckOwner(job, func(ctx context.Context) (metav1.Object, error) {
			return c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		}),
		Patch: func(ctx context.Context, ns, name string, patch []byte) error {
			_, err := c.client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	}
	claimed, err := cl.Claim(ctx, objs)
	out := make([]*corev1.Pod, 0, len(claimed))
	for _, o := range claimed {
		out = append(out, byName[o.GetName()])
	}
	return out, err
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func findCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == t {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func setCondition(job *batchv1.Job, t batchv1.JobConditionType, reason, msg string, now time.Time) {
	c := batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
	if old := findCondition(job, t); old != nil {
		*old = c
		return
	}
	job.Status.Conditions = append(job.Status.Conditions, c)
}

func statusEqual(a, b *batchv1.JobStatus) bool {
	if a.Active != b.Active || a.Succeeded != b.Succeeded || a.Failed != b.Failed || ptr.Deref(a.Ready, -1) != ptr.Deref(b.Ready, -1) ||
		ptr.Deref(a.Terminating, -1) != ptr.Deref(b.Terminating, -1) || a.CompletedIndexes != b.CompletedIndexes ||
		!ptr.Equal(a.FailedIndexes, b.FailedIndexes) ||
		!ptr.Equal(a.StartTime, b.StartTime) || !ptr.Equal(a.CompletionTime, b.CompletionTime) || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	if (a.UncountedTerminatedPods == nil) != (b.UncountedTerminatedPods == nil) {
		return false
	}
	if a.UncountedTerminatedPods != nil && (!slices.Equal(a.UncountedTerminatedPods.Succeeded, b.UncountedTerminatedPods.Succeeded) ||
		!slices.Equal(a.UncountedTerminatedPods.Failed, b.UncountedTerminatedPods.Failed)) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}
