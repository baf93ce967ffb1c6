package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
)

var _ cri.Attacher = (*Runtime)(nil)

// conmon's attach socket carries SOCK_SEQPACKET messages. Output messages
// start with one byte naming the stream; input is written as is and conmon
// reads it in chunks of its 8 KiB buffer, so no message may be longer.
const (
	attachStdout  = 2
	attachStderr  = 3
	attachInMax   = 8192
	attachOutSize = 64 << 10
)

// Attach connects to the container's conmon through its attach socket:
// stdin is written to the container's stdin (when it was created with
// Stdin), its output from now on is copied to stdout and stderr (a TTY
// container's is all stdout), and sizes from resize go to conmon's control
// fifo. It returns nil when the container's output ends, ctx's error when
// ctx ends first, and nil when stdin ends and no output was asked for.
// Detaching leaves the container and its stdin open.
func (r *Runtime) Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan cri.TerminalSize) error {
	c, err := r.loadContainer(containerID)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if _, exited := r.exitStatus(containerID); exited || !r.conmonAlive(containerID) {
		return fmt.Errorf("attach to container %q of pod %q: the container is not running", c.Name, c.Namespace+"/"+c.PodName)
	}
	dir := r.cfg.containerDir(containerID)
	conn, err := dialAttach(dir)
	if err != nil {
		return fmt.Errorf("attach to container %q of pod %q: %w", c.Name, c.Namespace+"/"+c.PodName, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.Close() // ends the copies below
	}()

	outDone := make(chan error, 1)
	go func() { outDone <- copyAttachOutput(conn, stdout, stderr) }()
	var stdinDone chan struct{}
	if stdin != nil && c.Stdin {
		stdinDone = make(chan struct{})
		go func() {
			defer close(stdinDone)
			_, _ = io.Copy(chunkWriter{conn, attachInMax}, stdin)
			// With --leave-stdin-open conmon keeps the container's stdin
			// open when a client stops writing.
			_ = conn.CloseWrite()
		}()
	}
	if resize != nil && c.TTY {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if err := writeCtl(dir, resizeMessage(sz)); err != nil {
						r.logger.Debug("resize attached terminal", "id", containerID, "err", err)
					}
				}
			}
		}()
	}
	wantOutput := stdout != nil || stderr != nil
	for {
		select {
		case err := <-outDone:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		case <-stdinDone:
			if !wantOutput {
				return nil
			}
			stdinDone = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resizeMessage is conmon's control message "resize the terminal": type
// 1, then the height and width.
func resizeMessage(sz cri.TerminalSize) string {
	return fmt.Sprintf("1 %d %d\n", sz.Height, sz.Width)
}

// dialAttach connects to the attach socket in the container directory
// dir, through /proc/self/fd so that a long dir does not exceed a socket
// address's 108 bytes.
func dialAttach(dir string) (*net.UnixConn, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	addr := &net.UnixAddr{Name: filepath.Join(fmt.Sprintf("/proc/self/fd/%d", fd), attachSocket), Net: "unixpacket"}
	conn, err := net.DialUnix("unixpacket", nil, addr)
	if err != nil {
		return nil, fmt.Errorf("conmon attach socket: %w", err)
	}
	return conn, nil
}

// copyAttachOutput copies conmon's output messages to stdout and stderr
// by their stream byte until the socket ends.
func copyAttachOutput(conn io.Reader, stdout, stderr io.Writer) error {
	buf := make([]byte, attachOutSize)
	for {
		n, err := conn.Read(buf)
		if n > 1 {
			var w io.Writer
			switch buf[0] {
			case attachStdout:
				w = stdout
			case attachStderr:
				w = stderr
			}
			if w != nil {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return werr
				}
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // end of a SOCK_SEQPACKET stream
		}
	}
}

// chunkWriter writes p in messages of at most max bytes.
type chunkWriter struct {
	w   io.Writer
	max int
}

func (c chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), c.max)
		m, err := c.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
