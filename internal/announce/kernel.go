package announce

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/rtnl"
)

// kernel is rtnetlink to one network namespace (internal/rtnl), and the
// raw ARP sockets of that namespace.
type kernel struct {
	*rtnl.Conn
	netns int
}

// dialKernel opens rtnetlink in the network namespace netns (an open
// namespace file descriptor), or in the caller's when netns is 0.
func dialKernel(netns int) (*kernel, error) {
	c, err := rtnl.Dial(netns)
	if err != nil {
		return nil, err
	}
	return &kernel{Conn: c, netns: netns}, nil
}

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

// SendARP sends frame (a whole Ethernet frame) out of interface index
// through a raw AF_PACKET socket in the kernel's network namespace.
func (k *kernel) SendARP(index int, frame []byte) error {
	fd, err := k.packetSocket()
	if err != nil {
		return fmt.Errorf("arp socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, frame, 0, linkAddr(index, frame)); err != nil {
		return fmt.Errorf("send arp on interface %d: %w", index, err)
	}
	return nil
}

// linkAddr is where frame goes out of interface index: to its destination
// MAC.
func linkAddr(index int, frame []byte) *unix.SockaddrLinklayer {
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: index, Halen: 6}
	copy(to.Addr[:], frame[:6])
	return to
}

// arpConn is a raw socket bound to the ARP frames of one interface.
type arpConn struct {
	index int
	f     *os.File
	rc    syscall.RawConn
}

// ListenARP opens a raw socket in the kernel's network namespace that
// receives the ARP frames of interface index, in and out. The socket is
// non-blocking and handed to the runtime's poller, so that Close from
// another goroutine ends a Read waiting for a frame: a blocking recvfrom
// on a packet socket is not woken by close(2).
func (k *kernel) ListenARP(index int) (*arpConn, error) {
	fd, err := k.packetSocket()
	if err != nil {
		return nil, fmt.Errorf("arp socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind arp socket to interface %d: %w", index, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("arp socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "arp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("arp socket: %w", err)
	}
	return &arpConn{index: index, f: f, rc: rc}, nil
}

// Read reads one frame into buf and returns its length. incoming is false
// for frames this host sent (its own requests, gratuitous ARPs and
// replies), which the socket sees too, and for frames of another
// interface, which it may have queued before it was bound.
func (c *arpConn) Read(buf []byte) (n int, incoming bool, err error) {
	var from unix.Sockaddr
	rerr := c.rc.Read(func(fd uintptr) bool {
		n, from, err = unix.Recvfrom(int(fd), buf, 0)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, false, rerr
	}
	if err != nil {
		return 0, false, err
	}
	ll, ok := from.(*unix.SockaddrLinklayer)
	return n, ok && ll.Ifindex == c.index && ll.Pkttype != unix.PACKET_OUTGOING, nil
}

// Write sends frame, a whole Ethernet frame, to its destination MAC.
func (c *arpConn) Write(frame []byte) error {
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), frame, 0, linkAddr(c.index, frame))
		return err != unix.EAGAIN
	})
	return errors.Join(werr, err)
}

// Close closes the socket, ending a Read in progress.
func (c *arpConn) Close() error { return c.f.Close() }

// packetSocket opens the raw socket. A socket belongs to the namespace it
// was made in, so for another namespace it is made on a thread that enters
// it; that thread is never unlocked, so the runtime ends it rather than
// reusing a thread in the wrong namespace.
func (k *kernel) packetSocket() (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	}
	if k.netns == 0 {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(k.netns, unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		fd, err := open()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// htons is v in network byte order, as the socket calls want it.
func htons(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }

// garp is a gratuitous ARP request for ip from mac, broadcast: neighbours
// that know ip update its MAC to mac.
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 0, 42)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // destination: broadcast
	b = append(b, mac...)
	b = append(b, 0x08, 0x06)                // EtherType ARP
	b = append(b, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet, IPv4, 6, 4, request
	b = append(b, mac...)
	b = append(b, ip4(ip)...)
	b = append(b, 0, 0, 0, 0, 0, 0) // target hardware address: unknown
	b = append(b, ip4(ip)...)       // target = sender: gratuitous
	return b
}
