package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Addr is an IPv4 address of a link.
type Addr struct {
	// Index is the link's.
	Index int
	// Prefix is the address (IFA_LOCAL) with its prefix length, not
	// masked: 10.0.0.5/24.
	Prefix netip.Prefix
}

// parseAddr decodes an address message (RTM_NEWADDR, as a dump of
// RTM_GETADDR answers); ok is false for one that is not IPv4 or has no
// local address.
func parseAddr(b []byte) (a Addr, ok bool) {
	if len(b) < unix.SizeofIfAddrmsg || b[0] != unix.AF_INET {
		return a, false
	}
	bits, index := int(b[1]), int(binary.NativeEndian.Uint32(b[4:]))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return a, false
	}
	var local netip.Addr
	for ad.Next() {
		if ad.Type() == unix.IFA_LOCAL {
			local, _ = netip.AddrFromSlice(ad.Bytes())
		}
	}
	if !local.IsValid() {
		return a, false
	}
	return Addr{Index: index, Prefix: netip.PrefixFrom(local.Unmap(), bits)}, true
}

// Addrs lists the IPv4 addresses of the link index, or of every link when
// index is 0.
func (c *Conn) Addrs(index int) ([]Addr, error) {
	// A strict dump request names no link; the answers are filtered here.
	msgs, err := c.Execute(unix.RTM_GETADDR, netlink.Dump, ifaddrmsg(0, 0))
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []Addr
	for _, msg := range msgs {
		a, ok := parseAddr(msg.Data)
		if ok && (index == 0 || a.Index == index) {
			out = append(out, a)
		}
	}
	return out, nil
}

// addrMsg is the ifaddrmsg and attributes of the address p on the link
// index, as `ip addr add|del` sends them: the local address is the
// address too (no peer), so a deletion matches p's prefix length.
func addrMsg(index int, p netip.Prefix) []byte {
	return append(ifaddrmsg(uint8(p.Bits()), index), Attrs(func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, ip4(p.Addr()))
		ae.Bytes(unix.IFA_ADDRESS, ip4(p.Addr()))
	})...)
}

// AddAddr adds the IPv4 address p to the link index; the same address
// there already is replaced, no error.
func (c *Conn) AddAddr(index int, p netip.Prefix) error {
	if _, err := c.Execute(unix.RTM_NEWADDR, netlink.Create|netlink.Replace|netlink.Acknowledge, addrMsg(index, p)); err != nil {
		return fmt.Errorf("add address %s to link %d: %w", p, index, err)
	}
	return nil
}

// DeleteAddr deletes the IPv4 address p from the link index; a missing one
// is no error.
func (c *Conn) DeleteAddr(index int, p netip.Prefix) error {
	if _, err := c.Execute(unix.RTM_DELADDR, netlink.Acknowledge, addrMsg(index, p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s from link %d: %w", p, index, err)
	}
	return nil
}
