package storage

import (
	"bytes"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestSpliceRV checks that splicing a resourceVersion into a stored
// message gives the bytes Marshal gives for the object with that
// resourceVersion, for namespaced and cluster-scoped kinds, with and
// without a resourceVersion already in the message, and that messages not
// laid out as generated code writes them are refused.
func TestSpliceRV(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 0))
	hold := "node-1"
	objects := []runtime.Object{
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "web-7c9f8d6b5d-x2x4z", GenerateName: "web-7c9f8d6b5d-", Namespace: "shop", UID: "0d9f1c9e-1",
				Labels: map[string]string{"app": "web", "pod-template-hash": "7c9f8d6b5d"}, Annotations: map[string]string{"a": "b"},
				CreationTimestamp: now, Generation: 3, Finalizers: []string{"f"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{}}}}`)}}},
			},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5"},
		},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "default"}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &hold}},
	}
	for _, obj := range objects {
		acc, err := meta.Accessor(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, before := range []string{"", "7", "123456789012"} {
			for _, rv := range []string{"1", "987654", "18446744073709551615"} {
				acc.SetResourceVersion(before)
				stored, err := obj.(protoMessage).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				acc.SetResourceVersion(rv)
				want, err := obj.(protoMessage).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				got, name, ns, ok := spliceRV(stored, rv)
				if !ok {
					t.Fatalf("%T %s: refused", obj, acc.GetName())
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%T %s, resourceVersion %q -> %q: spliced message differs from Marshal", obj, acc.GetName(), before, rv)
				}
				if name != acc.GetName() || ns != acc.GetNamespace() {
					t.Errorf("%T: name %q namespace %q, want %q %q", obj, name, ns, acc.GetName(), acc.GetNamespace())
				}
			}
		}
	}

	for _, bad := range [][]byte{nil, []byte("{}"), {0x0a, 0x05, 0x0a}, {0x12, 0x00}, {0x0a, 0x02, 0x38, 0x01}} {
		if _, _, _, ok := spliceRV(bad, "1"); ok {
			t.Errorf("spliceRV(%x) accepted", bad)
		}
	}
}

// TestEnvelopedRaw checks that the message is found in what the store
// writes, and that other values are refused.
func TestEnvelopedRaw(t *testing.T) {
	r := New(nil, Options{}).Register(ResourceConfig{GroupResource: schema.GroupResource{Resource: "configmaps"},
		GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespaced: true, New: func() runtime.Object { return &corev1.ConfigMap{} }})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	stored, _, err := r.encode(cm)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := envelopedRaw(stored)
	if !ok || !bytes.Equal(raw, want) {
		t.Errorf("envelopedRaw = %x, %v; want %x", raw, ok, want)
	}
	for _, bad := range [][]byte{[]byte(`{"kind":"ConfigMap"}`), []byte(protoMagic), append([]byte(protoMagic), 0x12, 0x10)} {
		if _, ok := envelopedRaw(bad); ok {
			t.Errorf("envelopedRaw(%q) accepted", bad)
		}
	}
}
