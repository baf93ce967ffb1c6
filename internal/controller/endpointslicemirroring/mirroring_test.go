package endpointslicemirroring

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func selectorless(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "svc-uid"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
}

func endpoints(name string, ready []string, notReady ...string) *corev1.Endpoints {
	ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}
	for _, ip := range ready {
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
	}
	for _, ip := range notReady {
		ss.NotReadyAddresses = append(ss.NotReadyAddresses, corev1.EndpointAddress{IP: ip})
	}
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Subsets: []corev1.EndpointSubset{ss}}
}

func TestDesired(t *testing.T) {
	got := Desired(selectorless("ext"), endpoints("ext", []string{"10.0.0.5", "fd00::5"}, "10.0.0.6"))
	if len(got) != 2 {
		t.Fatalf("got %d slices, want one IPv4 and one IPv6", len(got))
	}
	v4 := got[0]
	if v4.AddressType != discoveryv1.AddressTypeIPv4 || len(v4.Endpoints) != 2 ||
		v4.Endpoints[0].Addresses[0] != "10.0.0.5" || !*v4.Endpoints[0].Conditions.Ready ||
		v4.Endpoints[1].Addresses[0] != "10.0.0.6" || *v4.Endpoints[1].Conditions.Ready {
		t.Errorf("IPv4 slice: got %+v, want 10.0.0.5 ready and 10.0.0.6 not ready", v4.Endpoints)
	}
	if v4.Labels[discoveryv1.LabelServiceName] != "ext" || v4.Labels[discoveryv1.LabelManagedBy] != ManagedBy ||
		v4.OwnerReferences[0].Kind != "Service" || v4.OwnerReferences[0].UID != "svc-uid" {
		t.Errorf("IPv4 slice metadata: got labels %v owners %v", v4.Labels, v4.OwnerReferences)
	}
	if len(v4.Ports) != 1 || *v4.Ports[0].Name != "http" || *v4.Ports[0].Port != 8080 {
		t.Errorf("ports: got %+v, want http 8080", v4.Ports)
	}
	if got[1].AddressType != discoveryv1.AddressTypeIPv6 || got[1].Endpoints[0].Addresses[0] != "fd00::5" {
		t.Errorf("IPv6 slice: got %+v", got[1])
	}
}

// fixture is a controller on a fake clientset whose informers run.
type fixture struct {
	c      *Controller
	client *fake.Clientset
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Services(), f.Core().V1().Endpoints(), f.Discovery().V1().EndpointSlices(), client, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return &fixture{c: c, client: client}
}

// slices syncs ns/name and returns the mirrored slices, once the
// informer has seen the writes.
func (f *fixture) sync(t *testing.T, want int) []discoveryv1.EndpointSlice {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := f.c.Sync(context.Background(), "ns/ext"); err != nil {
			t.Fatal(err)
		}
		list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cached, _ := f.c.slices.EndpointSlices("ns").List(everything())
		if len(list.Items) == want && len(cached) == want {
			return list.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d slices (%d cached), want %d", len(list.Items), len(cached), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, selectorless("ext"), endpoints("ext", []string{"10.0.0.5"}))
	got := f.sync(t, 1)
	if got[0].Endpoints[0].Addresses[0] != "10.0.0.5" {
		t.Fatalf("mirrored: got %+v", got[0].Endpoints)
	}
	// The user changes the Endpoints: the slice follows, not a new one.
	if _, err := f.client.CoreV1().Endpoints("ns").Update(ctx, endpoints("ext", []string{"10.0.0.7"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = f.sync(t, 1)
		if got[0].Endpoints[0].Addresses[0] == "10.0.0.7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the update: got %+v, want 10.0.0.7", got[0].Endpoints)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// skip-mirror: the slice goes.
	ep := endpoints("ext", []string{"10.0.0.7"})
	ep.Labels = map[string]string{LabelSkipMirror: "true"}
	if _, err := f.client.CoreV1().Endpoints("ns").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCached(t, f, func() bool {
		e, err := f.c.endpoints.Endpoints("ns").Get("ext")
		return err == nil && e.Labels[LabelSkipMirror] == "true"
	})
	f.sync(t, 0)
}

func TestSyncSelectorOrNoService(t *testing.T) {
	svc := selectorless("ext")
	svc.Spec.Selector = map[string]string{"app": "x"}
	f := newFixture(t, svc, endpoints("ext", []string{"10.0.0.5"}))
	f.sync(t, 0)
	g := newFixture(t, endpoints("ext", []string{"10.0.0.5"}))
	g.sync(t, 0)
	if s := Desired(selectorless("ext"), &corev1.Endpoints{}); len(s) != 0 {
		t.Errorf("Endpoints without subsets: got %d slices", len(s))
	}
}

func waitCached(t *testing.T, f *fixture, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the change")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func everything() labels.Selector { return labels.Everything() }
