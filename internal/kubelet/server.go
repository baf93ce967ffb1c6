package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet's HTTPS server, as upstream's on port 10250: the API server
// reaches it to stream container logs (pods/log). It is not open to
// anyone: every request must present a client certificate signed by the
// cluster CA whose common name is one of the allowed users (the API
// server's kubelet-client identity); others get 401 or 403.

// Kubelet server defaults.
const (
	// DefaultServerPort is the kubelet's HTTPS port, the one every node
	// publishes as status.daemonEndpoints.kubeletEndpoint.port.
	DefaultServerPort = kubeletPort
	// APIServerClientUser is the common name of the API server's client
	// certificate for kubelets, as kubeadm names it.
	APIServerClientUser = "kube-apiserver-kubelet-client"
	// servingCertValidity is how long the self-signed serving certificate
	// made at start lasts.
	servingCertValidity = 365 * 24 * time.Hour
)

// ServerConfig configures a kubelet server.
type ServerConfig struct {
	// Addr is where the server listens, NodeIP:10250.
	Addr string
	// Hostname is added to the serving certificate's names; its IPs come
	// from Addr.
	Hostname string
	// Runtime lists the containers and their log files.
	Runtime Runtime
	// Pods returns a pod bound to this node with its status, or nil when
	// the node has no such pod.
	Pods func(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// ClientCA verifies client certificates: the cluster CA.
	ClientCA *x509.CertPool
	// AllowedUsers are the client certificate common names let in
	// (default APIServerClientUser).
	AllowedUsers []string
	Logger       *slog.Logger
	// Stats serves /stats/summary; nil answers it with 404.
	Stats *Stats
	// Now is the clock for sinceSeconds; default time.Now.
	Now func() time.Time
}

// Server is the kubelet's HTTPS server. Build it with NewServer and run it
// with Run; Handler serves the same routes without TLS setup, for tests
// behind a TLS listener of their own.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	cert tls.Certificate
}

// NewServer checks cfg and makes the server's self-signed serving
// certificate. Upstream's API server does not verify kubelet serving
// certificates unless given a CA for them (--kubelet-certificate-
// authority), and Skiff's does not either, so a self-signed one is enough.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Addr == "" {
		return nil, errors.New("kubelet server: no address")
	}
	if cfg.Runtime == nil || cfg.Pods == nil {
		return nil, errors.New("kubelet server: no runtime or pod source")
	}
	if cfg.ClientCA == nil {
		return nil, errors.New("kubelet server: no client CA; it would accept no one")
	}
	if len(cfg.AllowedUsers) == 0 {
		cfg.AllowedUsers = []string{APIServerClientUser}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: address %q: %w", cfg.Addr, err)
	}
	cert, err := selfSignedServingCert(host, cfg.Hostname, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("kubelet server: serving certificate: %w", err)
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "kubelet-server"), cert: cert}, nil
}

// selfSignedServingCert makes a serving certificate for the node's IP (when
// host is one) and hostname, signed by its own key.
func selfSignedServingCert(host, hostname string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	cn := hostname
	if cn == "" {
		cn = host
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// Upstream names its self-signed kubelet certificate
		// "<hostname>@<unix time>".
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", cn, now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(servingCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	if hostname != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// TLSConfig is the server's TLS configuration: its serving certificate,
// and client certificates verified against the cluster CA when given (the
// handler answers 401 to requests without one).
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    s.cfg.ClientCA,
		MinVersion:   tls.VersionTLS12,
	}
}

// Run serves on cfg.Addr until ctx ends. It returns nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("kubelet server: %w", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("kubelet server listening", "addr", l.Addr().String())
	err = srv.ServeTLS(l, "", "")
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("kubelet server: %w", err)
}

// Handler authenticates and authorizes each request by its client
// certificate and serves /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", s.serveExec)
	mux.HandleFunc("/attach/{namespace}/{pod}/{container}", s.serveAttach)
	mux.HandleFunc("/portForward/{namespace}/{pod}", s.servePortForward)
	mux.HandleFunc("GET /stats/summary", s.serveStatsSummary)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		user := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if !slices.Contains(s.cfg.AllowedUsers, user) {
			// Upstream's kubelet names the attributes it checked.
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource=proxy)", user), http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveContainerLogs streams one container's log. Errors found before the
// stream starts are plain-text 4xx answers with upstream's messages.
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseLogOptions(r.URL.Query(), s.cfg.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	ctx := r.Context()
	pod, ok := s.lookupPod(ctx, w, ns, name)
	if !ok {
		return
	}
	if !podHasContainer(pod, container) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", container, name), http.StatusNotFound)
		return
	}
	id, err := logContainerID(pod, container, opts.previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, err := s.container(ctx, id)
	if err != nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q: %v", container, name, err), http.StatusInternalServerError)
		return
	}
	if c == nil || c.LogPath == "" {
		http.Error(w, fmt.Sprintf("container %q in pod %q: the runtime has no log of container %s", container, name, id), http.StatusBadRequest)
		return
	}
	running := func() bool {
		c, err := s.container(ctx, id)
		// A failed listing is not a stop: keep following.
		return err != nil || (c != nil && (c.State == ContainerRunning || c.State == ContainerCreated))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	out := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok && opts.follow {
		// The client sees the answer start before the first line.
		w.WriteHeader(http.StatusOK)
		f.Flush()
		out.flush = f
		out.started = true
	}
	if err := readLogs(ctx, c.LogPath, opts, out, running); err != nil && ctx.Err() == nil {
		// Past the header nothing can be reported but the end.
		s.log.Warn("container log", "pod", ns+"/"+name, "container", container, "err", err)
		if !out.started {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}
}

// container returns the runtime's container with id, or nil.
func (s *Server) container(ctx context.Context, id string) (*Container, error) {
	cs, err := s.cfg.Runtime.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		if cs[i].ID == id {
			return &cs[i], nil
		}
	}
	return nil, nil
}

// podHasContainer reports whether the pod's spec names container.
func podHasContainer(pod *corev1.Pod, container string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == container {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == container {
			return true
		}
	}
	return false
}

// flushWriter flushes after every write when following, so each log line
// reaches the client as it is written.
type flushWriter struct {
	w     http.ResponseWriter
	flush http.Flusher
	// started is set once the answer's header went out.
	started bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.started = true
	n, err := f.w.Write(p)
	if f.flush != nil {
		f.flush.Flush()
	}
	return n, err
}

// lookupPod finds the pod a request names, answering 500 or 404 itself
// when it cannot.
func (s *Server) lookupPod(ctx context.Context, w http.ResponseWriter, ns, name string) (*corev1.Pod, bool) {
	pod, err := s.cfg.Pods(ctx, ns, name)
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %q: %v", name, err), http.StatusInternalServerError)
		return nil, false
	}
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %q does not exist", name), http.StatusNotFound)
		return nil, false
	}
	return pod, true
}
