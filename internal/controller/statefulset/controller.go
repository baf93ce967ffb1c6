package statefulset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
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

var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Label keys upstream puts on a StatefulSet's pods.
const (
	podNameLabel  = appsv1.StatefulSetPodNameLabel // statefulset.kubernetes.io/pod-name
	podIndexLabel = appsv1.PodIndexLabel           // apps.kubernetes.io/pod-index
)

// Controller is the statefulset controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.Clock

	sets    appslisters.StatefulSetLister
	pods    corelisters.PodLister
	claims  corelisters.PersistentVolumeClaimLister
	revs    appslisters.ControllerRevisionLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	podCtrl controller.PodControl
}

// New builds the controller on the given informers. clk may be nil.
func New(sets appsinformers.StatefulSetInformer, pods coreinformers.PodInformer, claims coreinformers.PersistentVolumeClaimInformer, revs appsinformers.ControllerRevisionInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger, clk clock.Clock) *Controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		client: client, recorder: recorder, log: log.With("controller", "statefulset"), clock: clk,
		sets: sets.Lister(), pods: pods.Lister(), claims: claims.Lister(), revs: revs.Lister(),
		synced: []cache.InformerSynced{sets.Informer().HasSynced, pods.Informer().HasSynced, claims.Informer().HasSynced, revs.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"}),
		podCtrl: controller.PodControl{Client: client, Recorder: recorder},
	}
	enqueueSet := func(obj any) {
		if s, ok := obj.(*appsv1.StatefulSet); ok {
			c.queue.Add(controller.KeyFunc(s))
		}
	}
	_, _ = sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueSet,
		UpdateFunc: func(_, n any) { enqueueSet(n) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			enqueueSet(obj)
		},
	})
	_, _ = pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: func(o, n any) { c.enqueueOwner(o); c.enqueueOwner(n) },
		DeleteFunc: c.enqueueOwner,
	})
	return c
}

// enqueueOwner queues the set controlling a pod (or, for an orphan, every
// set whose selector matches it, so it can be adopted).
func (c *Controller) enqueueOwner(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if ref.Kind == controllerKind.Kind && ref.APIVersion == controllerKind.GroupVersion().String() {
			c.queue.Add(p.Namespace + "/" + ref.Name)
		}
		return
	}
	sets, err := c.sets.StatefulSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range sets {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			c.queue.Add(controller.KeyFunc(s))
		}
	}
}

// Run syncs sets with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "statefulset", c.queue, workers, c.Sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo, Key: "statefulset"}, c.synced...)
}

// Sync moves one set a step toward its spec.
func (c *Controller) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	set := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		c.recorder.Eventf(set, corev1.EventTypeWarning, "InvalidSelector", "invalid selector: %v", err)
		return nil
	}
	pods, err := c.claimPods(ctx, set, sel)
	if err != nil {
		return err
	}
	if set.DeletionTimestamp != nil {
		return nil
	}
	revs, err := c.revs.ControllerRevisions(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned := history.Owned(revs, set)
	history.Sort(owned)
	data, err := history.TemplatePatch(&set.Spec.Template)
	if err != nil {
		return err
	}
	collisions := int32(0)
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	res, err := history.Ensure(ctx, c.client, set, *metav1.NewControllerRef(set, controllerKind), set.Spec.Template.Labels, data, owned, collisions)
	if err != nil {
		return err
	}
	updateRev := res.Update
	currentRev := updateRev
	for _, r := range owned {
		if r.Name == set.Status.CurrentRevision {
			currentRev = r
		}
	}

	plan := Decide(PlanInput{Set: set, Pods: pods, UpdateRevision: updateRev.Name, Now: c.clock.Now()})
	if plan.RequeueAfter > 0 {
		// A Ready pod becomes available with no event of its own.
		c.queue.AddAfter(key, plan.RequeueAfter)
	}
	var errs []error
	for _, p := range plan.Delete {
		if err := c.condemnClaims(ctx, set, p); err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("deleting pod", "statefulset", key, "pod", p.Name)
		if err := c.podCtrl.DeletePod(ctx, p.Namespace, p.Name, set); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ord := range plan.Create {
		rev := updateRev
		if UseCurrentRevision(set, ord) {
			rev = currentRev
		}
		if err := c.createPod(ctx, set, rev, ord); err != nil {
			errs = append(errs, err)
		}
	}

	live := map[string]bool{currentRev.Name: true, updateRev.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	limit := int32(10)
	if set.Spec.RevisionHistoryLimit != nil {
		limit = *set.Spec.RevisionHistoryLimit
	}
	owned = history.Owned(revs, set)
	history.Sort(owned)
	if err := history.Truncate(ctx, c.client, owned, live, limit); err != nil {
		errs = append(errs, err)
	}
	if err := c.updateStatus(ctx, cached, pods, currentRev.Name, updateRev.Name, res.CollisionCount); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	// Only pods named like the set's pods can belong to it, as upstream.
	var objs []metav1.Object
	byName := map[string]*corev1.Pod{}
	for _, p := range all {
		if ParseOrdinal(set.Name, p.Name) < 0 {
			continue
		}
		objs = append(objs, p)
		byName[p.Name] = p
	}
	cl := &controller.Claimer{
		Owner: set, OwnerRef: *metav1.NewControllerRef(set, controllerKind), Selector: sel,
		CanAdopt: controller.RecheckOwner(set, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
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

// claimName is the PVC a set's pod uses for a volume claim template.
func claimName(tmpl *corev1.PersistentVolumeClaim, pod string) string {
	return tmpl.Name + "-" + pod
}

// newPod builds the pod with ordinal ord from the revision's template.
func newPod(set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, ord int) (*corev1.Pod, error) {
	tmpl := &set.Spec.Template
	if rev != nil {
		t, err := history.Template(rev)
		if err != nil {
			return nil, err
		}
		tmpl = t
	}
	p := controller.PodFromTemplate(tmpl, set, metav1.NewControllerRef(set, controllerKind))
	p.GenerateName = ""
	p.Name = PodName(set.Name, ord)
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[podNameLabel] = p.Name
	p.Labels[podIndexLabel] = fmt.Sprint(ord)
	if rev != nil {
		p.Labels[appsv1.StatefulSetRevisionLabel] = rev.Name
	}
	p.Spec.Hostname = p.Name
	if set.Spec.ServiceName != "" {
		p.Spec.Subdomain = set.Spec.ServiceName
	}
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		vol := corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(t, p.Name)},
		}}
		replaced := false
		for j := range p.Spec.Volumes {
			if p.Spec.Volumes[j].Name == t.Name {
				p.Spec.Volumes[j] = vol
				replaced = true
			}
		}
		if !replaced {
			p.Spec.Volumes = append(p.Spec.Volumes, vol)
		}
	}
	return p, nil
}

func (c *Controller) createPod(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, ord int) error {
	p, err := newPod(set, rev, ord)
	if err != nil {
		return err
	}
	if err := c.ensureClaims(ctx, set, p.Name); err != nil {
		return err
	}
	if _, err := c.podCtrl.CreatePod(ctx, p, set); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil // the cache lags; the next sync sees it
		}
		return fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.log.Info("created pod", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name, "revision", rev.Name)
	return nil
}

func retention(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	if set.Spec.PersistentVolumeClaimRetentionPolicy == nil {
		return appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		}
	}
	return *set.Spec.PersistentVolumeClaimRetentionPolicy
}

// ensureClaims creates the pod's missing PVCs. They outlive the pod; with
// whenDeleted: Delete the set owns them so that the garbage collector
// removes them with the set.
func (c *Controller) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, pod string) error {
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(t, pod)
		if _, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name); err == nil {
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: set.Namespace,
				Labels:      maps.Clone(t.Labels),
				Annotations: maps.Clone(t.Annotations),
			},
			Spec: *t.Spec.DeepCopy(),
		}
		if pvc.Labels == nil {
			pvc.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			maps.Copy(pvc.Labels, set.Spec.Selector.MatchLabels)
		}
		if retention(set).WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			ref := *metav1.NewControllerRef(set, controllerKind)
			ref.Controller = nil
			pvc.OwnerReferences = []metav1.OwnerReference{ref}
		}
		_, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", name, pod, set.Name, err)
			return fmt.Errorf("create claim %s/%s: %w", set.Namespace, name, err)
		}
		if err == nil {
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", name, pod, set.Name)
		}
	}
	return nil
}

// condemnClaims gives a pod that is scaled away ownership of its PVCs
// when whenScaled is Delete, so they go with it.
func (c *Controller) condemnClaims(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	if retention(set).WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		return nil
	}
	ord := ParseOrdinal(set.Name, p.Name)
	if ord >= startOrdinal(set) && ord < startOrdinal(set)+replicas(set) {
		return nil
	}
	for i := range set.Spec.VolumeClaimTemplates {
		name := claimName(&set.Spec.VolumeClaimTemplates[i], p.Name)
		pvc, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name)
		if err != nil {
			continue
		}
		owned := false
		for _, r := range pvc.OwnerReferences {
			owned = owned || r.UID == p.UID
		}
		if owned {
			continue
		}
		cp := pvc.DeepCopy()
		cp.OwnerReferences = append(cp.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID})
		if _, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Update(ctx, cp, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("hand claim %s/%s to its pod: %w", set.Namespace, name, err)
		}
	}
	return nil
}

// updateStatus recomputes the set's status from its pods and writes it when
// it changed.
func (c *Controller) updateStatus(ctx context.Context, cached *appsv1.StatefulSet, pods []*corev1.Pod, currentRev, updateRev string, collisions int32) error {
	st := ComputeStatus(cached, pods, currentRev, updateRev, collisions, c.clock.Now())
	if equalStatus(&cached.Status, &st) {
		return nil
	}
	set := cached.DeepCopy()
	set.Status = st
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	return nil
}

// ComputeStatus is the set's status given its pods and revisions. When a
// rolling update has replaced every pod and they are all ready, the update
// revision becomes the current one.
func ComputeStatus(set *appsv1.StatefulSet, pods []*corev1.Pod, currentRev, updateRev string, collisions int32, now time.Time) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    currentRev,
		UpdateRevision:     updateRev,
		CollisionCount:     &collisions,
		Conditions:         set.Status.Conditions,
	}
	for _, p := range pods {
		st.Replicas++
		if runningAndReady(p) {
			st.ReadyReplicas++
			if controller.IsPodAvailable(p, set.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
		if terminating(p) {
			continue
		}
		switch revisionOf(p) {
		case currentRev:
			st.CurrentReplicas++
			if currentRev == updateRev {
				st.UpdatedReplicas++
			}
		case updateRev:
			st.UpdatedReplicas++
		}
	}
	if set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType &&
		st.UpdatedReplicas == int32(replicas(set)) && st.ReadyReplicas == int32(replicas(set)) && st.Replicas == int32(replicas(set)) {
		st.CurrentRevision = updateRev
		st.CurrentReplicas = st.UpdatedReplicas
	}
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType && st.UpdatedReplicas == int32(replicas(set)) && st.Replicas == int32(replicas(set)) {
		st.CurrentRevision = updateRev
		st.CurrentReplicas = st.UpdatedReplicas
	}
	return st
}

func equalStatus(a, b *appsv1.StatefulSetStatus) bool {
	ac, bc := int32(0), int32(0)
	if a.CollisionCount != nil {
		ac = *a.CollisionCount
	}
	if b.CollisionCount != nil {
		bc = *b.CollisionCount
	}
	return a.ObservedGeneration == b.ObservedGeneration && a.Replicas == b.Replicas && a.ReadyReplicas == b.ReadyReplicas &&
		a.CurrentReplicas == b.CurrentReplicas && a.UpdatedReplicas == b.UpdatedReplicas && a.AvailableReplicas == b.AvailableReplicas &&
		a.CurrentRevision == b.CurrentRevision && a.UpdateRevision == b.UpdateRevision && ac == bc && a.CollisionCount != nil && b.CollisionCount != nil
}
