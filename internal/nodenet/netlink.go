package nodenet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/rtnl"
)

// kernel is rtnetlink to one network namespace, with the messages only
// this controller sends (routes, neighbours, forwarding entries, the VXLAN
// device) built here over internal/rtnl's connection and encoding.
type kernel struct {
	*rtnl.Conn
}

// dialKernel opens rtnetlink in the network namespace netns (an open
// namespace file descriptor), or in the caller's when netns is 0.
func dialKernel(netns int) (*kernel, error) {
	c, err := rtnl.Dial(netns)
	if err != nil {
		return nil, err
	}
	return &kernel{Conn: c}, nil
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
	return append(m.marshal(), rtnl.Attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.RTA_DST, ip4(r.Dst.Addr()))
		ae.Bytes(unix.RTA_GATEWAY, ip4(r.Gw))
		if r.LinkIndex != 0 {
			ae.Uint32(unix.RTA_OIF, uint32(r.LinkIndex))
		}
	})...)
}

// ReplaceRoute adds r, replacing a route to the same destination.
func (k *kernel) ReplaceRoute(r Route) error {
	if _, err := k.Execute(unix.RTM_NEWROUTE, netlink.Create|netlink.Replace|netlink.Acknowledge, routeMsg(r)); err != nil {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	return nil
}

// DeleteRoute deletes r; a missing route is no error.
func (k *kernel) DeleteRoute(r Route) error {
	if _, err := k.Execute(unix.RTM_DELROUTE, netlink.Acknowledge, routeMsg(r)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

// Routes lists the IPv4 routes of the main table with RouteProtocol.
func (k *kernel) Routes() ([]Route, error) {
	msgs, err := k.Execute(unix.RTM_GETROUTE, netlink.Dump, rtmsg{family: unix.AF_INET}.marshal())
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
	addrs, err := k.Addrs(0)
	if err != nil {
		return nil, 0, err
	}
	for _, a := range addrs {
		local := a.Prefix.Addr()
		if local.IsLoopback() {
			continue
		}
		if local == ip {
			ipIndex = a.Index
		}
		if a.Prefix.Bits() < 32 {
			prefixes = append(prefixes, a.Prefix.Masked())
		}
	}
	return prefixes, ipIndex, nil
}

// neighMsg is the ndmsg and attributes of a permanent entry on ifindex.
func neighMsg(family uint8, ifindex int, flags uint8, mac string, ip netip.Addr) []byte {
	m := ndmsg{family: family, ifindex: int32(ifindex), state: unix.NUD_PERMANENT, flags: flags}
	hw, _ := net.ParseMAC(mac)
	return append(m.marshal(), rtnl.Attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NDA_LLADDR, hw)
		if ip.IsValid() {
			ae.Bytes(unix.NDA_DST, ip4(ip))
		}
	})...)
}

// ReplaceNeigh adds or replaces the ARP entry n on ifindex.
func (k *kernel) ReplaceNeigh(ifindex int, n Neigh) error {
	if _, err := k.Execute(unix.RTM_NEWNEIGH, netlink.Create|netlink.Replace|netlink.Acknowledge,
		neighMsg(unix.AF_INET, ifindex, 0, n.MAC, n.IP)); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s: %w", n.IP, n.MAC, err)
	}
	return nil
}

// DeleteNeigh deletes the ARP entry n on ifindex; a missing one is no
// error.
func (k *kernel) DeleteNeigh(ifindex int, n Neigh) error {
	if _, err := k.Execute(unix.RTM_DELNEIGH, netlink.Acknowledge, neighMsg(unix.AF_INET, ifindex, 0, n.MAC, n.IP)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete neighbour %s: %w", n.IP, err)
	}
	return nil
}

// ReplaceFDB adds or replaces the forwarding entry f of the VXLAN device
// ifindex (`bridge fdb replace MAC dev DEV dst IP self permanent`).
func (k *kernel) ReplaceFDB(ifindex int, f FDB) error {
	if _, err := k.Execute(unix.RTM_NEWNEIGH, netlink.Create|netlink.Replace|netlink.Acknowledge,
		neighMsg(unix.AF_BRIDGE, ifindex, unix.NTF_SELF, f.MAC, f.Dst)); err != nil {
		return fmt.Errorf("add fdb entry %s dst %s: %w", f.MAC, f.Dst, err)
	}
	return nil
}

// DeleteFDB deletes the forwarding entry f; a missing one is no error.
func (k *kernel) DeleteFDB(ifindex int, f FDB) error {
	if _, err := k.Execute(unix.RTM_DELNEIGH, netlink.Acknowledge, neighMsg(unix.AF_BRIDGE, ifindex, unix.NTF_SELF, f.MAC, f.Dst)); err != nil && !errors.Is(err, unix.ENOENT) {
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
	msgs, err := k.Execute(unix.RTM_GETNEIGH, netlink.Dump, ndmsg{family: family}.marshal())
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
	rl, ok, err := k.LinkByName(name)
	if err != nil || !ok {
		return l, ok, err
	}
	l = vxlanLink{index: rl.Index, mac: rl.MAC.String(), kind: rl.Kind, mtu: rl.MTU, up: rl.Up()}
	ad, err := netlink.NewAttributeDecoder(rl.InfoData)
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_VXLAN_ID:
			l.vni = ad.Uint32()
		case unix.IFLA_VXLAN_LOCAL:
			l.local, _ = addrFrom(ad.Bytes())
		case unix.IFLA_VXLAN_PORT:
			if p := ad.Bytes(); len(p) == 2 {
				l.port = binary.BigEndian.Uint16(p)
			}
		}
	}
	return l, true, ad.Err()
}

// AddVXLAN creates the VXLAN device name over the interface parent with
// local address local, learning off (the controller writes every entry),
// and brings it up.
func (k *kernel) AddVXLAN(name string, vni uint32, local netip.Addr, parent int, port uint16, mtu uint32) error {
	data := append(rtnl.IfInfomsg{}.Marshal(), rtnl.Attrs(func(ae *netlink.AttributeEncoder) {
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
	if _, err := k.Execute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, data); err != nil {
		return fmt.Errorf("add vxlan device %s: %w", name, err)
	}
	l, ok, err := k.Link(name)
	if err != nil || !ok {
		return fmt.Errorf("add vxlan device %s: not found after creation: %w", name, err)
	}
	return k.SetLinkUp(l.index)
}

// SetOnlyAddr makes a the only IPv4 address of the link, as a /32 (the
// VXLAN device's own VTEP address, which follows the node's podCIDR).
func (k *kernel) SetOnlyAddr(index int, a netip.Addr) error {
	addrs, err := k.Addrs(index)
	if err != nil {
		return err
	}
	want := netip.PrefixFrom(a, 32)
	found := false
	for _, old := range addrs {
		if old.Prefix == want {
			found = true
			continue
		}
		if err := k.DeleteAddr(index, old.Prefix); err != nil {
			return err
		}
	}
	if found {
		return nil
	}
	return k.AddAddr(index, want)
}
