package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// Defaults of Config.
const (
	DefaultDomain     = "cluster.local"
	DefaultTTL        = 5
	DefaultCacheSize  = 10000
	DefaultResolvConf = "/etc/resolv.conf"
	upstreamTimeout   = 2 * time.Second
)

// Config configures a Server.
type Config struct {
	// Client reads Services, EndpointSlices and Namespaces.
	Client kubernetes.Interface
	// Domain is the cluster domain (default cluster.local).
	Domain string
	// Addr is the host:port to listen on, UDP and TCP; port 0 picks one
	// free for both.
	Addr string
	// ClusterDNS are the kube-dns Service IPs, the zone's nameserver
	// addresses (ns.dns.<zone>); they are never used as upstreams.
	ClusterDNS []string
	// Upstreams are host:port resolvers for names outside the zone; nil
	// reads ResolvConf.
	Upstreams []string
	// ResolvConf is read when Upstreams is nil (default /etc/resolv.conf).
	ResolvConf string
	// CacheSize caps the cached upstream answers (default 10000; negative
	// disables the cache).
	CacheSize int
	// TTL of the zone's answers in seconds (default 5).
	TTL    uint32
	Logger *slog.Logger
}

// Server is the cluster DNS server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	zone   Zone
	index  *Index
	synced atomic.Bool

	mu    sync.Mutex
	udp   net.PacketConn
	tcp   net.Listener
	ready chan struct{}
	fwd   *forwarder
}

// New checks cfg and returns a Server ready to Run.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("dns: a client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok {
		return nil, fmt.Errorf("dns: cluster domain %q is not a domain name", cfg.Domain)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("dns: listen address %q: %w", cfg.Addr, err)
	}
	z := Zone{Name: strings.ToLower(dns.Fqdn(cfg.Domain)), TTL: cfg.TTL}
	for _, s := range cfg.ClusterDNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dns: cluster DNS address %q: %w", s, err)
		}
		z.Nameservers = append(z.Nameservers, a.Unmap())
	}
	return &Server{cfg: cfg, log: cfg.Logger, zone: z, index: NewIndex(), ready: make(chan struct{})}, nil
}

// Index is the server's data, for tests and benchmarks.
func (s *Server) Index() *Index { return s.index }

// Ready is closed once the server listens and its caches are synced.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on (UDP and TCP), once Ready.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return ""
	}
	return s.udp.LocalAddr().String()
}

// Run listens, syncs the informers and answers until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	udp, tcp, err := listen(s.cfg.Addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.udp, s.tcp = udp, tcp
	s.mu.Unlock()
	bound, _ := netip.ParseAddrPort(udp.LocalAddr().String())

	upstreams := s.cfg.Upstreams
	if upstreams == nil {
		upstreams, err = ReadResolvConf(s.cfg.ResolvConf)
		if err != nil {
			s.log.Warn("dns: no upstream resolvers, names outside the zone fail", "err", err)
		}
	}
	upstreams = upstreamsWithoutSelf(upstreams, bound, s.zone.Nameservers, localAddrs())
	s.fwd = &forwarder{upstreams: upstreams, timeout: upstreamTimeout, cache: newCache(s.cfg.CacheSize)}

	handler := dns.HandlerFunc(s.serveDNS)
	udpSrv := &dns.Server{PacketConn: udp, Handler: handler, UDPSize: dns.DefaultMsgSize}
	tcpSrv := &dns.Server{Listener: tcp, Handler: handler, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- udpSrv.ActivateAndServe() }()
	go func() { errs <- tcpSrv.ActivateAndServe() }()

	factory := informers.NewSharedInformerFactory(s.cfg.Client, 0)
	handlersSynced, err := s.watch(factory)
	if err != nil {
		_ = udpSrv.Shutdown()
		_ = tcpSrv.Shutdown()
		return err
	}
	stop := make(chan struct{})
	factory.Start(stop)
	defer func() {
		close(stop)
		factory.Shutdown()
	}()

	synced := make(chan struct{})
	go func() {
		// The handlers' own sync: every object of the first lists is in
		// the index, not only in the informers' stores.
		if toolscache.WaitForCacheSync(stop, handlersSynced...) {
			close(synced)
		}
	}()
	select {
	case <-synced:
		s.synced.Store(true)
		close(s.ready)
		s.log.Info("dns server ready", "addr", bound.String(), "zone", s.zone.Name, "upstreams", strings.Join(upstreams, ","))
	case err := <-errs:
		_ = udpSrv.Shutdown()
		_ = tcpSrv.Shutdown()
		return fmt.Errorf("dns: serve: %w", err)
	case <-ctx.Done():
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errs:
		runErr = fmt.Errorf("dns: serve: %w", err)
	}
	_ = udpSrv.Shutdown()
	_ = tcpSrv.Shutdown()
	return runErr
}

// listen binds UDP and TCP on the same address; with port 0 it finds a
// port free for both.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, p, _ := net.SplitHostPort(addr)
	for range 10 {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, p))
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		_, port, _ := net.SplitHostPort(udp.LocalAddr().String())
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if p != "0" {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", addr, err)
		}
	}
	return nil, nil, fmt.Errorf("dns: no port free for both udp and tcp on %s", host)
}

// watch feeds the index from informers. Objects are kept slim in the
// informers' stores: DNS needs no managed fields or annotations.
func (s *Server) watch(f informers.SharedInformerFactory) ([]toolscache.InformerSynced, error) {
	slim := func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
			m.SetAnnotations(nil)
		}
		return obj, nil
	}
	touch := func() { s.index.SetSerial(uint32(time.Now().Unix())) }
	ns := f.Core().V1().Namespaces().Informer()
	svc := f.Core().V1().Services().Informer()
	eps := f.Discovery().V1().EndpointSlices().Informer()
	for _, inf := range []toolscache.SharedIndexInformer{ns, svc, eps} {
		if err := inf.SetTransform(slim); err != nil {
			return nil, fmt.Errorf("dns: informer transform: %w", err)
		}
	}
	ix := s.index
	var synced []toolscache.InformerSynced
	reg, err := ns.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { setObj(o, func(n *corev1.Namespace) { ix.SetNamespace(n.Name) }); touch() },
		UpdateFunc: func(_, o any) { setObj(o, func(n *corev1.Namespace) { ix.SetNamespace(n.Name) }) },
		DeleteFunc: func(o any) { delObj(o, func(_, name string) { ix.DeleteNamespace(name) }); touch() },
	})
	if err != nil {
		return nil, fmt.Errorf("dns: namespace handler: %w", err)
	}
	synced = append(synced, reg.HasSynced)
	reg, err = svc.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { setObj(o, ix.SetService); touch() },
		UpdateFunc: func(_, o any) { setObj(o, ix.SetService); touch() },
		DeleteFunc: func(o any) { delObj(o, ix.DeleteService); touch() },
	})
	if err != nil {
		return nil, fmt.Errorf("dns: service handler: %w", err)
	}
	synced = append(synced, reg.HasSynced)
	reg, err = eps.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { setObj(o, ix.SetEndpointSlice); touch() },
		UpdateFunc: func(_, o any) { setObj(o, ix.SetEndpointSlice); touch() },
		DeleteFunc: func(o any) { delObj(o, ix.DeleteEndpointSlice); touch() },
	})
	if err != nil {
		return nil, fmt.Errorf("dns: endpointslice handler: %w", err)
	}
	return append(synced, reg.HasSynced), nil
}

func setObj[T any](o any, f func(T)) {
	if v, ok := o.(T); ok {
		f(v)
	}
}

// delObj calls f with the namespace and name of a deleted object, also
// when the informer only knows its key (a missed delete).
func delObj(o any, f func(namespace, name string)) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		ns, name, err := toolscache.SplitMetaNamespaceKey(d.Key)
		if err == nil {
			f(ns, name)
		}
		return
	}
	if m, ok := o.(metav1.Object); ok {
		f(m.GetNamespace(), m.GetName())
	}
}

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	resp := s.reply(req, tcp)
	if !tcp {
		size := uint16(dns.MinMsgSize)
		if o := req.IsEdns0(); o != nil && o.UDPSize() > size {
			size = o.UDPSize()
		}
		resp.Truncate(int(size))
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dns: write reply", "err", err)
	}
}

// reply builds the answer to req: from the index for the zone, from the
// upstreams for other names.
func (s *Server) reply(req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			m.SetRcode(req, dns.RcodeFormatError)
		}
		return m
	}
	q := req.Question[0]
	res := s.index.Lookup(s.zone, q)
	if res.Forward {
		ctx, cancel := context.WithTimeout(context.Background(), 2*upstreamTimeout)
		defer cancel()
		up, err := s.fwd.exchange(ctx, req, tcp, time.Now())
		if err != nil {
			s.log.Debug("dns: forward failed", "name", q.Name, "err", err)
			m.SetRcode(req, dns.RcodeServerFailure)
			return withEdns(m, req)
		}
		return up
	}
	res.Answer = s.chase(q, res.Answer, tcp)
	if !s.synced.Load() && (res.Rcode == dns.RcodeNameError || len(res.Answer) == 0) {
		// Before the first sync no negative answer is trusted.
		m.SetRcode(req, dns.RcodeServerFailure)
		return withEdns(m, req)
	}
	m.SetRcode(req, res.Rcode)
	m.Authoritative = res.Rcode != dns.RcodeRefused
	m.Answer = res.Answer
	m.Extra = res.Extra
	if res.Negative() {
		m.Ns = []dns.RR{s.zone.soa(s.index.Serial())}
	}
	return withEdns(m, req)
}

// maxChase bounds the CNAMEs followed for one question, as CoreDNS's 8.
const maxChase = 8

// chase completes the CNAME of an ExternalName for A and AAAA questions as
// CoreDNS does: a target in the zone with the index's records, another
// with the upstreams' answer. When the target cannot be resolved (no
// records in the zone, or no upstream answer) CoreDNS leaves the CNAME
// out, which makes the answer NODATA.
func (s *Server) chase(q dns.Question, answer []dns.RR, tcp bool) []dns.RR {
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA {
		return answer
	}
	for range maxChase {
		if len(answer) == 0 {
			return answer
		}
		cname, ok := answer[len(answer)-1].(*dns.CNAME)
		if !ok {
			return answer
		}
		if dns.IsSubDomain(s.zone.Name, strings.ToLower(cname.Target)) {
			next := s.index.Lookup(s.zone, dns.Question{Name: cname.Target, Qtype: q.Qtype, Qclass: q.Qclass})
			if len(next.Answer) == 0 {
				return nil
			}
			answer = append(answer, next.Answer...)
			continue
		}
		req := new(dns.Msg)
		req.SetQuestion(cname.Target, q.Qtype)
		ctx, cancel := context.WithTimeout(context.Background(), 2*upstreamTimeout)
		up, err := s.fwd.exchange(ctx, req, tcp, time.Now())
		cancel()
		if err != nil {
			s.log.Debug("dns: resolve CNAME target failed", "name", q.Name, "target", cname.Target, "err", err)
			return nil
		}
		return append(answer, up.Answer...)
	}
	return answer
}

// withEdns adds an OPT record to a reply when the query had one.
func withEdns(m, req *dns.Msg) *dns.Msg {
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(max(o.UDPSize(), dns.MinMsgSize), o.Do())
	}
	return m
}

// localAddrs are the machine's addresses.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
