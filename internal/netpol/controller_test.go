package netpol

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type fakeSyncer struct {
	mu   sync.Mutex
	last *Ruleset
	n    int
}

func (f *fakeSyncer) Sync(rs *Ruleset, force bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last, f.n = rs, f.n+1
	return true, nil
}

func (f *fakeSyncer) get() (*Ruleset, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.n
}

// TestController: a policy created after start isolates the node's pod;
// a pod of another node gets no rules; deleting the policy opens it.
func TestController(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		pod("a", "mine", "n1", "10.0.1.2", map[string]string{"app": "x"}),
		pod("a", "theirs", "n2", "10.0.2.2", map[string]string{"app": "x"}),
	)
	be := &fakeSyncer{}
	c, err := NewController(ControllerConfig{Client: client, NodeName: "n1", Backend: be, MinSyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	waitFor := func(what string, ok func(*Ruleset) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if rs, _ := be.get(); rs != nil && ok(rs) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		rs, n := be.get()
		t.Fatalf("%s: last ruleset after %d syncs: %+v", what, n, rs)
	}
	waitFor("first sync, no policy", func(rs *Ruleset) bool { return len(rs.Pods) == 0 })
	pol := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "deny"}}
	if _, err := client.NetworkingV1().NetworkPolicies("a").Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("policy created", func(rs *Ruleset) bool {
		return len(rs.Pods) == 1 && rs.Pods[0].Name == "mine" && rs.Pods[0].Ingress != nil && len(rs.Pods[0].Ingress.Allows) == 0
	})
	if err := client.NetworkingV1().NetworkPolicies("a").Delete(ctx, "deny", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("policy deleted", func(rs *Ruleset) bool { return len(rs.Pods) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
