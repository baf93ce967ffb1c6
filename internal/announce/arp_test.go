package announce

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

var (
	ownMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

// arpFrame is an ARP frame over Ethernet from peerMAC to dst with the
// given opcode, sender and target addresses, padded to 60 bytes as on the
// wire.
func arpFrame(dst net.HardwareAddr, op byte, sender, target string) []byte {
	b := append([]byte{}, dst...)
	b = append(b, peerMAC...)
	b = append(b, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op)
	b = append(b, peerMAC...)
	b = append(b, ip4(netip.MustParseAddr(sender))...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, ip4(netip.MustParseAddr(target))...)
	return append(b, make([]byte, 18)...)
}

func TestParseARPRequest(t *testing.T) {
	request := arpFrame(broadcastMAC, 1, "10.0.0.2", "10.0.0.100")
	patched := func(i int, v byte) []byte {
		b := bytes.Clone(request)
		b[i] = v
		return b
	}
	tests := []struct {
		name   string
		frame  []byte
		ok     bool
		sender string
		target string
	}{
		{name: "broadcast request", frame: request, ok: true, sender: "10.0.0.2", target: "10.0.0.100"},
		{name: "unicast request to us", frame: arpFrame(ownMAC, 1, "10.0.0.2", "10.0.0.100"), ok: true, sender: "10.0.0.2", target: "10.0.0.100"},
		{name: "unpadded request", frame: request[:arpFrameLen], ok: true, sender: "10.0.0.2", target: "10.0.0.100"},
		{name: "DAD probe answered", frame: arpFrame(broadcastMAC, 1, "0.0.0.0", "10.0.0.100"), ok: true, sender: "0.0.0.0", target: "10.0.0.100"},
		{name: "empty", frame: nil},
		{name: "too short", frame: request[:arpFrameLen-1]},
		{name: "unicast request to another host", frame: arpFrame(peerMAC, 1, "10.0.0.2", "10.0.0.100")},
		{name: "not ARP", frame: patched(13, 0x00)},
		{name: "hardware type not Ethernet", frame: patched(15, 6)},
		{name: "protocol not IPv4", frame: patched(16, 0x86)},
		{name: "hardware length not 6", frame: patched(18, 8)},
		{name: "protocol length not 4", frame: patched(19, 16)},
		{name: "reply ignored", frame: arpFrame(broadcastMAC, 2, "10.0.0.2", "10.0.0.100")},
		{name: "unknown opcode", frame: arpFrame(broadcastMAC, 3, "10.0.0.2", "10.0.0.100")},
		{name: "gratuitous request ignored", frame: arpFrame(broadcastMAC, 1, "10.0.0.100", "10.0.0.100")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := parseARPRequest(tt.frame, ownMAC)
			if ok != tt.ok {
				t.Fatalf("got ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got, want := r.senderIP, netip.MustParseAddr(tt.sender); got != want {
				t.Errorf("got sender %s, want %s", got, want)
			}
			if got, want := r.target, netip.MustParseAddr(tt.target); got != want {
				t.Errorf("got target %s, want %s", got, want)
			}
			if !bytes.Equal(r.senderMAC, peerMAC) {
				t.Errorf("got sender MAC %s, want %s", r.senderMAC, peerMAC)
			}
		})
	}
}

// TestParseARPRequestCopies checks that the request does not alias the
// read buffer, which the responder reuses for the next frame.
func TestParseARPRequestCopies(t *testing.T) {
	frame := arpFrame(broadcastMAC, 1, "10.0.0.2", "10.0.0.100")
	r, ok := parseARPRequest(frame, ownMAC)
	if !ok {
		t.Fatal("got not ok, want a request")
	}
	clear(frame)
	if !bytes.Equal(r.senderMAC, peerMAC) {
		t.Errorf("got sender MAC %s after the buffer changed, want %s", r.senderMAC, peerMAC)
	}
}

func TestARPReply(t *testing.T) {
	tests := []struct {
		name string
		req  arpRequest
		want []byte
	}{{
		name: "request",
		req:  arpRequest{senderMAC: peerMAC, senderIP: netip.MustParseAddr("10.0.0.2"), target: netip.MustParseAddr("10.0.0.100")},
		want: []byte{
			0x02, 0, 0, 0, 0, 0x02, // destination: the requester
			0x02, 0, 0, 0, 0, 0x01, // source: us
			0x08, 0x06, // ARP
			0, 1, 0x08, 0, 6, 4, 0, 2, // Ethernet, IPv4, 6, 4, reply
			0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 100, // sender: us, the address asked for
			0x02, 0, 0, 0, 0, 0x02, 10, 0, 0, 2, // target: the requester
		},
	}, {
		name: "DAD probe",
		req:  arpRequest{senderMAC: peerMAC, senderIP: netip.IPv4Unspecified(), target: netip.MustParseAddr("10.0.0.100")},
		want: []byte{
			0x02, 0, 0, 0, 0, 0x02,
			0x02, 0, 0, 0, 0, 0x01,
			0x08, 0x06,
			0, 1, 0x08, 0, 6, 4, 0, 2,
			0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 100,
			0x02, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, // target IP: the prober's 0.0.0.0, as the kernel answers
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := arpReply(ownMAC, tt.req); !bytes.Equal(got, tt.want) {
				t.Errorf("got\n% x\nwant\n% x", got, tt.want)
			}
		})
	}
}

func TestAnnounced(t *testing.T) {
	var s announced
	a, b := netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("10.0.0.101")
	if s.Has(a) {
		t.Errorf("empty set: got Has(%s) true, want false", a)
	}
	s.Store([]netip.Addr{a})
	if !s.Has(a) || s.Has(b) {
		t.Errorf("after Store(%s): got Has(%s) %v, Has(%s) %v, want true, false", a, a, s.Has(a), b, s.Has(b))
	}
	s.Store(nil)
	if s.Has(a) {
		t.Errorf("after Store(nil): got Has(%s) true, want false", a)
	}
}
