package userspace

import (
	"net/netip"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
)

func TestSchedule(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		name string
		s    proxy.Scheduler
		p    pick
		want int
	}{
		{"no endpoint", proxy.RoundRobin, pick{}, -1},
		{"no endpoint, lc", proxy.LeastConnection, pick{}, -1},
		{"rr first turn", proxy.RoundRobin, pick{Active: []int64{5, 0, 0}, Turn: 0}, 0},
		{"rr ignores load", proxy.RoundRobin, pick{Active: []int64{0, 9, 0}, Turn: 1}, 1},
		{"rr wraps", proxy.RoundRobin, pick{Active: []int64{0, 0, 0}, Turn: 5}, 2},
		{"unset is rr", "", pick{Active: []int64{0, 0}, Turn: 3}, 1},
		{"lc fewest", proxy.LeastConnection, pick{Active: []int64{3, 1, 2}}, 1},
		{"lc tie to first", proxy.LeastConnection, pick{Active: []int64{2, 1, 1}}, 1},
		{"lc all idle", proxy.LeastConnection, pick{Active: []int64{0, 0}}, 0},
		{"sed fewest", proxy.ShortestExpectedDelay, pick{Active: []int64{4, 2, 3}}, 1},
		{"sed tie to first", proxy.ShortestExpectedDelay, pick{Active: []int64{1, 1}}, 0},
		{"nq idle first", proxy.NeverQueue, pick{Active: []int64{2, 0, 0}}, 1},
		{"nq none idle: sed", proxy.NeverQueue, pick{Active: []int64{3, 2, 1}}, 2},
		{"nq none idle: sed tie", proxy.NeverQueue, pick{Active: []int64{2, 1, 1}}, 1},
		// (ip * 2654435761) & 255: 10.96.0.10 is 0x0a60000a;
		// 0x0a60000a * 0x9e3779b1 ends in 0x...ea; 0xea = 234.
		{"dh hashes the destination", proxy.DestinationHashing, pick{Active: []int64{0, 0, 0}, Dst: a("10.96.0.10")}, 234 % 3},
		{"dh ignores source and load", proxy.DestinationHashing, pick{Active: []int64{9, 0, 0}, Dst: a("10.96.0.10"), Src: a("10.244.0.9")}, 234 % 3},
		// hash_32(0x0a000002, 8) = (0x0a000002 * 0x61c88647 mod 2^32) >> 24 = 137.
		{"sh hashes the source", proxy.SourceHashing, pick{Active: []int64{0, 0}, Src: a("10.0.0.2")}, 137 % 2},
		{"sh ignores destination and load", proxy.SourceHashing, pick{Active: []int64{0, 9}, Src: a("10.0.0.2"), Dst: a("1.2.3.4")}, 137 % 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := schedule(c.s, c.p); got != c.want {
				t.Errorf("schedule(%q, %+v): got %d, want %d", c.s, c.p, got, c.want)
			}
		})
	}
}

// TestHashesSpread: sh and dh send different clients (destinations) to
// different endpoints, and each always to the same one.
func TestHashesSpread(t *testing.T) {
	for _, s := range []proxy.Scheduler{proxy.SourceHashing, proxy.DestinationHashing} {
		seen := map[int]bool{}
		for i := range 64 {
			addr := netip.AddrFrom4([4]byte{10, 244, byte(i / 8), byte(i)})
			p := pick{Active: make([]int64, 4), Src: addr, Dst: addr}
			got := schedule(s, p)
			p.Active[got] = 100 // load never moves a hashed client
			if again := schedule(s, p); again != got {
				t.Errorf("%s: %s got %d then %d, want the same", s, addr, got, again)
			}
			seen[got] = true
		}
		if len(seen) != 4 {
			t.Errorf("%s: 64 addresses reached endpoints %v, want all 4", s, seen)
		}
	}
}

func TestAffinity(t *testing.T) {
	eps := []proxy.Endpoint{
		{IP: netip.MustParseAddr("10.244.0.2"), Port: 80},
		{IP: netip.MustParseAddr("10.244.0.3"), Port: 80},
	}
	sp := &proxy.ServicePort{ClusterEndpoints: eps, HasEndpoints: true, Affinity: time.Minute}
	p := newPort()
	p.apply(sp)
	st := p.state.Load()
	client, other := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Unix(1000, 0)
	first := p.choose(st, st.internal, client, netip.Addr{}, now)
	// rr would alternate; affinity keeps the client.
	for i := range 5 {
		now = now.Add(50 * time.Second)
		if got := p.choose(st, st.internal, client, netip.Addr{}, now); got != first {
			t.Fatalf("connection %d within the timeout of the last: got endpoint %d, want %d", i, got, first)
		}
	}
	if got := p.choose(st, st.internal, other, netip.Addr{}, now); got == first {
		t.Errorf("another client: got endpoint %d, want the next in turn", got)
	}
	// After the timeout, the client is scheduled anew: rr takes a turn.
	now = now.Add(time.Minute)
	p.choose(st, st.internal, client, netip.Addr{}, now)
	if got := p.turn.Load(); got != 3 {
		t.Errorf("rr turns taken: got %d, want 3 (first, other, after the timeout)", got)
	}
	// An endpoint that is gone is not kept.
	sp2 := *sp
	sp2.ClusterEndpoints = []proxy.Endpoint{eps[1-first]}
	p.apply(&sp2)
	st = p.state.Load()
	if got := p.choose(st, st.internal, client, netip.Addr{}, now.Add(time.Second)); got != 0 {
		t.Errorf("after the endpoint went away: got %d, want 0 (the remaining one)", got)
	}
}

// TestApplyKeepsCounters: active connections of an endpoint that stays
// are still counted after a state swap.
func TestApplyKeepsCounters(t *testing.T) {
	e1 := proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.2"), Port: 80}
	e2 := proxy.Endpoint{IP: netip.MustParseAddr("10.244.0.3"), Port: 80}
	p := newPort()
	p.apply(&proxy.ServicePort{ClusterEndpoints: []proxy.Endpoint{e1, e2}, HasEndpoints: true, Scheduler: proxy.LeastConnection})
	p.state.Load().internal.active[0].Add(1) // a connection to e1
	p.apply(&proxy.ServicePort{ClusterEndpoints: []proxy.Endpoint{e2, e1}, HasEndpoints: true, Scheduler: proxy.LeastConnection})
	st := p.state.Load()
	if got := st.internal.active[1].Load(); got != 1 {
		t.Errorf("active connections of %s after the swap: got %d, want 1", e1, got)
	}
	if got := p.choose(st, st.internal, netip.Addr{}, netip.Addr{}, time.Now()); got != 0 {
		t.Errorf("lc after the swap: got endpoint %d, want 0 (%s, idle)", got, e2)
	}
}
