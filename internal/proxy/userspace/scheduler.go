package userspace

import (
	"net/netip"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// hashBuckets is the size of the dh and sh tables, IPVS's default
// (CONFIG_IP_VS_DH_TAB_BITS and CONFIG_IP_VS_SH_TAB_BITS are 8).
const hashBuckets = 256

// pick is what a scheduler knows about one new connection.
type pick struct {
	// Active holds the open connections of each candidate endpoint, in
	// the order of the endpoint list; its length is the number of
	// candidates.
	Active []int64
	// Turn is the round-robin position: the number of connections the
	// Service port scheduled with rr before this one.
	Turn uint64
	// Src is the client's address (sh), Dst the virtual address the
	// client connected to (dh).
	Src, Dst netip.Addr
}

// schedule returns the index of the endpoint a new connection goes to,
// -1 when there is no candidate. It is pure: the same pick gives the same
// index. Every endpoint has weight 1 (Kubernetes has no endpoint weights),
// so the weighted formulas of IPVS reduce to the ones below; in
// particular lc, sed and nq choose alike (the fewest active connections,
// the first of equals), which is what IPVS does with equal weights and no
// inactive connections.
func schedule(s proxy.Scheduler, p pick) int {
	n := len(p.Active)
	if n == 0 {
		return -1
	}
	switch s {
	case proxy.LeastConnection:
		// IPVS: the least activeconns*256 + inactconns; a spliced
		// connection is active until it ends.
		return leastActive(p.Active)
	case proxy.ShortestExpectedDelay:
		return shortestExpectedDelay(p.Active)
	case proxy.NeverQueue:
		for i, a := range p.Active {
			if a == 0 {
				return i
			}
		}
		return shortestExpectedDelay(p.Active)
	case proxy.DestinationHashing:
		return int(dhBucket(p.Dst) % uint32(n))
	case proxy.SourceHashing:
		return int(shBucket(p.Src) % uint32(n))
	default: // rr, and "" (no annotation)
		return int(p.Turn % uint64(n))
	}
}

func leastActive(active []int64) int {
	best := 0
	for i, a := range active {
		if a < active[best] {
			best = i
		}
	}
	return best
}

// shortestExpectedDelay minimises (active+1)/weight. With weights of 1
// the +1 changes no order, but the formula is IPVS's and keeps the
// meaning should weights appear.
func shortestExpectedDelay(active []int64) int {
	best := 0
	for i, a := range active {
		if a+1 < active[best]+1 {
			best = i
		}
	}
	return best
}

// dhBucket is IPVS's ip_vs_dh_hashkey: the destination address times the
// golden ratio prime, modulo the table size. IPVS fills bucket i with the
// i-th destination modulo their number, so the bucket modulo the number of
// endpoints is the endpoint.
func dhBucket(a netip.Addr) uint32 {
	return (ip4Word(a) * 2654435761) & (hashBuckets - 1)
}

// shBucket is IPVS's ip_vs_sh_hashkey without the port (the sh-port flag
// is off by default): hash_32 of the source address, 8 bits.
func shBucket(a netip.Addr) uint32 {
	return (ip4Word(a) * 0x61C88647) >> (32 - 8)
}

func ip4Word(a netip.Addr) uint32 {
	if !a.Is4() && !a.Is4In6() {
		// IPv6 is not compiled yet; fold its words as IPVS does.
		b := a.As16()
		var w uint32
		for i := 0; i < 16; i += 4 {
			w ^= uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		}
		return w
	}
	b := a.Unmap().As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
