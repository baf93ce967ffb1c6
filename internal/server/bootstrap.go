package server

import (
	"context"

	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/storage"
)

// bootstrap ensures the objects every cluster has, through the API like
// any client: the system namespaces and the kubernetes Service with its
// endpoints pointing at this server.
type bootstrap struct {
	log                    *slog.Logger
	url                    string
	caPEM, certPEM, keyPEM []byte
	serviceIP              string
	advertiseIP            string
	port                   int
	api                    *apiserver.Server
}

func (b *bootstrap) run(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(&rest.Config{
		Host:            b.url,
		TLSClientConfig: rest.TLSClientConfig{CAData: b.caPEM, CertData: b.certPEM, KeyData: b.keyPEM},
		UserAgent:       "skiff-bootstrap",
		QPS:             -1,
	})
	if err != nil {
		return err
	}
	// The listener is up, but give the first requests a moment of grace.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = b.ensure(ctx, cs)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		b.log.Debug("bootstrap retry", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *bootstrap) ensure(ctx context.Context, cs kubernetes.Interface) error {
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	labels := map[string]string{"component": "apiserver", "provider": "kubernetes"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: b.serviceIP,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(b.port))}},
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("service default/kubernetes: %w", err)
	}

	return b.reconcileEndpoints(ctx)
}

// reconcileEndpoints writes the endpoints of the kubernetes Service
// straight to storage, as upstream's endpoint reconciler does: the address
// may be loopback on a single machine, which API validation refuses for
// ordinary endpoints.
func (b *bootstrap) reconcileEndpoints(ctx context.Context) error {
	port := int32(b.port)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	subsets := []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: b.advertiseIP}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}},
	}}
	eps := b.api.Storage(schema.GroupResource{Resource: "endpoints"})
	_, err := eps.GuaranteedUpdate(ctx, "default", "kubernetes", storage.UpdateOptions{AllowCreate: true},
		func(cur runtime.Object) (runtime.Object, error) {
			ep, _ := cur.(*corev1.Endpoints)
			if ep == nil {
				ep = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
					UID: types.UID(uuid.NewString()), CreationTimestamp: now,
					Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}}}
			}
			ep.Subsets = subsets
			return ep, nil
		})
	if err != nil {
		return fmt.Errorf("endpoints default/kubernetes: %w", err)
	}

	ready := true
	proto := corev1.ProtocolTCP
	name := "https"
	slices := b.api.Storage(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"})
	_, err = slices.GuaranteedUpdate(ctx, "default", "kubernetes", storage.UpdateOptions{AllowCreate: true},
		func(cur runtime.Object) (runtime.Object, error) {
			es, _ := cur.(*discoveryv1.EndpointSlice)
			if es == nil {
				es = &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
					UID: types.UID(uuid.NewString()), CreationTimestamp: now, Generation: 1,
					Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}}}
			}
			es.AddressType = discoveryv1.AddressTypeIPv4
			es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{b.advertiseIP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}
			es.Ports = []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}}
			return es, nil
		})
	if err != nil {
		return fmt.Errorf("endpointslice default/kubernetes: %w", err)
	}
	return nil
}
