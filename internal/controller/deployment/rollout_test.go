package deployment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func intOrStr(s string) *intstr.IntOrString {
	v := intstr.Parse(s)
	return &v
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		surge, unavail         string
		desired                int32
		wantSurge, wantUnavail int32
	}{
		{"25%", "25%", 10, 3, 2}, // surge rounds up, unavailable down
		{"1", "0", 3, 1, 0},
		{"0", "0", 3, 0, 1}, // both zero: one may be unavailable
		{"10%", "10%", 5, 1, 0},
		{"0", "10%", 5, 0, 1}, // rounds down to zero: becomes 1
		{"50%", "50%", 1, 1, 0},
		{"100%", "0", 7, 7, 0},
		{"2", "5", 3, 2, 5},
		{"25%", "25%", 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.surge, tc.unavail, tc.desired), func(t *testing.T) {
			s, u, err := ResolveFenceposts(intOrStr(tc.surge), intOrStr(tc.unavail), tc.desired)
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.wantSurge || u != tc.wantUnavail {
				t.Errorf("got surge %d unavailable %d, want %d %d", s, u, tc.wantSurge, tc.wantUnavail)
			}
		})
	}
}

func rollingDeployment(replicas int32, surge, unavail string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "default", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.7.9"}}},
			},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: intOrStr(surge), MaxUnavailable: intOrStr(unavail)}},
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
	}
}

func rsOf(name string, spec, available int32, created time.Time, ann map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(created), Annotations: ann},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To(spec)},
		Status:     appsv1.ReplicaSetStatus{Replicas: spec, AvailableReplicas: available},
	}
}

func TestNewRSNewReplicas(t *testing.T) {
	t0 := time.Unix(0, 0)
	tests := []struct {
		name             string
		d                *appsv1.Deployment
		newSize, oldSize int32
		want             int32
	}{
		{"fresh, surge 1", rollingDeployment(3, "1", "0"), 0, 3, 1},
		{"at max total", rollingDeployment(3, "1", "0"), 1, 3, 1},
		{"old shrunk", rollingDeployment(3, "1", "0"), 1, 2, 2},
		{"never above desired", rollingDeployment(3, "3", "0"), 2, 0, 3},
		{"first rollout", rollingDeployment(10, "25%", "25%"), 0, 0, 10},
		{"percent surge", rollingDeployment(10, "25%", "25%"), 0, 10, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newRS := rsOf("new", tc.newSize, 0, t0, nil)
			old := rsOf("old", tc.oldSize, tc.oldSize, t0, nil)
			if got := NewRSNewReplicas(tc.d, []*appsv1.ReplicaSet{old, newRS}, newRS); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
	d := rollingDeployment(4, "1", "0")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if got := NewRSNewReplicas(d, nil, rsOf("new", 0, 0, t0, nil)); got != 4 {
		t.Errorf("recreate: got %d, want 4", got)
	}
}

func TestProportionalSizes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ann := func(desired, max int) map[string]string {
		return map[string]string{DesiredReplicasAnnotation: fmt.Sprint(desired), MaxReplicasAnnotation: fmt.Sprint(max)}
	}
	tests := []struct {
		name   string
		d      *appsv1.Deployment
		rss    []*appsv1.ReplicaSet
		want   map[string]int32
		wantOp string
	}{
		{
			// kubernetes.io's example: 10 replicas, surge 3, unavailable 2,
			// mid-rollout 8 old + 5 new, scaled to 15: 3 more to the old,
			// 2 to the new.
			name: "docs example up",
			d:    rollingDeployment(15, "3", "2"),
			rss: []*appsv1.ReplicaSet{
				rsOf("old", 8, 8, t0, ann(10, 13)),
				rsOf("new", 5, 0, t0.Add(time.Minute), ann(10, 13)),
			},
			want: map[string]int32{"old": 11, "new": 7}, wantOp: "up",
		},
		{
			name: "scale down",
			d:    rollingDeployment(5, "1", "0"),
			rss: []*appsv1.ReplicaSet{
				rsOf("old", 6, 6, t0, ann(10, 11)),
				rsOf("new", 5, 0, t0.Add(time.Minute), ann(10, 11)),
			},
			want: map[string]int32{"old": 3, "new": 3}, wantOp: "down",
		},
		{
			name: "to zero",
			d:    rollingDeployment(0, "1", "0"),
			rss: []*appsv1.ReplicaSet{
				rsOf("old", 2, 2, t0, ann(3, 4)),
				rsOf("new", 2, 0, t0.Add(time.Minute), ann(3, 4)),
			},
			want: map[string]int32{"old": 0, "new": 0}, wantOp: "down",
		},
		{
			name: "no change",
			d:    rollingDeployment(3, "1", "0"),
			rss: []*appsv1.ReplicaSet{
				rsOf("old", 2, 2, t0, ann(3, 4)),
				rsOf("new", 2, 0, t0.Add(time.Minute), ann(3, 4)),
			},
			want: map[string]int32{"old": 2, "new": 2}, wantOp: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, op := ProportionalSizes(tc.d, tc.rss)
			if op != tc.wantOp {
				t.Errorf("got op %q, want %q", op, tc.wantOp)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("got %s=%d, want %d (all %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestScaleDownPlanAndMaxScaledDown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	older := rsOf("older", 2, 1, t0, nil)
	old := rsOf("old", 3, 3, t0.Add(time.Minute), nil)
	plan := ScaleDownPlan([]*appsv1.ReplicaSet{old, older}, 4, rsReplicas)
	if plan["older"] != 2 || plan["old"] != 2 {
		t.Errorf("got plan %v, want older=2 old=2 (oldest first)", plan)
	}
	unhealthy := ScaleDownPlan([]*appsv1.ReplicaSet{old, older}, 4, func(rs *appsv1.ReplicaSet) int32 {
		return rsReplicas(rs) - rs.Status.AvailableReplicas
	})
	if len(unhealthy) != 1 || unhealthy["older"] != 1 {
		t.Errorf("got unhealthy plan %v, want older=1", unhealthy)
	}

	d := rollingDeployment(3, "1", "0")
	newRS := rsOf("new", 1, 0, t0.Add(2*time.Minute), nil)
	o := rsOf("o", 3, 3, t0, nil)
	if got := MaxScaledDown(d, []*appsv1.ReplicaSet{o, newRS}, newRS); got != 0 {
		t.Errorf("new pod not yet available: got max scaled down %d, want 0", got)
	}
	newRS.Status.AvailableReplicas = 1
	if got := MaxScaledDown(d, []*appsv1.ReplicaSet{o, newRS}, newRS); got != 1 {
		t.Errorf("new pod available: got max scaled down %d, want 1", got)
	}
}

func TestComputeHash(t *testing.T) {
	d := rollingDeployment(3, "1", "0")
	h1 := ComputeHash(&d.Spec.Template, nil)
	if h2 := ComputeHash(d.Spec.Template.DeepCopy(), nil); h1 != h2 {
		t.Errorf("hash not deterministic: %s vs %s", h1, h2)
	}
	if h3 := ComputeHash(&d.Spec.Template, ptr.To[int32](1)); h3 == h1 {
		t.Errorf("collision count did not change the hash %s", h1)
	}
	other := d.Spec.Template.DeepCopy()
	other.Spec.Containers[0].Image = "nginx:1.8"
	if h4 := ComputeHash(other, nil); h4 == h1 {
		t.Errorf("another image gave the same hash %s", h1)
	}
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	for _, r := range h1 {
		if !strings.ContainsRune(alphabet, r) {
			t.Errorf("hash %q has %q outside SafeEncodeString's alphabet", h1, r)
		}
	}
	if len(h1) < 8 || len(h1) > 10 {
		t.Errorf("hash %q: want the 8-10 characters of an encoded uint32", h1)
	}
	withHash := d.Spec.Template.DeepCopy()
	withHash.Labels[PodTemplateHashLabel] = h1
	if !EqualIgnoreHash(withHash, &d.Spec.Template) {
		t.Error("EqualIgnoreHash: templates differing only in the hash label are not equal")
	}
	if EqualIgnoreHash(other, &d.Spec.Template) {
		t.Error("EqualIgnoreHash: different images compare equal")
	}
}

func TestSetNewReplicaSetAnnotations(t *testing.T) {
	d := rollingDeployment(3, "1", "0")
	d.Annotations = map[string]string{
		"kubernetes.io/change-cause":       "kubectl set image deployment/nginx nginx=nginx:1.8",
		corev1.LastAppliedConfigAnnotation: "{}",
		RevisionAnnotation:                 "7",
	}
	rs := &appsv1.ReplicaSet{}
	if !SetNewReplicaSetAnnotations(d, rs, "1", false) {
		t.Fatal("new ReplicaSet's annotations reported unchanged")
	}
	want := map[string]string{
		"kubernetes.io/change-cause": "kubectl set image deployment/nginx nginx=nginx:1.8",
		RevisionAnnotation:           "1", DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4",
	}
	for k, v := range want {
		if rs.Annotations[k] != v {
			t.Errorf("got %s=%q, want %q", k, rs.Annotations[k], v)
		}
	}
	if _, ok := rs.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Error("last-applied-configuration copied to the ReplicaSet")
	}
	// Reused by a rollback: revision 1 becomes 3, history "1"; then 5, "1,3".
	SetNewReplicaSetAnnotations(d, rs, "3", true)
	SetNewReplicaSetAnnotations(d, rs, "5", true)
	if rs.Annotations[RevisionAnnotation] != "5" || rs.Annotations[RevisionHistoryAnnotation] != "1,3" {
		t.Errorf("got revision %q history %q, want 5 and 1,3", rs.Annotations[RevisionAnnotation], rs.Annotations[RevisionHistoryAnnotation])
	}
	if SetNewReplicaSetAnnotations(d, rs, "4", true) {
		t.Error("a lower revision changed the annotations")
	}
}

func TestHistoryToDelete(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var old []*appsv1.ReplicaSet
	for i := 1; i <= 5; i++ {
		old = append(old, rsOf(fmt.Sprintf("r%d", i), 0, 0, t0.Add(time.Duration(-i)*time.Minute), map[string]string{RevisionAnnotation: fmt.Sprint(i)}))
	}
	old[1].Status.Replicas = 1 // r2 still has a pod going
	got := HistoryToDelete(old, 2)
	var names []string
	for _, rs := range got {
		names = append(names, rs.Name)
	}
	if strings.Join(names, ",") != "r1,r3" {
		t.Errorf("got %v, want r1,r3 (lowest revisions beyond the limit, skipping one with pods)", names)
	}
	if got := HistoryToDelete(old, 5); len(got) != 0 {
		t.Errorf("within the limit: got %d to delete, want 0", len(got))
	}
}

func TestProgressConditions(t *testing.T) {
	now := time.Unix(10000, 0)
	d := rollingDeployment(3, "1", "0")
	d.Status = appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 3}
	st := d.Status
	if DeploymentProgressing(d, &st) {
		t.Error("unchanged status reported as progress")
	}
	st.UpdatedReplicas = 2
	if !DeploymentProgressing(d, &st) {
		t.Error("more updated replicas not reported as progress")
	}
	st.Conditions = []appsv1.DeploymentCondition{newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, "", now.Add(-601*time.Second))}
	if !DeploymentTimedOut(d, &st, now) {
		t.Error("601s without progress under a 600s deadline: not timed out")
	}
	st.Conditions[0].LastUpdateTime = metav1.NewTime(now.Add(-599 * time.Second))
	if DeploymentTimedOut(d, &st, now) {
		t.Error("599s: timed out too early")
	}
	st.Conditions[0].Reason = ReasonNewRSAvailable
	st.Conditions[0].LastUpdateTime = metav1.NewTime(now.Add(-time.Hour))
	if DeploymentTimedOut(d, &st, now) {
		t.Error("a complete rollout timed out")
	}
	d.Spec.ProgressDeadlineSeconds = nil
	if DeploymentTimedOut(d, &st, now) {
		t.Error("no deadline, yet timed out")
	}
}
