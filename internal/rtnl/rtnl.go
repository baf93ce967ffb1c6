package rtnl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn talks rtnetlink to one network namespace.
type Conn struct {
	c *netlink.Conn
}

// Dial opens rtnetlink in the network namespace netns (an open namespace
// file descriptor), or in the caller's when netns is 0.
func Dial(netns int) (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: netns, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Execute sends the request typ (an RTM_* message type) with flags, to
// which it adds netlink.Request, and data, and returns the answer.
func (c *Conn) Execute(typ uint16, flags netlink.HeaderFlags, data []byte) ([]netlink.Message, error) {
	return c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | flags},
		Data:   data,
	})
}

// Attrs encodes the attributes fn adds. It panics when the encoder fails,
// which only a failing nested encoder makes it do: fn's must not fail.
func Attrs(fn func(ae *netlink.AttributeEncoder)) []byte {
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		panic(fmt.Sprintf("encode netlink attributes: %v", err))
	}
	return b
}

// IfInfomsg is struct ifinfomsg, the header of link messages.
type IfInfomsg struct {
	Family uint8
	Type   uint16
	Index  int32
	Flags  uint32
	Change uint32
}

// Marshal returns m in the kernel's layout and byte order.
func (m IfInfomsg) Marshal() []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = m.Family
	binary.NativeEndian.PutUint16(b[2:], m.Type)
	binary.NativeEndian.PutUint32(b[4:], uint32(m.Index))
	binary.NativeEndian.PutUint32(b[8:], m.Flags)
	binary.NativeEndian.PutUint32(b[12:], m.Change)
	return b
}

// ifaddrmsg is struct ifaddrmsg for an IPv4 address with prefix length
// bits on the link index.
func ifaddrmsg(bits uint8, index int) []byte {
	b := []byte{unix.AF_INET, bits, 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }
