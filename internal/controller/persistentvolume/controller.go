package persistentvolume

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	storageinformers "k8s.io/client-go/informers/storage/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Event reasons, as upstream's volume events.
const (
	EventFailedBinding        = "FailedBinding"
	EventVolumeMismatch       = "VolumeMismatch"
	EventClaimLost            = "ClaimLost"
	EventVolumeDelete         = "VolumeDelete"
	EventVolumeFailedDelete   = "VolumeFailedDelete"
	EventVolumeFailedRecycle  = "VolumeFailedRecycle"
	EventWaitForFirstConsumer = "WaitForFirstConsumer"
	EventProvisioningFailed   = "ProvisioningFailed"
	EventExternalProvisioning = "ExternalProvisioning"
)

// ResyncPeriod is how often every claim and volume is synced again, as
// upstream's --pvclaimbinder-sync-period default.
const ResyncPeriod = 15 * time.Second

// key is a queue item: a claim ("ns/name") or a volume ("name").
type key struct {
	volume bool
	name   string
}

// Controller is the persistentvolume-binder controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	volumes  corelisters.PersistentVolumeLister
	claims   corelisters.PersistentVolumeClaimLister
	classes  storagelisters.StorageClassLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[key]
	// bindMu serialises binding so two workers never hand one volume to
	// two claims from the same stale cache.
	bindMu sync.Mutex
}

// New builds the controller on the volume, claim and StorageClass
// informers. recorder and log may be nil.
func New(pvs coreinformers.PersistentVolumeInformer, pvcs coreinformers.PersistentVolumeClaimInformer,
	classes storageinformers.StorageClassInformer, client kubernetes.Interface, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client: client, recorder: recorder, log: log.With("controller", "persistentvolume-binder"),
		volumes: pvs.Lister(), claims: pvcs.Lister(), classes: classes.Lister(),
		synced: []cache.InformerSynced{pvs.Informer().HasSynced, pvcs.Informer().HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "persistentvolume-binder"}),
	}
	volume := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		v, ok := obj.(*corev1.PersistentVolume)
		if !ok {
			return
		}
		c.queue.Add(key{volume: true, name: v.Name})
		// A volume's change may let a claim bind or make it Lost.
		if ref := v.Spec.ClaimRef; ref != nil {
			c.queue.Add(key{name: ref.Namespace + "/" + ref.Name})
		}
		// A volume that became free may fit a claim that found none.
		if (v.Spec.ClaimRef == nil || v.Spec.ClaimRef.UID == "") && v.Status.Phase == corev1.VolumeAvailable && v.DeletionTimestamp == nil {
			c.enqueueUnboundClaims()
		}
	}
	claim := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		c.queue.Add(key{name: controller.KeyFunc(pvc)})
		if pvc.Spec.VolumeName != "" {
			c.queue.Add(key{volume: true, name: pvc.Spec.VolumeName})
		}
	}
	_, _ = pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: volume, UpdateFunc: func(_, n any) { volume(n) }, DeleteFunc: volume,
	})
	claimDeleted := func(obj any) {
		claim(obj)
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		// The cache may not have seen the claim's volumeName yet: find the
		// volumes whose claimRef names it.
		list, err := c.volumes.List(labels.Everything())
		if err != nil {
			return
		}
		for _, v := range list {
			if ref := v.Spec.ClaimRef; ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name {
				c.queue.Add(key{volume: true, name: v.Name})
			}
		}
	}
	_, _ = pvcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: claim, UpdateFunc: func(_, n any) { claim(n) }, DeleteFunc: claimDeleted,
	})
	// A new or changed class may decide how pending claims bind.
	classChanged := func(any) { c.enqueueUnboundClaims() }
	_, _ = classes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: classChanged, UpdateFunc: func(_, n any) { classChanged(n) },
	})
	return c
}

// enqueueUnboundClaims queues every claim that has no volume yet.
func (c *Controller) enqueueUnboundClaims() {
	list, err := c.claims.List(labels.Everything())
	if err != nil {
		return
	}
	for _, pvc := range list {
		if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
			c.queue.Add(key{name: controller.KeyFunc(pvc)})
		}
	}
}

// resync queues every claim and volume, as upstream's periodic sync does,
// so that nothing waits forever on an event that was missed.
func (c *Controller) resync() {
	claims, err := c.claims.List(labels.Everything())
	if err == nil {
		for _, pvc := range claims {
			c.queue.Add(key{name: controller.KeyFunc(pvc)})
		}
	}
	volumes, err := c.volumes.List(labels.Everything())
	if err == nil {
		for _, v := range volumes {
			c.queue.Add(key{volume: true, name: v.Name})
		}
	}
}

// Run processes claims and volumes with workers goroutines until ctx ends,
// queueing everything again every ResyncPeriod.
func (c *Controller) Run(ctx context.Context, workers int) {
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			return
		}
		wait.Until(c.resync, ResyncPeriod, ctx.Done())
	}()
	controller.RunWorkers(ctx, "persistentvolume-binder", c.queue, workers, c.sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelInfo}, c.synced...)
}

func (c *Controller) sync(ctx context.Context, k key) error {
	if k.volume {
		return c.SyncVolume(ctx, k.name)
	}
	return c.SyncClaim(ctx, k.name)
}

// SyncClaim brings the claim named by key ("ns/name") towards Bound.
func (c *Controller) SyncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Its volume's sync releases the volume.
		return nil
	}
	if err != nil {
		return err
	}
	if claim.DeletionTimestamp != nil && claim.Spec.VolumeName == "" {
		return nil
	}
	if claim.Annotations[AnnBindCompleted] == "" {
		return c.syncUnboundClaim(ctx, claim)
	}
	return c.syncBoundClaim(ctx, claim)
}

func (c *Controller) classMap() (map[string]*storagev1.StorageClass, []*storagev1.StorageClass, error) {
	list, err := c.classes.List(labels.Everything())
	if err != nil {
		return nil, nil, fmt.Errorf("list storage classes: %w", err)
	}
	m := make(map[string]*storagev1.StorageClass, len(list))
	for _, sc := range list {
		m[sc.Name] = sc
	}
	return m, list, nil
}

func (c *Controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	classes, classList, err := c.classMap()
	if err != nil {
		return err
	}
	// As upstream, a claim without a class retroactively gets the default
	// one; the update brings the claim back with its class set.
	if claim.Spec.StorageClassName == nil && claim.Annotations[annBetaStorageClass] == "" {
		if def := DefaultClass(classList); def != "" {
			upd := claim.DeepCopy()
			upd.Spec.StorageClassName = ptr.To(def)
			if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("set default storage class on claim %s: %w", controller.KeyFunc(claim), err)
			}
			c.log.Info("assigned default storage class", "claim", controller.KeyFunc(claim), "class", def)
			return nil
		}
	}
	c.bindMu.Lock()
	defer c.bindMu.Unlock()
	if claim.Spec.VolumeName == "" {
		delay := IsDelayBinding(claim, classes)
		volumes, err := c.volumes.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("list volumes: %w", err)
		}
		v := FindBestMatch(claim, volumes, delay)
		if v != nil {
			return c.bind(ctx, v, claim)
		}
		class := ClaimClass(claim)
		switch {
		case delay:
			c.recorder.Event(claim, corev1.EventTypeNormal, EventWaitForFirstConsumer, "waiting for first consumer to be created before binding")
		case class != "":
			if sc, ok := classes[class]; !ok {
				c.recorder.Event(claim, corev1.EventTypeWarning, EventProvisioningFailed, fmt.Sprintf("storageclass.storage.k8s.io %q not found", class))
			} else {
				c.recorder.Event(claim, corev1.EventTypeNormal, EventExternalProvisioning,
					fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", sc.Provisioner))
			}
		default:
			c.recorder.Event(claim, corev1.EventTypeNormal, EventFailedBinding, "no persistent volumes available for this claim and no storage class is set")
		}
		return c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
	}
	// Pre-bound by the user to one volume.
	v, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
	}
	if err != nil {
		return err
	}
	switch {
	case v.Spec.ClaimRef == nil:
		if why := CheckSatisfies(claim, v); why != "" {
			c.recorder.Event(claim, corev1.EventTypeWarning, EventVolumeMismatch,
				fmt.Sprintf("Cannot bind to requested volume %q: %s", v.Name, why))
			return c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		}
		return c.bind(ctx, v, claim)
	case IsBoundToClaim(v, claim):
		return c.bind(ctx, v, claim)
	default:
		if claim.Annotations[AnnBoundByController] == "" {
			c.recorder.Event(claim, corev1.EventTypeWarning, EventFailedBinding,
				fmt.Sprintf("volume %q already bound to a different claim.", v.Name))
		}
		return c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
	}
}

func (c *Controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		return c.claimLost(ctx, claim, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	}
	v, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.claimLost(ctx, claim, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
	}
	if err != nil {
		return err
	}
	if v.Spec.ClaimRef == nil || v.Spec.ClaimRef.UID == claim.UID ||
		(v.Spec.ClaimRef.UID == "" && IsBoundToClaim(v, claim)) {
		// Bound, or the volume lost its side: finish or redo the binding.
		c.bindMu.Lock()
		defer c.bindMu.Unlock()
		return c.bind(ctx, v, claim)
	}
	return c.claimLost(ctx, claim, "Two claims are bound to the same volume, this one is bound incorrectly")
}

func (c *Controller) claimLost(ctx context.Context, claim *corev1.PersistentVolumeClaim, msg string) error {
	if claim.Status.Phase == corev1.ClaimLost {
		return nil
	}
	if err := c.updateClaimStatus(ctx, claim, corev1.ClaimLost, nil); err != nil {
		return err
	}
	c.recorder.Event(claim, corev1.EventTypeWarning, EventClaimLost, msg)
	c.log.Info("claim lost its volume", "claim", controller.KeyFunc(claim), "volume", claim.Spec.VolumeName)
	return nil
}

// bind writes the binding in upstream's order: the volume's claimRef, the
// volume's phase, the claim's volumeName and annotations, the claim's
// status. Each step is skipped when already done, so a failed bind is
// finished by the next sync.
func (c *Controller) bind(ctx context.Context, v *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	v, err := c.bindVolumeToClaim(ctx, v, claim)
	if err != nil {
		return err
	}
	if v, err = c.updateVolumePhase(ctx, v, corev1.VolumeBound); err != nil {
		return err
	}
	claim, err = c.bindClaimToVolume(ctx, claim, v)
	if err != nil {
		return err
	}
	return c.updateClaimStatus(ctx, claim, corev1.ClaimBound, v)
}

func (c *Controller) bindVolumeToClaim(ctx context.Context, v *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	ref := v.Spec.ClaimRef
	byController := !IsBoundToClaim(v, claim)
	if ref != nil && ref.UID == claim.UID && ref.Namespace == claim.Namespace && ref.Name == claim.Name {
		return v, nil
	}
	upd := v.DeepCopy()
	upd.Spec.ClaimRef = &corev1.ObjectReference{
		Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name,
		UID: claim.UID, ResourceVersion: claim.ResourceVersion,
	}
	if byController {
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		upd.Annotations[AnnBoundByController] = "yes"
	}
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("bind volume %s to claim %s: %w", v.Name, controller.KeyFunc(claim), err)
	}
	c.log.Info("bound volume to claim", "volume", v.Name, "claim", controller.KeyFunc(claim))
	return out, nil
}

func (c *Controller) bindClaimToVolume(ctx context.Context, claim *corev1.PersistentVolumeClaim, v *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	if claim.Spec.VolumeName == v.Name && claim.Annotations[AnnBindCompleted] == "yes" {
		return claim, nil
	}
	upd := claim.DeepCopy()
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	if upd.Spec.VolumeName != v.Name {
		upd.Spec.VolumeName = v.Name
		upd.Annotations[AnnBoundByController] = "yes"
	}
	upd.Annotations[AnnBindCompleted] = "yes"
	out, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("bind claim %s to volume %s: %w", controller.KeyFunc(claim), v.Name, err)
	}
	return out, nil
}

// updateClaimStatus sets the claim's phase and, for a bound claim, the
// volume's capacity and access modes; it writes only on change.
func (c *Controller) updateClaimStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, v *corev1.PersistentVolume) error {
	upd := claim.DeepCopy()
	upd.Status.Phase = phase
	if v != nil {
		upd.Status.AccessModes = append([]corev1.PersistentVolumeAccessMode(nil), v.Spec.AccessModes...)
		if q, ok := v.Spec.Capacity[corev1.ResourceStorage]; ok {
			upd.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: q}
		}
	}
	if claimStatusEqual(&claim.Status, &upd.Status) {
		return nil
	}
	if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update claim %s status to %s: %w", controller.KeyFunc(claim), phase, err)
	}
	return nil
}

func claimStatusEqual(a, b *corev1.PersistentVolumeClaimStatus) bool {
	if a.Phase != b.Phase || len(a.AccessModes) != len(b.AccessModes) || len(a.Capacity) != len(b.Capacity) {
		return false
	}
	for i := range a.AccessModes {
		if a.AccessModes[i] != b.AccessModes[i] {
			return false
		}
	}
	for k, q := range a.Capacity {
		if bq, ok := b.Capacity[k]; !ok || bq.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func (c *Controller) updateVolumePhase(ctx context.Context, v *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) (*corev1.PersistentVolume, error) {
	return c.updateVolumePhaseMessage(ctx, v, phase, "")
}

func (c *Controller) updateVolumePhaseMessage(ctx context.Context, v *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) (*corev1.PersistentVolume, error) {
	if v.Status.Phase == phase && v.Status.Message == msg {
		return v, nil
	}
	upd := v.DeepCopy()
	upd.Status.Phase = phase
	upd.Status.Message = msg
	now := metav1.Now()
	upd.Status.LastPhaseTransitionTime = &now
	out, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update volume %s phase to %s: %w", v.Name, phase, err)
	}
	return out, nil
}

// SyncVolume keeps the named volume's phase in step with its claim, and
// releases and reclaims it once its claim is gone.
func (c *Controller) SyncVolume(ctx context.Context, name string) error {
	v, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ref := v.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Unused, or pre-bound to a claim not bound yet.
		if v.DeletionTimestamp != nil {
			return nil
		}
		_, err := c.updateVolumePhase(ctx, v, corev1.VolumeAvailable)
		return err
	}
	claim, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if apierrors.IsNotFound(err) {
		// The cache may lag: ask the API server before releasing.
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get claim %s/%s of volume %s: %w", ref.Namespace, ref.Name, name, err)
		}
		if err != nil {
			claim = nil
		}
	}
	if claim != nil && claim.UID != ref.UID {
		// A new claim of the same name: the bound one was deleted.
		claim = nil
	}
	if claim == nil {
		return c.release(ctx, v)
	}
	switch {
	case claim.Spec.VolumeName == "":
		if modesMismatch(claim, v) {
			c.recorder.Event(v, corev1.EventTypeWarning, EventVolumeMismatch,
				fmt.Sprintf("Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", claim.Name))
			return nil
		}
		// Binding in progress or dangling: the claim's sync finishes it.
		c.queue.Add(key{name: controller.KeyFunc(claim)})
		return nil
	case claim.Spec.VolumeName == v.Name:
		_, err := c.updateVolumePhase(ctx, v, corev1.VolumeBound)
		return err
	default:
		// The claim went to another volume: give this one back.
		return c.unbind(ctx, v)
	}
}

// unbind undoes the controller's claimRef, or only the uid of a user's
// pre-binding, and makes the volume Available again.
func (c *Controller) unbind(ctx context.Context, v *corev1.PersistentVolume) error {
	upd := v.DeepCopy()
	if upd.Annotations[AnnBoundByController] != "" {
		upd.Spec.ClaimRef = nil
		delete(upd.Annotations, AnnBoundByController)
	} else {
		upd.Spec.ClaimRef.UID = ""
		upd.Spec.ClaimRef.ResourceVersion = ""
	}
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("unbind volume %s: %w", v.Name, err)
	}
	c.log.Info("unbound volume", "volume", v.Name)
	_, err = c.updateVolumePhase(ctx, out, corev1.VolumeAvailable)
	return err
}

// release marks a volume whose claim is gone Released and applies its
// reclaim policy: Retain keeps it, Delete deletes the API object (the
// volumes Skiff supports, hostPath and local, have no storage for the
// controller to free), Recycle is not supported and fails the volume.
func (c *Controller) release(ctx context.Context, v *corev1.PersistentVolume) error {
	if v.Status.Phase == corev1.VolumeFailed {
		return nil
	}
	v, err := c.updateVolumePhase(ctx, v, corev1.VolumeReleased)
	if err != nil {
		return err
	}
	switch v.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain, "":
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		if v.DeletionTimestamp != nil {
			return nil
		}
		err := c.client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &v.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			c.recorder.Event(v, corev1.EventTypeWarning, EventVolumeFailedDelete, err.Error())
			return fmt.Errorf("delete released volume %s: %w", v.Name, err)
		}
		c.log.Info("deleted released volume", "volume", v.Name)
		return nil
	default:
		const msg = "No recycler plugin found for the volume!"
		if _, err := c.updateVolumePhaseMessage(ctx, v, corev1.VolumeFailed, msg); err != nil {
			return err
		}
		c.recorder.Event(v, corev1.EventTypeWarning, EventVolumeFailedRecycle, msg)
		return nil
	}
}
