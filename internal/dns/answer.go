package dns

import (
	"math"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Zone describes the cluster zone the server is authoritative for.
type Zone struct {
	// Name is the cluster domain as a lowercase FQDN ("cluster.local.").
	Name string
	// TTL of every answer, 5 s as CoreDNS's default.
	TTL uint32
	// Nameservers are the addresses of ns.dns.<zone>, the zone's NS: the
	// kube-dns Service IP.
	Nameservers []netip.Addr
}

// Result is what the index says about one question.
type Result struct {
	// Rcode is dns.RcodeSuccess (an answer, or NODATA when Answer is
	// empty), dns.RcodeNameError or dns.RcodeRefused.
	Rcode  int
	Answer []dns.RR
	Extra  []dns.RR
	// Forward says the name is not the zone's (or is a reverse name the
	// index does not know): ask the upstream resolvers.
	Forward bool
}

// Negative reports whether the reply carries the zone's SOA in the
// authority section: NXDOMAIN and NODATA.
func (r Result) Negative() bool {
	return !r.Forward && r.Rcode != dns.RcodeRefused && len(r.Answer) == 0
}

// dnsSchemaVersion is the version of the Kubernetes DNS specification
// answered at dns-version.<zone>.
const dnsSchemaVersion = "1.1.0"

// request is a parsed name of the zone, as CoreDNS's kubernetes plugin
// reads it: [_port._proto.|endpoint.]service.namespace.(svc|pod).zone.
type request struct {
	port, protocol, endpoint string
	service, namespace       string
	kind                     string // "svc", "pod", or "" for the apex, svc. and pod.
}

// target is one thing a name leads to: an address (A/AAAA, SRV target
// name owner) or a host name (ExternalName, CNAME).
type target struct {
	owner string // the name the SRV target is: svc or endpoint FQDN
	addr  netip.Addr
	host  string
	port  int32
}

// Lookup answers question q from the index, as CoreDNS's kubernetes plugin
// configured with "pods insecure" and "fallthrough in-addr.arpa ip6.arpa"
// answers it. It is a pure function of the index's content.
func (ix *Index) Lookup(z Zone, q dns.Question) Result {
	name := strings.ToLower(dns.Fqdn(q.Name))
	if isReverse(name) {
		if q.Qtype != dns.TypePTR {
			return Result{Forward: true}
		}
		addr, ok := reverseAddr(name)
		if !ok {
			return Result{Forward: true}
		}
		ix.mu.RLock()
		rrs := ix.ptr(z, q.Name, addr)
		ix.mu.RUnlock()
		if len(rrs) == 0 {
			return Result{Forward: true}
		}
		return Result{Answer: rrs}
	}
	if !dns.IsSubDomain(z.Name, name) {
		return Result{Forward: true}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(name, z.Name), ".")

	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return Result{Rcode: dns.RcodeRefused}
	case dns.TypeSOA:
		if base == "" {
			return Result{Answer: []dns.RR{z.soa(ix.Serial())}}
		}
		// CoreDNS answers SOA only at the apex; below it, an empty NOERROR.
		return Result{}
	case dns.TypeNS:
		if base == "" {
			return z.ns(q.Name)
		}
	}
	if base == "ns.dns" {
		return z.nsAddrs(q)
	}
	if base == "dns-version" && q.Qtype == dns.TypeTXT {
		return Result{Answer: []dns.RR{&dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT, 28800), Txt: []string{dnsSchemaVersion}}}}
	}

	r, ok := parse(base)
	if !ok {
		return Result{Rcode: dns.RcodeNameError}
	}
	ix.mu.RLock()
	targets, exists := ix.records(z, r)
	ix.mu.RUnlock()
	if !exists {
		return Result{Rcode: dns.RcodeNameError}
	}

	res := Result{}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		res.Answer = addresses(z, q, targets)
	case dns.TypeSRV:
		res.Answer, res.Extra = srv(z, q, targets)
	case dns.TypeCNAME:
		if len(targets) > 0 && targets[0].host != "" {
			res.Answer = []dns.RR{&dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME, z.TTL), Target: dns.Fqdn(targets[0].host)}}
		}
	case dns.TypeTXT:
		// CoreDNS: a name with no records at all (a namespace) is
		// NXDOMAIN for TXT, one with records of another type NODATA.
		if len(targets) == 0 {
			res.Rcode = dns.RcodeNameError
		}
	}
	return res
}

// parse reads a name relative to the zone; ok is false for names that
// cannot exist (a first label other than svc or pod, too many labels).
func parse(base string) (request, bool) {
	var r request
	if base == "" || base == "svc" || base == "pod" {
		return r, true
	}
	segs := dns.SplitDomainName(base)
	last := len(segs) - 1
	r.kind = segs[last]
	if r.kind != "svc" && r.kind != "pod" {
		return r, false
	}
	if last--; last < 0 {
		return r, true
	}
	r.namespace = segs[last]
	if last--; last < 0 {
		return r, true
	}
	r.service = segs[last]
	switch last {
	case 0:
	case 1:
		r.endpoint = segs[0]
	case 2:
		r.port = strings.TrimPrefix(segs[0], "_")
		r.protocol = strings.TrimPrefix(segs[1], "_")
	default:
		return r, false
	}
	return r, true
}

// records returns what a parsed name leads to; exists is false when the
// name does not exist (NXDOMAIN). An existing name with no targets is an
// empty non-terminal (the apex, svc., a namespace). The caller holds the
// read lock.
func (ix *Index) records(z Zone, r request) (targets []target, exists bool) {
	if r.kind == "" {
		return nil, true
	}
	if _, ok := ix.namespaces[r.namespace]; !ok {
		return nil, false
	}
	if r.service == "" {
		return nil, true
	}
	if r.kind == "pod" {
		// "pods insecure": any well-formed dashed address in an existing
		// namespace.
		s := r.service
		if strings.Count(s, "-") == 3 && !strings.Contains(s, "--") {
			s = strings.ReplaceAll(s, "-", ".")
		} else {
			s = strings.ReplaceAll(s, "-", ":")
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, false
		}
		return []target{{addr: a.Unmap()}}, true
	}

	key := r.namespace + "/" + r.service
	svc := ix.services[key]
	if svc == nil {
		return nil, false
	}
	svcName := r.service + "." + r.namespace + ".svc." + z.Name
	switch {
	case svc.externalName != "":
		// An ExternalName has no endpoints; an address as its external
		// name is not a CNAME target.
		if r.endpoint != "" {
			return nil, false
		}
		if _, err := netip.ParseAddr(svc.externalName); err == nil {
			return nil, false
		}
		return []target{{owner: svcName, host: svc.externalName}}, true
	case svc.headless || r.endpoint != "":
		for _, sl := range ix.bySvc[key] {
			ports := sl.ports
			if len(ports) == 0 {
				ports = []port{{port: -1}}
			}
			for _, e := range sl.endpoints {
				if r.endpoint != "" && r.endpoint != e.hostname {
					continue
				}
				for _, p := range ports {
					if !portMatches(r, p) {
						continue
					}
					targets = append(targets, target{owner: e.hostname + "." + svcName, addr: e.addr, port: p.port})
				}
			}
		}
	default:
		for _, p := range svc.ports {
			if !portMatches(r, p) {
				continue
			}
			for _, a := range svc.ips {
				targets = append(targets, target{owner: svcName, addr: a, port: p.port})
			}
		}
	}
	return targets, len(targets) > 0
}

// portMatches reports whether a port matches the _port._proto labels of a
// request (empty labels match any).
func portMatches(r request, p port) bool {
	return (r.port == "" || strings.EqualFold(r.port, p.name)) &&
		(r.protocol == "" || strings.EqualFold(r.protocol, p.protocol))
}

// addresses are the A or AAAA records of targets, and the CNAME of an
// ExternalName (its target is not resolved here).
func addresses(z Zone, q dns.Question, targets []target) []dns.RR {
	var out []dns.RR
	seen := map[netip.Addr]bool{}
	for _, t := range targets {
		if t.host != "" {
			host := dns.Fqdn(t.host)
			if strings.EqualFold(host, dns.Fqdn(q.Name)) {
				continue // x CNAME x
			}
			out = append(out, &dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME, z.TTL), Target: host})
			continue
		}
		if seen[t.addr] || t.addr.Is4() != (q.Qtype == dns.TypeA) {
			continue
		}
		seen[t.addr] = true
		out = append(out, addressRR(q.Name, t.addr, z.TTL))
	}
	return out
}

// srv are the SRV records of targets, with the targets' addresses as
// additional records. Weights are CoreDNS's: 100 shared evenly, at least 1.
// ExternalName Services and port-less endpoints have no SRV records.
func srv(z Zone, q dns.Question, targets []target) (answer, extra []dns.RR) {
	n := 0
	for _, t := range targets {
		if t.host == "" {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	weight := uint16(math.Floor(100.0 / float64(n)))
	if weight == 0 {
		weight = 1
	}
	type srvKey struct {
		name string
		port int32
	}
	type addrKey struct {
		name string
		addr netip.Addr
	}
	seenSRV := map[srvKey]bool{}
	seenAddr := map[addrKey]bool{}
	for _, t := range targets {
		if t.host != "" || t.port == -1 {
			continue
		}
		if k := (srvKey{t.owner, t.port}); !seenSRV[k] {
			seenSRV[k] = true
			answer = append(answer, &dns.SRV{Hdr: hdr(q.Name, dns.TypeSRV, z.TTL),
				Priority: 0, Weight: weight, Port: uint16(t.port), Target: t.owner})
		}
		if k := (addrKey{t.owner, t.addr}); !seenAddr[k] {
			seenAddr[k] = true
			extra = append(extra, addressRR(t.owner, t.addr, z.TTL))
		}
	}
	return answer, extra
}

// ptr are the PTR records of an address: the Service whose cluster IP it
// is, else every endpoint name it has. The caller holds the read lock.
func (ix *Index) ptr(z Zone, qname string, a netip.Addr) []dns.RR {
	ts := ix.reverse[a]
	for _, t := range ts {
		if t.host == "" {
			return []dns.RR{&dns.PTR{Hdr: hdr(qname, dns.TypePTR, z.TTL), Ptr: svcFQDN(z, t.service)}}
		}
	}
	var out []dns.RR
	seen := map[string]bool{}
	for _, t := range ts {
		name := t.host + "." + svcFQDN(z, t.service)
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, &dns.PTR{Hdr: hdr(qname, dns.TypePTR, z.TTL), Ptr: name})
	}
	return out
}

// svcFQDN turns a "ns/name" key into name.ns.svc.<zone>.
func svcFQDN(z Zone, key string) string {
	ns, name, _ := strings.Cut(key, "/")
	return name + "." + ns + ".svc." + z.Name
}

// soa is the zone's SOA record, as CoreDNS writes it.
func (z Zone) soa(serial uint32) *dns.SOA {
	ttl := min(z.TTL, 300)
	return &dns.SOA{Hdr: hdr(z.Name, dns.TypeSOA, ttl), Ns: "ns.dns." + z.Name, Mbox: "hostmaster." + z.Name,
		Serial: serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: z.TTL}
}

// ns is the apex's NS record, ns.dns.<zone>, with its addresses.
func (z Zone) ns(qname string) Result {
	nsName := "ns.dns." + z.Name
	if len(z.Nameservers) == 0 {
		return Result{}
	}
	res := Result{Answer: []dns.RR{&dns.NS{Hdr: hdr(qname, dns.TypeNS, z.TTL), Ns: nsName}}}
	for _, a := range z.Nameservers {
		res.Extra = append(res.Extra, addressRR(nsName, a, z.TTL))
	}
	return res
}

// nsAddrs answers for ns.dns.<zone>.
func (z Zone) nsAddrs(q dns.Question) Result {
	res := Result{}
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA {
		return res
	}
	for _, a := range z.Nameservers {
		if a.Is4() == (q.Qtype == dns.TypeA) {
			res.Answer = append(res.Answer, addressRR(q.Name, a, z.TTL))
		}
	}
	return res
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func addressRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: net.IP(a.AsSlice())}
	}
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: net.IP(a.AsSlice())}
}

// isReverse reports whether a lowercase FQDN is in in-addr.arpa or
// ip6.arpa.
func isReverse(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}

// reverseAddr reads the address of a complete reverse name
// (4.3.2.1.in-addr.arpa. -> 1.2.3.4; 32 nibbles for ip6.arpa).
func reverseAddr(name string) (netip.Addr, bool) {
	if v4, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(v4, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0])
		if err != nil {
			return netip.Addr{}, false
		}
		return a, true
	}
	v6, ok := strings.CutSuffix(name, ".ip6.arpa.")
	if !ok {
		return netip.Addr{}, false
	}
	labels := strings.Split(v6, ".")
	if len(labels) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		if len(l) != 1 {
			return netip.Addr{}, false
		}
		v := strings.IndexByte("0123456789abcdef", l[0])
		if v < 0 {
			return netip.Addr{}, false
		}
		// labels[0] is the lowest nibble of the last byte.
		pos := 31 - i
		if pos%2 == 0 {
			b[pos/2] |= byte(v) << 4
		} else {
			b[pos/2] |= byte(v)
		}
	}
	return netip.AddrFrom16(b), true
}
