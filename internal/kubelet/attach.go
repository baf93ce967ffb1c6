package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/cri"
)

// The kubelet's attach endpoint, /attach/{namespace}/{pod}/{container},
// connects the client to a running container's main process over the
// same upgraded connections as exec: stdin, stdout and stderr on channels
// 0, 1 and 2 (a TTY container's output all on stdout), terminal sizes on
// channel 4, and a metav1.Status on the error channel when the attachment
// ends, either because the container exited or because the client left.
// Leaving does not stop the container.

// errAttachUnsupported answers attach requests on a runtime without it.
var errAttachUnsupported = errors.New("attach is not supported by this node's container runtime")

// parseAttachOptions reads an attach query: exec's streams, no command.
func parseAttachOptions(q url.Values) (execOptions, error) {
	o, err := parseStreamOptions(q)
	o.command = nil
	return o, err
}

// serveAttach attaches to a running container over an upgraded
// connection. Errors found before the upgrade are plain-text 4xx answers.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseAttachOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	attacher, ok := s.cfg.Runtime.(cri.Attacher)
	if !ok {
		http.Error(w, errAttachUnsupported.Error(), http.StatusBadRequest)
		return
	}
	ctx, id, streams, ok := s.openStreams(w, r, "attach", opts)
	if !ok {
		return
	}
	defer streams.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var resize chan cri.TerminalSize
	if opts.tty && streams.resize != nil {
		resize = make(chan cri.TerminalSize, 1)
		go forwardResizes(ctx, streams.resize, resize)
	}
	var stdin io.Reader
	if streams.stdin != nil {
		stdin = streams.stdin
	}
	var stdout, stderr io.Writer
	if streams.stdout != nil {
		stdout = streams.stdout
	}
	if streams.stderr != nil {
		stderr = streams.stderr
	}
	s.log.Info("attach started", "pod", ns+"/"+name, "container", container)
	err = attacher.Attach(ctx, id, stdin, stdout, stderr, resize)
	if errors.Is(err, context.Canceled) {
		err = nil // the client left
	}
	s.log.Info("attach ended", "pod", ns+"/"+name, "container", container, "err", err)
	if werr := writeAttachStatus(streams.status, err); werr != nil {
		s.log.Debug("attach status not sent", "pod", ns+"/"+name, "err", werr)
	}
}

// forwardResizes decodes the client's terminal sizes onto out until the
// stream or ctx ends, keeping only the newest size when the runtime lags.
func forwardResizes(ctx context.Context, in io.Reader, out chan cri.TerminalSize) {
	dec := json.NewDecoder(in)
	for {
		var size terminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		next := cri.TerminalSize{Width: size.Width, Height: size.Height}
		select {
		case out <- next:
			continue
		case <-ctx.Done():
			return
		default:
		}
		// Full: replace the stale size.
		select {
		case <-out:
		default:
		}
		select {
		case out <- next:
		case <-ctx.Done():
			return
		}
	}
}

// writeAttachStatus writes the outcome of an attachment: Success, or an
// internal error as upstream's streaming server words it.
func writeAttachStatus(w io.Writer, err error) error {
	st := metav1.Status{Status: metav1.StatusSuccess}
	if err != nil {
		st = apierrors.NewInternalError(fmt.Errorf("error attaching to container: %w", err)).Status()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
