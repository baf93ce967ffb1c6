package servicelb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Pool is a configured set of IPv4 addresses the load balancer gives
// Services instead of the nodes' addresses (--lb-address-pool). The zero
// Pool is empty: no pool is configured.
type Pool struct {
	ranges  []addrRange // sorted by first address
	entries []string    // as configured, for messages
}

// addrRange is an inclusive range of usable IPv4 addresses.
type addrRange struct{ first, last netip.Addr }

// ParsePool parses the pool's entries: IPv4 CIDRs ("192.168.200.0/29",
// whose network and broadcast addresses are left out unless it is a /31
// or /32) and ranges ("192.168.200.10-192.168.200.20", both ends
// included). Empty entries are ignored, so a trailing comma is harmless.
func ParsePool(entries []string) (Pool, error) {
	var p Pool
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		r, err := parseEntry(e)
		if err != nil {
			return Pool{}, fmt.Errorf("load balancer address pool entry %q: %w", e, err)
		}
		p.ranges = append(p.ranges, r)
		p.entries = append(p.entries, e)
	}
	slices.SortFunc(p.ranges, func(a, b addrRange) int { return a.first.Compare(b.first) })
	return p, nil
}

func parseEntry(e string) (addrRange, error) {
	if from, to, ok := strings.Cut(e, "-"); ok {
		first, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil || !first.Is4() {
			return addrRange{}, fmt.Errorf("start %q is not an IPv4 address", from)
		}
		last, err := netip.ParseAddr(strings.TrimSpace(to))
		if err != nil || !last.Is4() {
			return addrRange{}, fmt.Errorf("end %q is not an IPv4 address", to)
		}
		if last.Less(first) {
			return addrRange{}, fmt.Errorf("end %s is before start %s", last, first)
		}
		return addrRange{first, last}, nil
	}
	pfx, err := netip.ParsePrefix(e)
	if err != nil {
		return addrRange{}, fmt.Errorf("want an IPv4 CIDR (192.168.200.0/29) or a range (192.168.200.10-192.168.200.20)")
	}
	if !pfx.Addr().Is4() {
		return addrRange{}, fmt.Errorf("not an IPv4 CIDR (only IPv4 is supported)")
	}
	if pfx.Masked() != pfx {
		return addrRange{}, fmt.Errorf("host bits are set (the network is %s)", pfx.Masked())
	}
	first := pfx.Addr()
	b := first.As4()
	hostBits := 32 - pfx.Bits()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if hostBits == 32 {
		n = 0xffffffff
	} else {
		n |= 1<<hostBits - 1
	}
	last := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	if pfx.Bits() < 31 {
		// The network and broadcast addresses are not hosts' addresses:
		// a client on that network would not reach them.
		first, last = first.Next(), last.Prev()
	}
	return addrRange{first, last}, nil
}

// Empty reports whether no pool is configured.
func (p Pool) Empty() bool { return len(p.ranges) == 0 }

// String is the pool as configured, comma-separated.
func (p Pool) String() string { return strings.Join(p.entries, ",") }

// Contains reports whether a is one of the pool's usable addresses.
func (p Pool) Contains(a netip.Addr) bool {
	for _, r := range p.ranges {
		if !a.Less(r.first) && !r.last.Less(a) {
			return true
		}
	}
	return false
}

// Allocation is the pool's decision for one Service: an address, or why
// there is none.
type Allocation struct {
	Addr netip.Addr
	Err  error
}

// Allocate decides the pool address of every Service in svcs, which must
// be the Services the controller serves (Ours). current holds, by
// namespace/name key, the address each Service has now (from its status);
// the decision only depends on these values, so rebuilding current from
// the Services' statuses after a restart gives the same answer.
//
// In order: a Service keeps its current address while it is in the pool,
// agrees with its spec.loadBalancerIP and no older Service keeps it too;
// then each Service with spec.loadBalancerIP gets that address when it is
// in the pool and free; then every other Service gets the lowest free
// address. Services are considered oldest first (then by key), so two
// Services never get the same address and the older one wins a conflict.
func (p Pool) Allocate(svcs []*corev1.Service, current map[string]netip.Addr) map[string]Allocation {
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(key(a), key(b))
	})
	out := make(map[string]Allocation, len(svcs))
	used := map[netip.Addr]string{}
	claim := func(k string, a netip.Addr) {
		out[k] = Allocation{Addr: a}
		used[a] = k
	}
	for _, s := range svcs {
		k := key(s)
		cur, ok := current[k]
		if !ok || !p.Contains(cur) || used[cur] != "" {
			continue
		}
		if want := s.Spec.LoadBalancerIP; want != "" && want != cur.String() {
			continue
		}
		claim(k, cur)
	}
	for _, s := range svcs {
		k := key(s)
		if _, done := out[k]; done || s.Spec.LoadBalancerIP == "" {
			continue
		}
		want, err := netip.ParseAddr(s.Spec.LoadBalancerIP)
		switch {
		case err != nil || !want.Is4():
			out[k] = Allocation{Err: fmt.Errorf("spec.loadBalancerIP %q is not an IPv4 address", s.Spec.LoadBalancerIP)}
		case !p.Contains(want):
			out[k] = Allocation{Err: fmt.Errorf("spec.loadBalancerIP %s is not in the address pool %s", want, p)}
		case used[want] != "":
			out[k] = Allocation{Err: fmt.Errorf("spec.loadBalancerIP %s is already used by service %s", want, used[want])}
		default:
			claim(k, want)
		}
	}
	next := p.free(used)
	for _, s := range svcs {
		k := key(s)
		if _, done := out[k]; done {
			continue
		}
		a, ok := next()
		if !ok {
			out[k] = Allocation{Err: fmt.Errorf("no free address in the address pool %s: all %d are in use", p, len(used))}
			continue
		}
		claim(k, a)
	}
	return out
}

// free returns an iterator over the pool's addresses not in used, lowest
// first; it reads used as it is when called, so claims made between calls
// are skipped.
func (p Pool) free(used map[netip.Addr]string) func() (netip.Addr, bool) {
	i := 0
	var cur netip.Addr
	return func() (netip.Addr, bool) {
		for i < len(p.ranges) {
			r := p.ranges[i]
			if !cur.IsValid() || cur.Less(r.first) {
				cur = r.first
			}
			for ; !r.last.Less(cur); cur = cur.Next() {
				if used[cur] == "" {
					return cur, true
				}
				if cur == r.last {
					break // Next would wrap at 255.255.255.255
				}
			}
			i++
		}
		return netip.Addr{}, false
	}
}

func key(s *corev1.Service) string { return controller.KeyFunc(s) }

// poolAddress is the address a Service's status holds now: its first
// ingress IP that parses.
func poolAddress(s *corev1.Service) (netip.Addr, bool) {
	for _, in := range s.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}
