package statefulset

import (
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testSet(n int32, policy appsv1.PodManagementPolicyType) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(n), PodManagementPolicy: policy,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(0))}},
		},
	}
}

// pod states: "r" running and ready, "p" pending, "t" terminating, "f" failed;
// a trailing "-old" marks the revision "old" instead of "new".
func testPod(ord int, state string) *corev1.Pod {
	rev := "new"
	if len(state) > 1 && state[1:] == "-old" {
		rev, state = "old", state[:1]
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("web", ord), Labels: map[string]string{appsv1.StatefulSetRevisionLabel: rev}}}
	switch state {
	case "r":
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	case "p":
		p.Status.Phase = corev1.PodPending
	case "t":
		p.Status.Phase = corev1.PodRunning
		p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	case "f":
		p.Status.Phase = corev1.PodFailed
	}
	return p
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		set        *appsv1.StatefulSet
		pods       map[int]string
		wantCreate []int
		wantDelete []string
	}{
		{"ordered creates 0 first", testSet(3, ""), nil, []int{0}, nil},
		{"ordered waits for 0 ready", testSet(3, ""), map[int]string{0: "p"}, nil, nil},
		{"ordered creates 1 after 0 ready", testSet(3, ""), map[int]string{0: "r"}, []int{1}, nil},
		{"ordered fills gap at 1", testSet(3, ""), map[int]string{0: "r", 2: "r"}, []int{1}, nil},
		{"parallel creates all", testSet(3, appsv1.ParallelPodManagement), nil, []int{0, 1, 2}, nil},
		{"ordered scale down highest first", testSet(1, ""), map[int]string{0: "r", 1: "r", 2: "r"}, nil, []string{"web-2"}},
		{"ordered scale down waits for terminating", testSet(1, ""), map[int]string{0: "r", 1: "r", 2: "t"}, nil, nil},
		{"ordered scale down waits for unhealthy", testSet(2, ""), map[int]string{0: "p", 1: "r", 2: "r"}, nil, nil},
		{"parallel scale down deletes all", testSet(1, appsv1.ParallelPodManagement), map[int]string{0: "r", 1: "r", 2: "r"}, nil, []string{"web-2", "web-1"}},
		{"failed pod deleted", testSet(2, ""), map[int]string{0: "f", 1: "r"}, nil, []string{"web-0"}},
		{"rolling update from highest", testSet(3, ""), map[int]string{0: "r-old", 1: "r-old", 2: "r-old"}, nil, []string{"web-2"}},
		{"rolling update next after ready", testSet(3, ""), map[int]string{0: "r-old", 1: "r-old", 2: "r"}, nil, []string{"web-1"}},
		{"rolling update waits for replaced ready", testSet(3, ""), map[int]string{0: "r-old", 1: "p", 2: "r"}, nil, nil},
		{"rolling update stops at partition", func() *appsv1.StatefulSet {
			s := testSet(3, "")
			s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(int32(2))
			return s
		}(), map[int]string{0: "r-old", 1: "r-old", 2: "r"}, nil, nil},
		{"on delete leaves old pods", func() *appsv1.StatefulSet {
			s := testSet(2, "")
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			return s
		}(), map[int]string{0: "r-old", 1: "r-old"}, nil, nil},
		{"start ordinal", func() *appsv1.StatefulSet {
			s := testSet(2, "")
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
			return s
		}(), map[int]string{5: "r"}, []int{6}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pods []*corev1.Pod
			for ord, st := range tc.pods {
				pods = append(pods, testPod(ord, st))
			}
			plan := Decide(PlanInput{Set: tc.set, Pods: pods, UpdateRevision: "new"})
			var del []string
			for _, p := range plan.Delete {
				del = append(del, p.Name)
			}
			if !slices.Equal(plan.Create, tc.wantCreate) || !slices.Equal(del, tc.wantDelete) {
				t.Errorf("got create %v delete %v (wait %q), want create %v delete %v", plan.Create, del, plan.Wait, tc.wantCreate, tc.wantDelete)
			}
		})
	}
}

func TestParseOrdinal(t *testing.T) {
	for name, want := range map[string]int{"web-0": 0, "web-12": 12, "web-01": -1, "web-": -1, "web-x": -1, "webx-1": -1, "web-1-2": -1} {
		if got := ParseOrdinal("web", name); got != want {
			t.Errorf("ParseOrdinal(%q) got %d, want %d", name, got, want)
		}
	}
}

func TestUseCurrentRevision(t *testing.T) {
	s := testSet(5, "")
	s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(int32(3))
	for ord, want := range []bool{true, true, true, false, false} {
		if got := UseCurrentRevision(s, ord); got != want {
			t.Errorf("ordinal %d: got %v, want %v", ord, got, want)
		}
	}
	_ = fmt.Sprint()
}

// readyFor is a running pod of revision rev that has been Ready for d
// before testNow (d < 0: Running but not Ready).
func readyFor(ord int, rev string, d time.Duration) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("web", ord), Labels: map[string]string{appsv1.StatefulSetRevisionLabel: rev}}}
	p.Status.Phase = corev1.PodRunning
	if d >= 0 {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(testNow.Add(-d))}}
	}
	return p
}

var testNow = time.Unix(1_000_000, 0)

func TestDecideMinReadySecondsAndMaxUnavailable(t *testing.T) {
	const s = time.Second
	withSet := func(n int32, policy appsv1.PodManagementPolicyType, minReady int32, maxU *intstr.IntOrString, part int32) *appsv1.StatefulSet {
		set := testSet(n, policy)
		set.Spec.MinReadySeconds = minReady
		set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = maxU
		set.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(part)
		return set
	}
	two, fifty := ptr.To(intstr.FromInt32(2)), ptr.To(intstr.FromString("50%"))
	tests := []struct {
		name        string
		set         *appsv1.StatefulSet
		pods        []*corev1.Pod
		wantCreate  []int
		wantDelete  []string
		wantRequeue time.Duration
	}{
		{"ordered waits for ready pod to be available", withSet(3, "", 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "new", 4*s)}, nil, nil, 6*s + time.Millisecond},
		{"ordered creates next once available", withSet(3, "", 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "new", 11*s)}, []int{1}, nil, 0},
		{"parallel does not wait for availability", withSet(2, appsv1.ParallelPodManagement, 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "new", 1*s)}, []int{1}, nil, 9*s + time.Millisecond},
		{"ordered scale down waits for availability", withSet(1, "", 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "new", 2*s), readyFor(1, "new", time.Hour)}, nil, nil, 8*s + time.Millisecond},
		{"rolling update waits for updated pod to be available", withSet(3, "", 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "old", time.Hour), readyFor(1, "old", time.Hour), readyFor(2, "new", 5*s)}, nil, nil, 5*s + time.Millisecond},
		{"rolling update moves on once available", withSet(3, "", 10, nil, 0),
			[]*corev1.Pod{readyFor(0, "old", time.Hour), readyFor(1, "old", time.Hour), readyFor(2, "new", 11*s)}, nil, []string{"web-1"}, 0},
		{"maxUnavailable 2 deletes two highest", withSet(5, "", 0, two, 0),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s), readyFor(3, "old", s), readyFor(4, "old", s)}, nil, []string{"web-4", "web-3"}, 0},
		{"maxUnavailable 50% of 5 rounds down to 2", withSet(5, "", 0, fifty, 0),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s), readyFor(3, "old", s), readyFor(4, "old", s)}, nil, []string{"web-4", "web-3"}, 0},
		{"maxUnavailable 10% is at least 1", withSet(3, "", 0, ptr.To(intstr.FromString("10%")), 0),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s)}, nil, []string{"web-2"}, 0},
		{"maxUnavailable stops at partition", withSet(5, "", 0, ptr.To(intstr.FromInt32(3)), 3),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s), readyFor(3, "old", s), readyFor(4, "old", s)}, nil, []string{"web-4", "web-3"}, 0},
		{"ordered batch waits for every replaced pod", withSet(5, "", 0, two, 0),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s), readyFor(3, "new", s), readyFor(4, "new", -1)}, nil, nil, 0},
		{"parallel keeps a window: one unavailable leaves room for one", withSet(5, appsv1.ParallelPodManagement, 0, two, 0),
			[]*corev1.Pod{readyFor(0, "old", s), readyFor(1, "old", s), readyFor(2, "old", s), readyFor(3, "new", s), readyFor(4, "new", -1)}, nil, []string{"web-2"}, 0},
		{"parallel counts unavailable pods below the partition", withSet(5, appsv1.ParallelPodManagement, 0, two, 3),
			[]*corev1.Pod{readyFor(0, "old", -1), readyFor(1, "old", -1), readyFor(2, "old", s), readyFor(3, "old", s), readyFor(4, "old", s)}, nil, nil, 0},
		{"parallel counts not-yet-available pods", withSet(3, appsv1.ParallelPodManagement, 30, two, 0),
			[]*corev1.Pod{readyFor(0, "old", time.Hour), readyFor(1, "new", 10*s), readyFor(2, "new", 20*s)}, nil, nil, 10*s + time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := Decide(PlanInput{Set: tc.set, Pods: tc.pods, UpdateRevision: "new", Now: testNow})
			var del []string
			for _, p := range plan.Delete {
				del = append(del, p.Name)
			}
			if !slices.Equal(plan.Create, tc.wantCreate) || !slices.Equal(del, tc.wantDelete) || plan.RequeueAfter != tc.wantRequeue {
				t.Errorf("got create %v delete %v requeue %v (wait %q), want create %v delete %v requeue %v",
					plan.Create, del, plan.RequeueAfter, plan.Wait, tc.wantCreate, tc.wantDelete, tc.wantRequeue)
			}
		})
	}
}

func TestMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		replicas int32
		v        *intstr.IntOrString
		want     int
	}{
		{5, nil, 1}, {5, ptr.To(intstr.FromInt32(3)), 3}, {5, ptr.To(intstr.FromString("50%")), 2},
		{10, ptr.To(intstr.FromString("25%")), 2}, {3, ptr.To(intstr.FromString("10%")), 1}, {4, ptr.To(intstr.FromString("100%")), 4},
	} {
		set := testSet(tc.replicas, "")
		set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = tc.v
		if got := MaxUnavailable(set); got != tc.want {
			t.Errorf("replicas %d maxUnavailable %v: got %d, want %d", tc.replicas, tc.v, got, tc.want)
		}
	}
}
