package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// DefaultSchedulerName is the spec.schedulerName this scheduler serves
// unless told otherwise, as upstream's.
const DefaultSchedulerName = "default-scheduler"

// Config configures the scheduler.
type Config struct {
	// RestConfig reaches the API server. Its QPS and Burst are raised to
	// 5000/10000 when unset, because binding is one request per pod.
	RestConfig *rest.Config
	// Client is used instead of a client built from RestConfig (tests use
	// client-go's fake clientset).
	Client kubernetes.Interface
	// Logger gets one line per meaningful event.
	Logger *slog.Logger
	// LeaderElect campaigns for the Lease kube-system/kube-scheduler and
	// schedules only while holding it.
	LeaderElect bool
	// Identity is this candidate's name in the Lease (default: hostname
	// and a timestamp).
	Identity string
	// SchedulerName is the spec.schedulerName served (default
	// "default-scheduler"); it is also the events' source.
	SchedulerName string
	// Now is the clock for the queue's backoff (default time.Now).
	Now func() time.Time
	// BindConcurrency bounds in-flight binding requests (default 256).
	BindConcurrency int
	// Informers, when set, is a started-elsewhere informer factory shared
	// with other components of the process (one cache of pods and nodes
	// instead of one each); the scheduler then neither creates nor shuts
	// down its own, and removes its handlers when it stops leading. The
	// scheduler requests from it the informers for pods, nodes,
	// namespaces and policy/v1 PodDisruptionBudgets, and calls its Start
	// so any of them not yet running start.
	Informers informers.SharedInformerFactory
}

// Scheduler assigns pending pods to nodes. See the package documentation.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
	queue  *Queue
	cache  *Cache

	podLister corelisters.PodLister
	pdbLister policylisters.PodDisruptionBudgetLister
	recorder  record.EventRecorder
	next      int // Decision.NextStart of the last attempt
	sem       chan struct{}
	binds     sync.WaitGroup
}

// New checks cfg and returns a Scheduler ready to Run.
func New(cfg Config) (*Scheduler, error) {
	if cfg.RestConfig == nil && cfg.Client == nil {
		return nil, errors.New("scheduler: a rest config is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = DefaultSchedulerName
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BindConcurrency <= 0 {
		cfg.BindConcurrency = 256
	}
	if cfg.Identity == "" {
		h, _ := os.Hostname()
		cfg.Identity = fmt.Sprintf("%s_%d", h, time.Now().UnixNano())
	}
	client := cfg.Client
	if client == nil {
		rc := rest.CopyConfig(cfg.RestConfig)
		if rc.QPS == 0 {
			rc.QPS, rc.Burst = 5000, 10000
		}
		rc.UserAgent = "skiff-scheduler"
		c, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("scheduler client: %w", err)
		}
		client = c
	}
	return &Scheduler{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "scheduler"),
		client: client,
		queue:  NewQueue(cfg.Now),
		cache:  NewCache(),
		sem:    make(chan struct{}, cfg.BindConcurrency),
	}, nil
}

// Run schedules pods until ctx ends. With LeaderElect it first acquires
// the Lease kube-system/kube-scheduler (lease 15s, renew 10s, retry 2s)
// and returns an error if it loses it, as upstream exits.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.cfg.LeaderElect {
		return s.run(ctx)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-scheduler"},
		Client:     s.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.cfg.Identity},
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "kube-scheduler",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				s.log.Info("became leader", "identity", s.cfg.Identity)
				runErr <- s.run(ctx)
				cancel()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler leader election: %w", err)
	}
	le.Run(lctx)
	select {
	case err := <-runErr:
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("scheduler lost its lease")
	default:
		return nil
	}
}

func (s *Scheduler) run(ctx context.Context) error {
	factory := s.cfg.Informers
	shared := factory != nil
	if !shared {
		factory = informers.NewSharedInformerFactoryWithOptions(s.client, 0, informers.WithTransform(dropManagedFields))
		defer factory.Shutdown()
	}
	podInformer := factory.Core().V1().Pods()
	nodeInformer := factory.Core().V1().Nodes()
	nsInformer := factory.Core().V1().Namespaces()
	// Preemption reads PodDisruptionBudgets when it decides; no handler,
	// as upstream's: a budget changing does not retry pods.
	pdbInformer := factory.Policy().V1().PodDisruptionBudgets()
	s.podLister = podInformer.Lister()
	s.pdbLister = pdbInformer.Lister()
	var regs []cache.InformerSynced
	podReg, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(nil, obj.(*v1.Pod)) },
		UpdateFunc: func(old, obj any) { s.onPod(old.(*v1.Pod), obj.(*v1.Pod)) },
		DeleteFunc: s.onPodDelete,
	})
	if err != nil {
		return fmt.Errorf("pod handler: %w", err)
	}
	nodeReg, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			s.cache.SetNode(obj.(*v1.Node))
			s.queue.MoveAllToActiveOrBackoff(nil)
		},
		UpdateFunc: func(old, obj any) {
			s.cache.SetNode(obj.(*v1.Node))
			if nodeSchedulingChanged(old.(*v1.Node), obj.(*v1.Node)) {
				s.queue.MoveAllToActiveOrBackoff(nil)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*v1.Node); ok {
				s.cache.RemoveNode(n.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("node handler: %w", err)
	}
	nsReg, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.cache.SetNamespace(obj.(*v1.Namespace)) },
		UpdateFunc: func(_, obj any) { s.cache.SetNamespace(obj.(*v1.Namespace)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if ns, ok := obj.(*v1.Namespace); ok {
				s.cache.RemoveNamespace(ns.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("namespace handler: %w", err)
	}
	regs = append(regs, podReg.HasSynced, nodeReg.HasSynced, nsReg.HasSynced, pdbInformer.Informer().HasSynced)
	if shared {
		// The informers outlive this term of leadership; the handlers
		// must not.
		defer func() {
			_ = podInformer.Informer().RemoveEventHandler(podReg)
			_ = nodeInformer.Informer().RemoveEventHandler(nodeReg)
			_ = nsInformer.Informer().RemoveEventHandler(nsReg)
		}()
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	s.recorder = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: s.cfg.SchedulerName})

	factory.Start(ctx.Done())
	// The handlers, not just the stores, must have seen the initial lists,
	// or the first decisions would see no nodes.
	if !cache.WaitForCacheSync(ctx.Done(), regs...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("scheduler: informer caches did not sync")
	}
	s.log.Info("scheduler started", "schedulerName", s.cfg.SchedulerName)
	go s.queue.Run(ctx)
	for s.scheduleOne(ctx) {
	}
	s.binds.Wait()
	return nil
}

// responsible reports whether the pod is this scheduler's to place.
func (s *Scheduler) responsible(p *v1.Pod) bool {
	return p.Spec.SchedulerName == s.cfg.SchedulerName && p.Spec.NodeName == "" &&
		p.DeletionTimestamp == nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed
}

func (s *Scheduler) onPod(old, pod *v1.Pod) {
	if pod.Spec.NodeName != "" {
		s.cache.SetPod(pod)
		s.queue.Delete(pod)
		// A new or relabelled pod can satisfy a waiting pod's affinity.
		if old == nil || old.Spec.NodeName == "" || !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
			s.queue.MoveAllToActiveOrBackoff(hasRequiredPodAffinity)
		}
		return
	}
	if !s.responsible(pod) {
		s.queue.Delete(pod)
		return
	}
	s.cache.SetNominated(pod, pod.Status.NominatedNodeName)
	if s.cache.IsAssumed(pod.UID) {
		return
	}
	s.queue.Update(pod)
}

func hasRequiredPodAffinity(p *v1.Pod) bool {
	a := p.Spec.Affinity
	return a != nil && a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

func (s *Scheduler) onPodDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	s.queue.Delete(pod)
	counted := s.cache.IsCounted(pod.UID)
	s.cache.RemovePod(pod)
	if counted {
		s.queue.MoveAllToActiveOrBackoff(nil)
	}
}

// nodeSchedulingChanged ignores heartbeats: only what filters read counts.
func nodeSchedulingChanged(a, b *v1.Node) bool {
	if a.Spec.Unschedulable != b.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(a.Labels, b.Labels) ||
		!equality.Semantic.DeepEqual(a.Spec.Taints, b.Spec.Taints) ||
		!equality.Semantic.DeepEqual(a.Status.Allocatable, b.Status.Allocatable) {
		return true
	}
	if len(a.Status.Conditions) != len(b.Status.Conditions) {
		return true
	}
	for i := range a.Status.Conditions {
		if a.Status.Conditions[i].Type != b.Status.Conditions[i].Type || a.Status.Conditions[i].Status != b.Status.Conditions[i].Status {
			return true
		}
	}
	return false
}

// scheduleOne takes one pod from the queue and decides for it; false when
// the queue is closed.
func (s *Scheduler) scheduleOne(ctx context.Context) bool {
	qp := s.queue.Pop(ctx)
	if qp == nil {
		return false
	}
	// Decide on the pod as it is now, not as it was queued.
	pod, err := s.podLister.Pods(qp.Pod.Namespace).Get(qp.Pod.Name)
	if err != nil || pod.UID != qp.Pod.UID || !s.responsible(pod) || s.cache.IsCounted(pod.UID) {
		s.queue.Done(qp)
		return true
	}

	var d Decision
	var cand *Candidate
	var preemptMsg string
	s.cache.View(func(snap *Snapshot) {
		d = Schedule(snap, pod, s.next)
		s.next = d.NextStart
		if d.FitError != nil && len(snap.Nodes) > 0 {
			cand, preemptMsg = Preempt(snap, pod, d.FitError, s.listPDBs())
		}
	})
	if d.Node != "" {
		assumed := pod.DeepCopy()
		assumed.Spec.NodeName = d.Node
		s.cache.Assume(assumed)
		s.queue.Done(qp)
		s.binds.Add(1)
		go s.bind(ctx, qp, assumed)
		return true
	}
	d.FitError.PostFilterMsg = preemptMsg
	msg := d.FitError.Error()
	nominated := ""
	if cand != nil {
		nominated = cand.Node
		s.cache.SetNominated(pod, nominated)
	}
	s.queue.AddUnschedulable(qp)
	s.binds.Add(1)
	go func() {
		defer s.binds.Done()
		if cand != nil {
			s.preempt(ctx, pod, cand)
		}
		s.reportFailure(ctx, pod, msg, nominated)
	}()
	return true
}

// listPDBs returns the cached PodDisruptionBudgets, read-only, for
// preemption to weigh.
func (s *Scheduler) listPDBs() []*policyv1.PodDisruptionBudget {
	if s.pdbLister == nil {
		return nil
	}
	pdbs, err := s.pdbLister.List(labels.Everything())
	if err != nil {
		s.log.Warn("listing pod disruption budgets failed", "err", err)
		return nil
	}
	return pdbs
}

func (s *Scheduler) bind(ctx context.Context, qp *QueuedPod, pod *v1.Pod) {
	defer s.binds.Done()
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	b := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: pod.Spec.NodeName},
	}
	err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	if err != nil {
		s.cache.Forget(pod)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("binding failed", "pod", podKey(pod), "node", pod.Spec.NodeName, "err", err)
		if !apierrors.IsNotFound(err) {
			s.queue.AddBackoff(qp)
		}
		s.queue.MoveAllToActiveOrBackoff(nil)
		return
	}
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %v/%v to %v", pod.Namespace, pod.Name, pod.Spec.NodeName)
}

// reportFailure records the FailedScheduling event and sets the pod's
// PodScheduled condition (and nominatedNodeName) when they changed.
func (s *Scheduler) reportFailure(ctx context.Context, pod *v1.Pod, msg, nominated string) {
	s.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", msg)
	cur := pod
	if p, err := s.podLister.Pods(pod.Namespace).Get(pod.Name); err == nil {
		cur = p
	}
	var old *v1.PodCondition
	for i := range cur.Status.Conditions {
		if cur.Status.Conditions[i].Type == v1.PodScheduled {
			old = &cur.Status.Conditions[i]
		}
	}
	if old != nil && old.Status == v1.ConditionFalse && old.Reason == v1.PodReasonUnschedulable && old.Message == msg &&
		(nominated == "" || cur.Status.NominatedNodeName == nominated) {
		return
	}
	cond := map[string]any{
		"type": v1.PodScheduled, "status": v1.ConditionFalse, "reason": v1.PodReasonUnschedulable,
		"message": msg, "lastProbeTime": nil,
	}
	if old == nil || old.Status != v1.ConditionFalse {
		cond["lastTransitionTime"] = metav1.NewTime(s.cfg.Now()).Rfc3339Copy()
	}
	status := map[string]any{"conditions": []any{cond}}
	if nominated != "" {
		status["nominatedNodeName"] = nominated
	}
	s.patchStatus(ctx, pod, status)
}

func (s *Scheduler) patchStatus(ctx context.Context, pod *v1.Pod, status map[string]any) {
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		s.log.Warn("updating pod status failed", "pod", podKey(pod), "err", err)
	}
}

// preempt carries out a preemption decision: the victims get a
// DisruptionTarget condition, a Preempted event and a graceful delete.
func (s *Scheduler) preempt(ctx context.Context, pod *v1.Pod, cand *Candidate) {
	s.log.Info("preempting", "pod", podKey(pod), "node", cand.Node, "victims", len(cand.Victims))
	for _, v := range cand.Victims {
		s.patchStatus(ctx, v, map[string]any{"conditions": []any{map[string]any{
			"type": v1.DisruptionTarget, "status": v1.ConditionTrue, "reason": v1.PodReasonPreemptionByScheduler,
			"message":            fmt.Sprintf("%s: preempting to accommodate a higher priority pod", s.cfg.SchedulerName),
			"lastTransitionTime": metav1.NewTime(s.cfg.Now()).Rfc3339Copy(),
		}}})
		err := s.client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("deleting preemption victim failed", "pod", podKey(v), "err", err)
			continue
		}
		s.recorder.Eventf(v, v1.EventTypeNormal, "Preempted", "Preempted by pod %v on node %v", pod.UID, cand.Node)
	}
}

// dropManagedFields removes managedFields from objects entering the
// informers' caches, as upstream's scheduler does: it never reads them,
// and they are a third of a pod's size.
func dropManagedFields(obj any) (any, error) {
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetManagedFields(nil)
	}
	return obj, nil
}
