package endpoint

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func mkPod(name, ip string, ready bool, port int32) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func svc(publish bool) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, PublishNotReadyAddresses: publish,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}}}
}

func TestSubsets(t *testing.T) {
	a := mkPod("a", "10.0.0.2", true, 8080)
	b := mkPod("b", "10.0.0.1", false, 8080)
	c := mkPod("c", "10.0.0.3", true, 9090) // different named port value
	noIP := mkPod("d", "", true, 8080)
	got := Subsets(svc(false), []*corev1.Pod{a, b, c, noIP})
	if len(got) != 2 {
		t.Fatalf("got %d subsets, want 2 (one per resolved port): %+v", len(got), got)
	}
	s0 := got[0]
	if s0.Ports[0].Port != 8080 || len(s0.Addresses) != 1 || s0.Addresses[0].IP != "10.0.0.2" || len(s0.NotReadyAddresses) != 1 || s0.NotReadyAddresses[0].IP != "10.0.0.1" {
		t.Errorf("got subset %+v, want port 8080 with ready 10.0.0.2 and not ready 10.0.0.1", s0)
	}
	if *s0.Addresses[0].NodeName != "n1" || s0.Addresses[0].TargetRef.Name != "a" {
		t.Errorf("got address %+v, want nodeName n1 and targetRef pod a", s0.Addresses[0])
	}
	if got[1].Ports[0].Port != 9090 {
		t.Errorf("got port %d, want 9090", got[1].Ports[0].Port)
	}
	pub := Subsets(svc(true), []*corev1.Pod{b})
	if len(pub) != 1 || len(pub[0].Addresses) != 1 {
		t.Errorf("got %+v, want the unready pod published as ready", pub)
	}
}

func TestSyncWritesAndLeavesSelectorlessAlone(t *testing.T) {
	s := svc(false)
	manual := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "manual"}}
	p := mkPod("a", "10.0.0.2", true, 8080)
	client := fake.NewSimpleClientset(s, manual, p)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Services(), f.Core().V1().Pods(), f.Core().V1().Endpoints(), client, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	_ = f.Core().V1().Services().Informer().GetStore().Add(s)
	_ = f.Core().V1().Services().Informer().GetStore().Add(manual)
	_ = f.Core().V1().Pods().Informer().GetStore().Add(p)
	ctx := context.Background()
	for _, k := range []string{"default/web", "default/manual"} {
		if err := c.sync(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Subsets) != 1 || ep.Subsets[0].Addresses[0].IP != "10.0.0.2" || ep.Annotations[TriggerTimeAnnotation] == "" {
		t.Errorf("got %+v, want one address 10.0.0.2 and a trigger time", ep)
	}
	if _, err := client.CoreV1().Endpoints("default").Get(ctx, "manual", metav1.GetOptions{}); err == nil {
		t.Error("got endpoints for a service without selector, want none")
	}
}
