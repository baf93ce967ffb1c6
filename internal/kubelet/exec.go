package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/remotecommand"
)

// The kubelet's exec endpoint, /exec/{namespace}/{pod}/{container}, as
// upstream's streaming server serves it: the client (the API server,
// proxying kubectl) upgrades the connection either to a WebSocket with a
// channel subprotocol (v5.channel.k8s.io or v4.channel.k8s.io) or to
// SPDY/3.1 with X-Stream-Protocol-Version v4.channel.k8s.io. Either way the
// command's stdin, stdout and stderr travel on channels 0, 1 and 2, and
// the outcome is a metav1.Status written on the error channel (3) before
// the connection closes: Success, or Failure with reason NonZeroExitCode
// and an ExitCode cause carrying the code.

// Exec server bounds.
const (
	// execStreamCreationTimeout bounds how long a SPDY client has to open
	// the streams it asked for, as upstream's default.
	execStreamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
	// execIdleTimeout closes a connection without traffic, as upstream's
	// streaming server's default.
	execIdleTimeout = 4 * time.Hour
)

// SPDY stream types, from the client's streamType header.
const (
	streamTypeError  = "error"
	streamTypeStdin  = "stdin"
	streamTypeStdout = "stdout"
	streamTypeStderr = "stderr"
	streamTypeResize = "resize"
)

// execOptions are the query of an exec request.
type execOptions struct {
	command                    []string
	stdin, stdout, stderr, tty bool
}

// parseExecOptions reads an exec query as upstream's kubelet does:
// booleans are true for "1" or "true"; at least one command word and one
// stream are required.
func parseExecOptions(q url.Values) (execOptions, error) {
	o, err := parseStreamOptions(q)
	if err == nil && len(o.command) == 0 {
		err = errors.New("you must specify at least one command for the container")
	}
	return o, err
}

// parseStreamOptions reads the stream flags exec and attach share.
func parseStreamOptions(q url.Values) (execOptions, error) {
	flag := func(name string) bool {
		v := q.Get(name)
		return v == "1" || strings.EqualFold(v, "true")
	}
	o := execOptions{
		command: q["command"],
		stdin:   flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty"),
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	if o.tty && o.stderr {
		// As upstream: a terminal merges stderr into stdout.
		o.stderr = false
	}
	return o, nil
}

// execStreams are the command's streams on an upgraded connection. Any of
// stdin, stdout and stderr may be nil when not asked for.
type execStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// resize carries the client's terminal sizes (TTY only), JSON
	// objects {"Width":w,"Height":h} one after another.
	resize io.Reader
	// status receives the outcome as a metav1.Status in JSON.
	status io.Writer
	// close ends the connection.
	close func()
	// gone, when not nil, is closed when the client's connection ends.
	gone <-chan bool
}

// serveExec runs a command in a running container over an upgraded
// connection. Errors found before the upgrade are plain-text 4xx answers.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseExecOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, id, streams, ok := s.openStreams(w, r, "exec", opts)
	if !ok {
		return
	}
	defer streams.close()
	code, err := s.runExec(ctx, id, opts, streams)
	s.log.Info("exec ended", "pod", ns+"/"+name, "container", container, "exitCode", code, "err", err)
	if werr := writeExecStatus(streams.status, opts.command, code, err); werr != nil {
		s.log.Debug("exec status not sent", "pod", ns+"/"+name, "err", werr)
	}
}

// openStreams finds the running container the request names and upgrades
// the connection to the streams opts asks for. It returns a context that
// ends with the connection; ok is false when the client was answered
// already. The caller closes the streams.
func (s *Server) openStreams(w http.ResponseWriter, r *http.Request, what string, opts execOptions) (ctx context.Context, id string, streams *execStreams, ok bool) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	ctx = r.Context()
	pod, found := s.lookupPod(ctx, w, ns, name)
	if !found {
		return ctx, "", nil, false
	}
	id, err := runningContainerID(pod, container)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return ctx, "", nil, false
	}
	if wsstream.IsWebSocketRequest(r) {
		streams, err = s.webSocketStreams(w, r, opts)
	} else {
		streams, err = s.spdyStreams(w, r, opts)
	}
	if err != nil {
		// The upgraders answered the client already.
		s.log.Info(what+" stream setup failed", "pod", ns+"/"+name, "container", container, "err", err)
		return ctx, "", nil, false
	}
	if streams.gone != nil {
		// A hijacked request's context does not end with the connection.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		closeStreams := streams.close
		streams.close = func() { cancel(); closeStreams() }
		go func() {
			select {
			case <-streams.gone:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, id, streams, true
}

// runExec runs the command with the streams. Stdin is fed through a pipe
// so the command ending is not held up by a client that never closes its
// stdin.
func (s *Server) runExec(ctx context.Context, id string, opts execOptions, st *execStreams) (int, error) {
	if opts.tty {
		return s.runExecTTY(ctx, id, opts, st)
	}
	var stdin io.Reader
	if st.stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("stdin pipe: %w", err)
		}
		defer pr.Close()
		go func() {
			_, _ = io.Copy(pw, st.stdin)
			pw.Close()
		}()
		stdin = pr
	}
	var stdout, stderr io.Writer
	if st.stdout != nil {
		stdout = st.stdout
	}
	if st.stderr != nil {
		stderr = st.stderr
	}
	return s.cfg.Runtime.Exec(ctx, id, opts.command, stdin, stdout, stderr, opts.tty)
}

// writeExecStatus writes the v4 outcome of an exec: Success, a
// NonZeroExitCode failure with the code, or an internal error.
func writeExecStatus(w io.Writer, cmd []string, code int, err error) error {
	var st metav1.Status
	switch {
	case err != nil:
		st = apierrors.NewInternalError(fmt.Errorf("error executing command in container: %w", err)).Status()
	case code == 0:
		st = metav1.Status{Status: metav1.StatusSuccess}
	default:
		st = metav1.Status{
			Status: metav1.StatusFailure,
			Reason: remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: error executing command %v, exit code %d",
				cmd, code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code),
			}}},
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// runningContainerID is the runtime ID of the pod's running container.
func runningContainerID(pod *corev1.Pod, container string) (string, error) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.Name != container {
				continue
			}
			if cs.State.Running == nil || cs.ContainerID == "" {
				return "", fmt.Errorf("container %q in pod %q is not running", container, pod.Name)
			}
			id := cs.ContainerID
			if _, bare, ok := strings.Cut(id, "://"); ok {
				id = bare
			}
			return id, nil
		}
	}
	// Upstream's kubelet words it so.
	return "", fmt.Errorf("container not found (%q)", container)
}

// webSocketStreams accepts a WebSocket upgrade with a v4 or v5 channel
// protocol (binary or base64). v5 lets the client close stdin.
func (s *Server) webSocketStreams(w http.ResponseWriter, r *http.Request, opts execOptions) (*execStreams, error) {
	channel := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		channel(opts.stdin, wsstream.ReadChannel),
		channel(opts.stdout, wsstream.WriteChannel),
		channel(opts.stderr, wsstream.WriteChannel),
		wsstream.WriteChannel, // error
		channel(opts.tty, wsstream.ReadChannel),
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: channels},
		"v5.base64.channel.k8s.io":         {Binary: false, Channels: channels},
		"v4.base64.channel.k8s.io":         {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(execIdleTimeout)
	_, rwc, err := conn.Open(w, r)
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	st := &execStreams{status: rwc[remotecommand.StreamErr], close: func() { _ = conn.Close() }}
	if opts.stdin {
		st.stdin = rwc[remotecommand.StreamStdIn]
	}
	if opts.stdout {
		st.stdout = rwc[remotecommand.StreamStdOut]
	}
	if opts.stderr {
		st.stderr = rwc[remotecommand.StreamStdErr]
	}
	if opts.tty {
		st.resize = rwc[remotecommand.StreamResize]
	}
	// As upstream, an empty message on the lowest writable channel tells
	// the client the streams are ready.
	switch {
	case opts.stdout:
		_, _ = rwc[remotecommand.StreamStdOut].Write(nil)
	case opts.stderr:
		_, _ = rwc[remotecommand.StreamStdErr].Write(nil)
	default:
		_, _ = rwc[remotecommand.StreamErr].Write(nil)
	}
	return st, nil
}

// spdyStreams negotiates v4.channel.k8s.io, upgrades to SPDY/3.1 and
// waits for the client to open the streams the options ask for.
func (s *Server) spdyStreams(w http.ResponseWriter, r *http.Request, opts execOptions) (*execStreams, error) {
	if _, err := httpstream.Handshake(r, w, []string{remotecommand.StreamProtocolV4Name}); err != nil {
		return nil, fmt.Errorf("spdy protocol: %w", err) // Handshake answered 403
	}
	type created struct {
		stream httpstream.Stream
		reply  <-chan struct{}
	}
	streamCh := make(chan created, 8)
	done := make(chan struct{})
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(st httpstream.Stream, reply <-chan struct{}) error {
		select {
		case streamCh <- created{st, reply}:
			return nil
		case <-done:
			return errors.New("exec: no more streams accepted")
		}
	})
	if conn == nil {
		return nil, errors.New("spdy upgrade failed") // the upgrader answered
	}
	conn.SetIdleTimeout(execIdleTimeout)
	var once sync.Once
	st := &execStreams{close: func() {
		once.Do(func() {
			close(done)
			_ = conn.Close()
		})
	}, gone: conn.CloseChan()}
	want := 1 // error
	for _, on := range []bool{opts.stdin, opts.stdout, opts.stderr, opts.tty} {
		if on {
			want++
		}
	}
	timer := time.NewTimer(execStreamCreationTimeout)
	defer timer.Stop()
	var errStream httpstream.Stream
	for got := 0; got < want; {
		select {
		case c := <-streamCh:
			select {
			case <-c.reply:
			case <-timer.C:
				st.close()
				return nil, errors.New("timed out replying to a stream")
			}
			got++
			switch c.stream.Headers().Get("streamType") {
			case streamTypeError:
				errStream = c.stream
				st.status = c.stream
			case streamTypeStdin:
				st.stdin = c.stream
			case streamTypeStdout:
				st.stdout = c.stream
			case streamTypeStderr:
				st.stderr = c.stream
			case streamTypeResize:
				st.resize = c.stream
			default:
				st.close()
				return nil, fmt.Errorf("unexpected stream type %q", c.stream.Headers().Get("streamType"))
			}
		case <-conn.CloseChan():
			st.close()
			return nil, errors.New("connection closed before the streams were created")
		case <-timer.C:
			st.close()
			return nil, fmt.Errorf("timed out waiting for %d streams, got %d", want, got)
		}
	}
	if errStream == nil {
		st.close()
		return nil, errors.New("client opened no error stream")
	}
	base := st.close
	st.close = func() {
		// Closing the write side tells the client each stream ended.
		for _, w := range []io.Writer{st.stdout, st.stderr, st.status} {
			if c, ok := w.(io.Closer); ok {
				_ = c.Close()
			}
		}
		base()
	}
	return st, nil
}
