package nodenet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// kernel talks rtnetlink to one network namespace. The messages are built
// here over github.com/mdlayher/netlink (already a dependency, through
// google/nftables) and golang.org/x/sys/unix's constants.
type kernel struct {
	c *netlink.Conn
}

// dialKernel opens rtnetlink in the network namespace netns (an open
// namespace file descriptor), or in the caller's when netns is 0.
func dialKernel(netns int) (*kernel, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netns, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &kernel{c: c}, nil
}

func (k *kernel) Close() error { return k.c.Close() }

func (k *kernel) execute(typ uint16, flags netlink.HeaderFlags, data []byte) ([]netlink.Message, error) {
	return k.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   data,
	})
}

// rtmsg is struct rtmsg.
type rtmsg struct {
	family, dstLen, srcLen, tos, table, protocol, scope, typ uint8
	flags                                                    uint32
}

func (m rtmsg) marshal() []byte {
	b := []byte{m.family, m.dstLen, m.srcLen, m.tos, m.table, m.protocol, m.scope, m.typ, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[8:], m.flags)
	return b
}

func parseRtmsg(b []byte) (rtmsg, []byte, error) {
	if len(b) < unix.SizeofRtMsg {
		return rtmsg{}, nil, errors.New("short rtmsg")
	}
	return rtmsg{family: b[0], dstLen: b[1], srcLen: b[2], tos: b[3], table: b[4], protocol: b[5], scope: b[6], typ: b[7],
		flags: binary.NativeEndian.Uint32(b[8:])}, b[unix.SizeofRtMsg:], nil
}

// ndmsg is struct ndmsg.
type ndmsg struct {
	family  uint8
	ifindex int32
	state   uint16
	flags   uint8
	typ     uint8
}

func (m ndmsg) marshal() []byte {
	b := make([]byte, unix.SizeofNdMsg)
	b[0] = m.family
	binary.NativeEndian.PutUint32(b[4:], uint32(m.ifindex))
	binary.NativeEndian.PutUint16(b[8:], m.state)
	b[10], b[11] = m.flags, m.typ
	return b
}

func parseNdmsg(b []byte) (ndmsg, []byte, error) {
	if len(b) < unix.SizeofNdMsg {
		return ndmsg{}, nil, errors.New("short ndmsg")
	}
	return ndmsg{family: b[0], ifindex: int32(binary.NativeEndian.Uint32(b[4:])), state: binary.NativeEndian.Uint16(b[8:]),
		flags: b[10], typ: b[11]}, b[unix.SizeofNdMsg:], nil
}

// ifinfomsg is struct ifinfomsg.
type ifinfomsg struct {
	family        uint8
	typ           uint16
	index         int32
	flags, change uint32
}

func (m ifinfomsg) marshal() []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = m.family
	binary.NativeEndian.PutUint16(b[2:], m.typ)
	binary.NativeEndian.PutUint32(b[4:], uint32(m.index))
	binary.NativeEndian.PutUint32(b[8:], m.flags)
	binary.NativeEndian.PutUint32(b[12:], m.change)
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

func addrFrom(b []byte) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(b)
	return a.Unmap(), ok
}

// routeMsg is the rtmsg and attributes of one of our routes.
func routeMsg(r Route) []byte {
	m := rtmsg{family: unix.AF_INET, dstLen: uint8(r.Dst.Bits()), table: unix.RT_TABLE_MAIN, protocol: RouteProtocol,
		scope: unix.RT_SCOPE_UNIVERSE, typ: unix.RTN_UNICAST}
	if r.Onlink {
		m.flags = unix.RTNH_F_ONLINK
	}
	return append(m.marshal(), attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.RTA_DST, ip4(r.Dst.Addr()))
		ae.Bytes(unix.RTA_GATEWAY, ip4(r.Gw))
		if r.LinkIndex != 0 {
			ae.Uint32(unix.RTA_OIF, uint32(r.LinkIndex))
		}
	})...)
}

// ReplaceRoute adds r, replacing a route to the same destination.
func (k *kernel) ReplaceRoute(r Route) error {
	if _, err := k.execute(unix.RTM_NEWROUTE, netlink.Create|netlink.Replace|netlink.Acknowledge, routeMsg(r)); err != nil {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	return nil
}

// DeleteRoute deletes r; a missing route is no error.
func (k *kernel) DeleteRoute(r Route) error {
	if _, err := k.execute(unix.RTM_DELROUTE, netlink.Acknowledge, routeMsg(r)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

// Routes lists the IPv4 routes of the main table with RouteProtocol.
func (k *kernel) Routes() ([]Route, error) {
	msgs, err := k.execute(unix.RTM_GETROUTE, netlink.Dump, rtmsg{family: unix.AF_INET}.marshal())
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, msg := range msgs {
		m, rest, err := parseRtmsg(msg.Data)
		if err != nil || m.protocol != RouteProtocol || m.family != unix.AF_INET {
			continue
		}
		table := uint32(m.table)
		r := Route{Onlink: m.flags&unix.RTNH_F_ONLINK != 0}
		ad, err := netlink.NewAttributeDecoder(rest)
		if err != nil {
			continue
		}
		dst := netip.IPv4Unspecified()
		for ad.Next() {
			switch ad.Type() {
			case unix.RTA_TABLE:
				table = ad.Uint32()
			case unix.RTA_DST:
				dst, _ = addrFrom(ad.Bytes())
			case unix.RTA_GATEWAY:
				r.Gw, _ = addrFrom(ad.Bytes())
			case unix.RTA_OIF:
				r.LinkIndex = int(ad.Uint32())
			}
		}
		if table != unix.RT_TABLE_MAIN {
			continue
		}
		r.Dst = netip.PrefixFrom(dst, int(m.dstLen))
		out = append(out, r)
	}
	return out, nil
}

// LocalPrefixes lists the IPv4 networks of the addresses on this
// namespace's interfaces (the directly connected networks), and the index
// of the interface that has ip.
func (k *kernel) LocalPrefixes(ip netip.Addr) (prefixes []netip.Prefix, ipIndex int, err error) {
	msgs, err := k.execute(unix.RTM_GETADDR, netlink.Dump, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		return nil, 0, fmt.Errorf("list addresses: %w", err)
	}
	for _, msg := range msgs {
		b := msg.Data
		if len(b) < unix.SizeofIfAddrmsg || b[0] != unix.AF_INET {
			continue
		}
		bits, index := int(b[1]), int(binary.NativeEndian.Uint32(b[4:]))
		ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		var local netip.Addr
		for ad.Next() {
			if ad.Type() == unix.IFA_LOCAL {
				local, _ = addrFrom(ad.Bytes())
			}
		}
		if !local.IsValid() || local.IsLoopback() {
			continue
		}
		if local == ip {
			ipIndex = index
		}
		if bits < 32 {
			prefixes = append(prefixes, netip.PrefixFrom(local, bits).Masked())
		}
	}
	return prefixes, ipIndex, nil
}

// neighMsg is the ndmsg and attributes of a permanent entry on ifindex.
func neighMsg(family uint8, ifindex int, flags uint8, mac string, ip netip.Addr) []byte {
	m := ndmsg{family: family, ifindex: int32(ifindex), state: unix.NUD_PERMANENT, flags: flags}
	hw, _ := net.ParseMAC(mac)
	return append(m.marshal(), attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NDA_LLADDR, hw)
		if ip.IsValid() {
			ae.Bytes(unix.NDA_DST, ip4(ip))
		}
	})...)
}

// ReplaceNeigh adds or replaces the ARP entry n on ifindex.
func (k *kernel) ReplaceNeigh(ifindex int, n Neigh) error {
	if _, err := k.execute(unix.RTM_NEWNEIGH, netlink.Create|netlink.Replace|netlink.Acknowledge,
		neighMsg(unix.AF_INET, ifindex, 0, n.MAC, n.IP)); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s: %w", n.IP, n.MAC, err)
	}
	return nil
}

// DeleteNeigh deletes the ARP entry n on ifindex; a missing one is no
// error.
func (k *kernel) DeleteNeigh(ifindex int, n Neigh) error {
	if _, err := k.execute(unix.RTM_DELNEIGH, netlink.Acknowledge, neighMsg(unix.AF_INET, ifindex, 0, n.MAC, n.IP)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete neighbour %s: %w", n.IP, err)
	}
	return nil
}

// ReplaceFDB adds or replaces the forwarding entry f of the VXLAN device
// ifindex (`bridge fdb replace MAC dev DEV dst IP self permanent`).
func (k *kernel) ReplaceFDB(ifindex int, f FDB) error {
	if _, err := k.execute(unix.RTM_NEWNEIGH, netlink.Create|netlink.Replace|netlink.Acknowledge,
		neighMsg(unix.AF_BRIDGE, ifindex, unix.NTF_SELF, f.MAC, f.Dst)); err != nil {
		return fmt.Errorf("add fdb entry %s dst %s: %w", f.MAC, f.Dst, err)
	}
	return nil
}

// DeleteFDB deletes the forwarding entry f; a missing one is no error.
func (k *kernel) DeleteFDB(ifindex int, f FDB) error {
	if _, err := k.execute(unix.RTM_DELNEIGH, netlink.Acknowledge, neighMsg(unix.AF_BRIDGE, ifindex, unix.NTF_SELF, f.MAC, f.Dst)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete fdb entry %s: %w", f.MAC, err)
	}
	return nil
}

type neighEntry struct {
	mac string
	ip  netip.Addr
}

// neighbours lists the permanent entries of family on ifindex, with their
// MAC and address (NDA_DST).
func (k *kernel) neighbours(family uint8, ifindex int) ([]neighEntry, error) {
	// A strict dump request names no device; the entries are filtered here.
	msgs, err := k.execute(unix.RTM_GETNEIGH, netlink.Dump, ndmsg{family: family}.marshal())
	if err != nil {
		return nil, err
	}
	var out []neighEntry
	for _, msg := range msgs {
		m, rest, err := parseNdmsg(msg.Data)
		if err != nil || m.family != family || int(m.ifindex) != ifindex || m.state&unix.NUD_PERMANENT == 0 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(rest)
		if err != nil {
			continue
		}
		var mac string
		var ip netip.Addr
		for ad.Next() {
			switch ad.Type() {
			case unix.NDA_LLADDR:
				mac = net.HardwareAddr(ad.Bytes()).String()
			case unix.NDA_DST:
				ip, _ = addrFrom(ad.Bytes())
			}
		}
		if mac != "" && ip.IsValid() {
			out = append(out, neighEntry{mac, ip})
		}
	}
	return out, nil
}

// Neighs lists the permanent ARP entries on ifindex.
func (k *kernel) Neighs(ifindex int) ([]Neigh, error) {
	entries, err := k.neighbours(unix.AF_INET, ifindex)
	if err != nil {
		return nil, fmt.Errorf("list neighbours: %w", err)
	}
	out := make([]Neigh, 0, len(entries))
	for _, e := range entries {
		out = append(out, Neigh{MAC: e.mac, IP: e.ip})
	}
	return out, nil
}

// FDBs lists the VXLAN device's forwarding entries that have a
// destination.
func (k *kernel) FDBs(ifindex int) ([]FDB, error) {
	entries, err := k.neighbours(unix.AF_BRIDGE, ifindex)
	if err != nil {
		return nil, fmt.Errorf("list fdb entries: %w", err)
	}
	out := make([]FDB, 0, len(entries))
	for _, e := range entries {
		out = append(out, FDB{MAC: e.mac, Dst: e.ip})
	}
	return out, nil
}

// vxlanLink is what the VXLAN device is.
type vxlanLink struct {
	index int
	mac   string
	kind  string
	vni   uint32
	local netip.Addr
	port  uint16
	mtu   uint32
	up    bool
}

// Link returns the device name; ok is false when there is none.
func (k *kernel) Link(name string) (l vxlanLink, ok bool, err error) {
	data := append(ifinfomsg{}.marshal(), attrs(func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) })...)
	msgs, err := k.execute(unix.RTM_GETLINK, 0, data)
	if errors.Is(err, unix.ENODEV) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	if len(msgs) != 1 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		return l, false, fmt.Errorf("get link %s: unexpected answer", name)
	}
	b := msgs[0].Data
	l.index = int(int32(binary.NativeEndian.Uint32(b[4:])))
	l.up = binary.NativeEndian.Uint32(b[8:])&unix.IFF_UP != 0
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_ADDRESS:
			l.mac = net.HardwareAddr(ad.Bytes()).String()
		case unix.IFLA_MTU:
			l.mtu = ad.Uint32()
		case unix.IFLA_LINKINFO:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case unix.IFLA_INFO_KIND:
						l.kind = nad.String()
					case unix.IFLA_INFO_DATA:
						nad.Nested(func(vad *netlink.AttributeDecoder) error {
							for vad.Next() {
								switch vad.Type() {
								case unix.IFLA_VXLAN_ID:
									l.vni = vad.Uint32()
								case unix.IFLA_VXLAN_LOCAL:
									l.local, _ = addrFrom(vad.Bytes())
								case unix.IFLA_VXLAN_PORT:
									if p := vad.Bytes(); len(p) == 2 {
										l.port = binary.BigEndian.Uint16(p)
									}
								}
							}
							return nil
						})
					}
				}
				return nil
			})
		}
	}
	return l, true, ad.Err()
}

// AddVXLAN creates the VXLAN device name over the interface parent with
// local address local, learning off (the controller writes every entry),
// and brings it up.
func (k *kernel) AddVXLAN(name string, vni uint32, local netip.Addr, parent int, port uint16, mtu uint32) error {
	data := append(ifinfomsg{}.marshal(), attrs(func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, name)
		ae.Uint32(unix.IFLA_MTU, mtu)
		ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(unix.IFLA_INFO_KIND, "vxlan")
			nae.Nested(unix.IFLA_INFO_DATA, func(vae *netlink.AttributeEncoder) error {
				vae.Uint32(unix.IFLA_VXLAN_ID, vni)
				vae.Bytes(unix.IFLA_VXLAN_LOCAL, ip4(local))
				if parent != 0 {
					vae.Uint32(unix.IFLA_VXLAN_LINK, uint32(parent))
				}
				vae.Bytes(unix.IFLA_VXLAN_PORT, binary.BigEndian.AppendUint16(nil, port))
				vae.Uint8(unix.IFLA_VXLAN_LEARNING, 0)
				return nil
			})
			return nil
		})
	})...)
	if _, err := k.execute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, data); err != nil {
		return fmt.Errorf("add vxlan device %s: %w", name, err)
	}
	l, ok, err := k.Link(name)
	if err != nil || !ok {
		return fmt.Errorf("add vxlan device %s: not found after creation: %w", name, err)
	}
	return k.SetUp(l.index)
}

// SetUp brings the link up.
func (k *kernel) SetUp(index int) error {
	m := ifinfomsg{index: int32(index), flags: unix.IFF_UP, change: unix.IFF_UP}
	if _, err := k.execute(unix.RTM_NEWLINK, netlink.Acknowledge, m.marshal()); err != nil {
		return fmt.Errorf("set link %d up: %w", index, err)
	}
	return nil
}

// DeleteLink deletes the link.
func (k *kernel) DeleteLink(index int) error {
	m := ifinfomsg{index: int32(index)}
	if _, err := k.execute(unix.RTM_DELLINK, netlink.Acknowledge, m.marshal()); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %d: %w", index, err)
	}
	return nil
}

func addrMsg(index int, a netip.Addr) []byte {
	b := []byte{unix.AF_INET, 32, 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return append(b, attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, ip4(a))
		ae.Bytes(unix.IFA_ADDRESS, ip4(a))
	})...)
}

// SetOnlyAddr makes a the only IPv4 address of the link, as a /32 (the
// VXLAN device's own VTEP address, which follows the node's podCIDR).
func (k *kernel) SetOnlyAddr(index int, a netip.Addr) error {
	msgs, err := k.execute(unix.RTM_GETADDR, netlink.Dump, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	found := false
	for _, msg := range msgs {
		b := msg.Data
		if len(b) < unix.SizeofIfAddrmsg || b[0] != unix.AF_INET || int(binary.NativeEndian.Uint32(b[4:])) != index {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() != unix.IFA_LOCAL {
				continue
			}
			old, _ := addrFrom(ad.Bytes())
			if old == a && b[1] == 32 {
				found = true
				continue
			}
			del := append([]byte{unix.AF_INET, b[1], 0, 0, 0, 0, 0, 0}, attrs(func(ae *netlink.AttributeEncoder) {
				ae.Bytes(unix.IFA_LOCAL, ip4(old))
			})...)
			binary.NativeEndian.PutUint32(del[4:], uint32(index))
			if _, err := k.execute(unix.RTM_DELADDR, netlink.Acknowledge, del); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("delete address %s from link %d: %w", old, index, err)
			}
		}
	}
	if found {
		return nil
	}
	if _, err := k.execute(unix.RTM_NEWADDR, netlink.Create|netlink.Replace|netlink.Acknowledge, addrMsg(index, a)); err != nil {
		return fmt.Errorf("add address %s to link %d: %w", a, index, err)
	}
	return nil
}
