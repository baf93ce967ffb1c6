package endpointslice

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func mkPod(i int, ready, terminating bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%03d", i), UID: types.UID(fmt.Sprint(i)), Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
	if terminating {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

var svc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "svc"},
	Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}}}

func TestGroupsConditions(t *testing.T) {
	gs := Groups(svc, []*corev1.Pod{mkPod(1, true, false), mkPod(2, false, false), mkPod(3, true, true)}, func(string) string { return "z1" })
	if len(gs) != 1 || len(gs[0].endpoints) != 3 {
		t.Fatalf("got %d groups, want 1 with 3 endpoints", len(gs))
	}
	if *gs[0].ports[0].Port != 8080 {
		t.Errorf("got port %d, want 8080 resolved from the named targetPort", *gs[0].ports[0].Port)
	}
	want := []struct{ ready, serving, terminating bool }{{true, true, false}, {false, false, false}, {false, true, true}}
	for i, ep := range gs[0].endpoints {
		c := ep.Conditions
		if *c.Ready != want[i].ready || *c.Serving != want[i].serving || *c.Terminating != want[i].terminating {
			t.Errorf("endpoint %d: got ready=%v serving=%v terminating=%v, want %+v", i, *c.Ready, *c.Serving, *c.Terminating, want[i])
		}
		if *ep.Zone != "z1" || *ep.NodeName != "n1" || ep.TargetRef.Kind != "Pod" {
			t.Errorf("endpoint %d: got %+v, want zone z1, node n1, pod targetRef", i, ep)
		}
	}
}

func TestSyncSplitsAt100(t *testing.T) {
	var objs []runtime.Object
	objs = append(objs, svc)
	for i := range 150 {
		objs = append(objs, mkPod(i, true, false))
	}
	client := fake.NewSimpleClientset(objs...)
	n := 0
	client.PrependReactor("create", "endpointslices", func(a clienttesting.Action) (bool, runtime.Object, error) {
		s := a.(clienttesting.CreateAction).GetObject().(*discoveryv1.EndpointSlice)
		if s.Name == "" {
			n++
			s.Name = fmt.Sprintf("%s%d", s.GenerateName, n)
		}
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Services(), f.Core().V1().Pods(), f.Core().V1().Nodes(), f.Discovery().V1().EndpointSlices(), client,
		slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Service:
			_ = f.Core().V1().Services().Informer().GetStore().Add(o)
		case *corev1.Pod:
			_ = f.Core().V1().Pods().Informer().GetStore().Add(o)
		}
	}
	ctx := context.Background()
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	list, _ := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 2 {
		t.Fatalf("got %d slices, want 2", len(list.Items))
	}
	total := 0
	for _, s := range list.Items {
		total += len(s.Endpoints)
		if len(s.Endpoints) > MaxEndpoints {
			t.Errorf("got %d endpoints in a slice, want at most %d", len(s.Endpoints), MaxEndpoints)
		}
		if s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
			t.Errorf("got labels %v, want service-name and managed-by", s.Labels)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "svc" {
			t.Errorf("got owners %v, want the service", s.OwnerReferences)
		}
	}
	if total != 150 {
		t.Errorf("got %d endpoints, want 150", total)
	}
	// Until the cache shows the new slices, a second sync must not create more.
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	list, _ = client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 2 {
		t.Errorf("got %d slices after a second sync with a lagging cache, want 2", len(list.Items))
	}
	// Once seen, a sync with the same pods writes nothing.
	for i := range list.Items {
		_ = f.Discovery().V1().EndpointSlices().Informer().GetStore().Add(&list.Items[i])
		c.sliceSeen(&list.Items[i], true)
	}
	before := len(client.Actions())
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := len(client.Actions()) - before; got != 0 {
		t.Errorf("got %d writes for an unchanged service, want 0", got)
	}
}
