package announce

import (
	"bytes"
	"net"
	"net/netip"
)

// arpRequest is what the responder needs of an ARP request.
type arpRequest struct {
	senderMAC net.HardwareAddr
	senderIP  netip.Addr
	target    netip.Addr
}

// Lengths of the frames the responder reads and writes: an Ethernet header
// and an ARP packet for IPv4 over Ethernet (frames on the wire are padded
// to 60 bytes; the padding is ignored).
const (
	ethHeaderLen = 14
	arpLen       = 28
	arpFrameLen  = ethHeaderLen + arpLen
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// parseARPRequest returns the request in frame, a whole Ethernet frame
// that arrived on the interface whose MAC is own; ok is false for anything
// the responder must not answer:
//   - a frame too short, not ARP, or not IPv4 over Ethernet;
//   - not a request (replies are answers, not questions);
//   - sent neither to the broadcast address nor to own (another host's
//     unicast refresh: its owner answers);
//   - a gratuitous request (sender IP = target IP): an announcement by
//     the host holding the address, not a question; the kernel does not
//     answer those either, and answering a rival's announcement would only
//     make the two fight over the LAN's caches.
//
// DAD probes (sender IP 0.0.0.0, RFC 5227) are requests and are answered,
// as the kernel and MetalLB's speaker answer them: the reply tells a host
// about to take a pool address by mistake that it is in use.
func parseARPRequest(frame []byte, own net.HardwareAddr) (r arpRequest, ok bool) {
	if len(frame) < arpFrameLen {
		return r, false
	}
	dst := net.HardwareAddr(frame[0:6])
	if !bytes.Equal(dst, broadcastMAC) && !bytes.Equal(dst, own) {
		return r, false
	}
	if frame[12] != 0x08 || frame[13] != 0x06 { // EtherType ARP
		return r, false
	}
	p := frame[ethHeaderLen:]
	// Hardware type Ethernet, protocol IPv4, lengths 6 and 4, opcode request.
	if !bytes.Equal(p[0:8], []byte{0, 1, 0x08, 0, 6, 4, 0, 1}) {
		return r, false
	}
	r.senderMAC = net.HardwareAddr(bytes.Clone(p[8:14]))
	r.senderIP = netip.AddrFrom4([4]byte(p[14:18]))
	r.target = netip.AddrFrom4([4]byte(p[24:28]))
	if r.senderIP == r.target {
		return r, false
	}
	return r, true
}

// arpReply is the Ethernet frame answering req: target req.target is at
// mac, sent to the requester alone (as the kernel answers).
func arpReply(mac net.HardwareAddr, req arpRequest) []byte {
	b := make([]byte, 0, arpFrameLen)
	b = append(b, req.senderMAC...) // destination: the requester
	b = append(b, mac...)
	b = append(b, 0x08, 0x06)                // EtherType ARP
	b = append(b, 0, 1, 0x08, 0, 6, 4, 0, 2) // Ethernet, IPv4, 6, 4, reply
	b = append(b, mac...)
	b = append(b, ip4(req.target)...)
	b = append(b, req.senderMAC...)
	b = append(b, ip4(req.senderIP)...) // 0.0.0.0 for a DAD probe, as the kernel does
	return b
}
