package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/auth"
)

// Handler returns the HTTP handler of the API: recovery, then limits,
// authentication, authorization, and the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", s.serveVersion)
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.HandleFunc("/healthz/", s.serveHealth)
	mux.HandleFunc("/livez", s.serveHealth)
	mux.HandleFunc("/livez/", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/readyz/", s.serveHealth)
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/openapi/", s.serveOpenAPI)
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apis", s.serveAPI)
	mux.HandleFunc("/apis/", s.serveAPI)
	mux.HandleFunc("/apis/metrics.k8s.io/", s.serveMetricsAPI)
	mux.HandleFunc("/", s.serveRoot)
	if s.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s.withRecovery(s.withRequestInfo(s.withInflightLimit(s.withAuthentication(s.withAuthorization(s.withMetrics(mux))))))
}

// publicPaths may be read without credentials, as upstream's
// system:public-info-viewer role allows.
func isPublic(path string) bool {
	switch {
	case path == "/version", path == "/healthz", path == "/livez", path == "/readyz":
		return true
	case strings.HasPrefix(path, "/healthz/"), strings.HasPrefix(path, "/livez/"), strings.HasPrefix(path, "/readyz/"):
		return true
	}
	return false
}

func (s *Server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, r, apierrors.NewInternalError(fmt.Errorf("an internal error occurred while serving the request")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := parseRequest(r)
		next.ServeHTTP(w, r.WithContext(withRequestInfo(r.Context(), info)))
	})
}

// withInflightLimit answers 429 when too many non-watch requests are being
// served, so overload sheds load instead of queueing without bound.
func (s *Server) withInflightLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoFrom(r.Context())
		if info.Verb == "watch" || isLongRunning(info) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, r, apierrors.NewTooManyRequests("Too many requests, please try again later.", 1))
		}
	})
}

func isLongRunning(info *requestInfo) bool {
	switch info.Subresource {
	case "log", "exec", "attach", "portforward", "proxy":
		return true
	}
	return false
}

func (s *Server) withAuthentication(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := s.cfg.Authenticator.Authenticate(r)
		if !ok {
			if isPublic(r.URL.Path) && err == nil {
				next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), &auth.User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}})))
				return
			}
			if err != nil {
				s.log.Debug("authentication failed", "path", r.URL.Path, "err", err)
			}
			writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
	})
}

func (s *Server) withAuthorization(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoFrom(r.Context())
		u := auth.UserFrom(r.Context())
		a := auth.Attributes{User: u, Verb: info.Verb, Path: r.URL.Path}
		if info.IsResource {
			a = auth.Attributes{User: u, Verb: info.Verb, Namespace: info.Namespace, APIGroup: info.Group,
				Resource: info.Resource, Subresource: info.Subresource, Name: info.Name}
		}
		if u.Name == "system:anonymous" {
			next.ServeHTTP(w, r)
			return
		}
		allowed, reason, err := s.cfg.Authorizer.Authorize(r.Context(), a)
		if err != nil || !allowed {
			msg := fmt.Sprintf("User %q cannot %s resource %q", u.Name, info.Verb, info.Resource)
			if reason != "" {
				msg += ": " + reason
			}
			writeError(w, r, apierrors.NewForbidden(schema.GroupResource{Group: info.Group, Resource: info.Resource}, info.Name, fmt.Errorf("%s", msg)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metrics are the API server's Prometheus metrics, on a registry of its own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and HTTP response code.",
		}, []string{"verb", "group", "version", "resource", "subresource", "scope", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"verb", "group", "version", "resource", "subresource", "scope"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_current_inflight_requests",
			Help: "Maximal number of currently used inflight request limit of this apiserver per request kind.",
		}, []string{"request_kind"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.inflight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) withMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoFrom(r.Context())
		if !info.IsResource {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		kind := "readOnly"
		if info.Verb != "get" && info.Verb != "list" && info.Verb != "watch" {
			kind = "mutating"
		}
		g := s.metrics.inflight.WithLabelValues(kind)
		g.Inc()
		defer g.Dec()
		next.ServeHTTP(rec, r)
		scope := "cluster"
		switch {
		case info.Name != "":
			scope = "resource"
		case info.Namespace != "":
			scope = "namespace"
		}
		verb := strings.ToUpper(info.Verb)
		s.metrics.requests.WithLabelValues(verb, info.Group, info.Version, info.Resource, info.Subresource, scope, strconv.Itoa(rec.code)).Inc()
		if info.Verb != "watch" {
			s.metrics.latency.WithLabelValues(verb, info.Group, info.Version, info.Resource, info.Subresource, scope).Observe(time.Since(start).Seconds())
		}
	})
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, s.cfg.Version)
}

func (s *Server) serveRoot(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "",
			"the server could not find the requested resource", 0, false))
		return
	}
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v2", "/openapi/v3", "/readyz", "/version"}
	for gvr := range s.endpoints {
		if gvr.Group != "" {
			paths = append(paths, "/apis/"+gvr.Group, "/apis/"+gvr.Group+"/"+gvr.Version)
		}
	}
	writeJSON(w, r, http.StatusOK, metav1.RootPaths{Paths: dedupSorted(paths)})
}

// check is one health check.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

func (s *Server) checks(path string) []check {
	checks := []check{
		{"ping", func(context.Context) error { return nil }},
		{"log", func(context.Context) error { return nil }},
		{"etcd", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := s.cfg.Store.Client().Get(ctx, "health", nil...)
			return err
		}},
	}
	if strings.HasPrefix(path, "/readyz") {
		checks = append(checks,
			check{"informer-sync", func(context.Context) error {
				select {
				case <-s.cfg.Store.Ready():
					return nil
				default:
					return fmt.Errorf("watch cache not yet filled")
				}
			}},
			check{"poststarthook/bootstrap-controller", func(context.Context) error {
				if !s.ready.Load() {
					return fmt.Errorf("not finished")
				}
				return nil
			}},
		)
	}
	return checks
}

// serveHealth answers /healthz, /livez and /readyz like upstream: "ok", a
// verbose list with ?verbose, and single checks at /readyz/<name>.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	base, one, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	verbose := r.URL.Query().Has("verbose")
	exclude := r.URL.Query()["exclude"]
	var b strings.Builder
	failed := false
	found := one == ""
	for _, c := range s.checks("/" + base) {
		if one != "" && c.name != one {
			continue
		}
		found = true
		if contains(exclude, c.name) {
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.name)
			continue
		}
		if err := c.fn(r.Context()); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", c.name)
			s.log.Debug("health check failed", "check", c.name, "err", err)
			continue
		}
		fmt.Fprintf(&b, "[+]%s ok\n", c.name)
	}
	if !found {
		writeBytes(w, http.StatusNotFound, "text/plain; charset=utf-8", []byte("404 page not found\n"))
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		fmt.Fprintf(&b, "%s check failed\n", base)
		writeBytes(w, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte(b.String()))
		return
	}
	if verbose {
		fmt.Fprintf(&b, "%s check passed\n", base)
		writeBytes(w, http.StatusOK, "text/plain; charset=utf-8", []byte(b.String()))
		return
	}
	writeBytes(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
