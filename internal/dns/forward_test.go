package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func answerMsg(name string, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{&dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: []byte{192, 0, 2, 1}}}
	return m
}

func TestMsgTTL(t *testing.T) {
	soa := &dns.SOA{Hdr: hdr("org.", dns.TypeSOA, 900), Ns: "a.org.", Mbox: "b.org.", Minttl: 60}
	nx := new(dns.Msg)
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{soa}
	bare := new(dns.Msg)
	bare.Rcode = dns.RcodeNameError
	two := answerMsg("a.org.", 300)
	two.Answer = append(two.Answer, &dns.A{Hdr: hdr("a.org.", dns.TypeA, 20), A: []byte{192, 0, 2, 2}})
	long := answerMsg("a.org.", 86400*7)
	tests := []struct {
		name   string
		m      *dns.Msg
		want   time.Duration
		wantOK bool
	}{
		{"smallest record TTL", two, 20 * time.Second, true},
		{"capped", long, maxPositiveTTL, true},
		{"negative: SOA minimum", nx, 60 * time.Second, true},
		{"negative without SOA", bare, 0, false},
	}
	for _, tt := range tests {
		got, ok := msgTTL(tt.m)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got %v %t, want %v %t", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCache(3)
	c.put("a", answerMsg("a.org.", 10), now)
	got := c.get("a", now.Add(4*time.Second))
	if got == nil || got.Answer[0].Header().Ttl != 6 {
		t.Fatalf("entry after 4 s: got %v, want TTL 6", got)
	}
	// What get returns is a copy.
	got.Answer[0].Header().Ttl = 999
	if again := c.get("a", now); again.Answer[0].Header().Ttl != 10 {
		t.Errorf("cached entry changed through a copy: got TTL %d, want 10", again.Answer[0].Header().Ttl)
	}
	if got := c.get("a", now.Add(10*time.Second)); got != nil {
		t.Errorf("entry after its TTL: got %v, want none", got)
	}

	// Failures and truncated answers are not kept.
	fail := answerMsg("f.org.", 10)
	fail.Rcode = dns.RcodeServerFailure
	c.put("f", fail, now)
	tc := answerMsg("t.org.", 10)
	tc.Truncated = true
	c.put("t", tc, now)
	if c.get("f", now) != nil || c.get("t", now) != nil {
		t.Errorf("SERVFAIL or truncated answer cached")
	}

	// The cap holds.
	for i := range 10 {
		c.put(fmt.Sprint(i), answerMsg("x.org.", 100), now)
	}
	if n := c.len(); n != 3 {
		t.Errorf("entries: got %d, want the cap 3", n)
	}
}

func TestUpstreamsWithoutSelf(t *testing.T) {
	dnsIP := []netip.Addr{netip.MustParseAddr("10.96.0.10")}
	local := []netip.Addr{netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("127.0.0.1")}
	up := []string{"10.96.0.10:53", "127.0.0.1:53", "127.0.0.53:53", "192.168.1.5:53", "192.168.1.1:53", "[::1]:53", "127.0.0.1:5353"}
	tests := []struct {
		listen string
		want   []string
	}{
		// On 0.0.0.0:53: every local address on port 53 is this server.
		{"0.0.0.0:53", []string{"192.168.1.1:53", "127.0.0.1:5353"}},
		// On the node IP: loopback resolvers (systemd-resolved) are others.
		{"192.168.1.5:53", []string{"127.0.0.1:53", "127.0.0.53:53", "192.168.1.1:53", "[::1]:53", "127.0.0.1:5353"}},
		// On loopback: any loopback address on the port is this server.
		{"127.0.0.1:53", []string{"192.168.1.5:53", "192.168.1.1:53", "127.0.0.1:5353"}},
		{"127.0.0.1:5353", []string{"127.0.0.1:53", "127.0.0.53:53", "192.168.1.5:53", "192.168.1.1:53", "[::1]:53"}},
	}
	for _, tt := range tests {
		got := upstreamsWithoutSelf(up, netip.MustParseAddrPort(tt.listen), dnsIP, local)
		if !slices.Equal(got, tt.want) {
			t.Errorf("listening on %s:\n got %q\nwant %q", tt.listen, got, tt.want)
		}
	}
}
