package dns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache bounds: answers are kept no longer than their TTLs and these caps,
// as CoreDNS's cache plugin does by default.
const (
	maxPositiveTTL = time.Hour
	maxNegativeTTL = 30 * time.Minute
)

// forwarder sends names outside the zone to the upstream resolvers, one
// after the other until one answers, and caches their answers.
type forwarder struct {
	upstreams []string // host:port
	timeout   time.Duration
	cache     *cache
}

// errNoUpstream is returned when no upstream resolver is configured.
var errNoUpstream = errors.New("no upstream resolver")

// exchange answers req from the cache or an upstream. tcp says the client
// asked over TCP: the upstream is then asked over TCP too, and a truncated
// UDP answer is asked again over TCP.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg, tcp bool, now time.Time) (*dns.Msg, error) {
	key, cacheable := cacheKey(req)
	if cacheable {
		if m := f.cache.get(key, now); m != nil {
			m.Id = req.Id
			m.Question = req.Question
			return m, nil
		}
	}
	if len(f.upstreams) == 0 {
		return nil, errNoUpstream
	}
	var lastErr error
	for _, up := range f.upstreams {
		resp, err := f.ask(ctx, req, up, tcp)
		if err != nil {
			lastErr = err
			continue
		}
		if cacheable {
			f.cache.put(key, resp, now)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("forward %s: %w", req.Question[0].Name, lastErr)
}

func (f *forwarder) ask(ctx context.Context, req *dns.Msg, up string, tcp bool) (*dns.Msg, error) {
	q := req.Copy()
	q.Id = dns.Id()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: f.timeout}
	if !tcp {
		// Room for what the client can take; truncation for it is done
		// when replying.
		c.UDPSize = dns.DefaultMsgSize
	}
	resp, _, err := c.ExchangeContext(ctx, q, up)
	if err == nil && resp.Truncated && !tcp {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, up)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up, err)
	}
	resp.Id = req.Id
	return resp, nil
}

// cacheKey identifies a question for the cache; queries with more than one
// question are not cached.
func cacheKey(req *dns.Msg) (string, bool) {
	if len(req.Question) != 1 {
		return "", false
	}
	q := req.Question[0]
	do := false
	if o := req.IsEdns0(); o != nil {
		do = o.Do()
	}
	return fmt.Sprintf("%s/%d/%d/%t/%t", strings.ToLower(q.Name), q.Qtype, q.Qclass, do, req.CheckingDisabled), true
}

// cache is a bounded map of upstream answers, each kept for its TTL.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cacheEntry
}

type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[string]cacheEntry{}}
}

// get returns a copy of a live entry with its TTLs lowered by its age.
func (c *cache) get(key string, now time.Time) *dns.Msg {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if h := rr.Header(); h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

// put stores an answer for as long as its smallest TTL allows. Only
// complete NOERROR and NXDOMAIN answers are cached. When full, expired
// entries are dropped first, then arbitrary ones.
func (c *cache) put(key string, m *dns.Msg, now time.Time) {
	if c.max <= 0 || m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return
	}
	ttl, ok := msgTTL(m)
	if !ok || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cacheEntry{msg: m.Copy(), stored: now, expires: now.Add(ttl)}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// msgTTL is how long an answer may be cached: its smallest record TTL, or
// for a negative answer the SOA's minimum (RFC 2308), capped. ok is false
// for a negative answer without SOA, which is not cached.
func msgTTL(m *dns.Msg) (time.Duration, bool) {
	negative := m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
	if negative {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl)
				return min(time.Duration(ttl)*time.Second, maxNegativeTTL), true
			}
		}
		return 0, false
	}
	least := uint32(0)
	first := true
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if first || rr.Header().Ttl < least {
				least, first = rr.Header().Ttl, false
			}
		}
	}
	return min(time.Duration(least)*time.Second, maxPositiveTTL), true
}

// ReadResolvConf returns the nameservers of a resolv.conf file as
// host:port (port 53).
func ReadResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if _, err := netip.ParseAddr(fields[1]); err != nil {
			continue
		}
		out = append(out, net.JoinHostPort(fields[1], "53"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// upstreamsWithoutSelf drops the upstreams that are this server, so that a
// forwarded query never comes back to it: the address it listens on (any
// local address when it listens on all), loopback on its port, and the
// cluster DNS Service IPs, which lead to it. local are the machine's
// addresses.
func upstreamsWithoutSelf(upstreams []string, listen netip.AddrPort, clusterDNS, local []netip.Addr) []string {
	var out []string
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			out = append(out, u) // a host name: not ours to judge
			continue
		}
		a := ap.Addr().Unmap()
		self := false
		for _, c := range clusterDNS {
			if a == c {
				self = true
			}
		}
		if ap.Port() == listen.Port() {
			l := listen.Addr().Unmap()
			switch {
			case a == l, a.IsLoopback() && (l.IsLoopback() || l.IsUnspecified()):
				self = true
			case l.IsUnspecified():
				for _, m := range local {
					if a == m.Unmap() {
						self = true
					}
				}
			}
		}
		if !self {
			out = append(out, u)
		}
	}
	return out
}
