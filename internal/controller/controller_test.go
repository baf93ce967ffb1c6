package controller

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func TestExpectations(t *testing.T) {
	now := time.Unix(1000, 0)
	e := NewExpectations(func() time.Time { return now })
	if !e.Satisfied("a") {
		t.Fatal("unknown key: got unsatisfied, want satisfied")
	}
	e.ExpectCreations("a", 2)
	e.CreationObserved("a")
	if e.Satisfied("a") {
		t.Fatal("one of two creations seen: got satisfied, want not")
	}
	e.CreationObserved("a")
	if !e.Satisfied("a") {
		t.Fatal("both creations seen: got unsatisfied, want satisfied")
	}
	e.ExpectDeletions("a", 1)
	now = now.Add(ExpectationsTimeout + time.Second)
	if !e.Satisfied("a") {
		t.Fatal("expired expectations: got unsatisfied, want satisfied")
	}
}

func pod(name, node string, phase corev1.PodPhase, ready bool, restarts int32, created int64) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(created, 0)}}
	p.Spec.NodeName = node
	p.Status.Phase = phase
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Unix(created+10, 0)}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}}
	return p
}

func TestPodsForDeletion(t *testing.T) {
	pods := []*corev1.Pod{
		pod("old-ready", "n", corev1.PodRunning, true, 0, 100),
		pod("new-ready", "n", corev1.PodRunning, true, 0, 200),
		pod("running-not-ready", "n", corev1.PodRunning, false, 0, 100),
		pod("unscheduled", "", corev1.PodPending, false, 0, 100),
		pod("pending", "n", corev1.PodPending, false, 0, 100),
		pod("restarty", "n", corev1.PodRunning, false, 5, 100),
	}
	sort.Sort(PodsForDeletion(pods))
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"unscheduled", "pending", "restarty", "running-not-ready", "new-ready", "old-ready"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestIsPodAvailable(t *testing.T) {
	p := pod("p", "n", corev1.PodRunning, true, 0, 100) // ready since 110
	for _, tc := range []struct {
		minReady int32
		now      int64
		want     bool
	}{{0, 110, true}, {5, 114, false}, {5, 116, true}} {
		if got := IsPodAvailable(p, tc.minReady, time.Unix(tc.now, 0)); got != tc.want {
			t.Errorf("minReadySeconds %d at %d: got %v, want %v", tc.minReady, tc.now, got, tc.want)
		}
	}
}

func TestClaim(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "rs", Namespace: "ns", UID: "owner"}
	ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "owner", Controller: ptrTrue(), BlockOwnerDeletion: ptrTrue()}
	mk := func(name string, lbl string, ctrl types.UID) metav1.Object {
		o := &metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": lbl}}
		if ctrl != "" {
			o.OwnerReferences = []metav1.OwnerReference{{Name: "x", UID: ctrl, Controller: ptrTrue()}}
		}
		return o
	}
	objs := []metav1.Object{
		mk("mine", "web", "owner"),
		mk("orphan", "web", ""),
		mk("stray", "db", "owner"),
		mk("theirs", "web", "other"),
		mk("unrelated", "db", ""),
	}
	patched := map[string]string{}
	c := &Claimer{
		Owner: owner, OwnerRef: ref,
		Selector: labels.SelectorFromSet(labels.Set{"app": "web"}),
		CanAdopt: func(context.Context) error { return nil },
		Patch: func(_ context.Context, _, name string, patch []byte) error {
			patched[name] = string(patch)
			return nil
		},
	}
	got, err := c.Claim(context.Background(), objs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range got {
		names = append(names, o.GetName())
	}
	if want := []string{"mine", "orphan"}; !slices.Equal(names, want) {
		t.Errorf("claimed: got %v, want %v", names, want)
	}
	if len(patched) != 2 || patched["orphan"] == "" || patched["stray"] == "" {
		t.Fatalf("patched: got %v, want adopt orphan and release stray", patched)
	}
	var release struct {
		Metadata struct {
			OwnerReferences []map[string]string `json:"ownerReferences"`
			UID             string              `json:"uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(patched["stray"]), &release); err != nil {
		t.Fatal(err)
	}
	if r := release.Metadata; r.UID != "uid-stray" || len(r.OwnerReferences) != 1 || r.OwnerReferences[0]["$patch"] != "delete" || r.OwnerReferences[0]["uid"] != "owner" {
		t.Errorf("release patch: got %s", patched["stray"])
	}

	// A dying owner adopts nothing.
	c2 := &Claimer{Owner: owner, OwnerRef: ref, Selector: c.Selector,
		CanAdopt: func(context.Context) error { return errors.New("being deleted") },
		Patch:    func(context.Context, string, string, []byte) error { t.Fatal("patched"); return nil }}
	if got, err := c2.Claim(context.Background(), []metav1.Object{mk("orphan", "web", "")}); err == nil || len(got) != 0 {
		t.Errorf("adoption by a dying owner: got %d claimed, err %v; want none and an error", len(got), err)
	}
}

func ptrTrue() *bool { b := true; return &b }
