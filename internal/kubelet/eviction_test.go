package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestEvictionCandidate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name string, qos corev1.PodQOSClass, prio int32, age time.Duration, mut ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))},
			Spec:   corev1.PodSpec{Priority: ptr.To(prio), Containers: []corev1.Container{{Name: "c"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: qos}}
		for _, m := range mut {
			m(p)
		}
		return p
	}
	mirror := func(p *corev1.Pod) { p.Annotations = map[string]string{annotationMirror: "x"} }
	done := func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want string
	}{
		{"best effort first", []*corev1.Pod{pod("g", corev1.PodQOSGuaranteed, 0, time.Hour), pod("b", corev1.PodQOSBurstable, 0, time.Hour),
			pod("be", corev1.PodQOSBestEffort, 100, time.Hour)}, "be"},
		{"then lower priority", []*corev1.Pod{pod("hi", corev1.PodQOSBurstable, 100, time.Hour), pod("lo", corev1.PodQOSBurstable, 10, time.Hour)}, "lo"},
		{"then the newest", []*corev1.Pod{pod("old", corev1.PodQOSBurstable, 0, time.Hour), pod("new", corev1.PodQOSBurstable, 0, time.Minute)}, "new"},
		{"never static, critical or finished pods", []*corev1.Pod{pod("static", corev1.PodQOSBestEffort, 0, 0, mirror),
			pod("crit", corev1.PodQOSBestEffort, systemCriticalPriority, 0), pod("done", corev1.PodQOSBestEffort, 0, 0, done)}, ""},
	} {
		got := ""
		if p := evictionCandidate(tc.pods, nil); p != nil {
			got = p.Name
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestEvictionCandidateByMemory: with the pods' memory use known, the
// ranking is upstream's for memory pressure.
func TestEvictionCandidateByMemory(t *testing.T) {
	const mi = 1 << 20
	pod := func(name string, prio int32, request int64) *corev1.Pod {
		c := corev1.Container{Name: "c"}
		if request > 0 {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(request, resource.BinarySI)}
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name)},
			Spec:   corev1.PodSpec{Priority: ptr.To(prio), Containers: []corev1.Container{c}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	for _, tc := range []struct {
		name  string
		pods  []*corev1.Pod
		usage map[types.UID]uint64
		want  string
	}{
		{"over its request before under, whatever the QoS",
			[]*corev1.Pod{pod("under", 0, 100*mi), pod("over", 10, 10*mi)},
			map[types.UID]uint64{"under": 50 * mi, "over": 20 * mi}, "over"},
		{"then lower priority",
			[]*corev1.Pod{pod("hi", 100, 10*mi), pod("lo", 0, 10*mi)},
			map[types.UID]uint64{"hi": 500 * mi, "lo": 20 * mi}, "lo"},
		{"then the larger excess",
			[]*corev1.Pod{pod("small", 0, 10*mi), pod("big", 0, 0)},
			map[types.UID]uint64{"small": 20 * mi, "big": 300 * mi}, "big"},
		{"a pod without figures: the ranking without usage (BestEffort first)",
			[]*corev1.Pod{pod("a", 0, 10*mi), pod("b", 0, 10*mi)},
			map[types.UID]uint64{"a": 500 * mi}, "b"},
	} {
		if tc.name[0] == 'a' {
			tc.pods[0].Status.QOSClass, tc.pods[1].Status.QOSClass = corev1.PodQOSBurstable, corev1.PodQOSBestEffort
		}
		got := ""
		if p := evictionCandidate(tc.pods, tc.usage); p != nil {
			got = p.Name
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPressureConditions(t *testing.T) {
	conds := nodeConditions(Pressure{Memory: true})
	want := map[corev1.NodeConditionType]string{
		corev1.NodeMemoryPressure: "True/KubeletHasInsufficientMemory",
		corev1.NodeDiskPressure:   "False/KubeletHasNoDiskPressure",
		corev1.NodePIDPressure:    "False/KubeletHasSufficientPID",
		corev1.NodeReady:          "True/KubeletReady",
	}
	for _, c := range conds {
		if got := string(c.Status) + "/" + c.Reason; got != want[c.Type] {
			t.Errorf("%s: got %s, want %s", c.Type, got, want[c.Type])
		}
	}
}
