package proxytest

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// ProxierVIP is the ClusterIP of the Service RunProxier writes.
const ProxierVIP = "10.96.0.20"

// RunProxier runs the whole proxy (informers, compiler, backend b) in n
// against a fake API, and checks what every backend must do: the Service
// refuses until its EndpointSlice is written, then both pods (serving on
// 8080, started here) answer through it; after more (nil: nothing), given
// the client and the Service to change, an endpoint going unready stops
// receiving traffic. The node's address is 192.168.77.1.
func RunProxier(t *testing.T, n *Net, b proxy.Backend, more func(ctx context.Context, client kubernetes.Interface, svc *corev1.Service)) {
	t.Helper()
	Serve(t, n.Pod1, "pod1", 8080)
	Serve(t, n.Pod2, "pod2", 8080)

	client := fake.NewClientset()
	p, err := proxy.New(proxy.Config{
		Client: client, Backend: b, MinSyncInterval: 100 * time.Millisecond,
		Node:   proxy.Node{Name: "node-a", IPs: []netip.Addr{netip.MustParseAddr("192.168.77.1")}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ProxierVIP,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	ready, notReady := true, false
	name, proto, port := "http", corev1.ProtocolTCP, int32(8080)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
	}
	vip := ProxierVIP + ":80"
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	WaitUntil(t, "the Service to refuse", func() bool {
		_, _, err := Ask(n.Node, vip)
		return IsRefused(err)
	})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	WaitUntil(t, "both endpoints to answer", func() bool {
		seen := map[string]bool{}
		for range 20 {
			name, _, err := Ask(n.Pod1, vip)
			if err != nil {
				return false
			}
			seen[name] = true
		}
		return seen["pod1"] && seen["pod2"]
	})
	if more != nil {
		more(ctx, client, svc)
	}

	es.Endpoints[1].Conditions.Ready = &notReady
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	WaitUntil(t, "only pod1 to answer", func() bool {
		for range 10 {
			name, _, err := Ask(n.Node, vip)
			if err != nil || name != "pod1" {
				return false
			}
		}
		return true
	})
}
