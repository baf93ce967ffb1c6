package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

type healthAnswer struct {
	code   int
	weight string
	body   map[string]any
}

func getHealth(t *testing.T, url string) (healthAnswer, error) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return healthAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := healthAnswer{code: resp.StatusCode, weight: resp.Header.Get("X-Load-Balancing-Endpoint-Weight")}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return a, nil
}

func TestHealthServer(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	hcPort, healthzPort := freePort(t), freePort(t)
	var mu sync.Mutex
	now := time.Now()
	h := NewHealthServer(HealthConfig{
		NodeIPs: []netip.Addr{lo}, HealthzAddress: fmt.Sprintf("127.0.0.1:%d", healthzPort),
		SyncPeriod: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	ep := func(ip string) Endpoint { return Endpoint{IP: netip.MustParseAddr(ip), Port: 8080, Local: true} }
	web := func(local []Endpoint, ready bool) *Ruleset {
		return &Ruleset{Services: []*ServicePort{
			{Name: ServicePortName{Namespace: "shop", Name: "web", Port: "http", Protocol: TCP}, HealthCheckNodePort: hcPort,
				LocalEndpoints: local, LocalReady: ready && len(local) > 0},
			// A second port of the same Service counts the same pod once.
			{Name: ServicePortName{Namespace: "shop", Name: "web", Port: "https", Protocol: TCP}, HealthCheckNodePort: hcPort,
				LocalEndpoints: local, LocalReady: ready && len(local) > 0},
		}}
	}
	hcURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", hcPort)
	healthzURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", healthzPort)

	h.Update(web([]Endpoint{ep("10.244.0.2"), ep("10.244.0.3")}, true))
	var a healthAnswer
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if a, err = getHealth(t, hcURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health check never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.code != http.StatusOK || a.weight != "2" || a.body["localEndpoints"] != float64(2) || a.body["serviceProxyHealthy"] != true {
		t.Errorf("two local endpoints: got %d weight %q body %v, want 200 weight 2 localEndpoints 2 healthy", a.code, a.weight, a.body)
	}
	if svc, _ := a.body["service"].(map[string]any); svc["namespace"] != "shop" || svc["name"] != "web" {
		t.Errorf("service: got %v, want shop/web", a.body["service"])
	}

	// Only terminating local endpoints: the node must be drained.
	h.Update(web([]Endpoint{ep("10.244.0.2")}, false))
	if a, err := getHealth(t, hcURL); err != nil || a.code != http.StatusServiceUnavailable || a.body["localEndpoints"] != float64(0) {
		t.Errorf("terminating only: got %+v, %v; want 503 with localEndpoints 0", a, err)
	}

	// The proxy's own health, then stale after two sync periods without
	// a sync, which also fails the Service's check.
	if a, err := getHealth(t, healthzURL); err != nil || a.code != http.StatusOK || a.body["lastUpdated"] == "" {
		t.Errorf("proxy healthz: got %+v, %v; want 200 with lastUpdated", a, err)
	}
	h.Update(web([]Endpoint{ep("10.244.0.2")}, true))
	advance(3 * time.Minute)
	if a, err := getHealth(t, healthzURL); err != nil || a.code != http.StatusServiceUnavailable {
		t.Errorf("stale proxy healthz: got %+v, %v; want 503", a, err)
	}
	if a, err := getHealth(t, hcURL); err != nil || a.code != http.StatusServiceUnavailable || a.body["serviceProxyHealthy"] != false {
		t.Errorf("stale proxy, service check: got %+v, %v; want 503 with serviceProxyHealthy false", a, err)
	}

	// The Service goes: its port closes.
	h.Update(&Ruleset{})
	if _, err := getHealth(t, hcURL); err == nil {
		t.Errorf("health check after the Service went: got an answer, want a refused connection")
	}
}
