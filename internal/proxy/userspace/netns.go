package userspace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// errClosed is returned by what is called after Close.
var errClosed = errors.New("userspace proxy: closed")

// nsThread runs functions on one OS thread that entered the backend's
// network namespace. A socket belongs to the namespace of the thread that
// created it and keeps it, so only socket creation (listeners, upstream
// sockets) and the namespace's /proc/sys/net files go through here; the
// goroutines using the sockets run anywhere.
type nsThread struct {
	reqs chan func()
	quit chan struct{}
	done chan struct{}
}

// startNSThread locks a thread into ns; with a nil ns, functions run on
// the caller's goroutine, in the process's namespace.
func startNSThread(ns *os.File) (*nsThread, error) {
	if ns == nil {
		return nil, nil
	}
	t := &nsThread{reqs: make(chan func()), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(t.done)
		// Never unlocked: the thread ends with the goroutine rather than
		// serve other goroutines from inside the namespace.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("enter network namespace %s: %w", ns.Name(), err)
			return
		}
		ready <- nil
		for {
			select {
			case f := <-t.reqs:
				f()
			case <-t.quit:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs f in the namespace and returns its error. f must not block:
// every socket of the backend is created through this one thread.
func (t *nsThread) do(f func() error) error {
	if t == nil {
		return f()
	}
	errc := make(chan error, 1)
	select {
	case t.reqs <- func() { errc <- f() }:
		return <-errc
	case <-t.done:
		return errClosed
	}
}

func (t *nsThread) stop() {
	if t == nil {
		return
	}
	close(t.quit)
	<-t.done
}

// writeSysctl sets a /proc/sys file of the namespace.
func (t *nsThread) writeSysctl(path, value string) error {
	return t.do(func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl: %w", err)
		}
		return nil
	})
}

// listen opens the listening socket of k in the namespace.
func (t *nsThread) listen(k listenerKey) (tcp *net.TCPListener, udp *net.UDPConn, err error) {
	err = t.do(func() error {
		// IP_FREEBIND: an external or load balancer address may not be
		// local (yet); the socket receives its traffic once it is.
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		switch k.proto {
		case proxy.TCP:
			l, err := lc.Listen(context.Background(), "tcp4", k.addr.String())
			if err != nil {
				return err
			}
			tcp = l.(*net.TCPListener)
		case proxy.UDP:
			c, err := lc.ListenPacket(context.Background(), "udp4", k.addr.String())
			if err != nil {
				return err
			}
			udp = c.(*net.UDPConn)
		default:
			return fmt.Errorf("protocol %s is not proxied", k.proto)
		}
		return nil
	})
	return tcp, udp, err
}

// dialUDP opens a connected UDP socket to ep in the namespace (no packet
// is sent: connecting a UDP socket only sets its peer).
func (t *nsThread) dialUDP(ep proxy.Endpoint) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := t.do(func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(endpointAddr(ep)))
		return err
	})
	return c, err
}

// startTCP creates a TCP socket in the namespace and starts a
// non-blocking connect to ep; the caller waits for the connection outside
// (dialTCP), so the namespace's thread never waits on the network.
func (t *nsThread) startTCP(ep proxy.Endpoint) (*os.File, error) {
	var fd int
	err := t.do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.Connect(s, &unix.SockaddrInet4{Port: int(ep.Port), Addr: ep.IP.As4()}); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			_ = unix.Close(s)
			return os.NewSyscallError("connect", err)
		}
		fd = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "tcp:"+ep.String()), nil
}

// dialTCP connects to ep from the namespace within timeout. The socket is
// handed to the net package (net.FileConn) while the connect is under
// way, and its completion awaited through the runtime's poller, as
// net.Dial does internally.
func dialTCP(t *nsThread, ep proxy.Endpoint, timeout time.Duration, track func(net.Conn) bool, untrack func(net.Conn)) (*net.TCPConn, error) {
	f, err := t.startTCP(ep)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", ep, err)
	}
	c, err := net.FileConn(f)
	_ = f.Close() // FileConn holds a duplicate
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", ep, err)
	}
	conn := c.(*net.TCPConn)
	// Tracked while connecting, so that Close interrupts the wait.
	if !track(conn) {
		conn.Close()
		return nil, errClosed
	}
	fail := func(err error) (*net.TCPConn, error) {
		untrack(conn)
		conn.Close()
		return nil, fmt.Errorf("dial %s: %w", ep, err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return fail(err)
	}
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fail(err)
	}
	var connErr error
	err = raw.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := unix.Errno(v); e {
		case 0:
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		default:
			connErr = os.NewSyscallError("connect", e)
			return true
		}
		// SO_ERROR is 0 both when connected and while connecting.
		_, err = unix.Getpeername(int(fd))
		return err == nil
	})
	if err == nil {
		err = connErr
	}
	if err != nil {
		return fail(err)
	}
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	return conn, nil
}
