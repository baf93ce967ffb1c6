package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// recorder is a Backend that keeps what it was asked to program.
type recorder struct {
	mu    sync.Mutex
	syncs []*Ruleset
	fail  int // fail this many syncs first
}

func (r *recorder) Sync(_ context.Context, rs *Ruleset) (SyncResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs = append(r.syncs, rs)
	if r.fail > 0 {
		r.fail--
		return SyncResult{}, errors.New("injected failure")
	}
	return SyncResult{Full: len(r.syncs) == 1, Changed: len(rs.Services)}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.syncs)
}

func (r *recorder) last() *Ruleset {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.syncs) == 0 {
		return nil
	}
	return r.syncs[len(r.syncs)-1]
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startProxier(t *testing.T, backend Backend, minSync time.Duration, objs ...*corev1.Service) (*fake.Clientset, *prometheus.Registry) {
	t.Helper()
	client := fake.NewClientset()
	for _, o := range objs {
		if _, err := client.CoreV1().Services(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	p, err := New(Config{
		Client: client, Backend: backend, MinSyncInterval: minSync,
		Node:       Node{Name: testNode, IPs: addrs("192.168.1.5")},
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return client, reg
}

func TestProxierSyncsServicesAndSlices(t *testing.T) {
	rec := &recorder{}
	client, reg := startProxier(t, rec, 50*time.Millisecond, service("web"))
	waitFor(t, "the first sync with ns/web", func() bool {
		rs := rec.last()
		return rs != nil && len(rs.Services) == 1 && rs.Services[0].Name.Name == "web"
	})
	if got := rec.last().NodeIPs; !equalAddrs(got, addrs("192.168.1.5")) {
		t.Errorf("NodeIPs: got %v, want 192.168.1.5", got)
	}

	es := slice("web-1", "web", "", 8080, readyEP("10.244.1.2", "node-b"))
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(context.Background(), es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sync with the endpoint", func() bool {
		rs := rec.last()
		return len(rs.Services) == 1 && len(rs.Services[0].ClusterEndpoints) == 1 &&
			rs.Services[0].ClusterEndpoints[0].IP == netip.MustParseAddr("10.244.1.2")
	})
	if err := client.CoreV1().Services("ns").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sync without the service", func() bool { return len(rec.last().Services) == 0 })

	if got := metric(t, reg, "skiff_proxy_sync_duration_seconds").GetHistogram().GetSampleCount(); got < 3 {
		t.Errorf("sync duration observations: got %d, want at least 3", got)
	}
}

func TestProxierDebounces(t *testing.T) {
	rec := &recorder{}
	const minSync = 400 * time.Millisecond
	client, _ := startProxier(t, rec, minSync)
	waitFor(t, "the first sync", func() bool { return rec.count() >= 1 })
	before := rec.count()
	const changes = 10
	for i := range changes {
		s := service("web-" + string(rune('a'+i)))
		if _, err := client.CoreV1().Services("ns").Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a sync with every service", func() bool { return len(rec.last().Services) == changes })
	// A burst within one interval costs at most two syncs: one may start
	// at once, the rest waits for the interval to pass.
	if got := rec.count() - before; got > 2 {
		t.Errorf("syncs for a burst of %d changes: got %d, want at most 2", changes, got)
	}
}

func TestProxierRetriesAfterFailure(t *testing.T) {
	rec := &recorder{fail: 1}
	_, reg := startProxier(t, rec, 50*time.Millisecond, service("web"))
	waitFor(t, "a second sync after the failure", func() bool { return rec.count() >= 2 })
	if got := metric(t, reg, "skiff_proxy_sync_failures_total").GetCounter().GetValue(); got != 1 {
		t.Errorf("sync failures: got %v, want 1", got)
	}
}

// metric returns the single series of a registered metric.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s: no single series registered", name)
	return nil
}
