// Package nftconn holds what the node's nftables programs (the service
// proxy's and the NetworkPolicy enforcer's) share: netlink socket buffers
// large enough for big batches, the bridge netfilter switch, and running a
// function in another network namespace.
package nftconn

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Buffers returns a socket option (nftables.WithSockOptions) that raises
// the netlink socket's send and receive buffers to size bytes past the
// system's limits (CAP_NET_ADMIN), so one batch of many elements and its
// acknowledgements fit.
func Buffers(size int) func(*netlink.Conn) error {
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}); err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("netlink socket buffers: %w", serr)
		}
		return nil
	}
}

// EnableBridgeNetfilter sets net.bridge.bridge-nf-call-iptables to 1 in
// the calling thread's network namespace, so traffic between ports of a
// Linux bridge passes the ip family's hooks. It fails when br_netfilter is
// not loaded (the file does not exist).
func EnableBridgeNetfilter() error {
	const path = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("br_netfilter: %w", err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("br_netfilter: %w", err)
	}
	return nil
}

// InNetNS runs f on a thread in the network namespace ns (files under
// /proc/sys/net are the namespace's of the reading thread); a nil ns runs
// f where the caller is. The thread never returns to the pool: it ends
// with its goroutine rather than serve others in another namespace.
func InNetNS(ns *os.File, f func() error) error {
	if ns == nil {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", ns.Name(), err)
			return
		}
		errc <- f()
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("timed out in the network namespace")
	}
}
