package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/skiff-sh/skiff/internal/proxy"
)

// Chain names. Every chain the backend owns starts with chainPrefix, which
// is how Cleanup and a full sync recognise them.
const (
	chainPrefix = "SKIFF-"

	// nat table
	chainServices    = "SKIFF-SERVICES"
	chainNodePorts   = "SKIFF-NODEPORTS"
	chainPostrouting = "SKIFF-POSTROUTING"
	chainMarkMasq    = "SKIFF-MARK-MASQ"
	svcPrefix        = "SKIFF-SVC-" // Cluster policy endpoints
	svlPrefix        = "SKIFF-SVL-" // Local policy endpoints
	extPrefix        = "SKIFF-EXT-" // NodePort, external and LB traffic
	sepPrefix        = "SKIFF-SEP-" // one endpoint

	// filter table: the same dispatch names as in nat, for traffic that
	// cannot be forwarded.
	chainExternalServices = "SKIFF-EXTERNAL-SERVICES"

	// hashLen keeps "SKIFF-SVC-" + hash (26) within iptables' 28
	// characters; 16 base32 characters are 80 bits, kube-proxy's choice.
	hashLen = 16

	tableNAT    = "nat"
	tableFilter = "filter"
)

// jump is a rule in a built-in chain that enters one of ours. The built-in
// chains are shared with everything else on the node, so the backend only
// inserts these rules (when missing) and, in Cleanup, deletes them.
type jump struct {
	table, chain, target, rule string
}

// builtinJumps are the entries into the backend's chains, as kube-proxy's:
// DNAT in PREROUTING (traffic arriving) and OUTPUT (the node's own),
// masquerade in POSTROUTING, and the filter chains for new connections in
// INPUT (to the node's addresses), FORWARD (routed) and OUTPUT.
var builtinJumps = []jump{
	{tableNAT, "PREROUTING", chainServices, `-m comment --comment "skiff service portals" -j ` + chainServices},
	{tableNAT, "OUTPUT", chainServices, `-m comment --comment "skiff service portals" -j ` + chainServices},
	{tableNAT, "POSTROUTING", chainPostrouting, `-m comment --comment "skiff postrouting rules" -j ` + chainPostrouting},
	{tableFilter, "INPUT", chainServices, `-m conntrack --ctstate NEW -m comment --comment "skiff service portals" -j ` + chainServices},
	{tableFilter, "INPUT", chainExternalServices, `-m conntrack --ctstate NEW -m comment --comment "skiff externally-visible service portals" -j ` + chainExternalServices},
	{tableFilter, "FORWARD", chainServices, `-m conntrack --ctstate NEW -m comment --comment "skiff service portals" -j ` + chainServices},
	{tableFilter, "FORWARD", chainExternalServices, `-m conntrack --ctstate NEW -m comment --comment "skiff externally-visible service portals" -j ` + chainExternalServices},
	{tableFilter, "OUTPUT", chainServices, `-m conntrack --ctstate NEW -m comment --comment "skiff service portals" -j ` + chainServices},
	{tableFilter, "OUTPUT", chainExternalServices, `-m conntrack --ctstate NEW -m comment --comment "skiff externally-visible service portals" -j ` + chainExternalServices},
}

// renderConfig is what the rules depend on besides the Ruleset.
type renderConfig struct {
	clusterCIDR    netip.Prefix
	localPodCIDR   netip.Prefix
	masqSameBridge bool
	mark           uint32
}

// found is what a full sync finds in the kernel before it writes
// (iptables-save): the backend's chains per table, and the rules of other
// chains that jump to them ("-A CHAIN ... -j SKIFF-...", as saved).
type found struct {
	chains map[string][]string // table -> chain names
	jumps  map[string][]string // table -> rule lines
}

// state is what a sync applied; the next incremental sync starts from it.
// It is never modified once returned, so a failed sync cannot corrupt it.
type state struct {
	ports   map[proxy.ServicePortName]*portPlan
	nodeIPs []netip.Addr
}

// portPlan is one Service port laid out: its rules in the dispatch chains
// (rewritten on every sync, from these strings) and its own nat chains.
type portPlan struct {
	sp *proxy.ServicePort
	// Rule bodies (what follows "-A CHAIN ") per dispatch chain.
	natServices, natNodePorts                       []string
	filterServices, filterExternal, filterNodePorts []string
	chains                                          []chainRules
}

type chainRules struct {
	name  string
	rules []string
}

// render is the pure core of the backend: from what was applied (prev; nil
// for a full sync, which then needs f, what the kernel holds), the new
// Ruleset and the configuration, it returns the iptables-restore input
// that moves the kernel to rs, the state that input applies, and how many
// Service ports it writes or removes. An empty input means nothing
// differs.
//
// A full sync declares (creating or flushing) every chain, inserts the
// missing jumps from the built-in chains, and deletes SKIFF- chains that
// are no longer used; an incremental one declares only the dispatch chains
// and the chains of the Service ports that changed, and deletes the
// chains those ports no longer use. Deletions ("-X") come after every rule,
// when nothing in the table references the chain any more.
func render(prev *state, f *found, rs *proxy.Ruleset, cfg renderConfig) ([]byte, *state, int) {
	full := prev == nil
	next := &state{ports: make(map[proxy.ServicePortName]*portPlan, len(rs.Services)), nodeIPs: ipv4(rs.NodeIPs)}
	var written []*portPlan
	for _, sp := range rs.Services {
		if !full {
			if old := prev.ports[sp.Name]; old != nil && old.sp.Equal(sp) {
				next.ports[sp.Name] = old
				continue
			}
		}
		p := planPort(sp, cfg)
		next.ports[sp.Name] = p
		written = append(written, p)
	}
	changed := len(written)
	// Chains to delete, per table.
	var staleNAT, staleFilter []string
	var wanted map[string]bool
	if full {
		wanted = map[string]bool{}
		for _, p := range next.ports {
			for _, c := range p.chains {
				wanted[c.name] = true
			}
		}
		for _, name := range f.chains[tableNAT] {
			if !wanted[name] && !slices.Contains(natBase, name) {
				staleNAT = append(staleNAT, name)
			}
		}
		for _, name := range f.chains[tableFilter] {
			if !slices.Contains(filterBase, name) {
				staleFilter = append(staleFilter, name)
			}
		}
	} else {
		for name, old := range prev.ports {
			if next.ports[name] == old {
				continue
			}
			// Chain names are unique to their Service port: only
			// the port's new plan can still use them.
			keep := map[string]bool{}
			if p := next.ports[name]; p != nil {
				for _, c := range p.chains {
					keep[c.name] = true
				}
			} else {
				changed++
			}
			for _, c := range old.chains {
				if !keep[c.name] {
					staleNAT = append(staleNAT, c.name)
				}
			}
		}
		if changed == 0 && slices.Equal(prev.nodeIPs, next.nodeIPs) {
			return nil, next, 0
		}
	}
	slices.Sort(staleNAT)
	slices.Sort(staleFilter)

	// The Ruleset's order (sorted by name) makes the output
	// deterministic; ports are looked up in next.
	ordered := make([]*portPlan, 0, len(rs.Services))
	for _, sp := range rs.Services {
		ordered = append(ordered, next.ports[sp.Name])
	}

	var w bytes.Buffer
	w.Grow(estimate(written, len(ordered)))

	// nat
	w.WriteString("*nat\n")
	declare := func(names ...string) {
		for _, n := range names {
			w.WriteString(":" + n + " - [0:0]\n")
		}
	}
	if full {
		declare(natBase...)
	} else {
		declare(chainServices, chainNodePorts)
	}
	for _, p := range written {
		for _, c := range p.chains {
			declare(c.name)
		}
	}
	declare(staleNAT...)
	if full {
		writeJumps(&w, f, tableNAT, wantedOrBase(wanted, natBase))
		fmt.Fprintf(&w, "-A %s -j MARK --or-mark %#x\n", chainMarkMasq, cfg.mark)
		if cfg.masqSameBridge && cfg.localPodCIDR.IsValid() && cfg.localPodCIDR.Addr().Is4() {
			// Without br_netfilter, a pod's reply to another pod of
			// the bridge is switched at layer 2, past conntrack: the
			// client must be masqueraded so that the reply is routed.
			fmt.Fprintf(&w, "-A %s -m comment --comment \"same-bridge service traffic\" -s %s -d %s -m conntrack --ctstate DNAT -j MASQUERADE\n",
				chainPostrouting, cfg.localPodCIDR.Masked(), cfg.localPodCIDR.Masked())
		}
		fmt.Fprintf(&w, "-A %s -m mark ! --mark %#x/%#x -j RETURN\n", chainPostrouting, cfg.mark, cfg.mark)
		// Clear the mark so that a packet traversing the node's rules
		// again (re-entering through a tunnel) is not masqueraded twice.
		fmt.Fprintf(&w, "-A %s -j MARK --xor-mark %#x\n", chainPostrouting, cfg.mark)
		fmt.Fprintf(&w, "-A %s -j MASQUERADE\n", chainPostrouting)
	}
	for _, p := range ordered {
		writeRules(&w, chainServices, p.natServices)
	}
	for _, ip := range next.nodeIPs {
		// kube-proxy's --nodeport-addresses: NodePorts only on the
		// node's own addresses, never on loopback.
		fmt.Fprintf(&w, "-A %s -m comment --comment \"skiff service nodeports\" -d %s/32 -j %s\n", chainServices, ip, chainNodePorts)
	}
	for _, p := range ordered {
		writeRules(&w, chainNodePorts, p.natNodePorts)
	}
	for _, p := range written {
		for _, c := range p.chains {
			writeRules(&w, c.name, c.rules)
		}
	}
	for _, n := range staleNAT {
		w.WriteString("-X " + n + "\n")
	}
	w.WriteString("COMMIT\n")

	// filter
	w.WriteString("*filter\n")
	declare(filterBase...)
	declare(staleFilter...)
	if full {
		writeJumps(&w, f, tableFilter, wantedOrBase(nil, filterBase))
	}
	for _, p := range ordered {
		writeRules(&w, chainServices, p.filterServices)
	}
	for _, ip := range next.nodeIPs {
		fmt.Fprintf(&w, "-A %s -m comment --comment \"skiff service nodeports\" -d %s/32 -j %s\n", chainExternalServices, ip, chainNodePorts)
	}
	for _, p := range ordered {
		writeRules(&w, chainExternalServices, p.filterExternal)
	}
	for _, p := range ordered {
		writeRules(&w, chainNodePorts, p.filterNodePorts)
	}
	for _, n := range staleFilter {
		w.WriteString("-X " + n + "\n")
	}
	w.WriteString("COMMIT\n")
	if full {
		changed = len(rs.Services)
	}
	return w.Bytes(), next, changed
}

// The chains every sync of a table declares (natBase on full syncs only:
// SKIFF-POSTROUTING and SKIFF-MARK-MASQ never change after it).
var (
	natBase    = []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq}
	filterBase = []string{chainServices, chainExternalServices, chainNodePorts}
)

func wantedOrBase(wanted map[string]bool, base []string) map[string]bool {
	out := map[string]bool{}
	for k := range wanted {
		out[k] = true
	}
	for _, b := range base {
		out[b] = true
	}
	return out
}

// writeJumps deletes the rules of other chains that jump to a chain about
// to be deleted (left by an older version), and inserts the backend's
// jumps from the built-in chains that are missing. Inserting makes them
// first: a node's own rules (a firewall's ACCEPT) must not bypass Service
// translation.
func writeJumps(w *bytes.Buffer, f *found, table string, keep map[string]bool) {
	have := map[string]bool{}
	for _, line := range f.jumps[table] {
		chain, target := jumpOf(line)
		if !keep[target] {
			w.WriteString("-D" + strings.TrimPrefix(line, "-A") + "\n")
			continue
		}
		have[chain+" "+target] = true
	}
	for _, j := range builtinJumps {
		if j.table == table && !have[j.chain+" "+j.target] {
			fmt.Fprintf(w, "-I %s 1 %s\n", j.chain, j.rule)
			have[j.chain+" "+j.target] = true
		}
	}
}

// jumpOf returns the chain and the target of a saved rule line.
func jumpOf(line string) (chain, target string) {
	fields := strings.Fields(line)
	if len(fields) >= 2 {
		chain = fields[1]
	}
	for i := len(fields) - 2; i >= 0; i-- {
		if fields[i] == "-j" || fields[i] == "-g" {
			return chain, fields[i+1]
		}
	}
	return chain, ""
}

func writeRules(w *bytes.Buffer, chain string, rules []string) {
	for _, r := range rules {
		w.WriteString("-A ")
		w.WriteString(chain)
		w.WriteByte(' ')
		w.WriteString(r)
		w.WriteByte('\n')
	}
}

// estimate sizes the output buffer: rules are ~150 bytes.
func estimate(written []*portPlan, ports int) int {
	n := ports*4 + 64
	for _, p := range written {
		for _, c := range p.chains {
			n += len(c.rules) + 1
		}
	}
	return n * 150
}

// cleanupInput deletes everything f lists: the jumps into the backend's
// chains, then the chains (flushed first, so that they no longer
// reference one another).
func cleanupInput(f *found) []byte {
	var w strings.Builder
	for _, table := range []string{tableNAT, tableFilter} {
		if len(f.chains[table]) == 0 && len(f.jumps[table]) == 0 {
			continue
		}
		w.WriteString("*" + table + "\n")
		for _, n := range f.chains[table] {
			w.WriteString(":" + n + " - [0:0]\n")
		}
		for _, line := range f.jumps[table] {
			w.WriteString("-D" + strings.TrimPrefix(line, "-A") + "\n")
		}
		for _, n := range f.chains[table] {
			w.WriteString("-X " + n + "\n")
		}
		w.WriteString("COMMIT\n")
	}
	return []byte(w.String())
}

// parseSave reads iptables-save output: the backend's chains and the
// rules of other chains that jump to them, per table.
func parseSave(out string) *found {
	f := &found{chains: map[string][]string{}, jumps: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"+chainPrefix):
			name, _, _ := strings.Cut(line[1:], " ")
			f.chains[table] = append(f.chains[table], name)
		case strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, "-A "+chainPrefix):
			if _, target := jumpOf(line); strings.HasPrefix(target, chainPrefix) {
				f.jumps[table] = append(f.jumps[table], line)
			}
		}
	}
	return f
}

// portHash is kube-proxy's chain name hash: the first 16 characters of
// the base32 SHA-256 of the name, stable across restarts so that a
// restarted proxy rewrites rather than replaces.
func portHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:hashLen]
}

func svcChain(n proxy.ServicePortName) string { return svcPrefix + portHash(n.String()) }

// sepChainOf is sepChain with the port's name already formatted.
func sepChainOf(name string, e proxy.Endpoint) string {
	return sepPrefix + portHash(name+"|"+e.String())
}
func svlChain(n proxy.ServicePortName) string { return svlPrefix + portHash(n.String()) }
func extChain(n proxy.ServicePortName) string { return extPrefix + portHash(n.String()) }
func sepChain(n proxy.ServicePortName, e proxy.Endpoint) string {
	return sepPrefix + portHash(n.String()+"|"+e.String())
}

// planPort lays one Service port out as kube-proxy's iptables mode does.
// It decides nothing the compiler has not.
func planPort(sp *proxy.ServicePort, cfg renderConfig) *portPlan {
	p := &portPlan{sp: sp}
	name := sp.Name.String()
	proto := string(sp.Protocol)
	l4 := func(port uint16) string { return fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, port) }
	comment := func(what string) string {
		if what == "" {
			return fmt.Sprintf("-m comment --comment %q", name)
		}
		return fmt.Sprintf("-m comment --comment %q", name+" "+what)
	}
	filterTarget := func(f proxy.Filter) string {
		if f == proxy.FilterDrop {
			return "-j DROP"
		}
		// A reset makes a TCP client fail at once (ECONNREFUSED), as
		// the nftables backend does; others get ICMP port unreachable.
		if sp.Protocol == proxy.TCP {
			return "-j REJECT --reject-with tcp-reset"
		}
		return "-j REJECT"
	}
	hash := portHash(name)
	svc, svl, ext := svcPrefix+hash, svlPrefix+hash, extPrefix+hash

	// Dispatch.
	if f := sp.InternalFilter(); f == proxy.FilterNone {
		target := svc
		if sp.InternalLocal {
			target = svl
		}
		p.natServices = append(p.natServices, fmt.Sprintf("%s -d %s/32 %s -j %s", comment("cluster IP"), sp.ClusterIP, l4(sp.Port), target))
	} else {
		what := "has no endpoints"
		if f == proxy.FilterDrop {
			what = "has no local endpoints"
		}
		p.filterServices = append(p.filterServices, fmt.Sprintf("%s -d %s/32 %s %s", comment(what), sp.ClusterIP, l4(sp.Port), filterTarget(f)))
	}
	extFilter := sp.ExternalFilter()
	extWhat := "has no endpoints"
	if extFilter == proxy.FilterDrop {
		extWhat = "has no local endpoints"
	}
	for _, ips := range []struct {
		what string
		list []netip.Addr
	}{{"external IP", sp.ExternalIPs}, {"loadbalancer IP", sp.LoadBalancerIPs}} {
		for _, ip := range ips.list {
			if sp.HasEndpoints {
				p.natServices = append(p.natServices, fmt.Sprintf("%s -d %s/32 %s -j %s", comment(ips.what), ip, l4(sp.Port), ext))
			}
			if extFilter != proxy.FilterNone {
				p.filterExternal = append(p.filterExternal, fmt.Sprintf("%s -d %s/32 %s %s", comment(extWhat), ip, l4(sp.Port), filterTarget(extFilter)))
			}
		}
	}
	if sp.NodePort != 0 {
		if sp.HasEndpoints {
			p.natNodePorts = append(p.natNodePorts, fmt.Sprintf("%s %s -j %s", comment(""), l4(sp.NodePort), ext))
		}
		if extFilter != proxy.FilterNone {
			p.filterNodePorts = append(p.filterNodePorts, fmt.Sprintf("%s %s %s", comment(extWhat), l4(sp.NodePort), filterTarget(extFilter)))
		}
	}
	if !sp.HasEndpoints {
		return p
	}

	// Spreading chains: SVC (Cluster policy endpoints), SVL (Local).
	seconds := 0
	if sp.Affinity > 0 {
		seconds = max(1, int(sp.Affinity.Seconds()))
	}
	spread := func(chain string, eps []proxy.Endpoint, internal bool) chainRules {
		c := chainRules{name: chain}
		if internal {
			// Traffic to the ClusterIP from outside the pod network
			// may leave the node to a remote endpoint: its reply must
			// come back here to be un-DNATed.
			r := fmt.Sprintf("%s -d %s/32 %s", comment("cluster IP"), sp.ClusterIP, l4(sp.Port))
			if cfg.clusterCIDR.IsValid() {
				r += " ! -s " + cfg.clusterCIDR.Masked().String()
			}
			c.rules = append(c.rules, r+" -j "+chainMarkMasq)
		}
		if seconds > 0 {
			// A client seen within the timeout keeps its endpoint.
			for _, e := range eps {
				sep := sepChainOf(name, e)
				c.rules = append(c.rules, fmt.Sprintf("%s -m recent --name %s --rcheck --seconds %d --reap -j %s",
					comment("-> "+e.String()), sep, seconds, sep))
			}
		}
		// Rule i is taken with probability 1/(n-i) of what reaches it,
		// so each endpoint gets 1/n; the last takes the rest.
		for i, e := range eps {
			r := comment("-> " + e.String())
			if left := len(eps) - i; left > 1 {
				r += " -m statistic --mode random --probability " + strconv.FormatFloat(1/float64(left), 'f', 10, 64)
			}
			c.rules = append(c.rules, r+" -j "+sepChainOf(name, e))
		}
		return c
	}
	if len(sp.ClusterEndpoints) > 0 {
		p.chains = append(p.chains, spread(svc, sp.ClusterEndpoints, !sp.InternalLocal))
	}
	if len(sp.LocalEndpoints) > 0 {
		p.chains = append(p.chains, spread(svl, sp.LocalEndpoints, sp.InternalLocal))
	}
	if sp.External() {
		c := chainRules{name: ext}
		switch {
		case !sp.ExternalLocal:
			if len(sp.ClusterEndpoints) > 0 {
				c.rules = append(c.rules,
					comment("masquerade traffic for external destinations")+" -j "+chainMarkMasq,
					"-j "+svc)
			}
		default:
			// Pods and the node itself reach an external destination
			// of a Local policy Service as through an outside load
			// balancer: any endpoint will do.
			if len(sp.ClusterEndpoints) > 0 {
				if cfg.clusterCIDR.IsValid() {
					c.rules = append(c.rules, fmt.Sprintf("%s -s %s -j %s", comment("pod traffic for external destinations"), cfg.clusterCIDR.Masked(), svc))
				}
				c.rules = append(c.rules,
					comment("masquerade LOCAL traffic for external destinations")+" -m addrtype --src-type LOCAL -j "+chainMarkMasq,
					comment("route LOCAL traffic for external destinations")+" -m addrtype --src-type LOCAL -j "+svc)
			}
			if len(sp.LocalEndpoints) > 0 {
				c.rules = append(c.rules, "-j "+svl)
			}
		}
		p.chains = append(p.chains, c)
	}

	// One chain per endpoint (cluster and local ones, once each).
	all := slices.Clone(sp.ClusterEndpoints)
	for _, e := range sp.LocalEndpoints {
		if !slices.Contains(all, e) {
			all = append(all, e)
		}
	}
	for _, e := range all {
		sep := sepChainOf(name, e)
		c := chainRules{name: sep}
		// Hairpin: an endpoint reaching itself through its Service
		// must answer the node, or the reply would not be un-DNATed.
		c.rules = append(c.rules, fmt.Sprintf("%s -s %s/32 -j %s", comment(""), e.IP, chainMarkMasq))
		r := fmt.Sprintf("%s -p %s -m %s", comment(""), proto, proto)
		if seconds > 0 {
			r += " -m recent --name " + sep + " --set"
		}
		c.rules = append(c.rules, r+" -j DNAT --to-destination "+e.String())
		p.chains = append(p.chains, c)
	}
	return p
}

func ipv4(ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if ip.Is4() {
			out = append(out, ip)
		}
	}
	return out
}
