package disruption

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestExpected(t *testing.T) {
	pct := intstr.FromString("50%")
	tests := []struct {
		name              string
		spec              policyv1.PodDisruptionBudgetSpec
		pods, scale       int32
		ok                bool
		expected, desired int32
		wantErr           bool
	}{
		{"minAvailable int", policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2))}, 3, 0, false, 3, 2, false},
		{"minAvailable 50% of 5 rounds up", policyv1.PodDisruptionBudgetSpec{MinAvailable: &pct}, 5, 5, true, 5, 3, false},
		{"maxUnavailable 1", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}, 3, 3, true, 3, 2, false},
		{"maxUnavailable 50% of 5 rounds up", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &pct}, 5, 5, true, 5, 2, false},
		{"maxUnavailable without controllers", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}, 3, 0, false, 0, 0, true},
	}
	for _, tt := range tests {
		e, d, err := Expected(tt.spec, tt.pods, tt.scale, tt.ok)
		if (err != nil) != tt.wantErr || e != tt.expected || d != tt.desired {
			t.Errorf("%s: got %d %d %v, want %d %d err=%v", tt.name, e, d, err, tt.expected, tt.desired, tt.wantErr)
		}
	}
}

func TestSync(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "d", Name: "web", UID: "rs"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3)}}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "d", Name: "pdb", Generation: 2},
		Spec:   policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: map[string]metav1.Time{"web-2": metav1.Now()}}}
	client := fake.NewSimpleClientset(rs, pdb)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f, client, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	_ = f.Apps().V1().ReplicaSets().Informer().GetStore().Add(rs)
	_ = f.Policy().V1().PodDisruptionBudgets().Informer().GetStore().Add(pdb)
	for i := range 3 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "d", Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		_ = f.Core().V1().Pods().Informer().GetStore().Add(p)
	}
	if err := c.sync(context.Background(), "d/pdb"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.PolicyV1().PodDisruptionBudgets("d").Get(context.Background(), "pdb", metav1.GetOptions{})
	st := got.Status
	// web-2 was just evicted: it does not count as healthy.
	if st.ExpectedPods != 3 || st.DesiredHealthy != 2 || st.CurrentHealthy != 2 || st.DisruptionsAllowed != 0 || st.ObservedGeneration != 2 {
		t.Errorf("got %+v, want expected 3 desired 2 healthy 2 allowed 0 observedGeneration 2", st)
	}
	if len(st.Conditions) != 1 || st.Conditions[0].Reason != policyv1.InsufficientPodsReason {
		t.Errorf("got conditions %+v, want DisruptionAllowed False InsufficientPods", st.Conditions)
	}
}
