package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestDefaultTolerations(t *testing.T) {
	tests := []struct {
		name string
		tols []corev1.Toleration
		want int
	}{
		{"none", nil, 2},
		{"has unreachable", []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}, 2},
		{"tolerates everything", []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, 1},
		{"NoSchedule only", []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}, 3},
	}
	for _, tt := range tests {
		p := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tt.tols}}
		DefaultTolerations(p)
		if len(p.Spec.Tolerations) != tt.want {
			t.Errorf("%s: got %d tolerations, want %d", tt.name, len(p.Spec.Tolerations), tt.want)
		}
		for _, tol := range p.Spec.Tolerations[len(tt.tols):] {
			if *tol.TolerationSeconds != 300 || tol.Effect != corev1.TaintEffectNoExecute {
				t.Errorf("%s: got %+v, want NoExecute for 300s", tt.name, tol)
			}
		}
	}
}

func TestResolvePriority(t *testing.T) {
	classes := []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000, PreemptionPolicy: ptr.To(corev1.PreemptNever)},
		{ObjectMeta: metav1.ObjectMeta{Name: "dflt"}, Value: 5, GlobalDefault: true},
	}
	tests := []struct {
		class   string
		prio    *int32
		want    int32
		wantPol corev1.PreemptionPolicy
		wantErr string
	}{
		{"high", nil, 1000, corev1.PreemptNever, ""},
		{"", nil, 5, corev1.PreemptLowerPriority, ""},
		{"system-node-critical", nil, 2000001000, corev1.PreemptLowerPriority, ""},
		{"nope", nil, 0, "", "no PriorityClass with name nope was found"},
		{"high", ptr.To[int32](7), 0, "", "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"},
	}
	for _, tt := range tests {
		p := &corev1.Pod{Spec: corev1.PodSpec{PriorityClassName: tt.class, Priority: tt.prio}}
		msg := ResolvePriority(p, classes)
		if msg != tt.wantErr {
			t.Errorf("%q: got %q, want %q", tt.class, msg, tt.wantErr)
			continue
		}
		if msg == "" && (*p.Spec.Priority != tt.want || *p.Spec.PreemptionPolicy != tt.wantPol) {
			t.Errorf("%q: got %d %s, want %d %s", tt.class, *p.Spec.Priority, *p.Spec.PreemptionPolicy, tt.want, tt.wantPol)
		}
	}
}

func TestLimitPodDefaults(t *testing.T) {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer, Default: rl("cpu", "500m", "memory", "256Mi"), DefaultRequest: rl("cpu", "100m"),
	}}}}
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"},
		{Name: "own", Resources: corev1.ResourceRequirements{Limits: rl("cpu", "1"), Requests: rl("cpu", "1")}}}}}
	if errs := LimitPod(p, []*corev1.LimitRange{lr}); len(errs) != 0 {
		t.Fatalf("got %v, want no errors", errs)
	}
	c := p.Spec.Containers[0].Resources
	if c.Limits.Cpu().String() != "500m" || c.Requests.Cpu().String() != "100m" || c.Requests.Memory().String() != "256Mi" {
		t.Errorf("got %+v, want limits cpu 500m memory 256Mi, requests cpu 100m memory 256Mi", c)
	}
	if got := p.Spec.Containers[1].Resources.Limits.Cpu().String(); got != "1" {
		t.Errorf("got cpu limit %s, want the container's own 1", got)
	}
	want := "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web; memory request for container own; memory limit for container own"
	if got := p.Annotations[LimitRangerAnnotation]; got != want {
		t.Errorf("got annotation %q, want %q", got, want)
	}
}

func TestLimitPodValidation(t *testing.T) {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer, Min: rl("cpu", "100m"), Max: rl("cpu", "1"), MaxLimitRequestRatio: rl("cpu", "2"),
		Default: rl("cpu", "1"), DefaultRequest: rl("cpu", "500m"),
	}}}}
	tests := []struct {
		name string
		res  corev1.ResourceRequirements
		want []string
	}{
		{"defaults fit", corev1.ResourceRequirements{}, nil},
		{"too small", corev1.ResourceRequirements{Requests: rl("cpu", "50m"), Limits: rl("cpu", "100m")},
			[]string{"minimum cpu usage per Container is 100m, but request is 50m"}},
		{"too big", corev1.ResourceRequirements{Requests: rl("cpu", "1"), Limits: rl("cpu", "2")},
			[]string{"maximum cpu usage per Container is 1, but limit is 2"}},
		{"ratio", corev1.ResourceRequirements{Requests: rl("cpu", "200m"), Limits: rl("cpu", "1")},
			[]string{"cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000"}},
	}
	for _, tt := range tests {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: tt.res}}}}
		got := LimitPod(p, []*corev1.LimitRange{lr})
		if Message(got) != Message(tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDefaultServiceAccount(t *testing.T) {
	p := &corev1.Pod{}
	DefaultServiceAccount(p)
	if p.Spec.ServiceAccountName != "default" {
		t.Errorf("got %q, want default", p.Spec.ServiceAccountName)
	}
	p = &corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: "builder"}}
	DefaultServiceAccount(p)
	if p.Spec.ServiceAccountName != "builder" {
		t.Errorf("got %q, want builder", p.Spec.ServiceAccountName)
	}
}
