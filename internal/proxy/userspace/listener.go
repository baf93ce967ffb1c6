package userspace

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// listenerKey is one address a Service port is reached on.
type listenerKey struct {
	proto proxy.Protocol
	addr  netip.AddrPort
}

// listener is one listening socket of a Service port: a TCP listener or
// a UDP socket with its sessions.
type listener struct {
	key      listenerKey
	external bool
	port     *port
	b        *Backend
	tcp      *net.TCPListener
	udp      *net.UDPConn

	mu       sync.Mutex // guards sessions and closed
	sessions map[netip.AddrPort]*udpSession
	closed   bool
}

// close stops the listener. Accepted TCP connections go on (the Backend
// tracks them for Close); UDP sessions end, since their replies leave
// through the listening socket.
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	sessions := l.sessions
	l.sessions = nil
	l.mu.Unlock()
	if l.tcp != nil {
		_ = l.tcp.Close()
	}
	if l.udp != nil {
		_ = l.udp.Close()
	}
	for _, s := range sessions {
		_ = s.up.Close()
	}
}

// candidates returns the endpoints a client may use on this listener.
func (l *listener) candidates(st *portState, src netip.Addr) candidates {
	switch {
	case !l.external:
		return st.internal
	case st.shortCircuit && (l.b.cfg.ClusterCIDR.IsValid() && l.b.cfg.ClusterCIDR.Contains(src) || l.b.isLocal(src)):
		// As the kernel backends: pods and the node itself reach an
		// externalTrafficPolicy Local Service's every endpoint.
		return st.cluster
	default:
		return st.external
	}
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func (l *listener) acceptTCP() {
	var delay time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http's server does rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !l.b.track(c) {
			_ = c.Close()
			return
		}
		if !l.b.spawn(func() { l.serveTCP(c) }) {
			l.b.untrack(c)
			_ = c.Close()
			return
		}
	}
}

// reset closes c with a TCP reset, so that the client learns at once
// that nobody serves it.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

func (l *listener) serveTCP(client *net.TCPConn) {
	b := l.b
	defer b.untrack(client)
	st := l.port.state.Load()
	src := addrOf(client.RemoteAddr())
	c := l.candidates(st, src)
	first := l.port.choose(st, c, src, l.key.addr.Addr(), time.Now())
	if first < 0 {
		// Nobody may serve this client (externalTrafficPolicy Local
		// without a local endpoint, reached from outside).
		reset(client)
		return
	}
	// As kube-proxy's userspace mode: an endpoint that cannot be reached
	// is skipped for the next one, up to maxDialAttempts.
	n := len(c.eps)
	for attempt := range min(n, maxDialAttempts) {
		i := (first + attempt) % n
		c.active[i].Add(1)
		up, err := dialTCP(b.thread, c.eps[i], b.cfg.DialTimeout, b.track, b.untrack)
		if err != nil {
			c.active[i].Add(-1)
			continue
		}
		if attempt > 0 && st.affinity > 0 {
			l.port.affinity.set(src, c.eps[i], time.Now(), st.affinity)
		}
		b.splice(client, up)
		c.active[i].Add(-1)
		return
	}
	b.dialFailures.Add(1)
	reset(client)
}

// splice copies both ways until both sides are done. io.Copy between two
// TCP connections uses splice(2) on Linux, so the data does not pass
// through user space. An orderly end of one direction is passed on as a
// half-close; an error (a reset, or Close cutting the connection) resets
// both sides, or the other direction could wait forever.
func (b *Backend) splice(client, up *net.TCPConn) {
	defer b.untrack(up)
	var aborted atomic.Bool
	pipe := func(dst, src *net.TCPConn) {
		if _, err := io.Copy(dst, src); err != nil {
			if !aborted.Swap(true) {
				reset(dst)
				reset(src)
			}
			return
		}
		_ = dst.CloseWrite()
	}
	done := make(chan struct{})
	if b.spawn(func() { defer close(done); pipe(up, client) }) {
		pipe(client, up)
		<-done
	}
	_ = client.Close()
	_ = up.Close()
}

// udpSession is one UDP client: its own socket to the endpoint, whose
// replies go back to the client from the listening socket (so from the
// Service address).
type udpSession struct {
	client netip.AddrPort
	up     *net.UDPConn
	active *atomic.Int64
	// last is the time of the last datagram either way (UnixNano).
	last atomic.Int64
}

func (l *listener) readUDP() {
	buf := make([]byte, 65535)
	for {
		n, from, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s := l.session(from)
		if s == nil {
			// Dropped: nobody may serve the client, or too many
			// sessions.
			continue
		}
		s.last.Store(time.Now().UnixNano())
		_, _ = s.up.Write(buf[:n])
	}
}

// session returns the client's session, starting one if needed; nil
// drops the datagram.
func (l *listener) session(from netip.AddrPort) *udpSession {
	l.mu.Lock()
	s, ok := l.sessions[from]
	full := len(l.sessions) >= maxUDPSessions
	l.mu.Unlock()
	if ok {
		return s
	}
	if full {
		return nil
	}
	st := l.port.state.Load()
	c := l.candidates(st, from.Addr())
	i := l.port.choose(st, c, from.Addr(), l.key.addr.Addr(), time.Now())
	if i < 0 {
		return nil
	}
	up, err := l.b.thread.dialUDP(c.eps[i])
	if err != nil {
		l.b.dialFailures.Add(1)
		return nil
	}
	s = &udpSession{client: from, up: up, active: c.active[i]}
	s.last.Store(time.Now().UnixNano())
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = up.Close()
		return nil
	}
	l.sessions[from] = s
	l.mu.Unlock()
	s.active.Add(1)
	if !l.b.spawn(func() { l.replies(s) }) {
		l.endSession(s)
		return nil
	}
	return s
}

// replies sends the endpoint's datagrams back to the client until the
// session has been idle for UDPIdleTimeout, or its socket is closed.
func (l *listener) replies(s *udpSession) {
	defer l.endSession(s)
	idle := l.b.cfg.UDPIdleTimeout
	buf := make([]byte, 65535)
	for {
		_ = s.up.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		n, err := s.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, s.last.Load())) < idle {
				continue // the client sent something meanwhile
			}
			// Idle, closed, or refused by the endpoint (ICMP port
			// unreachable): the next datagram schedules anew.
			return
		}
		s.last.Store(time.Now().UnixNano())
		_, _ = l.udp.WriteToUDPAddrPort(buf[:n], s.client)
	}
}

func (l *listener) endSession(s *udpSession) {
	l.mu.Lock()
	if l.sessions[s.client] == s {
		delete(l.sessions, s.client)
	}
	l.mu.Unlock()
	_ = s.up.Close()
	s.active.Add(-1)
}
