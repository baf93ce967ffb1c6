package userspace

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// port is one Service port as applied: its listeners and the state its
// connections are scheduled with. It lives as long as the Service port
// does; Sync swaps its state in place when the endpoints, scheduler or
// affinity change, so listeners and connections survive such changes.
type port struct {
	// sp is what was applied; complete is false when a listener could
	// not be opened, so that the next Sync tries again.
	sp       *proxy.ServicePort
	complete bool
	// listeners and counters are touched by Sync only.
	listeners map[listenerKey]*listener
	// counters holds each endpoint's active connections, kept across
	// state swaps so that lc, sed and nq see the connections an endpoint
	// still has after an unrelated change.
	counters map[proxy.Endpoint]*atomic.Int64

	state    atomic.Pointer[portState]
	turn     atomic.Uint64
	affinity affinity
}

// portState is what a new connection is scheduled with; it is never
// modified once published.
type portState struct {
	scheduler proxy.Scheduler
	affinity  time.Duration
	// internal serves ClusterIP listeners, external the others; cluster
	// serves external listeners' clients in the pod network or on the
	// node when shortCircuit (externalTrafficPolicy Local) is set.
	internal, external, cluster candidates
	shortCircuit                bool
}

// candidates are endpoints with their active-connection counters.
type candidates struct {
	eps    []proxy.Endpoint
	active []*atomic.Int64
}

func newPort() *port {
	return &port{listeners: map[listenerKey]*listener{}, counters: map[proxy.Endpoint]*atomic.Int64{}}
}

// apply publishes the state of sp. Connections in flight keep the
// counters they hold; a counter of an endpoint that is gone is dropped
// here and only decremented by them.
func (p *port) apply(sp *proxy.ServicePort) {
	counters := make(map[proxy.Endpoint]*atomic.Int64, len(sp.ClusterEndpoints)+len(sp.LocalEndpoints))
	list := func(eps []proxy.Endpoint) candidates {
		c := candidates{eps: eps, active: make([]*atomic.Int64, len(eps))}
		for i, e := range eps {
			n := counters[e]
			if n == nil {
				if n = p.counters[e]; n == nil {
					n = new(atomic.Int64)
				}
				counters[e] = n
			}
			c.active[i] = n
		}
		return c
	}
	st := &portState{
		scheduler: sp.Scheduler, affinity: sp.Affinity,
		internal: list(sp.InternalEndpoints()), external: list(sp.ExternalEndpoints()),
		shortCircuit: sp.ExternalLocal,
	}
	if sp.ExternalLocal {
		st.cluster = list(sp.ClusterEndpoints)
	}
	if sp.Affinity == 0 {
		p.affinity.reset()
	}
	p.sp, p.counters = sp, counters
	p.state.Store(st)
}

// choose returns the candidates for a new connection from src to dst and
// the index of the endpoint to try first, -1 when there is none.
func (p *port) choose(st *portState, c candidates, src, dst netip.Addr, now time.Time) int {
	if len(c.eps) == 0 {
		return -1
	}
	if st.affinity > 0 {
		if ep, ok := p.affinity.get(src, now, st.affinity); ok {
			for i, e := range c.eps {
				if e == ep {
					p.affinity.set(src, ep, now, st.affinity)
					return i
				}
			}
		}
	}
	active := make([]int64, len(c.active))
	for i, n := range c.active {
		active[i] = n.Load()
	}
	var turn uint64
	if st.scheduler == proxy.RoundRobin || st.scheduler == "" {
		turn = p.turn.Add(1) - 1
	}
	i := schedule(st.scheduler, pick{Active: active, Turn: turn, Src: src, Dst: dst})
	if st.affinity > 0 && i >= 0 {
		p.affinity.set(src, c.eps[i], now, st.affinity)
	}
	return i
}

// affinity remembers each client's endpoint (sessionAffinity ClientIP)
// until the timeout passes after its last new connection, as kube-proxy.
type affinity struct {
	mu      sync.Mutex
	clients map[netip.Addr]affinityEntry
	// sweepAt is the table size at which expired entries are dropped,
	// so that the table stays bounded by the clients of one timeout.
	sweepAt int
}

type affinityEntry struct {
	ep   proxy.Endpoint
	last time.Time
}

func (a *affinity) get(src netip.Addr, now time.Time, timeout time.Duration) (proxy.Endpoint, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.clients[src]
	if !ok || now.Sub(e.last) >= timeout {
		return proxy.Endpoint{}, false
	}
	return e.ep, true
}

func (a *affinity) set(src netip.Addr, ep proxy.Endpoint, now time.Time, timeout time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients == nil {
		a.clients = map[netip.Addr]affinityEntry{}
	}
	a.clients[src] = affinityEntry{ep: ep, last: now}
	if len(a.clients) < a.sweepAt {
		return
	}
	for k, e := range a.clients {
		if now.Sub(e.last) >= timeout {
			delete(a.clients, k)
		}
	}
	a.sweepAt = max(1024, 2*len(a.clients))
}

func (a *affinity) reset() {
	a.mu.Lock()
	a.clients, a.sweepAt = nil, 0
	a.mu.Unlock()
}
