package deployment

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// harness runs the controller's sync against a fake clientset, with the
// informer caches refreshed from it between syncs and the ReplicaSet
// controller and kubelets played by kubelet().
type harness struct {
	t      *testing.T
	c      *Controller
	client *fake.Clientset
	f      informers.SharedInformerFactory
	clock  *clocktesting.FakeClock
	rec    *record.FakeRecorder
	events []string
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	client.PrependReactor("create", "replicasets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rs := a.(k8stesting.CreateAction).GetObject().(*appsv1.ReplicaSet)
		rs.CreationTimestamp = metav1.NewTime(clk.Now())
		rs.UID = types.UID("uid-" + rs.Name)
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(1000)
	c := New(f.Apps().V1().Deployments(), f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), client, rec,
		slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	h := &harness{t: t, c: c, client: client, f: f, clock: clk, rec: rec}
	h.refresh()
	return h
}

// refresh makes the caches show what the fake API server holds.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	ds, err := h.client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var dObjs []any
	for i := range ds.Items {
		dObjs = append(dObjs, &ds.Items[i])
	}
	rss, err := h.client.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var rsObjs []any
	for i := range rss.Items {
		rsObjs = append(rsObjs, &rss.Items[i])
	}
	pods, err := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var podObjs []any
	for i := range pods.Items {
		podObjs = append(podObjs, &pods.Items[i])
	}
	if err := h.f.Apps().V1().Deployments().Informer().GetIndexer().Replace(dObjs, ""); err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.Apps().V1().ReplicaSets().Informer().GetIndexer().Replace(rsObjs, ""); err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.Core().V1().Pods().Informer().GetIndexer().Replace(podObjs, ""); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sync() {
	h.t.Helper()
	h.refresh()
	if err := h.c.sync(context.Background(), "default/nginx"); err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	h.drainEvents()
	h.clock.Step(time.Second)
}

func (h *harness) drainEvents() {
	for {
		select {
		case e := <-h.rec.Events:
			h.events = append(h.events, e)
		default:
			return
		}
	}
}

// kubelet plays the ReplicaSet controller and the nodes: every ReplicaSet
// gets spec.replicas pods, available when available is set.
func (h *harness) kubelet(available bool) {
	h.t.Helper()
	ctx := context.Background()
	rss, _ := h.client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	for i := range rss.Items {
		rs := &rss.Items[i]
		n := *rs.Spec.Replicas
		rs.Status.Replicas = n
		if available {
			rs.Status.ReadyReplicas, rs.Status.AvailableReplicas = n, n
		} else {
			rs.Status.ReadyReplicas = min(rs.Status.ReadyReplicas, n)
			rs.Status.AvailableReplicas = min(rs.Status.AvailableReplicas, n)
		}
		rs.Status.ObservedGeneration = rs.Generation
		if _, err := h.client.AppsV1().ReplicaSets("default").UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) deployment() *appsv1.Deployment {
	h.t.Helper()
	d, err := h.client.AppsV1().Deployments("default").Get(context.Background(), "nginx", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) replicaSets() []*appsv1.ReplicaSet {
	h.t.Helper()
	rss, err := h.client.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]*appsv1.ReplicaSet, len(rss.Items))
	for i := range rss.Items {
		out[i] = &rss.Items[i]
	}
	return out
}

// update changes the Deployment as a user would (bumping generation).
func (h *harness) update(fn func(d *appsv1.Deployment)) {
	h.t.Helper()
	d := h.deployment()
	fn(d)
	d.Generation++
	if _, err := h.client.AppsV1().Deployments("default").Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// rollOut syncs until the rollout completes, checking after every step
// that the pods never exceed replicas+maxSurge nor the available ones go
// below replicas-maxUnavailable.
func (h *harness) rollOut(maxPods, minAvailable int32) {
	h.t.Helper()
	for i := 0; i < 40; i++ {
		h.sync()
		var total, avail int32
		for _, rs := range h.replicaSets() {
			total += *rs.Spec.Replicas
			avail += min(*rs.Spec.Replicas, rs.Status.AvailableReplicas)
		}
		if total > maxPods {
			h.t.Fatalf("step %d: %d pods wanted, more than %d", i, total, maxPods)
		}
		if avail < minAvailable && i > 0 {
			h.t.Fatalf("step %d: %d pods available, fewer than %d", i, avail, minAvailable)
		}
		h.kubelet(true)
		d := h.deployment()
		if c := getCondition(d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == ReasonNewRSAvailable &&
			d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Status.Replicas == *d.Spec.Replicas {
			h.sync() // the completing sync trims history
			return
		}
	}
	h.t.Fatalf("rollout did not complete in 40 steps; status %+v", h.deployment().Status)
}

func (h *harness) byRevision() map[int64]*appsv1.ReplicaSet {
	out := map[int64]*appsv1.ReplicaSet{}
	for _, rs := range h.replicaSets() {
		out[Revision(rs)] = rs
	}
	return out
}

func TestRollingUpdateAndRollback(t *testing.T) {
	d := rollingDeployment(3, "1", "0")
	h := newHarness(t, d)

	// First rollout: a new ReplicaSet named after the template hash, at 3.
	h.rollOut(4, 0)
	rss := h.replicaSets()
	if len(rss) != 1 {
		t.Fatalf("got %d ReplicaSets, want 1", len(rss))
	}
	first := rss[0]
	hash := ComputeHash(&d.Spec.Template, nil)
	if first.Name != "nginx-"+hash || first.Labels[PodTemplateHashLabel] != hash ||
		first.Spec.Selector.MatchLabels[PodTemplateHashLabel] != hash || first.Spec.Template.Labels[PodTemplateHashLabel] != hash {
		t.Errorf("ReplicaSet %s labels %v selector %v: want nginx-%s with the hash label everywhere", first.Name, first.Labels, first.Spec.Selector, hash)
	}
	if Revision(first) != 1 || *first.Spec.Replicas != 3 {
		t.Errorf("first ReplicaSet revision %d replicas %d, want 1 and 3", Revision(first), *first.Spec.Replicas)
	}
	want := fmt.Sprintf("Normal ScalingReplicaSet Scaled up replica set nginx-%s from 0 to 3", hash)
	if !contains(h.events, want) {
		t.Errorf("events %q, want %q", h.events, want)
	}
	dep := h.deployment()
	prog := getCondition(dep.Status, appsv1.DeploymentProgressing)
	if prog == nil || prog.Message != fmt.Sprintf("ReplicaSet %q has successfully progressed.", first.Name) {
		t.Errorf("Progressing %+v, want NewReplicaSetAvailable for %s", prog, first.Name)
	}
	if av := getCondition(dep.Status, appsv1.DeploymentAvailable); av == nil || av.Status != corev1.ConditionTrue || av.Reason != ReasonMinimumAvailable {
		t.Errorf("Available %+v, want True MinimumReplicasAvailable", av)
	}
	if dep.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision %q, want 1", dep.Annotations[RevisionAnnotation])
	}

	// Second rollout, one pod at a time: never 5 pods, never 2 available.
	h.events = nil
	h.update(func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "nginx:1.8"
		d.Annotations = map[string]string{"kubernetes.io/change-cause": "image 1.8"}
	})
	h.rollOut(4, 3)
	revs := h.byRevision()
	if len(revs) != 2 || *revs[1].Spec.Replicas != 0 || *revs[2].Spec.Replicas != 3 {
		t.Fatalf("after update: revisions %v, want 1 at 0 replicas and 2 at 3", names(h.replicaSets()))
	}
	if revs[2].Annotations["kubernetes.io/change-cause"] != "image 1.8" {
		t.Errorf("change-cause not copied: %v", revs[2].Annotations)
	}
	newName := revs[2].Name
	for _, w := range []string{
		"Scaled up replica set " + newName + " from 0 to 1",
		"Scaled down replica set " + first.Name + " from 3 to 2",
	} {
		if !containsSub(h.events, w) {
			t.Errorf("events %q: missing %q", h.events, w)
		}
	}

	// Rollback as kubectl rollout undo does it: the template back to
	// revision 1's. The old ReplicaSet comes back as revision 3.
	h.update(func(d *appsv1.Deployment) {
		tmpl := first.Spec.Template.DeepCopy()
		delete(tmpl.Labels, PodTemplateHashLabel)
		d.Spec.Template = *tmpl
	})
	h.rollOut(4, 3)
	rss = h.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("rollback created a ReplicaSet: %v", names(rss))
	}
	revs = h.byRevision()
	back := revs[3]
	if back == nil || back.Name != first.Name || back.Annotations[RevisionHistoryAnnotation] != "1" || *back.Spec.Replicas != 3 {
		t.Fatalf("after rollback: %v, want %s at revision 3 (history 1) with 3 replicas", names(rss), first.Name)
	}
	if got := h.deployment().Annotations[RevisionAnnotation]; got != "3" {
		t.Errorf("deployment revision %q, want 3", got)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	d := rollingDeployment(2, "1", "1")
	d.Spec.RevisionHistoryLimit = ptr.To[int32](2)
	h := newHarness(t, d)
	h.rollOut(3, 0)
	for i := 1; i <= 4; i++ {
		h.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("nginx:v%d", i) })
		h.rollOut(3, 1)
	}
	rss := h.replicaSets()
	if len(rss) != 3 {
		t.Fatalf("got ReplicaSets %v, want the new one and 2 old", names(rss))
	}
	revs := h.byRevision()
	for _, r := range []int64{3, 4, 5} {
		if revs[r] == nil {
			t.Errorf("revision %d was deleted; have %v (the oldest must go first)", r, names(rss))
		}
	}
}

func TestScaleMidRolloutAndPaused(t *testing.T) {
	d := rollingDeployment(10, "3", "2")
	h := newHarness(t, d)
	h.rollOut(13, 0)
	h.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.8" })
	h.sync() // new RS at 3 (surge), old scaled down to 8 once the unavailable budget allows
	h.kubelet(false)
	h.sync()
	h.kubelet(false)
	before := map[string]int32{}
	for _, rs := range h.replicaSets() {
		before[rs.Name] = *rs.Spec.Replicas
	}
	// Pause, then scale to 15: no rollout step, proportional growth.
	h.update(func(d *appsv1.Deployment) { d.Spec.Paused = true; d.Spec.Replicas = ptr.To[int32](15) })
	h.sync()
	var total int32
	for _, rs := range h.replicaSets() {
		total += *rs.Spec.Replicas
		if *rs.Spec.Replicas <= before[rs.Name] {
			t.Errorf("%s: %d -> %d, want it to grow proportionally", rs.Name, before[rs.Name], *rs.Spec.Replicas)
		}
	}
	if total != 18 {
		t.Errorf("total replicas %d, want 15+3 surge", total)
	}
	dep := h.deployment()
	if c := getCondition(dep.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonPaused || c.Status != corev1.ConditionUnknown {
		t.Errorf("Progressing %+v, want Unknown DeploymentPaused", c)
	}
	// A template change while paused creates nothing.
	h.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.9" })
	h.sync()
	if n := len(h.replicaSets()); n != 2 {
		t.Errorf("paused deployment created a ReplicaSet: %d", n)
	}
	// Resume: the rollout to 1.9 goes on to completion.
	h.update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	h.sync()
	if c := getCondition(h.deployment().Status, appsv1.DeploymentProgressing); c == nil || c.Reason == ReasonPaused {
		t.Errorf("Progressing %+v after resume, want not paused", c)
	}
	h.rollOut(18, 13)
	for _, rs := range h.replicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == "nginx:1.9" {
			if *rs.Spec.Replicas != 15 {
				t.Errorf("new ReplicaSet at %d, want 15", *rs.Spec.Replicas)
			}
		} else if *rs.Spec.Replicas != 0 {
			t.Errorf("old ReplicaSet %s at %d, want 0", rs.Name, *rs.Spec.Replicas)
		}
	}
}

func TestRecreate(t *testing.T) {
	d := rollingDeployment(3, "1", "0")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	h := newHarness(t, d)
	h.rollOut(3, 0)
	old := h.replicaSets()[0]
	// One of its pods is still terminating.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old-pod", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(old, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if _, err := h.client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.8" })
	h.sync()
	rss := h.replicaSets()
	if len(rss) != 1 || *rss[0].Spec.Replicas != 0 {
		t.Fatalf("first step: %v, want only the old ReplicaSet, at 0", names(rss))
	}
	h.kubelet(true)
	h.sync()
	if n := len(h.replicaSets()); n != 1 {
		t.Fatalf("new ReplicaSet created while an old pod runs")
	}
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "old-pod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sync()
	revs := h.byRevision()
	if revs[2] == nil || *revs[2].Spec.Replicas != 3 {
		t.Fatalf("after old pods went: %v, want revision 2 at 3 replicas at once", names(h.replicaSets()))
	}
}

func TestProgressDeadlineExceeded(t *testing.T) {
	d := rollingDeployment(2, "1", "0")
	h := newHarness(t, d)
	h.rollOut(3, 0)
	h.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:broken" })
	h.sync()
	h.kubelet(false) // the new pod never becomes available
	h.sync()
	h.clock.Step(601 * time.Second)
	h.sync()
	dep := h.deployment()
	c := getCondition(dep.Status, appsv1.DeploymentProgressing)
	newRS := h.byRevision()[2]
	if c == nil || c.Reason != ReasonTimedOut || c.Status != corev1.ConditionFalse ||
		c.Message != fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name) {
		t.Fatalf("Progressing %+v, want False ProgressDeadlineExceeded", c)
	}
}

func TestAdoptsOrphanReplicaSet(t *testing.T) {
	d := rollingDeployment(1, "1", "0")
	orphan := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "default", UID: "o",
		Labels: map[string]string{"app": "nginx"}}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0)}}
	h := newHarness(t, d, orphan)
	h.sync()
	adopted := false
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "replicasets" && a.(k8stesting.PatchAction).GetName() == "orphan" {
			adopted = true
		}
	}
	if !adopted {
		t.Error("matching orphan ReplicaSet not adopted")
	}
}

func names(rss []*appsv1.ReplicaSet) []string {
	var out []string
	for _, rs := range rss {
		out = append(out, fmt.Sprintf("%s(rev %d, %d)", rs.Name, Revision(rs), *rs.Spec.Replicas))
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func containsSub(ss []string, s string) bool {
	for _, x := range ss {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
