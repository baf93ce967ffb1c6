package apiserver

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-sh/skiff/internal/apiserver/strategy"
)

// TestOwnedUpdateMatchesFieldManager checks the shortcut against the
// managed-fields library itself: wherever ownedUpdate answers, its
// managedFields must be the library's; and it must answer for a renewal.
func TestOwnedUpdateMatchesFieldManager(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tc := applyconfigurations.NewTypeConverter(scheme)
	leaseGVK := schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}
	cmGVK := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	podGVK := schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	sets := &fieldSetCache{}

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lease := func(holder string, renew time.Time, labels map[string]string) runtime.Object {
		return &coordinationv1.Lease{
			TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "kube-node-lease", Labels: labels},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime: &metav1.MicroTime{Time: renew}},
		}
	}
	cm := func(data map[string]string) runtime.Object {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: data}
	}
	pod := func(ready corev1.ConditionStatus) runtime.Object {
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
	}

	type step struct {
		manager, sub string
		obj          runtime.Object
	}
	for _, tc2 := range []struct {
		name string
		gvk  schema.GroupVersionKind
		// history builds the live object; the last step is the update
		// under test.
		steps    []step
		wantFast bool
	}{
		{"lease renewal by its owner", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"kubelet", "", lease("n1", t0.Add(10*time.Second), nil)},
		}, true},
		{"lease renewal with another manager's label", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"kubectl-label", "", lease("n1", t0, map[string]string{"a": "b"})},
			{"kubelet", "", lease("n1", t0.Add(time.Hour), map[string]string{"a": "b"})},
		}, true},
		{"renewal by a manager that does not own renewTime", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"other", "", lease("n1", t0.Add(time.Hour), nil)},
		}, false},
		{"label value changed by its owner", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"kubectl-label", "", lease("n1", t0, map[string]string{"a": "b"})},
			{"kubectl-label", "", lease("n1", t0, map[string]string{"a": "c"})},
		}, true},
		{"label added", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"kubelet", "", lease("n1", t0, map[string]string{"a": "b"})},
		}, false},
		{"no change", leaseGVK, []step{
			{"kubelet", "", lease("n1", t0, nil)},
			{"kubelet", "", lease("n1", t0, nil)},
		}, true},
		{"configmap value by owner", cmGVK, []step{
			{"m", "", cm(map[string]string{"k": "1", "j": "1"})},
			{"m", "", cm(map[string]string{"k": "2", "j": "1"})},
		}, true},
		{"configmap key removed", cmGVK, []step{
			{"m", "", cm(map[string]string{"k": "1", "j": "1"})},
			{"m", "", cm(map[string]string{"k": "1"})},
		}, false},
		{"pointer field changed by its owner", podGVK, []step{
			{"m", "", withDeadline(pod(corev1.ConditionTrue), 10)},
			{"m", "", withDeadline(pod(corev1.ConditionTrue), 20)},
		}, true},
		{"pointer field set for the first time", podGVK, []step{
			{"m", "", pod(corev1.ConditionTrue)},
			{"m", "", withDeadline(pod(corev1.ConditionTrue), 20)},
		}, false},
		{"pod condition in a list", podGVK, []step{
			{"m", "", pod(corev1.ConditionFalse)},
			{"m", "", pod(corev1.ConditionTrue)},
		}, false},
	} {
		t.Run(tc2.name, func(t *testing.T) {
			managers := map[string]interface {
				UpdateNoErrors(liveObj, newObj runtime.Object, manager string) runtime.Object
			}{}
			for _, sub := range []string{"", "status"} {
				fm, err := newFieldManager(tc, scheme, tc2.gvk, sub)
				if err != nil {
					t.Fatal(err)
				}
				managers[sub] = fm
			}
			empty, _ := scheme.New(tc2.gvk)
			live := managers[""].UpdateNoErrors(empty, tc2.steps[0].obj.DeepCopyObject(), tc2.steps[0].manager)
			for _, s := range tc2.steps[1 : len(tc2.steps)-1] {
				live = managers[s.sub].UpdateNoErrors(live, s.obj.DeepCopyObject(), s.manager)
			}
			last := tc2.steps[len(tc2.steps)-1]
			liveAcc, _ := metav1ObjectOf(live)
			next := last.obj.DeepCopyObject()
			nextAcc, _ := metav1ObjectOf(next)
			nextAcc.SetManagedFields(liveAcc.GetManagedFields()) // as a client that read the object sends it

			reset := strategy.ResetFields(tc2.gvk, last.sub)[fieldpath.APIVersion(tc2.gvk.GroupVersion().String())]
			now := time.Now()
			got, ok := ownedUpdate(liveAcc, nextAcc, live, next, last.manager, tc2.gvk.GroupVersion().String(), last.sub, reset, now, nil)
			if ok != tc2.wantFast {
				t.Fatalf("ownedUpdate answered %v, want %v", ok, tc2.wantFast)
			}
			// With decoded sets kept between calls (the cache is shared by
			// every case, as a server's is by every request), twice: the
			// second call finds the sets the first decoded.
			for range 2 {
				cached, cok := ownedUpdate(liveAcc, nextAcc, live, next, last.manager, tc2.gvk.GroupVersion().String(), last.sub, reset, now, sets)
				if cok != ok {
					t.Fatalf("ownedUpdate with a set cache answered %v, without %v", cok, ok)
				}
				if d := cmp.Diff(got, cached); d != "" {
					t.Fatalf("managedFields differ with a set cache (-without +with):\n%s", d)
				}
			}
			slow := managers[last.sub].UpdateNoErrors(live, next.DeepCopyObject(), last.manager)
			slowAcc, _ := metav1ObjectOf(slow)
			if !ok {
				return
			}
			want := slowAcc.GetManagedFields()
			// The library stamps its own time.Now; bring both to seconds.
			norm := func(e []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
				out := make([]metav1.ManagedFieldsEntry, len(e))
				for i := range e {
					out[i] = *e[i].DeepCopy()
					if out[i].Time != nil {
						out[i].Time = &metav1.Time{Time: out[i].Time.Truncate(time.Minute)}
					}
				}
				return out
			}
			if d := cmp.Diff(norm(want), norm(got)); d != "" {
				t.Errorf("managedFields differ from the library's (-library +ownedUpdate):\n%s", d)
			}
		})
	}
}

func withDeadline(o runtime.Object, s int64) runtime.Object {
	o.(*corev1.Pod).Spec.ActiveDeadlineSeconds = ptr.To(s)
	return o
}

func metav1ObjectOf(o runtime.Object) (metav1.Object, bool) {
	m, ok := o.(metav1.Object)
	return m, ok
}

func BenchmarkOwnedUpdateLease(b *testing.B) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}
	fm, err := newFieldManager(applyconfigurations.NewTypeConverter(scheme), scheme, gvk, "")
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(renew time.Time) runtime.Object {
		return &coordinationv1.Lease{
			TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "kube-node-lease"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("n1"), LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime: &metav1.MicroTime{Time: renew}},
		}
	}
	live := fm.UpdateNoErrors(&coordinationv1.Lease{}, mk(t0), "kubelet")
	next := mk(t0.Add(10 * time.Second))
	liveAcc, _ := metav1ObjectOf(live)
	nextAcc, _ := metav1ObjectOf(next)
	b.Run("owned", func(b *testing.B) {
		for b.Loop() {
			if _, ok := ownedUpdate(liveAcc, nextAcc, live, next, "kubelet", "coordination.k8s.io/v1", "", nil, t0, nil); !ok {
				b.Fatal("not owned")
			}
		}
	})
	b.Run("owned, sets cached", func(b *testing.B) {
		sets := &fieldSetCache{}
		for b.Loop() {
			if _, ok := ownedUpdate(liveAcc, nextAcc, live, next, "kubelet", "coordination.k8s.io/v1", "", nil, t0, sets); !ok {
				b.Fatal("not owned")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			fm.UpdateNoErrors(live, next.DeepCopyObject(), "kubelet")
		}
	})
}

func TestFieldSetCache(t *testing.T) {
	c := &fieldSetCache{}
	raw := []byte(`{"f:spec":{"f:renewTime":{}}}`)
	a, ok := c.get(raw)
	if !ok {
		t.Fatal("a fieldsV1 object was refused")
	}
	b, _ := c.get(raw)
	if !owns(a, []string{"spec", "renewTime"}) || !owns(b, []string{"spec", "renewTime"}) || owns(b, []string{"spec"}) {
		t.Errorf("got %v and %v, want the set holding spec.renewTime", a, b)
	}
	for _, bad := range []string{`null`, `[1]`, `{`, ``} {
		if _, ok := c.get([]byte(bad)); ok {
			t.Errorf("get(%q) = ok, want refused", bad)
		}
		if _, ok := (*fieldSetCache)(nil).get([]byte(bad)); ok {
			t.Errorf("nil cache: get(%q) = ok, want refused", bad)
		}
	}
	for i := range 3 * fieldSetCacheSize {
		if _, ok := c.get(fmt.Appendf(nil, `{"f:a%d":{}}`, i)); !ok {
			t.Fatal("a fieldsV1 object was refused")
		}
	}
	if n := len(c.sets); n > fieldSetCacheSize {
		t.Errorf("cache holds %d sets, want at most %d", n, fieldSetCacheSize)
	}
}
