package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/portforward"
	clientportforward "k8s.io/client-go/tools/portforward"

	"github.com/skiff-sh/skiff/internal/cri"
)

// The kubelet's port-forward endpoint, /portForward/{namespace}/{pod}, as
// upstream's streaming server serves it to `kubectl port-forward`: the
// connection becomes SPDY/3.1 with protocol portforward.k8s.io, either by
// an HTTP upgrade or tunneled in a WebSocket with subprotocol
// SPDY/3.1+portforward.k8s.io (what kubectl uses first). Each forwarded
// connection is a pair of streams with the same requestID header, one of
// type data and one of type error, naming the pod port in the port header;
// the kubelet connects to that port of the pod and copies both ways,
// writing any failure on the error stream.
//
// Unlike upstream's runtimes, which dial inside the pod's network
// namespace, the kubelet dials the pod's IP (127.0.0.1 for host-network
// pods): a port the pod listens on only at its own loopback is not
// reachable.

// Port-forward bounds.
const (
	// portForwardDialTimeout bounds connecting to the pod's port.
	portForwardDialTimeout = 10 * time.Second
	// portForwardPairTimeout bounds how long the second stream of a pair
	// may take to arrive, as upstream's stream creation timeout.
	portForwardPairTimeout = 30 * time.Second
)

// servePortForward forwards connections to a pod's ports over an upgraded
// connection until the client closes it.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	ctx := r.Context()
	pod, ok := s.lookupPod(ctx, w, ns, name)
	if !ok {
		return
	}
	host := portForwardHost(pod)
	if host == "" {
		http.Error(w, fmt.Sprintf("pod %q has no IP to forward to", name), http.StatusBadRequest)
		return
	}
	h := &portForwarder{log: s.log.With("pod", ns+"/"+name), pod: name, host: host, pairs: map[string]*streamPair{}}
	if d, ok := s.cfg.Runtime.(cri.SandboxDialer); ok && !pod.Spec.HostNetwork {
		// Inside the pod's network namespace, as upstream's runtimes:
		// ports bound to the pod's localhost are reachable too.
		if id := podSandboxID(ctx, s.cfg.Runtime, runtimeUID(pod)); id != "" {
			h.dial = func(ctx context.Context, port uint16) (net.Conn, error) { return d.DialSandbox(ctx, id, port) }
		}
	}
	// A hijacked connection's request context is not cancelled when the
	// client goes, so the handler's own context ends with the connection.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	h.ctx = fctx
	var conn httpstream.Connection
	var err error
	if wsstream.IsWebSocketRequest(r) {
		conn, err = h.tunnel(w, r)
		if err != nil {
			h.log.Info("port-forward websocket upgrade failed", "err", err)
			return
		}
	} else {
		if _, err := httpstream.Handshake(r, w, []string{portforward.PortForwardV1Name}); err != nil {
			return // Handshake answered 403
		}
		conn = spdy.NewResponseUpgrader().UpgradeResponse(w, r, h.newStream)
		if conn == nil {
			return // the upgrader answered
		}
	}
	defer conn.Close()
	conn.SetIdleTimeout(execIdleTimeout)
	h.log.Info("port-forward started", "host", host)
	<-conn.CloseChan()
	h.log.Info("port-forward ended")
}

// portForwardHost is where the pod's ports are dialed: its IP, or the
// loopback for a host-network pod.
func portForwardHost(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return "127.0.0.1"
	}
	return pod.Status.PodIP
}

// podSandboxID is the ID of the pod's ready sandbox, or "" when it has
// none (or the runtime cannot say).
func podSandboxID(ctx context.Context, rt Runtime, uid types.UID) string {
	sbs, err := rt.ListSandboxes(ctx)
	if err != nil {
		return ""
	}
	for _, sb := range sbs {
		if sb.PodUID == uid && sb.State == cri.SandboxReady {
			return sb.ID
		}
	}
	return ""
}

// portForwarder pairs a connection's streams and forwards each pair.
type portForwarder struct {
	ctx  context.Context
	log  *slog.Logger
	pod  string
	host string
	// dial, when set, connects to a port of the pod; otherwise host:port
	// is dialed from the node.
	dial func(ctx context.Context, port uint16) (net.Conn, error)

	mu    sync.Mutex
	pairs map[string]*streamPair
}

// streamPair is the data and error streams of one forwarded connection.
type streamPair struct {
	data, errs httpstream.Stream
	// replies are closed once the streams' replies went out.
	replies []<-chan struct{}
	timer   *time.Timer
}

// tunnel accepts a WebSocket with subprotocol SPDY/3.1+portforward.k8s.io
// and runs a SPDY server connection inside it.
func (h *portForwarder) tunnel(w http.ResponseWriter, r *http.Request) (httpstream.Connection, error) {
	up := websocket.Upgrader{
		Subprotocols: []string{portforward.WebsocketsSPDYTunnelingPortForwardV1},
		// Callers are authenticated by their client certificate, not by
		// where a browser page came from.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil, err // the upgrader answered
	}
	if ws.Subprotocol() != portforward.WebsocketsSPDYTunnelingPortForwardV1 {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseProtocolError, "unsupported subprotocol"), time.Now().Add(time.Second))
		ws.Close()
		return nil, fmt.Errorf("unsupported websocket subprotocols %v", websocket.Subprotocols(r))
	}
	conn, err := spdy.NewServerConnection(clientportforward.NewTunnelingConnection("kubelet-port-forward", ws), h.newStream)
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("spdy over websocket: %w", err)
	}
	return conn, nil
}

// newStream files a stream the client opened under its requestID and
// starts forwarding once both of a pair arrived.
func (h *portForwarder) newStream(st httpstream.Stream, replySent <-chan struct{}) error {
	id := st.Headers().Get(corev1.PortForwardRequestIDHeader)
	kind := st.Headers().Get(corev1.StreamType)
	if id == "" {
		return errors.New("port-forward stream without a requestID header")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pairs[id]
	if p == nil {
		p = &streamPair{}
		h.pairs[id] = p
		// A pair whose other half never comes is dropped.
		p.timer = time.AfterFunc(portForwardPairTimeout, func() { h.drop(id, p) })
	}
	switch kind {
	case corev1.StreamTypeData:
		if p.data != nil {
			return fmt.Errorf("request %s: a second data stream", id)
		}
		p.data = st
	case corev1.StreamTypeError:
		if p.errs != nil {
			return fmt.Errorf("request %s: a second error stream", id)
		}
		p.errs = st
	default:
		return fmt.Errorf("request %s: unknown stream type %q", id, kind)
	}
	p.replies = append(p.replies, replySent)
	if p.data != nil && p.errs != nil {
		p.timer.Stop()
		delete(h.pairs, id)
		go h.forward(p)
	}
	return nil
}

// drop forgets an incomplete pair and resets its streams.
func (h *portForwarder) drop(id string, p *streamPair) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pairs[id] != p {
		return
	}
	delete(h.pairs, id)
	for _, st := range []httpstream.Stream{p.data, p.errs} {
		if st != nil {
			_ = st.Reset()
		}
	}
}

// forward connects to the pair's port on the pod and copies both ways:
// the client's half-close is passed on, and the forward ends when the
// pod's side ends.
func (h *portForwarder) forward(p *streamPair) {
	defer p.errs.Close()
	defer p.data.Close()
	for _, r := range p.replies {
		select {
		case <-r:
		case <-h.ctx.Done():
			return
		}
	}
	portText := p.data.Headers().Get(corev1.PortHeader)
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		fmt.Fprintf(p.errs, "invalid port %q", portText)
		return
	}
	dctx, cancel := context.WithTimeout(h.ctx, portForwardDialTimeout)
	var conn net.Conn
	if h.dial != nil {
		conn, err = h.dial(dctx, uint16(port))
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", net.JoinHostPort(h.host, strconv.FormatUint(port, 10)))
	}
	cancel()
	if err != nil {
		fmt.Fprintf(p.errs, "error forwarding port %d to pod %s: %v", port, h.pod, err)
		return
	}
	defer conn.Close()
	go func() {
		_, err := io.Copy(conn, p.data)
		if err != nil {
			// The client reset the stream: the forward is over.
			conn.Close()
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(p.data, conn)
}
