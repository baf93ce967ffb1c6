package rtnl

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ne16 and ne32 are v in native byte order, as the kernel's structs hold
// them.
func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// attr is one netlink attribute: length, type, value, padded to 4 bytes.
func attr(typ uint16, value []byte) []byte {
	b := cat(ne16(uint16(4+len(value))), ne16(typ), value)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestIfInfomsgMarshal(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   IfInfomsg
		want []byte
	}{
		{name: "zero", in: IfInfomsg{}, want: make([]byte, 16)},
		{
			name: "set up",
			in:   IfInfomsg{Index: 7, Flags: unix.IFF_UP, Change: unix.IFF_UP},
			want: cat([]byte{0, 0, 0, 0}, ne32(7), ne32(unix.IFF_UP), ne32(unix.IFF_UP)),
		},
		{
			name: "every field",
			in:   IfInfomsg{Family: unix.AF_BRIDGE, Type: 1, Index: -1, Flags: 0x1003, Change: 0xffffffff},
			want: cat([]byte{unix.AF_BRIDGE, 0}, ne16(1), ne32(0xffffffff), ne32(0x1003), ne32(0xffffffff)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Marshal(); !bytes.Equal(got, tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	linkinfo := func(kind string) []byte {
		return attr(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, attr(unix.IFLA_INFO_KIND, append([]byte(kind), 0)))
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{
			name: "get link by name",
			got:  getLinkMsg("eth0"),
			want: cat(make([]byte, 16), attr(unix.IFLA_IFNAME, []byte("eth0\x00"))),
		},
		{
			name: "new dummy",
			got:  newLinkMsg("skiff-svc0", KindDummy),
			want: cat(make([]byte, 16), attr(unix.IFLA_IFNAME, []byte("skiff-svc0\x00")), linkinfo("dummy")),
		},
		{
			name: "new bridge",
			got:  newLinkMsg("skiff-lb0", KindBridge),
			want: cat(make([]byte, 16), attr(unix.IFLA_IFNAME, []byte("skiff-lb0\x00")), linkinfo("bridge")),
		},
		{
			name: "address dump",
			got:  ifaddrmsg(0, 0),
			want: []byte{unix.AF_INET, 0, 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0},
		},
		{
			name: "host address",
			got:  addrMsg(3, netip.MustParsePrefix("10.96.0.10/32")),
			want: cat([]byte{unix.AF_INET, 32, 0, unix.RT_SCOPE_UNIVERSE}, ne32(3),
				attr(unix.IFA_LOCAL, []byte{10, 96, 0, 10}), attr(unix.IFA_ADDRESS, []byte{10, 96, 0, 10})),
		},
		{
			name: "network address, not masked",
			got:  addrMsg(12, netip.MustParsePrefix("10.244.1.5/24")),
			want: cat([]byte{unix.AF_INET, 24, 0, unix.RT_SCOPE_UNIVERSE}, ne32(12),
				attr(unix.IFA_LOCAL, []byte{10, 244, 1, 5}), attr(unix.IFA_ADDRESS, []byte{10, 244, 1, 5})),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Equal(tc.got, tc.want) {
				t.Errorf("got %x, want %x", tc.got, tc.want)
			}
		})
	}
}

func TestParseLink(t *testing.T) {
	vxlanData := Attrs(func(ae *netlink.AttributeEncoder) { ae.Uint32(unix.IFLA_VXLAN_ID, 1) })
	for _, tc := range []struct {
		name    string
		in      []byte
		want    Link
		wantErr bool
	}{
		{name: "short", in: make([]byte, 15), wantErr: true},
		{name: "header only", in: IfInfomsg{Index: 4, Flags: unix.IFF_UP}.Marshal(), want: Link{Index: 4, Flags: unix.IFF_UP}},
		{
			name: "physical device",
			in: append(IfInfomsg{Index: 2, Flags: unix.IFF_UP | unix.IFF_BROADCAST}.Marshal(), Attrs(func(ae *netlink.AttributeEncoder) {
				ae.String(unix.IFLA_IFNAME, "eth0")
				ae.Bytes(unix.IFLA_ADDRESS, []byte{2, 0, 0, 0, 0, 1})
				ae.Uint32(unix.IFLA_MTU, 1500)
			})...),
			want: Link{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Flags: unix.IFF_UP | unix.IFF_BROADCAST, MTU: 1500},
		},
		{
			name: "dummy, down",
			in: append(IfInfomsg{Index: 9}.Marshal(), Attrs(func(ae *netlink.AttributeEncoder) {
				ae.String(unix.IFLA_IFNAME, "skiff-svc0")
				ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
					nae.String(unix.IFLA_INFO_KIND, "dummy")
					return nil
				})
			})...),
			want: Link{Index: 9, Name: "skiff-svc0", Kind: "dummy"},
		},
		{
			name: "vxlan keeps its data undecoded",
			in: append(IfInfomsg{Index: 5}.Marshal(), Attrs(func(ae *netlink.AttributeEncoder) {
				ae.Nested(unix.IFLA_LINKINFO, func(nae *netlink.AttributeEncoder) error {
					nae.String(unix.IFLA_INFO_KIND, "vxlan")
					nae.Bytes(unix.IFLA_INFO_DATA, vxlanData)
					return nil
				})
			})...),
			want: Link{Index: 5, Kind: "vxlan", InfoData: vxlanData},
		},
		{name: "truncated attribute", in: append(IfInfomsg{Index: 1}.Marshal(), 8, 0, 3, 0), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLink(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if err == nil && got.Up() != (tc.want.Flags&unix.IFF_UP != 0) {
				t.Errorf("got Up() %v, want %v", got.Up(), !got.Up())
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	msg := func(family, bits uint8, index uint32, fn func(ae *netlink.AttributeEncoder)) []byte {
		return cat([]byte{family, bits, 0, 0}, ne32(index), Attrs(fn))
	}
	for _, tc := range []struct {
		name   string
		in     []byte
		want   Addr
		wantOK bool
	}{
		{name: "short", in: []byte{unix.AF_INET, 32, 0, 0}},
		{
			name:   "our own request parses back",
			in:     addrMsg(3, netip.MustParsePrefix("10.96.0.10/32")),
			want:   Addr{Index: 3, Prefix: netip.MustParsePrefix("10.96.0.10/32")},
			wantOK: true,
		},
		{
			name: "network address, not masked; local wins over a peer",
			in: msg(unix.AF_INET, 24, 2, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(unix.IFA_ADDRESS, []byte{10, 78, 0, 9})
				ae.Bytes(unix.IFA_LOCAL, []byte{10, 78, 0, 1})
				ae.String(unix.IFA_LABEL, "eth0")
			}),
			want:   Addr{Index: 2, Prefix: netip.MustParsePrefix("10.78.0.1/24")},
			wantOK: true,
		},
		{
			name: "IPv6",
			in: msg(unix.AF_INET6, 64, 2, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(unix.IFA_LOCAL, netip.MustParseAddr("fd00::1").AsSlice())
			}),
		},
		{
			name: "no local address",
			in: msg(unix.AF_INET, 32, 2, func(ae *netlink.AttributeEncoder) {
				ae.Bytes(unix.IFA_ADDRESS, []byte{10, 0, 0, 1})
			}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseAddr(tc.in)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("got %+v, %v, want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestIsAddressDevice(t *testing.T) {
	for kind, want := range map[string]bool{"dummy": true, "bridge": true, "": false, "vxlan": false, "veth": false} {
		if got := IsAddressDevice(kind); got != want {
			t.Errorf("IsAddressDevice(%q): got %v, want %v", kind, got, want)
		}
	}
}
