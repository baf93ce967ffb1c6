package persistentvolume

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	c        *Controller
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(20)
	c := New(f.Core().V1().PersistentVolumes(), f.Core().V1().PersistentVolumeClaims(), f.Storage().V1().StorageClasses(),
		client, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.PersistentVolume:
			err = f.Core().V1().PersistentVolumes().Informer().GetIndexer().Add(o)
		case *corev1.PersistentVolumeClaim:
			err = f.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(o)
		case *storagev1.StorageClass:
			err = f.Storage().V1().StorageClasses().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &fixture{t: t, client: client, c: c, recorder: rec}
}

func (f *fixture) pv(name string) *corev1.PersistentVolume {
	f.t.Helper()
	v, err := f.client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get pv %s: %v", name, err)
	}
	return v
}

func (f *fixture) pvc(name string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	c, err := f.client.CoreV1().PersistentVolumeClaims("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get pvc %s: %v", name, err)
	}
	return c
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// writes lists the update actions as "verb resource[/status]".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		s := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			s += "/" + a.GetSubresource()
		}
		out = append(out, s)
	}
	return out
}

func TestSyncClaimBindsSmallestVolume(t *testing.T) {
	f := newFixture(t, newPV("big", "5Gi"), newPV("fit", "2Gi"), newPVC("data", "1Gi"))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.writes(), ", ")
	want := "update persistentvolumes, update persistentvolumes/status, update persistentvolumeclaims, update persistentvolumeclaims/status"
	if got != want {
		t.Errorf("got writes %q, want %q", got, want)
	}
	v := f.pv("fit")
	wantRef := corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "ns", Name: "data", UID: "claim-uid-data", ResourceVersion: "7"}
	if v.Spec.ClaimRef == nil || *v.Spec.ClaimRef != wantRef {
		t.Errorf("got claimRef %+v, want %+v", v.Spec.ClaimRef, wantRef)
	}
	if v.Annotations[AnnBoundByController] != "yes" || v.Status.Phase != corev1.VolumeBound {
		t.Errorf("got volume annotations %v phase %s, want bound-by-controller and Bound", v.Annotations, v.Status.Phase)
	}
	if f.pv("big").Spec.ClaimRef != nil {
		t.Errorf("bigger volume got bound too")
	}
	c := f.pvc("data")
	if c.Spec.VolumeName != "fit" || c.Annotations[AnnBindCompleted] != "yes" || c.Annotations[AnnBoundByController] != "yes" {
		t.Errorf("got claim volumeName %q annotations %v", c.Spec.VolumeName, c.Annotations)
	}
	q := c.Status.Capacity[corev1.ResourceStorage]
	if c.Status.Phase != corev1.ClaimBound || q.String() != "2Gi" || len(c.Status.AccessModes) != 1 || c.Status.AccessModes[0] != rwo {
		t.Errorf("got claim status %+v, want Bound 2Gi [RWO]", c.Status)
	}

	// A second sync from the bound state writes nothing.
	f2 := newFixture(t, v, c)
	if err := f2.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if w := f2.writes(); len(w) != 0 {
		t.Errorf("resync of bound claim: got writes %v, want none", w)
	}
	if err := f2.c.SyncVolume(context.Background(), "fit"); err != nil {
		t.Fatal(err)
	}
	if w := f2.writes(); len(w) != 0 {
		t.Errorf("resync of bound volume: got writes %v, want none", w)
	}
}

func TestSyncClaimNoVolume(t *testing.T) {
	f := newFixture(t, newPV("small", "1Gi"), newPVC("data", "3Gi"))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("got writes %v, want none", w)
	}
	ev := f.events()
	want := "Normal FailedBinding no persistent volumes available for this claim and no storage class is set"
	if len(ev) != 1 || ev[0] != want {
		t.Errorf("got events %q, want %q", ev, want)
	}
}

func TestSyncClaimWaitForFirstConsumer(t *testing.T) {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "kubernetes.io/no-provisioner",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}
	f := newFixture(t, sc, newPV("v", "1Gi", pvClass("local")), newPVC("data", "1Gi", pvcClass("local")))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("got writes %v, want none", w)
	}
	ev := f.events()
	want := "Normal WaitForFirstConsumer waiting for first consumer to be created before binding"
	if len(ev) != 1 || ev[0] != want {
		t.Errorf("got events %q, want %q", ev, want)
	}
}

func TestSyncClaimImmediateClass(t *testing.T) {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "manual"}, Provisioner: "kubernetes.io/no-provisioner"}
	f := newFixture(t, sc, newPV("v", "1Gi", pvClass("manual")), newPVC("data", "1Gi", pvcClass("manual")))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if got := f.pvc("data").Spec.VolumeName; got != "v" {
		t.Errorf("got volumeName %q, want v", got)
	}
}

func TestSyncClaimDefaultClass(t *testing.T) {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "std", Annotations: map[string]string{AnnDefaultStorageClass: "true"}},
		Provisioner: "kubernetes.io/no-provisioner"}
	f := newFixture(t, sc, newPVC("data", "1Gi"))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if got := f.pvc("data").Spec.StorageClassName; got == nil || *got != "std" {
		t.Errorf("got storageClassName %v, want std", got)
	}
	// Without a default, a nil class stays nil and binds to a classless volume.
	f = newFixture(t, newPV("v", "1Gi"), newPVC("data", "1Gi"))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if c := f.pvc("data"); c.Spec.StorageClassName != nil || c.Spec.VolumeName != "v" {
		t.Errorf("got class %v volume %q, want nil and v", c.Spec.StorageClassName, c.Spec.VolumeName)
	}
}

func TestSyncClaimPreBound(t *testing.T) {
	f := newFixture(t, newPV("small", "1Gi"), newPV("chosen", "8Gi"), newPVC("data", "1Gi", pvcVolume("chosen")))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	v := f.pv("chosen")
	if v.Spec.ClaimRef == nil || v.Spec.ClaimRef.Name != "data" || v.Status.Phase != corev1.VolumeBound {
		t.Errorf("got claimRef %v phase %s, want data and Bound", v.Spec.ClaimRef, v.Status.Phase)
	}
	c := f.pvc("data")
	if c.Annotations[AnnBoundByController] != "" || c.Annotations[AnnBindCompleted] != "yes" || c.Status.Phase != corev1.ClaimBound {
		t.Errorf("got claim annotations %v phase %s, want only bind-completed and Bound", c.Annotations, c.Status.Phase)
	}

	// A pre-bound claim to a volume that does not fit stays Pending.
	f = newFixture(t, newPV("tiny", "1Mi"), newPVC("data", "1Gi", pvcVolume("tiny")))
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning VolumeMismatch Cannot bind to requested volume \"tiny\"") {
		t.Errorf("got events %q, want VolumeMismatch", ev)
	}
	if f.pv("tiny").Spec.ClaimRef != nil {
		t.Errorf("mismatched volume got bound")
	}
}

func TestSyncClaimPreBoundVolume(t *testing.T) {
	// A volume whose claimRef names a claim binds only to that claim.
	f := newFixture(t, newPV("v", "1Gi", pvRef("ns", "mine", "")), newPVC("other", "1Gi"), newPVC("mine", "1Gi"))
	if err := f.c.SyncClaim(context.Background(), "ns/other"); err != nil {
		t.Fatal(err)
	}
	if got := f.pvc("other").Spec.VolumeName; got != "" {
		t.Errorf("other claim got volume %q", got)
	}
	if err := f.c.SyncClaim(context.Background(), "ns/mine"); err != nil {
		t.Fatal(err)
	}
	v := f.pv("v")
	if v.Spec.ClaimRef.UID != "claim-uid-mine" || v.Annotations[AnnBoundByController] != "" {
		t.Errorf("got claimRef %+v annotations %v, want uid of mine and no bound-by-controller", v.Spec.ClaimRef, v.Annotations)
	}
	if got := f.pvc("mine").Spec.VolumeName; got != "v" {
		t.Errorf("got volumeName %q, want v", got)
	}
}

func boundPair(policy corev1.PersistentVolumeReclaimPolicy) (*corev1.PersistentVolume, *corev1.PersistentVolumeClaim) {
	v := newPV("v", "1Gi", pvRef("ns", "data", "claim-uid-data"), pvPhase(corev1.VolumeBound))
	v.Spec.PersistentVolumeReclaimPolicy = policy
	v.Annotations = map[string]string{AnnBoundByController: "yes"}
	c := newPVC("data", "1Gi", pvcVolume("v"))
	c.Annotations = map[string]string{AnnBindCompleted: "yes", AnnBoundByController: "yes"}
	c.Status.Phase = corev1.ClaimBound
	return v, c
}

func TestSyncVolumeReleased(t *testing.T) {
	v, _ := boundPair(corev1.PersistentVolumeReclaimRetain)
	f := newFixture(t, v)
	if err := f.c.SyncVolume(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if got := f.pv("v").Status.Phase; got != corev1.VolumeReleased {
		t.Errorf("Retain: got phase %s, want Released", got)
	}

	v, _ = boundPair(corev1.PersistentVolumeReclaimDelete)
	f = newFixture(t, v)
	if err := f.c.SyncVolume(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.CoreV1().PersistentVolumes().Get(context.Background(), "v", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Delete: got %v, want volume deleted", err)
	}

	// A new claim of the same name is not the bound one.
	v, c := boundPair(corev1.PersistentVolumeReclaimRetain)
	c.UID = "recreated"
	f = newFixture(t, v, c)
	if err := f.c.SyncVolume(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if got := f.pv("v").Status.Phase; got != corev1.VolumeReleased {
		t.Errorf("recreated claim: got phase %s, want Released", got)
	}
	// A released volume is not bound again.
	if got := FindBestMatch(c, []*corev1.PersistentVolume{f.pv("v")}, false); got != nil {
		t.Errorf("released volume matched claim")
	}
}

func TestSyncVolumeAvailable(t *testing.T) {
	f := newFixture(t, newPV("v", "1Gi", pvPhase(corev1.VolumePending)))
	if err := f.c.SyncVolume(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if got := f.pv("v").Status.Phase; got != corev1.VolumeAvailable {
		t.Errorf("got phase %s, want Available", got)
	}
}

func TestSyncVolumeClaimBoundElsewhere(t *testing.T) {
	v, c := boundPair(corev1.PersistentVolumeReclaimRetain)
	c.Spec.VolumeName = "other"
	f := newFixture(t, v, c)
	if err := f.c.SyncVolume(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	got := f.pv("v")
	if got.Spec.ClaimRef != nil || got.Annotations[AnnBoundByController] != "" || got.Status.Phase != corev1.VolumeAvailable {
		t.Errorf("got claimRef %v annotations %v phase %s, want unbound Available", got.Spec.ClaimRef, got.Annotations, got.Status.Phase)
	}
}

func TestSyncClaimLost(t *testing.T) {
	_, c := boundPair(corev1.PersistentVolumeReclaimRetain)
	f := newFixture(t, c)
	if err := f.c.SyncClaim(context.Background(), "ns/data"); err != nil {
		t.Fatal(err)
	}
	if got := f.pvc("data").Status.Phase; got != corev1.ClaimLost {
		t.Errorf("got phase %s, want Lost", got)
	}
	want := "Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!"
	if ev := f.events(); len(ev) != 1 || ev[0] != want {
		t.Errorf("got events %q, want %q", ev, want)
	}
}

// TestRun drives the controller through its informers: a claim created
// after its volume gets bound, and deleting it releases the volume.
func TestRun(t *testing.T) {
	client := fake.NewClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().PersistentVolumes(), f.Core().V1().PersistentVolumeClaims(), f.Storage().V1().StorageClasses(),
		client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	go c.Run(ctx, 2)
	v := newPV("v", "1Gi", pvPhase(corev1.VolumePending))
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims("ns").Create(ctx, newPVC("data", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, done func(*corev1.PersistentVolume) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := client.CoreV1().PersistentVolumes().Get(ctx, "v", metav1.GetOptions{})
			if err == nil && done(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: got %+v, %v", what, got, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	poll("Bound", func(v *corev1.PersistentVolume) bool { return v.Status.Phase == corev1.VolumeBound })
	if err := client.CoreV1().PersistentVolumeClaims("ns").Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("Released", func(v *corev1.PersistentVolume) bool { return v.Status.Phase == corev1.VolumeReleased })
}
