package userspace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rtnl talks rtnetlink to one network namespace: the few messages the
// backend needs to own a dummy device and its addresses, built over
// github.com/mdlayher/netlink as internal/nodenet builds its own.
type rtnl struct {
	c *netlink.Conn
}

// dialRtnl opens rtnetlink in the network namespace netns (an open
// namespace file descriptor), or in the caller's when netns is 0.
func dialRtnl(netns int) (*rtnl, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netns, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &rtnl{c: c}, nil
}

func (k *rtnl) Close() error { return k.c.Close() }

func (k *rtnl) execute(typ uint16, flags netlink.HeaderFlags, data []byte) ([]netlink.Message, error) {
	return k.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   data,
	})
}

func encodeAttrs(fn func(ae *netlink.AttributeEncoder)) []byte {
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		// Only a failing nested encoder errs, and ours do not.
		panic(fmt.Sprintf("encode netlink attributes: %v", err))
	}
	return b
}

// ifinfomsg returns struct ifinfomsg for the link index.
func ifinfomsg(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// link returns the index and kind of the link name; ok is false when
// there is none.
func (k *rtnl) link(name string) (index int, kind string, ok bool, err error) {
	data := append(ifinfomsg(0, 0, 0), encodeAttrs(func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) })...)
	msgs, err := k.execute(unix.RTM_GETLINK, 0, data)
	if errors.Is(err, unix.ENODEV) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("get link %s: %w", name, err)
	}
	if len(msgs) != 1 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		return 0, "", false, fmt.Errorf("get link %s: unexpected answer", name)
	}
	b := msgs[0].Data
	index = int(int32(binary.NativeEndian.Uint32(b[4:])))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0, "", false, fmt.Errorf("get link %s: %w", name, err)
	}
	for ad.Next() {
		if ad.Type() != unix.IFLA_LINKINFO {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				if nad.Type() == unix.IFLA_INFO_KIND {
					kind = nad.String()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return 0, "", false, fmt.Errorf("get link %s: %w", name, err)
	}
	return index, kind, true, nil
}

// addDevice creates the device name of the kind ("dummy", or "bridge"
// for one without ports), left down as kube-proxy's kube-ipvs0 is: the
// kernel adds the local route of an address on a down device all the
// same, and a down device takes part in no other routing.
func (k *rtnl) addDevice(name, kind string) error {
	data := append(ifinfomsg(0, 0, 0), encodeAttrs(func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, name)
		ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(unix.IFLA_INFO_KIND, kind)
			return nil
		})
	})...)
	if _, err := k.execute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, data); err != nil {
		return fmt.Errorf("add %s device %s: %w", kind, name, err)
	}
	return nil
}

// deleteLink deletes the link; a missing one is no error.
func (k *rtnl) deleteLink(index int) error {
	if _, err := k.execute(unix.RTM_DELLINK, netlink.Acknowledge, ifinfomsg(int32(index), 0, 0)); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %d: %w", index, err)
	}
	return nil
}

// addrs lists the namespace's IPv4 addresses, split into those on the
// link index (the backend's) and those on any other interface.
func (k *rtnl) addrs(index int) (own, others map[netip.Addr]bool, err error) {
	msgs, err := k.execute(unix.RTM_GETADDR, netlink.Dump, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		return nil, nil, fmt.Errorf("list addresses: %w", err)
	}
	own, others = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, msg := range msgs {
		b := msg.Data
		if len(b) < unix.SizeofIfAddrmsg || b[0] != unix.AF_INET {
			continue
		}
		set := others
		if int(binary.NativeEndian.Uint32(b[4:])) == index {
			set = own
		}
		ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() != unix.IFA_LOCAL {
				continue
			}
			if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
				set[a.Unmap()] = true
			}
		}
	}
	return own, others, nil
}

func addrMsg(index int, a netip.Addr) []byte {
	b := []byte{unix.AF_INET, 32, 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	ip := a.As4()
	return append(b, encodeAttrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, ip[:])
		ae.Bytes(unix.IFA_ADDRESS, ip[:])
	})...)
}

// addAddr adds a/32 to the link; an address already there is no error.
func (k *rtnl) addAddr(index int, a netip.Addr) error {
	if _, err := k.execute(unix.RTM_NEWADDR, netlink.Create|netlink.Replace|netlink.Acknowledge, addrMsg(index, a)); err != nil {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	return nil
}

// delAddr removes a/32 from the link; a missing address is no error.
func (k *rtnl) delAddr(index int, a netip.Addr) error {
	if _, err := k.execute(unix.RTM_DELADDR, netlink.Acknowledge, addrMsg(index, a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	return nil
}
