package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/controller"
	"github.com/skiff-sh/skiff/internal/controller/history"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

const (
	hashLabel = appsv1.DefaultDaemonSetUniqueLabelKey // controller-revision-hash
	// templateGenerationLabel is the deprecated label upstream still sets.
	templateGenerationLabel = appsv1.DeprecatedTemplateGeneration
)

// Controller is the daemonset controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.Clock

	sets    appslisters.DaemonSetLister
	nodes   corelisters.NodeLister
	pods    corelisters.PodLister
	revs    appslisters.ControllerRevisionLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	podCtrl controller.PodControl
	expect  *controller.Expectations
}

// New builds the controller on the given informers. clk may be nil.
func New(sets appsinformers.DaemonSetInformer, nodes coreinformers.NodeInformer, pods coreinformers.PodInformer, revs appsinformers.ControllerRevisionInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.Clock) *Controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, recorder: recorder, log: log.With("controller", "daemonset"), clock: clk,
		sets: sets.Lister(), nodes: nodes.Lister(), pods: pods.Lister(), revs: revs.Lister(),
		synced: []cache.InformerSynced{sets.Informer().HasSynced, nodes.Informer().HasSynced, pods.Informer().HasSynced, revs.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"}),
		podCtrl: controller.PodControl{Client: client, Recorder: recorder},
		expect:  controller.NewExpectations(clk.Now),
	}
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if s, ok := obj.(*appsv1.DaemonSet); ok {
			c.queue.Add(controller.KeyFunc(s))
		}
	}
	_, _ = sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	})
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(o, n any) {
			on, nn := o.(*corev1.Node), n.(*corev1.Node)
			if !labels.Equals(on.Labels, nn.Labels) || !taintsEqual(on.Spec.Taints, nn.Spec.Taints) || on.Spec.Unschedulable != nn.Spec.Unschedulable {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key := ownerKey(obj); key != "" {
				c.expect.CreationObserved(key)
				c.queue.Add(key)
			}
		},
		UpdateFunc: func(_, n any) {
			if key := ownerKey(n); key != "" {
				c.queue.Add(key)
			}
		},
		DeleteFunc: func(obj any) {
			if key := ownerKey(obj); key != "" {
				c.expect.DeletionObserved(key)
				c.queue.Add(key)
			}
		},
	})
	return c
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

func ownerKey(obj any) string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return ""
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return ""
	}
	return p.Namespace + "/" + ref.Name
}

func (c *Controller) enqueueAll() {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range sets {
		c.queue.Add(controller.KeyFunc(s))
	}
}

// Run syncs daemon sets with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "daemonset", c.queue, workers, c.Sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "daemonset"}, c.synced...)
}

// Sync moves one daemon set a step toward its spec.
func (c *Controller) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	ds := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	pods, err := c.claimPods(ctx, ds, sel)
	if err != nil {
		return err
	}
	if ds.DeletionTimestamp != nil {
		return nil
	}
	revs, err := c.revs.ControllerRevisions(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned := history.Owned(revs, ds)
	history.Sort(owned)
	data, err := history.TemplatePatch(&ds.Spec.Template)
	if err != nil {
		return err
	}
	collisions := int32(0)
	if ds.Status.CollisionCount != nil {
		collisions = *ds.Status.CollisionCount
	}
	res, err := history.Ensure(ctx, c.client, ds, *metav1.NewControllerRef(ds, controllerKind), ds.Spec.Template.Labels, data, owned, collisions)
	if err != nil {
		return err
	}
	hash := res.Update.Labels[history.HashLabel]

	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	states := nodeStates(ds, nodes, pods)
	now := c.clock.Now()
	var errs []error
	if c.expect.Satisfied(key) {
		desired := 0
		for _, s := range states {
			if s.ShouldRun {
				desired++
			}
		}
		in := PlanInput{Nodes: states, Hash: hash, MinReadySeconds: ds.Spec.MinReadySeconds, Now: now}
		if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
			in.RollingUpdate = true
			in.MaxUnavailable, in.MaxSurge = rollingLimits(ds, desired)
		}
		plan := Decide(in)
		errs = append(errs, c.act(ctx, key, ds, hash, plan)...)
	}
	live := map[string]bool{res.Update.Name: true}
	for _, p := range pods {
		live[ds.Name+"-"+hashOf(p)] = true
	}
	limit := int32(10)
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = *ds.Spec.RevisionHistoryLimit
	}
	if err := history.Truncate(ctx, c.client, owned, live, limit); err != nil {
		errs = append(errs, err)
	}
	if err := c.updateStatus(ctx, cached, states, hash, res.CollisionCount, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rollingLimits scales maxUnavailable and maxSurge against the number of
// nodes that should run the pod, rounding up; both zero means one
// unavailable, as upstream.
func rollingLimits(ds *appsv1.DaemonSet, desired int) (maxUnavailable, maxSurge int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	mu, ms := &one, &zero
	if ru != nil {
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
	}
	u, err1 := intstr.GetScaledValueFromIntOrPercent(mu, desired, true)
	s, err2 := intstr.GetScaledValueFromIntOrPercent(ms, desired, true)
	if err1 != nil || err2 != nil {
		return 1, 0
	}
	if s > 0 {
		return u, s
	}
	if u == 0 {
		u = 1
	}
	return u, 0
}

// nodeStates groups the set's pods by their node and judges each node;
// pods for nodes that no longer exist form states of their own so they
// are removed.
func nodeStates(ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod) []NodeState {
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		byNode[targetNode(p)] = append(byNode[targetNode(p)], p)
	}
	states := make([]NodeState, 0, len(nodes))
	seen := map[string]bool{}
	for _, n := range nodes {
		run, cont := ShouldRun(n, ds)
		states = append(states, NodeState{Node: n.Name, ShouldRun: run, ShouldContinue: cont, Pods: byNode[n.Name]})
		seen[n.Name] = true
	}
	for n, ps := range byNode {
		if !seen[n] {
			states = append(states, NodeState{Node: n, Pods: ps})
		}
	}
	return states
}

func (c *Controller) act(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, plan Plan) []error {
	if len(plan.Create) == 0 && len(plan.Delete) == 0 {
		return nil
	}
	c.expect.Expect(key, len(plan.Create), len(plan.Delete))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, node := range plan.Create {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := newPod(ds, hash, node)
			if _, err := c.podCtrl.CreatePod(ctx, p, ds); err != nil {
				c.expect.CreationObserved(key)
				mu.Lock()
				errs = append(errs, fmt.Errorf("create daemon pod for node %s: %w", node, err))
				mu.Unlock()
			}
		}()
	}
	for _, p := range plan.Delete {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.podCtrl.DeletePod(ctx, p.Namespace, p.Name, ds); err != nil {
				c.expect.DeletionObserved(key)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.log.Info("synced daemon pods", "daemonset", key, "created", len(plan.Create), "deleted", len(plan.Delete))
	return errs
}

// newPod is the daemon pod for node: the template, the revision hash, the
// default daemon tolerations and a required affinity to the node by name.
func newPod(ds *appsv1.DaemonSet, hash, node string) *corev1.Pod {
	p := controller.PodFromTemplate(&ds.Spec.Template, ds, metav1.NewControllerRef(ds, controllerKind))
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[hashLabel] = hash
	p.Labels[templateGenerationLabel] = strconv.FormatInt(ds.Generation, 10)
	AddDaemonTolerations(&p.Spec)
	pinToNode(&p.Spec, node)
	return p
}

func (c *Controller) claimPods(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(ds.Namespace).List(labels.Everything())
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
		Owner: ds, OwnerRef: *metav1.NewControllerRef(ds, controllerKind), Selector: sel,
		CanAdopt: controller.RecheckOwner(ds, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
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

// ComputeStatus is the set's status from the node states.
func ComputeStatus(ds *appsv1.DaemonSet, states []NodeState, hash string, collisions int32, now time.Time) appsv1.DaemonSetStatus {
	st := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: &collisions, Conditions: ds.Status.Conditions}
	for _, s := range states {
		var pod *corev1.Pod
		for _, p := range s.Pods {
			if p.DeletionTimestamp == nil && !controller.IsPodTerminal(p) {
				if pod == nil || hashOf(p) == hash {
					pod = p
				}
			}
		}
		if s.ShouldRun {
			st.DesiredNumberScheduled++
			if pod != nil {
				st.CurrentNumberScheduled++
				if controller.IsPodReady(pod) {
					st.NumberReady++
					if controller.IsPodAvailable(pod, ds.Spec.MinReadySeconds, now) {
						st.NumberAvailable++
					}
				}
				if hashOf(pod) == hash {
					st.UpdatedNumberScheduled++
				}
			}
		} else if pod != nil {
			st.NumberMisscheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	return st
}

func (c *Controller) updateStatus(ctx context.Context, cached *appsv1.DaemonSet, states []NodeState, hash string, collisions int32, now time.Time) error {
	st := ComputeStatus(cached, states, hash, collisions, now)
	old := cached.Status
	if old.CollisionCount != nil && old.ObservedGeneration == st.ObservedGeneration && old.DesiredNumberScheduled == st.DesiredNumberScheduled &&
		old.CurrentNumberScheduled == st.CurrentNumberScheduled && old.NumberMisscheduled == st.NumberMisscheduled &&
		old.NumberReady == st.NumberReady && old.NumberAvailable == st.NumberAvailable && old.NumberUnavailable == st.NumberUnavailable &&
		old.UpdatedNumberScheduled == st.UpdatedNumberScheduled && *old.CollisionCount == *st.CollisionCount {
		return nil
	}
	ds := cached.DeepCopy()
	ds.Status = st
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	if ds.Spec.MinReadySeconds > 0 && st.NumberAvailable < st.NumberReady {
		c.queue.AddAfter(controller.KeyFunc(ds), time.Duration(ds.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}
