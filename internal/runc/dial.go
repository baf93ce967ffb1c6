package runc

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// DialSandbox connects to 127.0.0.1:port in the sandbox's network
// namespace: a goroutine locked to its OS thread enters the namespace,
// creates and connects the socket there (a socket stays in the namespace
// it was created in) and returns to the node's namespace. A thread that
// cannot return is never reused: it ends with its goroutine.
func (r *Runtime) DialSandbox(ctx context.Context, sandboxID string, port uint16) (net.Conn, error) {
	s, err := r.loadSandbox(sandboxID)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var d net.Dialer
	path := s.netns()
	if path == "" || s.HostNetwork {
		return d.DialContext(ctx, "tcp", addr)
	}
	target, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: network namespace: %w", sandboxID, err)
	}
	defer target.Close()

	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("node network namespace: %w", err)}
			return
		}
		defer home.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("sandbox %q: enter network namespace: %w", sandboxID, err)}
			return
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	res := <-done
	return res.conn, res.err
}
