package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type harness struct {
	c       *Controller
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	clock   *clocktesting.FakeClock
}

func newHarness(t *testing.T, rc bool, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	var n atomic.Int32
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, n.Add(1))
			p.UID = types.UID(p.Name)
		}
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var c *Controller
	if rc {
		c = NewForReplicationControllers(f.Core().V1().ReplicationControllers(), f.Core().V1().Pods(), client, record.NewFakeRecorder(1000), log, clk)
	} else {
		c = New(f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), client, record.NewFakeRecorder(1000), log, clk)
	}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.ReplicaSet:
			err = f.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.ReplicationController:
			err = f.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = f.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &harness{c: c, client: client, factory: f, clock: clk}
}

func (h *harness) count(verb, resource string) int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == "" {
			n++
		}
	}
	return n
}

func (h *harness) createdPods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			out = append(out, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod))
		}
	}
	return out
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 2},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "www"}},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
}

func newPod(name string, owner *appsv1.ReplicaSet, ready bool, node string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name),
			Labels: map[string]string{"app": "web", "tier": "front"}, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	}
	if ready {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
	}
	return p
}

func TestSyncCreatesOnceUntilObserved(t *testing.T) {
	rs := newRS("web", 3)
	h := newHarness(t, false, rs)
	ctx := context.Background()
	if err := h.c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	created := h.createdPods()
	if len(created) != 3 {
		t.Fatalf("created %d pods, want 3", len(created))
	}
	for _, p := range created {
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" {
			t.Errorf("pod %s controller ref %+v, want ReplicaSet %s", p.Name, ref, rs.UID)
		}
		if p.GenerateName != "web-" || p.Labels["tier"] != "front" {
			t.Errorf("pod generateName %q labels %v, want web- and the template's", p.GenerateName, p.Labels)
		}
	}
	// The cache has not caught up: a second sync must not create again.
	h.client.ClearActions()
	if err := h.c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	if n := h.count("create", "pods"); n != 0 {
		t.Fatalf("second sync before observing created %d pods, want 0", n)
	}
	// Observe the three creations: the owner is satisfied again.
	for _, p := range created {
		h.c.addPod(p)
	}
	if !h.c.exp.Satisfied("default/web") {
		t.Fatal("expectations not satisfied after observing every creation")
	}
}

func TestSyncBurstCap(t *testing.T) {
	h := newHarness(t, false, newRS("big", 600))
	if err := h.c.sync(context.Background(), "default/big"); err != nil {
		t.Fatal(err)
	}
	if n := h.count("create", "pods"); n != BurstReplicas {
		t.Fatalf("created %d pods, want the burst cap %d", n, BurstReplicas)
	}
}

func TestSyncDeletesWorstPodsFirst(t *testing.T) {
	rs := newRS("web", 2)
	objs := []runtime.Object{rs,
		newPod("ready-a", rs, true, "n1"),
		newPod("unscheduled", rs, false, ""),
		newPod("ready-b", rs, true, "n1"),
		newPod("notready", rs, false, "n1"),
	}
	h := newHarness(t, false, objs...)
	if err := h.c.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			deleted = append(deleted, a.(k8stesting.DeleteAction).GetName())
		}
	}
	if len(deleted) != 2 {
		t.Fatalf("deleted %v, want 2 pods", deleted)
	}
	for _, n := range deleted {
		if n != "unscheduled" && n != "notready" {
			t.Errorf("deleted %q, want the unscheduled and the not-ready pod", n)
		}
	}
	if h.c.exp.Satisfied("default/web") {
		t.Error("expectations satisfied before the deletions were observed")
	}
	// Terminating then gone: counted once each.
	for _, n := range deleted {
		p := newPod(n, rs, false, "")
		h.c.deletePod(p)
		h.c.deletePod(p)
	}
	if !h.c.exp.Satisfied("default/web") {
		t.Error("expectations not satisfied after observing the deletions")
	}
}

func TestSyncAdoptsAndReleases(t *testing.T) {
	rs := newRS("web", 2)
	orphan := newPod("orphan", nil, true, "n1")
	strayed := newPod("strayed", rs, true, "n1")
	strayed.Labels = map[string]string{"app": "other"}
	other := newPod("other-owner", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: "x"}}, true, "n1")
	h := newHarness(t, false, rs, orphan, strayed, other)
	if err := h.c.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
	patched := map[string]string{}
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "patch" {
			pa := a.(k8stesting.PatchAction)
			patched[pa.GetName()] = string(pa.GetPatch())
		}
	}
	if _, ok := patched["orphan"]; !ok {
		t.Errorf("orphan not adopted; patches %v", patched)
	}
	if _, ok := patched["strayed"]; !ok {
		t.Errorf("non-matching owned pod not released; patches %v", patched)
	}
	if _, ok := patched["other-owner"]; ok {
		t.Errorf("another owner's pod was patched")
	}
	// One adopted pod of two wanted: one creation.
	if n := h.count("create", "pods"); n != 1 {
		t.Errorf("created %d pods, want 1", n)
	}
}

func TestSyncFailureCondition(t *testing.T) {
	h := newHarness(t, false, newRS("web", 3))
	h.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("quota exceeded")
	})
	err := h.c.sync(context.Background(), "default/web")
	if err == nil {
		t.Fatal("sync succeeded, want the creation error")
	}
	// Slow start: one attempt, not three.
	if n := h.count("create", "pods"); n != 1 {
		t.Errorf("attempted %d creations, want 1 (slow start stops at the first failure)", n)
	}
	st := lastRSStatus(t, h)
	c := replicaFailure(st.Conditions)
	if c == nil || c.Reason != "FailedCreate" || c.Status != corev1.ConditionTrue {
		t.Fatalf("conditions %+v, want ReplicaFailure FailedCreate", st.Conditions)
	}
	if !h.c.exp.Satisfied("default/web") {
		t.Error("expectations still pending for pods never created")
	}
}

func lastRSStatus(t *testing.T, h *harness) appsv1.ReplicaSetStatus {
	t.Helper()
	var st *appsv1.ReplicaSetStatus
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			st = &a.(k8stesting.UpdateAction).GetObject().(*appsv1.ReplicaSet).Status
		}
	}
	if st == nil {
		t.Fatal("no status update")
	}
	return *st
}

func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	rs := newRS("web", 1)
	pod := newPod("p", rs, true, "n1")
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 2}
	h := newHarness(t, false, rs, pod)
	if err := h.c.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.client.Actions()); n != 0 {
		t.Fatalf("sync of a settled ReplicaSet made %d API calls (%v), want 0", n, h.client.Actions())
	}
}

func TestCalculateStatus(t *testing.T) {
	rs := newRS("web", 3)
	rs.Spec.MinReadySeconds = 120
	readyLong := newPod("a", rs, true, "n")
	readyLong.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-time.Hour))
	readyShort := newPod("b", rs, true, "n") // ready for one minute
	partial := newPod("c", rs, false, "n")
	partial.Labels = map[string]string{"app": "www"}
	tests := []struct {
		name                          string
		pods                          []*corev1.Pod
		err                           error
		replicas, fully, ready, avail int32
		failure                       string
	}{
		{"none", nil, nil, 0, 0, 0, 0, ""},
		{"mixed", []*corev1.Pod{readyLong, readyShort, partial}, nil, 3, 2, 2, 1, ""},
		{"failed", []*corev1.Pod{readyLong}, errors.New("boom"), 1, 1, 1, 1, "FailedCreate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := calculateStatus(rs, tc.pods, tc.err, -1, now)
			if st.Replicas != tc.replicas || st.FullyLabeledReplicas != tc.fully || st.ReadyReplicas != tc.ready || st.AvailableReplicas != tc.avail {
				t.Errorf("got replicas/fully/ready/available %d/%d/%d/%d, want %d/%d/%d/%d",
					st.Replicas, st.FullyLabeledReplicas, st.ReadyReplicas, st.AvailableReplicas, tc.replicas, tc.fully, tc.ready, tc.avail)
			}
			if st.ObservedGeneration != 2 {
				t.Errorf("got observedGeneration %d, want 2", st.ObservedGeneration)
			}
			got := ""
			if c := replicaFailure(st.Conditions); c != nil {
				got = c.Reason
			}
			if got != tc.failure {
				t.Errorf("got failure reason %q, want %q", got, tc.failure)
			}
		})
	}
	// A failure condition clears once a sync succeeds.
	rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue}}
	if st := calculateStatus(rs, nil, nil, 0, now); len(st.Conditions) != 0 {
		t.Errorf("got conditions %+v after success, want none", st.Conditions)
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		count, failFrom   int // calls numbered from 1; failFrom 0: never fails
		wantCalls, wantOK int
		wantErr           bool
	}{
		{count: 0, wantCalls: 0, wantOK: 0},
		{count: 1, wantCalls: 1, wantOK: 1},
		{count: 10, wantCalls: 10, wantOK: 10}, // 1+2+4+3
		{count: 10, failFrom: 1, wantCalls: 1, wantOK: 0, wantErr: true},
		{count: 10, failFrom: 2, wantCalls: 3, wantOK: 1, wantErr: true}, // batch 2 fails entirely
		{count: 10, failFrom: 4, wantCalls: 7, wantOK: 3, wantErr: true}, // 1+2 ok, batch of 4 fails
		{count: 500, wantCalls: 500, wantOK: 500},                        // 1..128 then 245
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-%d", tc.count, tc.failFrom), func(t *testing.T) {
			var calls atomic.Int32
			ok, err := slowStartBatch(tc.count, 1, func() error {
				n := calls.Add(1)
				if tc.failFrom > 0 && int(n) >= tc.failFrom {
					return errors.New("fail")
				}
				return nil
			})
			if int(calls.Load()) != tc.wantCalls || ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Errorf("got calls %d ok %d err %v, want calls %d ok %d err %v", calls.Load(), ok, err, tc.wantCalls, tc.wantOK, tc.wantErr)
			}
		})
	}
}

func TestReplicationController(t *testing.T) {
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default", UID: "rc-uid", Generation: 1},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](2),
			Selector: map[string]string{"app": "old"},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "old"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
	h := newHarness(t, true, rc)
	if err := h.c.sync(context.Background(), "default/old"); err != nil {
		t.Fatal(err)
	}
	created := h.createdPods()
	if len(created) != 2 {
		t.Fatalf("created %d pods, want 2", len(created))
	}
	ref := metav1.GetControllerOf(created[0])
	if ref == nil || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" || ref.UID != "rc-uid" {
		t.Errorf("controller ref %+v, want v1 ReplicationController rc-uid", ref)
	}
	var st *corev1.ReplicationControllerStatus
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			st = &a.(k8stesting.UpdateAction).GetObject().(*corev1.ReplicationController).Status
		}
	}
	if st == nil || st.ObservedGeneration != 1 {
		t.Fatalf("status %+v, want a ReplicationController status write with observedGeneration 1", st)
	}
	// Pod events resolve to the RC.
	h.c.addPod(created[0])
	h.c.addPod(created[1])
	if !h.c.exp.Satisfied("default/old") {
		t.Error("creations not observed through the RC's controller ref")
	}
}
