package quota

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestPodUsage(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "a", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "64Mi"), Limits: rl("cpu", "200m")}},
			{Name: "b", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "150m")}},
		},
		InitContainers: []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}},
	}}
	u := Usage(schema.GroupResource{Resource: "pods"}, p)
	want := rl("pods", "1", "count/pods", "1", "requests.cpu", "1", "cpu", "1", "requests.memory", "64Mi", "memory", "64Mi", "limits.cpu", "200m")
	if Format(u) != Format(want) {
		t.Errorf("got %s, want %s", Format(u), Format(want))
	}
	p.Status.Phase = corev1.PodSucceeded
	if u := Usage(schema.GroupResource{Resource: "pods"}, p); len(u) != 0 {
		t.Errorf("got %s for a terminated pod, want nothing", Format(u))
	}
}

func TestServiceUsage(t *testing.T) {
	s := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	got := Format(Usage(schema.GroupResource{Resource: "services"}, s))
	if want := "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestExceeded(t *testing.T) {
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "compute"},
		Spec:   corev1.ResourceQuotaSpec{Hard: rl("pods", "2", "requests.cpu", "1")},
		Status: corev1.ResourceQuotaStatus{Hard: rl("pods", "2", "requests.cpu", "1"), Used: rl("pods", "2", "requests.cpu", "500m")}}
	tests := []struct {
		delta corev1.ResourceList
		want  string
	}{
		{rl("requests.cpu", "500m"), ""},
		{rl("pods", "1", "requests.cpu", "100m"), "exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"},
		{rl("requests.cpu", "600m", "configmaps", "1"), "exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"},
	}
	for _, tt := range tests {
		if got := Exceeded(q, tt.delta); got != tt.want {
			t.Errorf("delta %s: got %q, want %q", Format(tt.delta), got, tt.want)
		}
	}
	q.Status.Hard = nil
	if got := Exceeded(q, rl("pods", "1")); got != "status unknown for quota: compute, resources: pods" {
		t.Errorf("got %q, want status unknown", got)
	}
}

func TestMissingRequests(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}, {Name: "side", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}}}}
	got := MissingRequests(rl("requests.cpu", "1", "limits.memory", "1Gi"), p)
	if len(got) != 2 || got[0] != "limits.memory for: web,side" || got[1] != "requests.cpu for: web" {
		t.Errorf("got %v, want [limits.memory for: web,side requests.cpu for: web]", got)
	}
}

func TestIncrease(t *testing.T) {
	tests := []struct {
		cur, old, want corev1.ResourceList
	}{
		{rl("services.nodeports", "2"), rl("services.nodeports", "0"), rl("services.nodeports", "2")},
		{rl("requests.storage", "5Gi"), rl("requests.storage", "10Gi"), rl()},
		{rl("requests.cpu", "500m", "requests.memory", "1Gi"), rl("requests.cpu", "200m", "requests.memory", "1Gi"), rl("requests.cpu", "300m")},
		{rl("count/services", "1"), rl(), rl("count/services", "1")},
	}
	for _, tc := range tests {
		got := Increase(tc.cur, tc.old)
		if Format(got) != Format(tc.want) {
			t.Errorf("Increase(%s, %s): got %s, want %s", Format(tc.cur), Format(tc.old), Format(got), Format(tc.want))
		}
	}
}
