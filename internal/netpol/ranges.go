package netpol

import (
	"net/netip"
	"slices"
)

// Range is an inclusive range of IPv4 addresses.
type Range struct {
	From, To netip.Addr
}

// String is "a" for one address and "a-b" otherwise.
func (r Range) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}

func addrRange(ip netip.Addr) Range { return Range{From: ip, To: ip} }

// prefixRange is the range of a v4 prefix; ok is false for other families.
func prefixRange(p netip.Prefix) (Range, bool) {
	if !p.Addr().Is4() {
		return Range{}, false
	}
	p = p.Masked()
	from := u32(p.Addr())
	to := from | (^uint32(0) >> p.Bits())
	if p.Bits() == 0 {
		to = ^uint32(0)
	}
	return Range{From: addr(from), To: addr(to)}, true
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// normalize sorts rs and merges overlapping and adjacent ranges.
func normalize(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Range) int { return a.From.Compare(b.From) })
	out := []Range{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if u32(last.To) == ^uint32(0) || u32(r.From) <= u32(last.To)+1 {
			if r.To.Compare(last.To) > 0 {
				last.To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract returns the addresses of rs that are in no range of minus;
// both may be unsorted.
func subtract(rs, minus []Range) []Range {
	rs, minus = normalize(rs), normalize(minus)
	var out []Range
	for _, r := range rs {
		from, to := u32(r.From), u32(r.To)
		keep := true
		for _, m := range minus {
			mf, mt := u32(m.From), u32(m.To)
			if mt < from || mf > to {
				continue
			}
			if mf > from {
				out = append(out, Range{From: addr(from), To: addr(mf - 1)})
			}
			if mt >= to {
				keep = false
				break
			}
			from = mt + 1
		}
		if keep {
			out = append(out, Range{From: addr(from), To: addr(to)})
		}
	}
	return out
}

// contains reports whether ip is in one of the normalized ranges rs.
func contains(rs []Range, ip netip.Addr) bool {
	for _, r := range rs {
		if r.From.Compare(ip) <= 0 && ip.Compare(r.To) <= 0 {
			return true
		}
	}
	return false
}
