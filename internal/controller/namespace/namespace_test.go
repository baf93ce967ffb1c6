package namespace

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
)

func TestConditions(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		res  result
		want map[corev1.NamespaceConditionType]string // type -> reason
		msg  map[corev1.NamespaceConditionType]string
	}{
		{"all gone", result{}, map[corev1.NamespaceConditionType]string{
			condDiscovery: "ResourcesDiscovered", condContent: "ContentDeleted", condRemaining: "ContentRemoved", condFinalizers: "ContentHasNoFinalizers"}, nil},
		{"pods remain with a finalizer",
			result{remaining: map[string]int{"pods.": 2}, finalizers: map[string]int{"example.com/f": 1}},
			map[corev1.NamespaceConditionType]string{condRemaining: "SomeResourcesRemain", condFinalizers: "SomeFinalizersRemain"},
			map[corev1.NamespaceConditionType]string{
				condRemaining:  "Some resources are remaining: pods. has 2 resource instances",
				condFinalizers: "Some content in the namespace has finalizers remaining: example.com/f in 1 resource instances"}},
		{"discovery failed", result{discoveryErr: errors.New("boom")},
			map[corev1.NamespaceConditionType]string{condDiscovery: "DiscoveryFailed"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Conditions(tt.res, now)
			if len(got) != 5 {
				t.Fatalf("got %d conditions, want 5", len(got))
			}
			for _, c := range got {
				if want, ok := tt.want[c.Type]; ok && c.Reason != want {
					t.Errorf("%s: got reason %q, want %q", c.Type, c.Reason, want)
				}
				if want, ok := tt.msg[c.Type]; ok && c.Message != want {
					t.Errorf("%s: got message %q, want %q", c.Type, c.Message, want)
				}
			}
		})
	}
}

func TestSyncEmptiesThenFinalizes(t *testing.T) {
	now := metav1.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", DeletionTimestamp: &now},
		Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	client := fake.NewSimpleClientset(ns)
	disco := client.Discovery().(*fakediscovery.FakeDiscovery)
	disco.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: []string{"list", "delete", "deletecollection"}},
	}}}
	scheme := metafake.NewTestScheme()
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, &metav1.PartialObjectMetadata{})
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMapList"}, &metav1.PartialObjectMetadataList{})
	cm := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "c", Finalizers: []string{"example.com/hold"}}}
	meta := metafake.NewSimpleMetadataClient(scheme, cm)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(factory.Core().V1().Namespaces(), client, meta, disco, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	_ = factory.Core().V1().Namespaces().Informer().GetStore().Add(ns)
	ctx := context.Background()

	// The first pass deletes the configmap and counts it as remaining;
	// the second finds nothing and finalizes.
	if err := c.sync(ctx, "x"); !errors.Is(err, errContentRemains) {
		t.Fatalf("first sync: got %v, want errContentRemains", err)
	}
	if err := c.sync(ctx, "x"); err != nil {
		t.Fatalf("second sync: %v", err)
	}
	got, err := client.CoreV1().Namespaces().Get(ctx, "x", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Finalizers) != 0 {
		t.Errorf("got finalizers %v, want none after content is gone", got.Spec.Finalizers)
	}
	var reason string
	for _, cnd := range got.Status.Conditions {
		if cnd.Type == condRemaining {
			reason = cnd.Reason
		}
	}
	if reason != "ContentRemoved" {
		t.Errorf("got NamespaceContentRemaining reason %q, want ContentRemoved", reason)
	}
	if list, _ := meta.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("x").List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("got %d configmaps, want 0", len(list.Items))
	}
}

func TestSyncWaitsForRemainingContent(t *testing.T) {
	now := metav1.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", DeletionTimestamp: &now},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	client := fake.NewSimpleClientset(ns)
	disco := client.Discovery().(*fakediscovery.FakeDiscovery)
	// list+delete only: each object is deleted one by one; the fake keeps
	// none, but a pod that is already terminating is counted as remaining.
	disco.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: []string{"list", "delete"}},
	}}}
	scheme := metafake.NewTestScheme()
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, &metav1.PartialObjectMetadata{})
	scheme.AddKnownTypeWithName(schema.GroupVersionKind{Version: "v1", Kind: "PodList"}, &metav1.PartialObjectMetadataList{})
	pod := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p", DeletionTimestamp: &now}}
	meta := metafake.NewSimpleMetadataClient(scheme, pod)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(factory.Core().V1().Namespaces(), client, meta, disco, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	_ = factory.Core().V1().Namespaces().Informer().GetStore().Add(ns)
	if err := c.sync(context.Background(), "x"); !errors.Is(err, errContentRemains) {
		t.Fatalf("got %v, want errContentRemains", err)
	}
	got, _ := client.CoreV1().Namespaces().Get(context.Background(), "x", metav1.GetOptions{})
	if len(got.Spec.Finalizers) != 1 {
		t.Errorf("got finalizers %v, want kubernetes kept while a pod remains", got.Spec.Finalizers)
	}
}
