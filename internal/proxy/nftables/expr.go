package nftables

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: reg 1 is the 16-byte register whose 4-byte parts are 8..11,
// the layout nft uses to build concatenated keys.
const (
	reg1   = 1
	reg2   = 2
	reg32b = 9
	reg32c = 10
	reg32d = 11
)

// IPv4 header offsets.
const (
	offSaddr = 12
	offDaddr = 16
)

func loadAddr(off, reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
}

func loadL4Proto(reg uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg} }

// loadDport loads "th dport": the destination port of TCP, UDP and SCTP
// sit at the same offset of the transport header.
func loadDport(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// matchAddr is "ip saddr|daddr ip".
func matchAddr(off uint32, ip netip.Addr) []expr.Any {
	a := ip.As4()
	return []expr.Any{loadAddr(off, reg1), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a[:]}}
}

// matchPrefix is "ip saddr|daddr [!=] prefix".
func matchPrefix(off uint32, p netip.Prefix, negate bool) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	netAddr := p.Masked().Addr().As4()
	op := expr.CmpOpEq
	if negate {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		loadAddr(off, reg1),
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: reg1, Data: netAddr[:]},
	}
}

func matchL4Proto(proto uint8) []expr.Any {
	return []expr.Any{loadL4Proto(reg1), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}}}
}

// matchMark is "meta mark & m != 0" (negate: "== 0").
func matchMark(m uint32, negate bool) []expr.Any {
	op := expr.CmpOpNeq
	if negate {
		op = expr.CmpOpEq
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(m), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: op, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// setMark is "meta mark set meta mark | m" (clear: "& ~m").
func setMark(m uint32, clear bool) []expr.Any {
	xor := m
	if clear {
		xor = 0
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^m), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// matchCtState is "ct state bit".
func matchCtState(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bit), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// matchCtDNAT is "ct status dnat".
func matchCtDNAT() []expr.Any {
	const ipsDstNAT = 0x20
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// matchFibLocal is "fib saddr|daddr type local".
func matchFibLocal(saddr bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, ResultADDRTYPE: true, FlagSADDR: saddr, FlagDADDR: !saddr},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func verdict(kind expr.VerdictKind, chain string) expr.Any {
	return &expr.Verdict{Kind: kind, Chain: chain}
}

// addrProtoPortKey is the key of an "ipv4_addr . inet_proto . inet_service"
// element: every part padded to 4 bytes.
func addrProtoPortKey(ip netip.Addr, proto uint8, port uint16) []byte {
	a := ip.As4()
	k := make([]byte, 12)
	copy(k, a[:])
	k[4] = proto
	binary.BigEndian.PutUint16(k[8:], port)
	return k
}

// protoPortKey is the key of an "inet_proto . inet_service" element.
func protoPortKey(proto uint8, port uint16) []byte {
	k := make([]byte, 8)
	k[0] = proto
	binary.BigEndian.PutUint16(k[4:], port)
	return k
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
