package nodeipam

import (
	"context"
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func TestAllocatesAfterExisting(t *testing.T) {
	existing := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "a"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}}}
	fresh := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", UID: "b"}}
	client := fake.NewSimpleClientset(existing, fresh)
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(f.Core().V1().Nodes(), client, "10.244.0.0/16", 24, record.NewFakeRecorder(10), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	store := f.Core().V1().Nodes().Informer().GetStore()
	_ = store.Add(existing)
	_ = store.Add(fresh)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if err := c.sync(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := client.CoreV1().Nodes().Get(ctx, "b", metav1.GetOptions{})
	if got.Spec.PodCIDR != "10.244.1.0/24" || len(got.Spec.PodCIDRs) != 1 {
		t.Fatalf("got podCIDR %q %v, want 10.244.1.0/24", got.Spec.PodCIDR, got.Spec.PodCIDRs)
	}
	// A second sync before the cache sees the patch must not allocate again.
	if err := c.sync(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if c.set.InUse() != 2 {
		t.Errorf("got %d subnets in use, want 2", c.set.InUse())
	}
	// Deleting a node releases its subnet.
	_ = store.Delete(existing)
	if err := c.sync(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if c.set.InUse() != 1 {
		t.Errorf("got %d subnets in use after delete, want 1", c.set.InUse())
	}
}
