// Package server is the composition root of Skiff's control plane: it
// starts etcd (or connects to one), creates the PKI and the admin
// kubeconfig, builds the store and the API server, serves HTTPS, and
// bootstraps the objects every cluster has.
//
// Start-up order is expressed with readiness: etcd ready -> store filled ->
// API serving -> bootstrap -> /readyz true.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/auth"
	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/storage"
	"github.com/skiff-sh/skiff/internal/version"
)

// Config configures the control plane.
type Config struct {
	DataDir          string
	BindAddress      string
	SecurePort       int
	AdvertiseAddress string // "" = first non-loopback IPv4
	KubeconfigPath   string

	EtcdEndpoints  []string // empty = embedded
	EtcdTLS        etcd.TLSFiles
	EtcdClientPort int
	EtcdPeerPort   int

	ServiceCIDR   string
	NodePortRange string
	MaxInFlight   int
	TokenAuthFile string
	Profiling     bool

	// DisableControllers names controllers not to run; "*" disables all.
	DisableControllers []string
	// DisableScheduler runs no scheduler (another one may bind pods).
	DisableScheduler bool
	// Controllers holds the controllers' knobs (node monitor grace
	// period, cluster CIDR, ...); zero values are upstream's defaults.
	Controllers controllermanager.Options

	// ClusterDomain is the cluster DNS zone (default cluster.local) and
	// ClusterDNS the kube-dns Service IP (default 10.96.0.10).
	ClusterDomain string
	ClusterDNS    string
	// DNSPort is the port the cluster DNS server listens on, UDP and TCP,
	// at the bind address or the node IP; 0 runs none.
	DNSPort int
	// DNSUpstreams are the resolvers (host:port) for names outside the
	// cluster zone; empty reads ResolvConf (default /etc/resolv.conf).
	DNSUpstreams []string
	ResolvConf   string

	// Node, when set, runs this server's own node with the real runtime
	// (`skiff server` is also a node unless --disable-agent). Its Client
	// is made by the server; DataDir defaults to the server's.
	Node *agent.NodeConfig

	Logger *slog.Logger
}

// Server is the control plane.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New checks a Config and returns a Server ready to Run.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir == "" {
		return nil, errors.New("data dir is required")
	}
	if cfg.SecurePort == 0 {
		cfg.SecurePort = 6443
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = "10.96.0.0/12"
	}
	if cfg.NodePortRange == "" {
		cfg.NodePortRange = "30000-32767"
	}
	if cfg.ClusterDNS == "" {
		cfg.ClusterDNS = "10.96.0.10"
	}
	if err := cfg.Controllers.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Run runs the control plane until ctx ends, then shuts down cleanly.
func (s *Server) Run(ctx context.Context) error {
	start := time.Now()
	cfg := s.cfg
	_, serviceCIDR, err := net.ParseCIDR(cfg.ServiceCIDR)
	if err != nil || serviceCIDR.IP.To4() == nil {
		return fmt.Errorf("--service-cluster-ip-range %q: want an IPv4 CIDR", cfg.ServiceCIDR)
	}
	portMin, portMax, err := parsePortRange(cfg.NodePortRange)
	if err != nil {
		return err
	}
	advertise := cfg.AdvertiseAddress
	if advertise == "" {
		advertise = agent.HostIP()
	}
	advertiseIP := net.ParseIP(advertise)
	if advertiseIP == nil {
		return fmt.Errorf("--advertise-address %q is not an IP address", advertise)
	}
	serverDir := filepath.Join(cfg.DataDir, "server")
	if err := os.MkdirAll(serverDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	// The managed-fields type converter takes a tenth of a second of CPU;
	// build it while etcd starts.
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	// metrics.k8s.io's types, for its OpenAPI documents.
	if err := metricsv1beta1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	typeConverter := make(chan managedfields.TypeConverter, 1)
	go func() { typeConverter <- applyconfigurations.NewTypeConverter(scheme) }()

	// etcd.
	var client *clientv3.Client
	var embedded *etcd.Embedded
	if len(cfg.EtcdEndpoints) == 0 {
		embedded, err = etcd.Start(ctx, etcd.Config{Dir: filepath.Join(cfg.DataDir, "etcd"), ClientPort: cfg.EtcdClientPort, PeerPort: cfg.EtcdPeerPort})
		if err != nil {
			return err
		}
		defer embedded.Close()
		client = embedded.Client()
		s.log.Info("embedded etcd ready", "dir", filepath.Join(cfg.DataDir, "etcd"), "elapsed", time.Since(start).Round(time.Millisecond))
	} else {
		client, err = etcd.Dial(ctx, cfg.EtcdEndpoints, cfg.EtcdTLS)
		if err != nil {
			return err
		}
		defer client.Close()
		s.log.Info("connected to etcd", "endpoints", strings.Join(cfg.EtcdEndpoints, ","))
	}

	// PKI and credentials.
	firstServiceIP := nthIP(serviceCIDR, 1)
	bundle, err := pki.Ensure(pki.Config{
		Dir:        filepath.Join(serverDir, "tls"),
		ServingIPs: servingIPs(cfg.BindAddress, advertiseIP, firstServiceIP),
		ServingDNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", hostname()},
	})
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	adminCert, adminKey, err := bundle.EnsureClientCert("admin", "system:admin", []string{"system:masters"})
	if err != nil {
		return fmt.Errorf("admin certificate: %w", err)
	}
	// The server's own clients (bootstrap, components, its node) and the
	// admin kubeconfig reach it on loopback, unless it listens on one
	// address only.
	localHost := "127.0.0.1"
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		localHost = ip.String()
	}
	localURL := "https://" + net.JoinHostPort(localHost, strconv.Itoa(cfg.SecurePort))
	if cfg.KubeconfigPath != "" {
		if err := pki.WriteKubeconfig(cfg.KubeconfigPath, localURL, bundle.CAPEM, adminCert, adminKey); err != nil {
			return fmt.Errorf("write admin kubeconfig: %w", err)
		}
	}
	// The token file holds the full join token (the CA's hash and the
	// secret); the authenticator knows the secret.
	_, token, err := pki.EnsureJoinToken(filepath.Join(serverDir, "token"), bundle.CACert)
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	tokens := map[string]auth.User{token: {Name: "skiff:agent-bootstrap", Groups: []string{"system:bootstrappers"}}}
	if cfg.TokenAuthFile != "" {
		more, err := auth.LoadTokenFile(cfg.TokenAuthFile)
		if err != nil {
			return err
		}
		for k, v := range more {
			tokens[k] = v
		}
	}

	// Service-account tokens: signed with a key kept next to the CA,
	// checked against the store once the API exists.
	saKey, err := pki.EnsureServiceAccountKey(filepath.Join(serverDir, "tls"))
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	saIssuer, err := auth.NewServiceAccountIssuer(saKey, auth.DefaultServiceAccountIssuer)
	if err != nil {
		return err
	}
	saTokens := &auth.ServiceAccountTokens{Issuer: saIssuer}

	// Store and API.
	store := storage.New(client, storage.Options{Logger: s.log})
	// The API server reaches nodes' kubelets (logs) with an identity of
	// its own, the one the kubelets accept.
	kubeletCert, kubeletKey, err := bundle.EnsureClientCert("apiserver-kubelet-client", kubelet.APIServerClientUser, nil)
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	kubeletPair, err := tls.X509KeyPair(kubeletCert, kubeletKey)
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	api, err := apiserver.New(apiserver.Config{
		KubeletClientTLS: &tls.Config{Certificates: []tls.Certificate{kubeletPair}, MinVersion: tls.VersionTLS12},
		Store:            store,
		Scheme:           scheme,
		Authenticator:    auth.Union{inProcessAuthenticator{}, auth.X509{}, saTokens, auth.NewTokens(tokens)},
		Authorizer:       auth.AlwaysAllow{},
		ServiceCIDR:      serviceCIDR,
		NodePortMin:      portMin,
		NodePortMax:      portMax,
		MaxInFlight:      cfg.MaxInFlight,
		Profiling:        cfg.Profiling,
		PublicAddress:    net.JoinHostPort(advertise, strconv.Itoa(cfg.SecurePort)),
		Version:          version.Info(),
		Logger:           s.log,
		TypeConverter:    <-typeConverter,

		// Without the serviceaccount controller no pod's account would
		// ever exist.
		ServiceAccountsOptional: slices.Contains(cfg.DisableControllers, "*") || slices.Contains(cfg.DisableControllers, "serviceaccount"),
	})
	if err != nil {
		return err
	}
	saTokens.Objects = api.ServiceAccountObjects()

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.SecurePort)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler := api.Handler()
	srv := &http.Server{
		Handler: handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{bundle.Serving},
			ClientCAs:    bundle.ClientCAs(),
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// The same API for the process's own components, over in-memory
	// connections (see inprocess.go).
	inProcess := newInProcessListener()
	inProcessSrv := &http.Server{
		Handler:           handler,
		ConnContext:       inProcessConnContext,
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { keepGCHeadroom(gctx, s.log); return nil })
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStore()
	storeDone := make(chan error, 1)
	go func() { storeDone <- store.Run(storeCtx) }()
	g.Go(func() error {
		select {
		case err := <-storeDone:
			if gctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			return errors.New("store stopped")
		case <-gctx.Done():
			return nil
		}
	})
	if embedded != nil {
		g.Go(func() error {
			select {
			case err := <-embedded.Err():
				return fmt.Errorf("embedded etcd: %w", err)
			case <-gctx.Done():
				return nil
			}
		})
	}
	g.Go(func() error {
		err := srv.ServeTLS(ln, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go(func() error {
		err := inProcessSrv.Serve(inProcess)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	// The API's own clients (controllers, scheduler) stop first, while the
	// API still serves them, so they can hand back their leases.
	comps := &components{}
	compCtx, stopComps := context.WithCancel(gctx)
	defer stopComps()
	g.Go(func() error {
		<-gctx.Done()
		stopComps()
		comps.wait(5 * time.Second)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Shutdown waits for ordinary requests; watches end when their
		// store watchers stop, which closing the store's context does.
		go func() {
			<-sctx.Done()
			_ = srv.Close()
			_ = inProcessSrv.Close()
		}()
		stopStore()
		go func() { _ = inProcessSrv.Shutdown(sctx) }()
		_ = srv.Shutdown(sctx)
		return nil
	})
	g.Go(func() error {
		select {
		case <-store.Ready():
		case <-gctx.Done():
			return nil
		}
		boot := bootstrap{
			log:         s.log,
			url:         localURL,
			caPEM:       bundle.CAPEM,
			certPEM:     adminCert,
			keyPEM:      adminKey,
			serviceIP:   firstServiceIP.String(),
			advertiseIP: advertise,
			port:        cfg.SecurePort,
			api:         api,
		}
		if err := boot.run(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bootstrap: %w", err)
		}
		if err := s.startComponents(compCtx, g, comps, inProcess, bundle.CAPEM); err != nil {
			return err
		}
		if err := s.startNode(compCtx, g, comps, localURL, bundle); err != nil {
			return err
		}
		if err := s.startDNS(compCtx, g, comps, inProcess, api, advertise); err != nil {
			return err
		}
		api.SetReady()
		// Start-up builds large transient structures (OpenAPI documents,
		// schemas); hand the freed heap back so an idle server stays small.
		debug.FreeOSMemory()
		releaseStartupPages()
		s.log.Info("skiff server ready", "url", fmt.Sprintf("https://%s", net.JoinHostPort(advertise, strconv.Itoa(cfg.SecurePort))),
			"kubeconfig", cfg.KubeconfigPath, "elapsed", time.Since(start).Round(time.Millisecond))
		api.BuildOpenAPI()
		return nil
	})
	err = g.Wait()
	s.log.Info("skiff server stopped")
	return err
}

// servingIPs are the IP SANs of the serving certificate: loopback, the
// advertised address, the kubernetes Service's IP, and the bind address
// when the server listens on one address only.
func servingIPs(bind string, advertise, service net.IP) []net.IP {
	ips := []net.IP{net.ParseIP("127.0.0.1"), advertise, service}
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() && !ip.Equal(advertise) && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	return ips
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("--service-node-port-range %q: want MIN-MAX", s)
	}
	return lo, hi, nil
}

// nthIP returns the n-th address of a network.
func nthIP(n *net.IPNet, i int) net.IP {
	ip := make(net.IP, 4)
	copy(ip, n.IP.To4())
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(i)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return strings.ToLower(h)
}
