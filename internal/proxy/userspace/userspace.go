package userspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/rtnl"
)

// DefaultInterface is the dummy device that holds the Service addresses,
// as kube-proxy's IPVS mode's kube-ipvs0.
const DefaultInterface = "skiff-svc0"

// Defaults of Config.
const (
	// DefaultDialTimeout bounds one connection attempt to an endpoint.
	// kube-proxy's userspace mode waited 1, 2, 4 then 8 s over its four
	// attempts; an endpoint on the pod network answers in milliseconds or
	// is gone, so a few seconds per attempt is plenty.
	DefaultDialTimeout = 3 * time.Second
	// DefaultUDPIdleTimeout ends a UDP session (a client's own upstream
	// socket) after this long without a datagram either way. kube-proxy's
	// userspace mode used 250 ms (--udp-timeout), which cut slow DNS
	// answers; 30 s is the kernel's conntrack timeout for unreplied UDP
	// (nf_conntrack_udp_timeout), what the kernel backends give.
	DefaultUDPIdleTimeout = 30 * time.Second
)

const (
	// maxDialAttempts is how many endpoints a connection tries before it
	// is reset, kube-proxy userspace's retry count.
	maxDialAttempts = 4
	// maxUDPSessions bounds the sessions (each a socket, a goroutine and
	// a 64 KiB buffer) of one UDP listener; datagrams from further
	// clients are dropped until a session ends.
	maxUDPSessions = 1024
)

// Config configures a Backend.
type Config struct {
	// NetNS is the path of the network namespace to serve
	// (/var/run/netns/x); empty means the process's own.
	NetNS string
	// ClusterCIDR is the pod network: a client in it reaching an
	// external address of an externalTrafficPolicy Local Service is
	// short-circuited to every endpoint, as in the kernel backends.
	ClusterCIDR netip.Prefix
	// Interface is the dummy device holding the Service addresses;
	// DefaultInterface when empty.
	Interface string
	// DialTimeout bounds each connection attempt to an endpoint;
	// DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// UDPIdleTimeout ends idle UDP sessions; DefaultUDPIdleTimeout when
	// zero.
	UDPIdleTimeout time.Duration
	// Logger receives one line per sync that changed something;
	// slog.Default() when nil.
	Logger *slog.Logger
}

// Backend proxies Service traffic in user space (see the package
// documentation). Sync is called from one goroutine (the Proxier's);
// Close must not run concurrently with Sync.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	ns     *os.File
	thread *nsThread
	nl     *rtnl.Conn

	// link is the dummy device's index, 0 until the first Sync made
	// sure it exists.
	link      int
	nodeIPs   []netip.Addr
	ports     map[proxy.ServicePortName]*port
	listeners map[listenerKey]*listener
	// local is the namespace's own addresses, read at every Sync, for
	// the externalTrafficPolicy Local short-circuit.
	local atomic.Pointer[map[netip.Addr]bool]

	dialFailures atomic.Int64

	mu     sync.Mutex // guards closed, conns and wg.Add
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// New opens the network namespace and rtnetlink and starts the thread
// that creates sockets in the namespace. It changes nothing on the node:
// the first Sync creates the device.
func New(cfg Config) (*Backend, error) {
	if cfg.Interface == "" {
		cfg.Interface = DefaultInterface
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, ports: map[proxy.ServicePortName]*port{},
		listeners: map[listenerKey]*listener{}, conns: map[net.Conn]struct{}{}}
	nsfd := 0
	if cfg.NetNS != "" {
		f, err := os.Open(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		b.ns, nsfd = f, int(f.Fd())
	}
	nl, err := rtnl.Dial(nsfd)
	if err != nil {
		b.closeNS()
		return nil, err
	}
	b.nl = nl
	if b.thread, err = startNSThread(b.ns); err != nil {
		_ = nl.Close()
		b.closeNS()
		return nil, err
	}
	return b, nil
}

func (b *Backend) closeNS() {
	if b.ns != nil {
		_ = b.ns.Close()
	}
}

// Close stops every listener and cuts the connections and UDP sessions in
// flight: unlike the kernel backends' rules, a user-space proxy cannot
// outlive its process. The device and its addresses stay (so Service
// addresses keep being refused locally rather than routed away until the
// next backend takes over); Cleanup removes them. Close waits for every
// goroutine of the backend to end.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	for _, l := range b.listeners {
		l.close()
	}
	b.wg.Wait()
	b.thread.stop()
	err := b.nl.Close()
	b.closeNS()
	return err
}

// Cleanup deletes the dummy device DefaultInterface, and with it every
// Service address, in the network namespace netns (a path; empty: the
// process's). It succeeds when there is no device. It is what switching
// from this backend to a kernel one needs; the arp sysctls are left as
// they are, as kube-proxy leaves them.
func Cleanup(netns string) error {
	nsfd := 0
	if netns != "" {
		f, err := os.Open(netns)
		if err != nil {
			return fmt.Errorf("open network namespace: %w", err)
		}
		defer f.Close()
		nsfd = int(f.Fd())
	}
	nl, err := rtnl.Dial(nsfd)
	if err != nil {
		return err
	}
	defer nl.Close()
	l, ok, err := nl.LinkByName(DefaultInterface)
	if err != nil || !ok {
		return err
	}
	return nl.DeleteLink(l.Index)
}

// spawn runs f in a goroutine Close waits for; it reports false, running
// nothing, once the backend is closed.
func (b *Backend) spawn(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// track records a connection for Close to cut; false means closed.
func (b *Backend) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Backend) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// isLocal reports whether a client address is the node's own.
func (b *Backend) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	if m := b.local.Load(); m != nil {
		return (*m)[a]
	}
	return false
}

// setup makes sure the dummy device exists and sets the arp sysctls.
func (b *Backend) setup() error {
	l, ok, err := b.nl.LinkByName(b.cfg.Interface)
	if err != nil {
		return err
	}
	if ok && !rtnl.IsAddressDevice(l.Kind) {
		return fmt.Errorf("device %s exists and is a %q device, not the backend's", b.cfg.Interface, l.Kind)
	}
	if !ok {
		// Left down, as kube-proxy's kube-ipvs0 is: the kernel adds the
		// local route of an address on a down device all the same, and a
		// down device takes part in no other routing.
		var kind string
		if l.Index, kind, err = b.nl.EnsureAddressDevice(b.cfg.Interface, false); err != nil {
			return err
		}
		if kind == rtnl.KindBridge {
			// A kernel without CONFIG_DUMMY (some minimal VM kernels): a
			// bridge without ports holds addresses just as well.
			b.log.Info("proxy: the kernel has no dummy devices; holding Service addresses on a bridge without ports",
				"device", b.cfg.Interface)
		}
	}
	// The Service addresses are local addresses now, and by default
	// Linux answers ARP for any local address on any interface: the node
	// would claim every ClusterIP on its LAN. kube-proxy's IPVS mode sets
	// the same two values.
	for path, value := range map[string]string{
		"/proc/sys/net/ipv4/conf/all/arp_ignore":   "1",
		"/proc/sys/net/ipv4/conf/all/arp_announce": "2",
	} {
		if err := b.thread.writeSysctl(path, value); err != nil {
			return err
		}
	}
	b.link = l.Index
	return nil
}

// addrs lists the namespace's IPv4 addresses, split into those on the
// backend's device and those on any other interface.
func (b *Backend) addrs() (own, others map[netip.Addr]bool, err error) {
	all, err := b.nl.Addrs(0)
	if err != nil {
		return nil, nil, err
	}
	own, others = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, a := range all {
		if a.Index == b.link {
			own[a.Prefix.Addr()] = true
		} else {
			others[a.Prefix.Addr()] = true
		}
	}
	return own, others, nil
}

// virtualAddrs are the addresses of sp the device holds: its ClusterIP
// only. External and load balancer addresses are not made local here: one
// may be another node's address (the built-in load balancer lends the
// nodes' addresses), and a local address captures every port of it, which
// would cut this node off from that node (its API server, its kubelet).
// Their listeners are bound with IP_FREEBIND instead, and serve whenever
// the address is this node's: one of its own, or a pool address its
// announcer holds.
func virtualAddrs(sp *proxy.ServicePort) []netip.Addr {
	if a := sp.ClusterIP; a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
		return []netip.Addr{a}
	}
	return nil
}

// Sync makes the listeners and the device's addresses match rs. Service
// ports Equal to the applied ones are not touched. A changed port gets its
// new endpoints, scheduler and affinity in place, keeping its listeners
// and connections; only listeners whose address, port or purpose changed
// are closed and opened. A listener that cannot be opened is reported in
// the returned error (naming its address) after everything else was
// applied; the next Sync retries it.
func (b *Backend) Sync(ctx context.Context, rs *proxy.Ruleset) (proxy.SyncResult, error) {
	if err := ctx.Err(); err != nil {
		return proxy.SyncResult{}, err
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return proxy.SyncResult{}, errClosed
	}
	start := time.Now()
	full := b.link == 0
	if full {
		if err := b.setup(); err != nil {
			return proxy.SyncResult{}, err
		}
	}
	own, others, err := b.addrs()
	if err != nil {
		return proxy.SyncResult{}, err
	}
	// Addresses first: a listener binds only to a local address.
	var errs []error
	want := map[netip.Addr]bool{}
	for _, sp := range rs.Services {
		for _, a := range virtualAddrs(sp) {
			if !others[a] {
				want[a] = true
			}
		}
	}
	added := 0
	for _, a := range sortedAddrs(want) {
		if own[a] {
			continue
		}
		if err := b.nl.AddAddr(b.link, netip.PrefixFrom(a, 32)); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", b.cfg.Interface, err))
			continue
		}
		added++
	}

	// What the short-circuit counts as the node itself: every local
	// address, the Service addresses included (the node reaching a
	// Service address of its own connects from it).
	local := make(map[netip.Addr]bool, len(own)+len(others)+len(want)+len(rs.NodeIPs))
	for _, set := range []map[netip.Addr]bool{own, others, want} {
		for a := range set {
			local[a] = true
		}
	}
	for _, a := range rs.NodeIPs {
		local[a] = true
	}
	b.local.Store(&local)

	next := make(map[proxy.ServicePortName]*port, len(rs.Services))
	type portListeners struct {
		p    *port
		want map[listenerKey]bool
	}
	var touched []portListeners // in the order of rs, for stable errors
	changed := 0
	// NodePort listeners follow the node's addresses.
	nodeIPsChanged := !slices.Equal(b.nodeIPs, rs.NodeIPs)
	for _, sp := range rs.Services {
		p := b.ports[sp.Name]
		if p != nil && p.complete && p.sp.Equal(sp) && !(nodeIPsChanged && sp.NodePort != 0) {
			next[sp.Name] = p
			continue
		}
		if p == nil {
			p = newPort()
		}
		p.apply(sp)
		next[sp.Name] = p
		touched = append(touched, portListeners{p, listenersFor(sp, rs.NodeIPs)})
		changed++
	}
	// Close before opening: a listener may move from one Service port to
	// another in one sync.
	for name, p := range b.ports {
		if _, ok := next[name]; !ok {
			for k, l := range p.listeners {
				b.closeListener(p, k, l)
			}
			changed++
		}
	}
	for _, t := range touched {
		for k, l := range t.p.listeners {
			if external, ok := t.want[k]; !ok || external != l.external {
				b.closeListener(t.p, k, l)
			}
		}
	}
	for _, t := range touched {
		p, want := t.p, t.want
		p.complete = true
		for _, k := range sortedKeys(want) {
			if _, ok := p.listeners[k]; ok {
				continue
			}
			if err := b.openListener(p, k, want[k]); err != nil {
				errs = append(errs, err)
				p.complete = false
			}
		}
	}
	b.ports, b.nodeIPs = next, slices.Clone(rs.NodeIPs)

	removed := 0
	for _, a := range sortedAddrs(own) {
		if want[a] {
			continue
		}
		if err := b.nl.DeleteAddr(b.link, netip.PrefixFrom(a, 32)); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", b.cfg.Interface, err))
			continue
		}
		removed++
	}

	err = errors.Join(errs...)
	if changed > 0 || added > 0 || removed > 0 || err != nil {
		level := slog.LevelDebug
		if failures := b.dialFailures.Load(); failures > 0 || err != nil {
			level = slog.LevelWarn
		}
		b.log.Log(ctx, level, "proxy: userspace sync", "full", full, "changed", changed,
			"listeners", len(b.listeners), "addressesAdded", added, "addressesRemoved", removed,
			"dialFailures", b.dialFailures.Swap(0), "duration", time.Since(start), "err", err)
	}
	return proxy.SyncResult{Full: full, Changed: changed}, err
}

// listenersFor returns the listeners sp needs, each with whether it takes
// external traffic. Whether a listener exists is how filters are laid out
// without NAT: a TCP destination nobody may use has none, so the kernel
// answers with a reset; UDP destinations have one as soon as the Service
// has endpoints anywhere, so that dropped datagrams are read and
// discarded instead of answered with ICMP port unreachable.
func listenersFor(sp *proxy.ServicePort, nodeIPs []netip.Addr) map[listenerKey]bool {
	out := map[listenerKey]bool{}
	if sp.Protocol != proxy.TCP && sp.Protocol != proxy.UDP || !sp.HasEndpoints {
		return out
	}
	bind := func(candidates int) bool { return sp.Protocol == proxy.UDP || candidates > 0 }
	if sp.ClusterIP.Is4() && bind(len(sp.InternalEndpoints())) {
		out[listenerKey{sp.Protocol, netip.AddrPortFrom(sp.ClusterIP, sp.Port)}] = false
	}
	external := len(sp.ExternalEndpoints())
	if sp.ExternalLocal {
		// Pods and the node are short-circuited to every endpoint.
		external += len(sp.ClusterEndpoints)
	}
	if !bind(external) {
		return out
	}
	for _, a := range append(append([]netip.Addr(nil), sp.ExternalIPs...), sp.LoadBalancerIPs...) {
		if a.Is4() {
			out[listenerKey{sp.Protocol, netip.AddrPortFrom(a, sp.Port)}] = true
		}
	}
	if sp.NodePort != 0 {
		for _, a := range nodeIPs {
			if a.Is4() && !a.IsLoopback() {
				out[listenerKey{sp.Protocol, netip.AddrPortFrom(a, sp.NodePort)}] = true
			}
		}
	}
	return out
}

func (b *Backend) openListener(p *port, k listenerKey, external bool) error {
	if other, ok := b.listeners[k]; ok {
		return fmt.Errorf("listen %s/%s for %s: already used by %s", k.proto, k.addr, p.sp.Name, other.port.sp.Name)
	}
	l := &listener{key: k, external: external, port: p, b: b}
	var err error
	if l.tcp, l.udp, err = b.thread.listen(k); err != nil {
		return fmt.Errorf("listen %s/%s for %s: %w", k.proto, k.addr, p.sp.Name, err)
	}
	serve := l.acceptTCP
	if l.udp != nil {
		l.sessions = map[netip.AddrPort]*udpSession{}
		serve = l.readUDP
	}
	if !b.spawn(serve) {
		l.close()
		return errClosed
	}
	p.listeners[k] = l
	b.listeners[k] = l
	return nil
}

func (b *Backend) closeListener(p *port, k listenerKey, l *listener) {
	l.close()
	delete(p.listeners, k)
	if b.listeners[k] == l {
		delete(b.listeners, k)
	}
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func sortedKeys(m map[listenerKey]bool) []listenerKey {
	out := make([]listenerKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].proto != out[j].proto {
			return out[i].proto < out[j].proto
		}
		return out[i].addr.Compare(out[j].addr) < 0
	})
	return out
}

func endpointAddr(ep proxy.Endpoint) netip.AddrPort { return netip.AddrPortFrom(ep.IP, ep.Port) }
