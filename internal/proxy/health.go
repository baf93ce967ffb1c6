package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultHealthzAddress is where kube-proxy serves its own health
// (--healthz-bind-address), and so where Skiff's proxy serves it.
const DefaultHealthzAddress = "0.0.0.0:10256"

// HealthServer answers the health checks that load balancers send to a
// node, as kube-proxy does:
//
//   - on every healthCheckNodePort (of a LoadBalancer Service with
//     externalTrafficPolicy Local), at any path, 200 when the node has a
//     ready endpoint of the Service and the proxy is healthy, else 503,
//     with the Service's name and the count of local endpoints in a JSON
//     body and in X-Load-Balancing-Endpoint-Weight; so a load balancer
//     sends such a Service's traffic only to nodes that can serve it
//     without a second hop;
//   - on HealthzAddress, /healthz and /livez: 200 while the proxy has
//     synced within twice its sync period, else 503.
//
// The Proxier calls Update after every successful sync; the per-Service
// listeners follow the Ruleset. They listen on the node's addresses, where
// NodePorts are captured too.
type HealthServer struct {
	log      *slog.Logger
	nodeIPs  []netip.Addr
	addr     string
	stale    time.Duration
	now      func() time.Time
	mu       sync.Mutex
	services map[uint16]*serviceHealth
	lastSync time.Time
	started  time.Time
}

// serviceHealth is one healthCheckNodePort: the Service it reports on and
// its listeners.
type serviceHealth struct {
	namespace, name string
	local           int
	servers         []*http.Server
}

// HealthConfig configures a HealthServer.
type HealthConfig struct {
	// NodeIPs are the addresses the per-Service health checks listen on.
	NodeIPs []netip.Addr
	// HealthzAddress is host:port of the proxy's own /healthz;
	// DefaultHealthzAddress when empty, none when "-".
	HealthzAddress string
	// SyncPeriod is the Proxier's; the proxy is unhealthy when it has not
	// synced for twice as long. DefaultSyncPeriod when zero.
	SyncPeriod time.Duration
	// Logger receives one line per listener opened, closed or failed.
	Logger *slog.Logger
}

// NewHealthServer returns a HealthServer; Run serves /healthz, Update the
// per-Service checks.
func NewHealthServer(cfg HealthConfig) *HealthServer {
	if cfg.HealthzAddress == "" {
		cfg.HealthzAddress = DefaultHealthzAddress
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &HealthServer{
		log: cfg.Logger, nodeIPs: ipv4Only(cfg.NodeIPs), addr: cfg.HealthzAddress,
		stale: 2 * cfg.SyncPeriod, now: time.Now, services: map[uint16]*serviceHealth{},
	}
}

// Run serves the proxy's /healthz and /livez until ctx ends, then closes
// every listener, the per-Service ones included.
func (h *HealthServer) Run(ctx context.Context) error {
	h.mu.Lock()
	h.started = h.now()
	h.mu.Unlock()
	defer h.closeAll()
	if h.addr == "-" {
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", h.serveProxyHealth)
	mux.HandleFunc("/livez", h.serveProxyHealth)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return fmt.Errorf("proxy healthz: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy healthz: %w", err)
	}
	return nil
}

// healthy reports whether the proxy synced recently enough; a proxy that
// has not synced yet is healthy for its first stale period, as kube-proxy.
func (h *HealthServer) healthy() (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ref := h.lastSync
	if ref.IsZero() {
		ref = h.started
	}
	return h.now().Sub(ref) <= h.stale, h.lastSync
}

func (h *HealthServer) serveProxyHealth(w http.ResponseWriter, _ *http.Request) {
	ok, last := h.healthy()
	body := struct {
		LastUpdated  string `json:"lastUpdated"`
		CurrentTime  string `json:"currentTime"`
		NodeEligible bool   `json:"nodeEligible"`
	}{CurrentTime: h.now().UTC().Format(time.RFC3339Nano), NodeEligible: true}
	if !last.IsZero() {
		body.LastUpdated = last.UTC().Format(time.RFC3339Nano)
	}
	writeJSON(w, ok, body)
}

// Update records a successful sync of rs and makes the per-Service
// listeners follow it: one per distinct healthCheckNodePort, reporting the
// node's ready endpoints of its Service (counted once over its ports).
func (h *HealthServer) Update(rs *Ruleset) {
	want := map[uint16]*serviceHealth{}
	localIPs := map[uint16]map[netip.Addr]bool{}
	for _, sp := range rs.Services {
		if sp.HealthCheckNodePort == 0 {
			continue
		}
		hs, ok := want[sp.HealthCheckNodePort]
		if !ok {
			hs = &serviceHealth{namespace: sp.Name.Namespace, name: sp.Name.Name}
			want[sp.HealthCheckNodePort] = hs
			localIPs[sp.HealthCheckNodePort] = map[netip.Addr]bool{}
		}
		for _, e := range sp.LocalEndpoints {
			if sp.LocalReady {
				localIPs[sp.HealthCheckNodePort][e.IP] = true
			}
		}
	}
	for port, ips := range localIPs {
		want[port].local = len(ips)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSync = h.now()
	for port, cur := range h.services {
		w, ok := want[port]
		if ok && w.namespace == cur.namespace && w.name == cur.name {
			cur.local = w.local
			continue
		}
		closeServers(cur.servers)
		delete(h.services, port)
		h.log.Info("proxy: health check closed", "port", port, "service", cur.namespace+"/"+cur.name)
	}
	ports := make([]uint16, 0, len(want))
	for port := range want {
		if _, ok := h.services[port]; !ok {
			ports = append(ports, port)
		}
	}
	slices.Sort(ports)
	for _, port := range ports {
		w := want[port]
		h.services[port] = w
		for _, ip := range h.nodeIPs {
			addr := netip.AddrPortFrom(ip, port).String()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				// Another process holds the port; the check answers on
				// the node's other addresses, and load balancers see
				// this one as down, which is the safe side.
				h.log.Error("proxy: health check not served", "address", addr, "service", w.namespace+"/"+w.name, "err", err)
				continue
			}
			srv := &http.Server{Handler: h.serviceHandler(port), ReadHeaderTimeout: 5 * time.Second}
			w.servers = append(w.servers, srv)
			go func() { _ = srv.Serve(ln) }()
		}
		h.log.Info("proxy: health check opened", "port", port, "service", w.namespace+"/"+w.name)
	}
}

// serviceHandler answers the health check of the Service on port, with
// what the latest Update said of it.
func (h *HealthServer) serviceHandler(port uint16) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		proxyOK, _ := h.healthy()
		h.mu.Lock()
		s := h.services[port]
		var ns, name string
		local := 0
		if s != nil {
			ns, name, local = s.namespace, s.name, s.local
		}
		h.mu.Unlock()
		type svcName struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		}
		body := struct {
			Service             svcName `json:"service"`
			LocalEndpoints      int     `json:"localEndpoints"`
			ServiceProxyHealthy bool    `json:"serviceProxyHealthy"`
		}{svcName{ns, name}, local, proxyOK}
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(local))
		writeJSON(w, proxyOK && local > 0, body)
	})
}

// writeJSON writes body indented with tabs, as kube-proxy does, with 200
// when ok and 503 otherwise.
func writeJSON(w http.ResponseWriter, ok bool, body any) {
	out, err := json.MarshalIndent(body, "", "\t")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if ok {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(out)
}

func (h *HealthServer) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.services {
		closeServers(s.servers)
		delete(h.services, port)
	}
}

func closeServers(list []*http.Server) {
	for _, s := range list {
		_ = s.Close()
	}
}
