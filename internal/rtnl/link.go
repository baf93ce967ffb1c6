package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Link is what the kernel reports of a link (an interface).
type Link struct {
	Index int
	Name  string
	// Kind is IFLA_INFO_KIND ("dummy", "bridge", "vxlan"); empty for a
	// physical device.
	Kind string
	MAC  net.HardwareAddr
	// Flags are the IFF_* flags.
	Flags uint32
	MTU   uint32
	// InfoData is the kind's own nested attributes (IFLA_INFO_DATA),
	// undecoded: the component that made the device reads them.
	InfoData []byte
}

// Up reports whether the link is administratively up.
func (l Link) Up() bool { return l.Flags&unix.IFF_UP != 0 }

// parseLink decodes a link message (RTM_NEWLINK, as answers to
// RTM_GETLINK are).
func parseLink(b []byte) (Link, error) {
	var l Link
	if len(b) < unix.SizeofIfInfomsg {
		return l, errors.New("short ifinfomsg")
	}
	l.Index = int(int32(binary.NativeEndian.Uint32(b[4:])))
	l.Flags = binary.NativeEndian.Uint32(b[8:])
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.Name = ad.String()
		case unix.IFLA_ADDRESS:
			l.MAC = net.HardwareAddr(append([]byte(nil), ad.Bytes()...))
		case unix.IFLA_MTU:
			l.MTU = ad.Uint32()
		case unix.IFLA_LINKINFO:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case unix.IFLA_INFO_KIND:
						l.Kind = nad.String()
					case unix.IFLA_INFO_DATA:
						l.InfoData = append([]byte(nil), nad.Bytes()...)
					}
				}
				return nil
			})
		}
	}
	return l, ad.Err()
}

// getLinkMsg is the RTM_GETLINK request for the link name.
func getLinkMsg(name string) []byte {
	return append(IfInfomsg{}.Marshal(), Attrs(func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) })...)
}

// LinkByName returns the link name; ok is false when there is none.
func (c *Conn) LinkByName(name string) (l Link, ok bool, err error) {
	msgs, err := c.Execute(unix.RTM_GETLINK, 0, getLinkMsg(name))
	if errors.Is(err, unix.ENODEV) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	if len(msgs) != 1 {
		return l, false, fmt.Errorf("get link %s: unexpected answer", name)
	}
	if l, err = parseLink(msgs[0].Data); err != nil {
		return l, false, fmt.Errorf("get link %s: %w", name, err)
	}
	return l, true, nil
}

// LinkByIndex returns the link index.
func (c *Conn) LinkByIndex(index int) (Link, error) {
	msgs, err := c.Execute(unix.RTM_GETLINK, 0, IfInfomsg{Index: int32(index)}.Marshal())
	if err != nil {
		return Link{}, fmt.Errorf("get link %d: %w", index, err)
	}
	if len(msgs) != 1 {
		return Link{}, fmt.Errorf("get link %d: unexpected answer", index)
	}
	l, err := parseLink(msgs[0].Data)
	if err != nil {
		return Link{}, fmt.Errorf("get link %d: %w", index, err)
	}
	return l, nil
}

// SetLinkUp brings the link index up.
func (c *Conn) SetLinkUp(index int) error {
	m := IfInfomsg{Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	if _, err := c.Execute(unix.RTM_NEWLINK, netlink.Acknowledge, m.Marshal()); err != nil {
		return fmt.Errorf("set link %d up: %w", index, err)
	}
	return nil
}

// DeleteLink deletes the link index; a missing one is no error.
func (c *Conn) DeleteLink(index int) error {
	if _, err := c.Execute(unix.RTM_DELLINK, netlink.Acknowledge, IfInfomsg{Index: int32(index)}.Marshal()); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %d: %w", index, err)
	}
	return nil
}

// The kinds of device EnsureAddressDevice makes.
const (
	// KindDummy is the device EnsureAddressDevice makes first.
	KindDummy = "dummy"
	// KindBridge stands in for a dummy on a kernel without the dummy
	// driver (CONFIG_DUMMY off, as on some minimal VM kernels): a bridge
	// without ports holds addresses just as well and forwards nothing.
	KindBridge = "bridge"
)

// IsAddressDevice reports whether kind is one EnsureAddressDevice makes: a
// device of another kind with the same name is not the caller's.
func IsAddressDevice(kind string) bool { return kind == KindDummy || kind == KindBridge }

// newLinkMsg is the RTM_NEWLINK request that creates the device name of
// kind, with no other attribute.
func newLinkMsg(name, kind string) []byte {
	return append(IfInfomsg{}.Marshal(), Attrs(func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, name)
		ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
			nae.String(unix.IFLA_INFO_KIND, kind)
			return nil
		})
	})...)
}

// EnsureAddressDevice makes sure the device name exists to hold local
// addresses, and returns its index and kind: a dummy, or where the
// kernel has no dummy driver (it answers EOPNOTSUPP, "Unknown device
// type") a bridge without ports. A device of that name already there is
// returned when it is of one of those kinds, and is an error otherwise.
//
// A device it creates is brought up when up is true: an address on a
// down device has a local route all the same, and a down device takes
// part in no other routing (kube-proxy's kube-ipvs0 is left down), but
// the kernel answers ARP only for the addresses of an up one.
func (c *Conn) EnsureAddressDevice(name string, up bool) (index int, kind string, err error) {
	for _, kind = range []string{KindDummy, KindBridge} {
		_, err = c.Execute(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, newLinkMsg(name, kind))
		if !errors.Is(err, unix.EOPNOTSUPP) {
			break
		}
	}
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return 0, "", fmt.Errorf("add %s device %s: %w", kind, name, err)
	}
	l, ok, err := c.LinkByName(name)
	if err != nil {
		return 0, "", fmt.Errorf("add %s device %s: %w", kind, name, err)
	}
	if !ok {
		return 0, "", fmt.Errorf("add %s device %s: not found after creation", kind, name)
	}
	if !IsAddressDevice(l.Kind) {
		return 0, "", fmt.Errorf("device %s exists and is a %q device, not a dummy or a bridge", name, l.Kind)
	}
	if up && created && !l.Up() {
		if err := c.SetLinkUp(l.Index); err != nil {
			return 0, "", fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return l.Index, l.Kind, nil
}
