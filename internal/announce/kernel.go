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

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// kernel talks rtnetlink to one network namespace, over
// github.com/mdlayher/netlink as internal/nodenet does (the few messages
// needed are built here rather than shared: nodenet is another component).
type kernel struct {
	c     *netlink.Conn
	netns int
}

// dialKernel opens rtnetlink in the network namespace netns (an open
// namespace file descriptor), or in the caller's when netns is 0.
func dialKernel(netns int) (*kernel, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netns, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &kernel{c: c, netns: netns}, nil
}

func (k *kernel) Close() error { return k.c.Close() }

func (k *kernel) execute(typ uint16, flags netlink.HeaderFlags, data []byte) ([]netlink.Message, error) {
	return k.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   data,
	})
}

// ifinfomsg is struct ifinfomsg with the given index, flags and change.
func ifinfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

func attrs(fn func(ae *netlink.AttributeEncoder)) []byte {
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		// Only a failing nested encoder errs, and ours do not.
		panic(fmt.Sprintf("encode netlink attributes: %v", err))
	}
	return b
}

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

// link is what Link reports of an interface.
type link struct {
	index int
	name  string
	mac   net.HardwareAddr
	kind  string
}

// Link returns the interface name; ok is false when there is none.
func (k *kernel) Link(name string) (l link, ok bool, err error) {
	msgs, err := k.execute(unix.RTM_GETLINK, 0, append(ifinfomsg(0, 0, 0), attrs(func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, name)
	})...))
	if errors.Is(err, unix.ENODEV) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	if len(msgs) != 1 {
		return l, false, fmt.Errorf("get link %s: unexpected answer", name)
	}
	l, err = parseLink(msgs[0].Data)
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	return l, true, nil
}

// LinkByIndex returns the interface index.
func (k *kernel) LinkByIndex(index int) (link, error) {
	msgs, err := k.execute(unix.RTM_GETLINK, 0, ifinfomsg(index, 0, 0))
	if err != nil {
		return link{}, fmt.Errorf("get link %d: %w", index, err)
	}
	if len(msgs) != 1 {
		return link{}, fmt.Errorf("get link %d: unexpected answer", index)
	}
	return parseLink(msgs[0].Data)
}

func parseLink(b []byte) (link, error) {
	var l link
	if len(b) < unix.SizeofIfInfomsg {
		return l, errors.New("short ifinfomsg")
	}
	l.index = int(int32(binary.NativeEndian.Uint32(b[4:])))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.name = ad.String()
		case unix.IFLA_ADDRESS:
			l.mac = net.HardwareAddr(append([]byte(nil), ad.Bytes()...))
		case unix.IFLA_LINKINFO:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.IFLA_INFO_KIND {
						l.kind = nad.String()
					}
				}
				return nil
			})
		}
	}
	return l, ad.Err()
}

// ownKinds are the kinds of interface AddDummy makes: a dummy, or where
// the kernel has no dummy driver (some minimal kernels) a bridge without
// ports, which holds addresses just as well and forwards nothing.
var ownKinds = []string{"dummy", "bridge"}

// AddDummy creates the interface name, a dummy or else a bridge without
// ports, up, and returns its index and kind.
func (k *kernel) AddDummy(name string) (int, string, error) {
	var kind string
	for _, kind = range ownKinds {
		data := append(ifinfomsg(0, 0, 0), attrs(func(ae *netlink.AttributeEncoder) {
			ae.String(unix.IFLA_IFNAME, name)
			ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
				nae.String(unix.IFLA_INFO_KIND, kind)
				return nil
			})
		})...)
		_, err := k.execute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, data)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EOPNOTSUPP) || kind == ownKinds[len(ownKinds)-1] {
			return 0, "", fmt.Errorf("add %s interface %s: %w", kind, name, err)
		}
	}
	l, ok, err := k.Link(name)
	if err != nil || !ok {
		return 0, "", fmt.Errorf("add %s interface %s: not found after creation: %v", kind, name, err)
	}
	// Addresses of a down interface have no local route: the kernel
	// would not answer for them.
	if _, err := k.execute(unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(l.index, unix.IFF_UP, unix.IFF_UP)); err != nil {
		return 0, "", fmt.Errorf("set %s up: %w", name, err)
	}
	return l.index, kind, nil
}

// DeleteLink deletes the interface index; a missing one is no error.
func (k *kernel) DeleteLink(index int) error {
	if _, err := k.execute(unix.RTM_DELLINK, netlink.Acknowledge, ifinfomsg(index, 0, 0)); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %d: %w", index, err)
	}
	return nil
}

// addr is one IPv4 address of an interface.
type addr struct {
	index int
	ip    netip.Addr
	bits  int
}

// Addrs lists the IPv4 addresses of every interface.
func (k *kernel) Addrs() ([]addr, error) {
	msgs, err := k.execute(unix.RTM_GETADDR, netlink.Dump, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []addr
	for _, msg := range msgs {
		b := msg.Data
		if len(b) < unix.SizeofIfAddrmsg || b[0] != unix.AF_INET {
			continue
		}
		a := addr{bits: int(b[1]), index: int(binary.NativeEndian.Uint32(b[4:]))}
		ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.IFA_LOCAL {
				a.ip, _ = netip.AddrFromSlice(ad.Bytes())
			}
		}
		if a.ip.IsValid() {
			out = append(out, a)
		}
	}
	return out, nil
}

// addrMsg is the ifaddrmsg and attributes of a as a /32 on index.
func addrMsg(index int, a netip.Addr) []byte {
	b := []byte{unix.AF_INET, 32, 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return append(b, attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, ip4(a))
		ae.Bytes(unix.IFA_ADDRESS, ip4(a))
	})...)
}

// AddAddr adds a/32 to the interface index.
func (k *kernel) AddAddr(index int, a netip.Addr) error {
	if _, err := k.execute(unix.RTM_NEWADDR, netlink.Create|netlink.Replace|netlink.Acknowledge, addrMsg(index, a)); err != nil {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	return nil
}

// DeleteAddr deletes a/32 from the interface index; a missing one is no
// error.
func (k *kernel) DeleteAddr(index int, a netip.Addr) error {
	if _, err := k.execute(unix.RTM_DELADDR, netlink.Acknowledge, addrMsg(index, a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	return nil
}

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
