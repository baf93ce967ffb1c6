package iptables

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
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

// TestProxierWithIptables runs the whole proxy (informers, compiler,
// iptables) against a fake API: a Service and its EndpointSlice written
// through the client become forwarding, and an endpoint going unready
// stops traffic to it.
func TestProxierWithIptables(t *testing.T) {
	requireIptables(t)
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter, "")
	dumpOnFailure(t, n, DefaultProgram)
	proxytest.Serve(t, n.Pod1, "pod1", 8080)
	proxytest.Serve(t, n.Pod2, "pod2", 8080)

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
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20",
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	ready, notReady := true, false
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Protocol: ptrTo(corev1.ProtocolTCP), Port: ptrTo(int32(8080))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.244.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No endpoints yet: refused.
	proxytest.WaitUntil(t, "the Service to refuse", func() bool {
		_, _, err := proxytest.Ask(n.Node, "10.96.0.20:80")
		return proxytest.IsRefused(err)
	})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	proxytest.WaitUntil(t, "both endpoints to answer", func() bool {
		seen := map[string]bool{}
		for range 30 {
			name, _, err := proxytest.Ask(n.Pod1, "10.96.0.20:80")
			if err != nil {
				return false
			}
			seen[name] = true
		}
		return seen["pod1"] && seen["pod2"]
	})

	es.Endpoints[1].Conditions.Ready = &notReady
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	proxytest.WaitUntil(t, "only pod1 to answer", func() bool {
		for range 20 {
			name, _, err := proxytest.Ask(n.Node, "10.96.0.20:80")
			if err != nil || name != "pod1" {
				return false
			}
		}
		return true
	})
}

func ptrTo[T any](v T) *T { return &v }
