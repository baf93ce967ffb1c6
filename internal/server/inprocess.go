package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/auth"
)

// The control plane's own components (controller manager, scheduler,
// cluster DNS) run in the server's process. They are ordinary client-go
// clients of the API, but they reach it over in-memory connections rather
// than TLS on loopback: every watch event and request they exchange would
// otherwise be encrypted, written to a socket, read back and decrypted in
// the same process, with the HTTP/2 server's goroutine hand-offs for each
// frame. That plumbing was a fifth of an idle cluster's server CPU (each
// renewed node Lease reaches two informers).
//
// A connection's identity is fixed when it is dialed, as a client
// certificate fixes it for a TLS connection; the in-memory listener is not
// reachable from outside the process, so nothing else can claim one.

// inProcessListener is a net.Listener whose connections are in-memory
// pipes dialed by the process's own components.
type inProcessListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newInProcessListener() *inProcessListener {
	return &inProcessListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *inProcessListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *inProcessListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *inProcessListener) Addr() net.Addr { return inProcessAddr{} }

// dial connects a client acting as user.
func (l *inProcessListener) dial(ctx context.Context, user *auth.User) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- &identityConn{Conn: server, user: user}:
		return client, nil
	case <-l.done:
		return nil, errors.New("in-process API listener closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type inProcessAddr struct{}

func (inProcessAddr) Network() string { return "pipe" }
func (inProcessAddr) String() string  { return "in-process" }

// identityConn is the server's end of an in-process connection, carrying
// the identity its client dialed with.
type identityConn struct {
	net.Conn
	user *auth.User
}

type inProcessUserKey struct{}

// inProcessConnContext is the in-process server's ConnContext: it puts a
// connection's identity into the context of every request on it.
func inProcessConnContext(ctx context.Context, c net.Conn) context.Context {
	if ic, ok := c.(*identityConn); ok {
		return context.WithValue(ctx, inProcessUserKey{}, ic.user)
	}
	return ctx
}

// inProcessAuthenticator authenticates requests that came over an
// in-process connection as the identity the connection was dialed with.
type inProcessAuthenticator struct{}

// Authenticate implements auth.Authenticator.
func (inProcessAuthenticator) Authenticate(r *http.Request) (*auth.User, bool, error) {
	u, ok := r.Context().Value(inProcessUserKey{}).(*auth.User)
	if !ok || u == nil {
		return nil, false, nil
	}
	// A copy: the request chain may keep it, and the next request on the
	// connection must start from the dialed identity.
	c := *u
	c.Groups = append([]string(nil), u.Groups...)
	return &c, true, nil
}

// inProcessConfig is a client config for a built-in component reaching the
// API over in-process connections as user, authenticated as a client
// certificate for user without organizations would be.
func (l *inProcessListener) config(user string) *rest.Config {
	u := &auth.User{Name: user, Groups: []string{"system:authenticated"}}
	return &rest.Config{
		// Plain HTTP: the connection never leaves the process. The host
		// name only labels requests; the dialer decides where they go.
		Host: "http://skiff-apiserver.in-process",
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) { return l.dial(ctx, u) },
	}
}
