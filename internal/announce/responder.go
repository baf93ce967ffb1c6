package announce

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/skiff-sh/skiff/internal/rtnl"
)

// announced is the set of addresses this node announces, as the reconcile
// loop last decided it, shared with the ARP responder. The loop replaces
// the set whole; a set, once stored, is never changed, so a reader needs no
// lock.
type announced struct {
	p atomic.Pointer[map[netip.Addr]bool]
}

// Store makes addrs the set.
func (s *announced) Store(addrs []netip.Addr) {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a] = true
	}
	s.p.Store(&m)
}

// Has reports whether a is in the set.
func (s *announced) Has(a netip.Addr) bool {
	m := s.p.Load()
	return m != nil && (*m)[a]
}

// respond answers ARP requests for the addresses in set on the interface
// that holds the node IP until ctx ends. The kernel answers for them only
// while the LAN interface's arp_ignore is 0, and the userspace proxy sets
// it to 1 (as kube-proxy's IPVS mode does) so that the Service addresses
// on its own device are not claimed on the LAN: the pool addresses on the
// dummy interface would then be answered only until the neighbours' caches
// forget the gratuitous ARPs.
//
// A failing socket (the interface deleted or down, the node IP not yet on
// any interface) is retried with a backoff rather than ending Run: that
// would stop the node agent for what is usually a passing change of the
// node's network, while the gratuitous ARPs and, with arp_ignore 0, the
// kernel keep the addresses reachable. A failure is logged once, when the
// responder stops answering, and again when it answers once more.
func (a *Announcer) respond(ctx context.Context, k *kernel, set *announced) {
	nodeIP, err := netip.ParseAddr(a.cfg.NodeIP)
	if err != nil {
		return // no node IP: nowhere to answer, as nowhere to send GARPs
	}
	const maxBackoff = time.Minute
	backoff, answering, warned := time.Second, false, false
	for {
		start := time.Now()
		err := a.serveARP(ctx, k, nodeIP, set, func(name string) {
			if !answering {
				a.log.Info("answering ARP for load balancer addresses", "interface", name)
			}
			answering, warned = true, false
		})
		if ctx.Err() != nil {
			return
		}
		// A socket that served for a while had a passing failure; one that
		// fails at once must not be reopened at once, or it would spin.
		if time.Since(start) >= maxBackoff {
			backoff = time.Second
		}
		if !warned {
			a.log.Warn("not answering ARP for load balancer addresses; retrying", "err", err, "in", backoff)
			answering, warned = false, true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serveARP opens the ARP socket on the interface holding nodeIP, calls
// opened with its name and answers requests for set until ctx ends (nil)
// or the socket fails.
func (a *Announcer) serveARP(ctx context.Context, k *kernel, nodeIP netip.Addr, set *announced, opened func(name string)) error {
	addrs, err := k.Addrs(0)
	if err != nil {
		return err
	}
	lan := slices.IndexFunc(addrs, func(ad rtnl.Addr) bool { return ad.Prefix.Addr() == nodeIP })
	if lan < 0 {
		return fmt.Errorf("no interface has the node IP %s", nodeIP)
	}
	l, err := k.LinkByIndex(addrs[lan].Index)
	if err != nil {
		return err
	}
	if len(l.MAC) != 6 {
		return fmt.Errorf("interface %s has no Ethernet address", l.Name)
	}
	c, err := k.ListenARP(l.Index)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	opened(l.Name)
	// An ARP frame over Ethernet is 60 bytes with its padding; a longer
	// frame is cut and then not parsed as one.
	buf := make([]byte, 128)
	sendFailing := false
	for {
		n, incoming, err := c.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read arp on %s: %w", l.Name, err)
		}
		if !incoming {
			continue
		}
		req, ok := parseARPRequest(buf[:n], l.MAC)
		if !ok || !set.Has(req.target) {
			continue
		}
		// Send failures are logged once per run of them, not per request.
		if err := c.Write(arpReply(l.MAC, req)); err != nil {
			if !sendFailing {
				a.log.Warn("ARP reply not sent", "address", req.target, "interface", l.Name, "err", err)
			}
			sendFailing = true
			continue
		}
		sendFailing = false
	}
}
