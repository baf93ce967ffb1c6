package nftables

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	nft "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/nftconn"
	"github.com/skiff-sh/skiff/internal/proxy"
)

// DefaultTable is the nftables table (family ip) the backend owns.
const DefaultTable = "skiff-proxy"

// DefaultMasqueradeMark is the packet mark bit that asks for masquerade,
// kube-proxy's.
const DefaultMasqueradeMark = 0x4000

// BridgeMode says how replies between two pods on the node's bridge are
// un-DNATed when one reached the other through a Service.
type BridgeMode int

const (
	// BridgeNetfilter makes bridged IPv4 traffic pass through netfilter
	// (net.bridge.bridge-nf-call-iptables=1 in the node's network
	// namespace; it needs the br_netfilter module, which kube-proxy also
	// requires), so that the reply, which the bridge forwards at layer 2,
	// is still un-DNATed by conntrack and the server sees the client pod's
	// address. When the module is not loaded, the backend falls back to
	// BridgeMasquerade and logs it.
	BridgeNetfilter BridgeMode = iota
	// BridgeMasquerade masquerades DNATed traffic between two addresses of
	// Config.LocalPodCIDR, so that the reply is routed through the node;
	// the server sees the bridge's address, not the client pod's.
	BridgeMasquerade
)

// Config configures a Backend.
type Config struct {
	// Table is the name of the ip-family table; DefaultTable when empty.
	Table string
	// ClusterCIDR is the pod network. Traffic to a ClusterIP from outside
	// it is masqueraded; traffic from inside it to an external destination
	// of a Local policy Service is short-circuited to all endpoints. When
	// invalid, neither happens.
	ClusterCIDR netip.Prefix
	// LocalPodCIDR is this node's pod subnet (the bridge's), used by
	// BridgeMasquerade.
	LocalPodCIDR netip.Prefix
	// Bridge chooses how same-bridge Service replies are handled.
	Bridge BridgeMode
	// NetNS is the path of the network namespace to program
	// (/var/run/netns/x); empty means the process's own.
	NetNS string
	// MasqueradeMark is the mark bit that asks for masquerade;
	// DefaultMasqueradeMark when zero.
	MasqueradeMark uint32
	// Logger receives one line per full sync and per mode decision.
	Logger *slog.Logger
}

// Backend programs a proxy.Ruleset as nftables rules over netlink. It is
// not safe for concurrent use: one goroutine (the Proxier's) calls Sync.
type Backend struct {
	cfg   Config
	log   *slog.Logger
	conn  *nft.Conn
	ns    *os.File
	table *nft.Table

	serviceIPs, serviceNodePorts, noEndpointServices, noEndpointNodePorts *nft.Set
	nodePortIPs, hairpinIPs, clusterIPs                                   *nft.Set
	// endpointPicks and affinityPicks are sharded by chain number: the
	// kernel checks every new element of a map against every rule bound
	// to the map, so one map bound by every Service's rule would make a
	// full sync quadratic.
	endpointPicks, affinityPicks []*nft.Set

	// masqSameBridge is true when same-bridge Service traffic is
	// masqueraded (BridgeMasquerade, or BridgeNetfilter unavailable).
	masqSameBridge bool

	// synced is false until a full sync succeeded and after any failure:
	// the next Sync then rebuilds the table.
	synced  bool
	applied map[proxy.ServicePortName]*plan
	nodeIPs []netip.Addr
	// stale are chains flushed by the last sync, deleted by the next one:
	// kernels before 6.2 do not see at once that a chain a deleted map
	// element pointed to is unreferenced.
	stale map[string]bool

	// vipPicks are the chains shared by ClusterIP-only Service ports
	// without affinity, one per protocol and number of endpoints, with
	// the map each one's rule looks the endpoint up in (by chain name).
	// Created on first use, they stay until the next full sync.
	vipPicks map[string]*nft.Set
	// batchErr is the first error met while queueing the sync under way.
	batchErr error

	// pickIDs number the chains that spread traffic over endpoints: the
	// key of their elements in the endpoint-picks map is (id . index).
	pickIDs  map[string]uint32
	freeIDs  []uint32
	nextID   uint32
	released []uint32 // freed by the sync under way

	// Element changes are gathered over the whole sync and sent as one
	// message per map: removals first, then additions.
	delElems, addElems map[string][]nft.SetElement

	// hairpinRefs counts the programmed Service ports using each
	// endpoint address; hairpin-ips holds (ip . ip) for each counted one.
	hairpinRefs, hairpinProgrammed map[netip.Addr]int
}

// New opens a netlink connection to the configured network namespace and
// decides the bridge mode. It programs nothing: the first Sync does a full
// resync.
func New(cfg Config) (*Backend, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.MasqueradeMark == 0 {
		cfg.MasqueradeMark = DefaultMasqueradeMark
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, table: &nft.Table{Name: cfg.Table, Family: nft.TableFamilyIPv4}}
	opts := []nft.ConnOption{nft.AsLasting(), nft.WithSockOptions(nftconn.Buffers(socketBuffer))}
	if cfg.NetNS != "" {
		f, err := os.Open(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		b.ns = f
		opts = append(opts, nft.WithNetNSFd(int(f.Fd())))
	}
	conn, err := nft.New(opts...)
	if err != nil {
		b.closeNS()
		return nil, fmt.Errorf("nftables netlink connection: %w", err)
	}
	b.conn = conn
	b.initSets()

	b.masqSameBridge = cfg.Bridge == BridgeMasquerade
	if cfg.Bridge == BridgeNetfilter {
		if err := nftconn.InNetNS(b.ns, nftconn.EnableBridgeNetfilter); err != nil {
			b.masqSameBridge = true
			b.log.Warn("proxy: bridged traffic does not pass netfilter; masquerading same-bridge service traffic instead", "err", err)
		}
	}
	return b, nil
}

// Close releases the netlink connection. It leaves the rules in place
// (so that a restarted proxy does not interrupt traffic); Cleanup removes
// them.
func (b *Backend) Close() error {
	err := b.conn.CloseLasting()
	b.closeNS()
	return err
}

func (b *Backend) closeNS() {
	if b.ns != nil {
		_ = b.ns.Close()
	}
}

// Cleanup removes the backend's table, and with it every rule it
// programmed. It succeeds when there is no table.
func (b *Backend) Cleanup() error {
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	b.synced = false
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("delete table ip %s: %w", b.cfg.Table, err)
	}
	return nil
}

// MasqueradesSameBridge reports whether same-bridge Service traffic is
// masqueraded (see BridgeMode).
func (b *Backend) MasqueradesSameBridge() bool { return b.masqSameBridge }

// Sync makes the kernel's rules match rs. The first call (and the first
// after a failure) rebuilds the table in one transaction; later calls
// change only the Service ports that differ from the last applied rs, also
// in one transaction.
func (b *Backend) Sync(ctx context.Context, rs *proxy.Ruleset) (proxy.SyncResult, error) {
	if err := ctx.Err(); err != nil {
		return proxy.SyncResult{}, err
	}
	if !b.synced {
		return b.fullSync(rs)
	}
	return b.incrementalSync(rs)
}

func (b *Backend) fullSync(rs *proxy.Ruleset) (proxy.SyncResult, error) {
	c := b.conn
	b.pickIDs, b.freeIDs, b.nextID = map[string]uint32{}, nil, 0
	b.vipPicks = map[string]*nft.Set{}
	b.hairpinRefs, b.hairpinProgrammed = map[netip.Addr]int{}, map[netip.Addr]int{}
	b.startBatch()
	c.AddTable(b.table)
	c.DelTable(b.table)
	c.AddTable(b.table)
	if err := b.addBase(rs.NodeIPs); err != nil {
		return proxy.SyncResult{}, b.fail(err)
	}
	applied := make(map[proxy.ServicePortName]*plan, len(rs.Services))
	for _, sp := range rs.Services {
		p := b.buildPlan(sp)
		if err := b.change(nil, p, nil); err != nil {
			return proxy.SyncResult{}, b.fail(err)
		}
		applied[sp.Name] = p
	}
	if err := b.flushElems(); err != nil {
		return proxy.SyncResult{}, b.fail(err)
	}
	if err := c.Flush(); err != nil {
		return proxy.SyncResult{}, b.fail(fmt.Errorf("full sync of table ip %s: %w", b.cfg.Table, err))
	}
	b.released = nil
	b.hairpinsApplied()
	b.synced, b.applied, b.nodeIPs, b.stale = true, applied, slices.Clone(rs.NodeIPs), map[string]bool{}
	return proxy.SyncResult{Full: true, Changed: len(rs.Services)}, nil
}

func (b *Backend) incrementalSync(rs *proxy.Ruleset) (proxy.SyncResult, error) {
	c := b.conn
	b.startBatch()
	applied := make(map[proxy.ServicePortName]*plan, len(rs.Services))
	stale := map[string]bool{}
	changed := 0
	for _, sp := range rs.Services {
		old := b.applied[sp.Name]
		if old != nil && old.sp.Equal(sp) {
			applied[sp.Name] = old
			continue
		}
		p := b.buildPlan(sp)
		if err := b.change(old, p, stale); err != nil {
			return proxy.SyncResult{}, b.fail(err)
		}
		applied[sp.Name] = p
		changed++
	}
	for name, old := range b.applied {
		if _, ok := applied[name]; ok {
			continue
		}
		if err := b.change(old, nil, stale); err != nil {
			return proxy.SyncResult{}, b.fail(err)
		}
		changed++
	}
	// Chains flushed by the previous sync and not used again are now
	// unreferenced.
	inUse := map[string]bool{}
	for _, p := range applied {
		for _, ch := range p.chains {
			inUse[ch.name] = true
		}
	}
	for name := range b.stale {
		if !inUse[name] && !stale[name] {
			c.DelChain(&nft.Chain{Name: name, Table: b.table})
		}
	}
	if !slices.Equal(b.nodeIPs, rs.NodeIPs) {
		if len(b.nodeIPs) > 0 {
			if err := c.SetDeleteElements(b.nodePortIPs, addrElems(b.nodeIPs)); err != nil {
				return proxy.SyncResult{}, b.fail(err)
			}
		}
		if len(rs.NodeIPs) > 0 {
			if err := c.SetAddElements(b.nodePortIPs, addrElems(rs.NodeIPs)); err != nil {
				return proxy.SyncResult{}, b.fail(err)
			}
		}
	}
	if err := b.flushElems(); err != nil {
		return proxy.SyncResult{}, b.fail(err)
	}
	if err := c.Flush(); err != nil {
		return proxy.SyncResult{}, b.fail(fmt.Errorf("sync of table ip %s: %w", b.cfg.Table, err))
	}
	b.freeIDs, b.released = append(b.freeIDs, b.released...), nil
	b.hairpinsApplied()
	b.applied, b.nodeIPs, b.stale = applied, slices.Clone(rs.NodeIPs), stale
	return proxy.SyncResult{Changed: changed}, nil
}

// fail forgets the applied state, so that the next Sync starts over.
func (b *Backend) fail(err error) error {
	b.synced = false
	b.applied = nil
	b.released = nil
	return err
}

func (b *Backend) startBatch() {
	b.delElems, b.addElems, b.released = map[string][]nft.SetElement{}, map[string][]nft.SetElement{}, nil
	b.batchErr = nil
}

// flushElems queues the gathered element changes, removals first (a key
// whose verdict changed is removed and added again).
func (b *Backend) flushElems() error {
	if b.batchErr != nil {
		return b.batchErr
	}
	for ip, n := range b.hairpinRefs {
		if n > 0 && b.hairpinProgrammed[ip] == 0 {
			b.addElems[setHairpinIPs] = append(b.addElems[setHairpinIPs], nft.SetElement{Key: hairpinKey(ip)})
		}
	}
	for ip := range b.hairpinProgrammed {
		if b.hairpinRefs[ip] == 0 {
			b.delElems[setHairpinIPs] = append(b.delElems[setHairpinIPs], nft.SetElement{Key: hairpinKey(ip)})
		}
	}
	for _, m := range b.maps() {
		for _, part := range chunks(b.delElems[m.Name]) {
			if err := b.conn.SetDeleteElements(m, part); err != nil {
				return fmt.Errorf("delete elements of %s: %w", m.Name, err)
			}
		}
	}
	for _, m := range b.maps() {
		for _, part := range chunks(b.addElems[m.Name]) {
			if err := b.conn.SetAddElements(m, part); err != nil {
				return fmt.Errorf("add elements to %s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// maxElemBytes bounds the elements of one message: their list is a
// netlink attribute, whose length is 16 bits.
const maxElemBytes = 48 << 10

// chunks splits elements into lists whose encoding fits one attribute.
func chunks(els []nft.SetElement) [][]nft.SetElement {
	var out [][]nft.SetElement
	start, size := 0, 0
	for i, e := range els {
		n := 48 + len(e.Key)
		if e.VerdictData != nil {
			n += len(e.VerdictData.Chain)
		}
		if size+n > maxElemBytes && i > start {
			out = append(out, els[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(els) {
		out = append(out, els[start:])
	}
	return out
}

func (b *Backend) maps() []*nft.Set {
	out := []*nft.Set{b.serviceIPs, b.serviceNodePorts, b.noEndpointServices, b.noEndpointNodePorts, b.hairpinIPs, b.clusterIPs}
	out = append(out, b.endpointPicks...)
	out = append(out, b.affinityPicks...)
	names := slices.Sorted(maps.Keys(b.vipPicks))
	for _, name := range names {
		out = append(out, b.vipPicks[name])
	}
	return out
}

// vipPick returns the chain that spreads ClusterIP traffic of protocol
// proto over n endpoints, queueing it (and its map and rule) the first
// time: "meta l4proto P dnat to ip daddr . meta l4proto . th dport .
// numgen random mod n map @vip-picks-P-n". A ClusterIP-only Service port
// then costs map elements only, no chain or rule of its own: on a full
// sync each chain and rule is a netlink message with its acknowledgement
// (and a rule's echo), elements travel a thousand to a message.
func (b *Backend) vipPick(proto uint8, n int) (chain, mapName string) {
	chain = fmt.Sprintf("%s%d-%d", vipPickChainPrefix, proto, n)
	mapName = fmt.Sprintf("%s%d-%d", mapVIPPicksPrefix, proto, n)
	if _, ok := b.vipPicks[mapName]; ok {
		return chain, mapName
	}
	m := &nft.Set{Table: b.table, Name: mapName, IsMap: true, Concatenation: true,
		KeyType:  nft.MustConcatSetType(nft.TypeIPAddr, nft.TypeInetProto, nft.TypeInetService, nft.TypeMark),
		DataType: nft.MustConcatSetType(nft.TypeIPAddr, nft.TypeInetService)}
	if err := b.conn.AddSet(m, nil); err != nil {
		if b.batchErr == nil {
			b.batchErr = fmt.Errorf("add map %s: %w", mapName, err)
		}
		return chain, mapName
	}
	ch := b.conn.AddChain(&nft.Chain{Name: chain, Table: b.table})
	b.conn.AddRule(&nft.Rule{Table: b.table, Chain: ch, Exprs: concat(matchL4Proto(proto), []expr.Any{
		loadAddr(offDaddr, reg1), loadL4Proto(reg32b), loadDport(reg32c),
		&expr.Numgen{Register: reg32d, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg32b, Specified: true},
	})})
	b.vipPicks[mapName] = m
	return chain, mapName
}

// hairpinsApplied records that the sync under way succeeded.
func (b *Backend) hairpinsApplied() {
	for ip, n := range b.hairpinRefs {
		if n == 0 {
			delete(b.hairpinRefs, ip)
		}
	}
	b.hairpinProgrammed = maps.Clone(b.hairpinRefs)
}

// pickMap names the shard of a picks map that holds chain number id.
func pickMap(prefix string, id uint32) string {
	return fmt.Sprintf("%s%d", prefix, id%pickShards)
}

func hairpinKey(ip netip.Addr) []byte {
	a := ip.As4()
	return append(a[:], a[:]...)
}

// countHairpins adds delta to the count of every endpoint address of p.
func (b *Backend) countHairpins(p *plan, delta int) {
	if p == nil {
		return
	}
	for _, e := range p.endpoints {
		b.hairpinRefs[e.IP] += delta
	}
}

// pickID returns the number of a spreading chain, allocating one.
func (b *Backend) pickID(chain string) uint32 {
	if id, ok := b.pickIDs[chain]; ok {
		return id
	}
	var id uint32
	if n := len(b.freeIDs); n > 0 {
		id, b.freeIDs = b.freeIDs[n-1], b.freeIDs[:n-1]
	} else {
		b.nextID++
		id = b.nextID
	}
	b.pickIDs[chain] = id
	return id
}

// releasePick frees a chain's number once the sync under way succeeds.
func (b *Backend) releasePick(chain string) {
	if id, ok := b.pickIDs[chain]; ok {
		delete(b.pickIDs, chain)
		b.released = append(b.released, id)
	}
}

// Names of the fixed objects of the table.
const (
	setNodePortIPs          = "nodeport-ips"
	mapServiceIPs           = "service-ips"
	mapServiceNodePorts     = "service-nodeports"
	mapNoEndpointServices   = "no-endpoint-services"
	mapNoEndpointNodePorts  = "no-endpoint-nodeports"
	mapEndpointPicks        = "endpoint-picks-"
	mapAffinityPicks        = "affinity-picks-"
	pickShards              = 128
	setHairpinIPs           = "hairpin-ips"
	setClusterIPs           = "cluster-ips"
	vipPickChainPrefix      = "vip-pick-"
	mapVIPPicksPrefix       = "vip-picks-"
	chainServices           = "services"
	chainMarkForMasquerade  = "mark-for-masquerade"
	chainMasquerading       = "masquerading"
	chainReject             = "reject-chain"
	chainEndpointsCheck     = "service-endpoints-check"
	chainNATPrerouting      = "nat-prerouting"
	chainNATOutput          = "nat-output"
	chainNATPostrouting     = "nat-postrouting"
	chainFilterInput        = "filter-input"
	chainFilterForward      = "filter-forward"
	chainFilterOutput       = "filter-output"
	filterPriorityOffset    = -10
	icmpPortUnreachable     = 3
	servicePortChainPrefix  = "svc-"
	localChainPrefix        = "local-"
	externalChainPrefix     = "ext-"
	endpointChainPrefix     = "ep-"
	affinitySetPrefix       = "aff-"
	chainNameHashCharacters = 8
)

func (b *Backend) initSets() {
	addrProtoPort := nft.MustConcatSetType(nft.TypeIPAddr, nft.TypeInetProto, nft.TypeInetService)
	protoPort := nft.MustConcatSetType(nft.TypeInetProto, nft.TypeInetService)
	vmap := func(name string, key nft.SetDatatype) *nft.Set {
		return &nft.Set{Table: b.table, Name: name, IsMap: true, Concatenation: true, KeyType: key, DataType: nft.TypeVerdict}
	}
	b.serviceIPs = vmap(mapServiceIPs, addrProtoPort)
	b.serviceNodePorts = vmap(mapServiceNodePorts, protoPort)
	b.noEndpointServices = vmap(mapNoEndpointServices, addrProtoPort)
	b.noEndpointNodePorts = vmap(mapNoEndpointNodePorts, protoPort)
	// mark, not integer: the nft tool cannot list a concatenation of
	// integers (a type of no fixed size); both are 32 bits in host order.
	pickKey := nft.MustConcatSetType(nft.TypeMark, nft.TypeMark)
	for i := range pickShards {
		b.endpointPicks = append(b.endpointPicks, &nft.Set{Table: b.table, Name: pickMap(mapEndpointPicks, uint32(i)), IsMap: true, Concatenation: true,
			KeyType: pickKey, DataType: nft.MustConcatSetType(nft.TypeIPAddr, nft.TypeInetService)})
		b.affinityPicks = append(b.affinityPicks, vmap(pickMap(mapAffinityPicks, uint32(i)), pickKey))
	}
	b.hairpinIPs = &nft.Set{Table: b.table, Name: setHairpinIPs, Concatenation: true, KeyType: nft.MustConcatSetType(nft.TypeIPAddr, nft.TypeIPAddr)}
	b.nodePortIPs = &nft.Set{Table: b.table, Name: setNodePortIPs, KeyType: nft.TypeIPAddr}
	b.clusterIPs = &nft.Set{Table: b.table, Name: setClusterIPs, Concatenation: true, KeyType: addrProtoPort}
}

// addBase queues the table's fixed sets, maps and chains.
func (b *Backend) addBase(nodeIPs []netip.Addr) error {
	c := b.conn
	for _, s := range b.maps() {
		s.ID = 0
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add map %s: %w", s.Name, err)
		}
	}
	b.nodePortIPs.ID = 0
	if err := c.AddSet(b.nodePortIPs, addrElems(nodeIPs)); err != nil {
		return fmt.Errorf("add set %s: %w", setNodePortIPs, err)
	}

	chain := func(name string) *nft.Chain { return c.AddChain(&nft.Chain{Name: name, Table: b.table}) }
	base := func(name string, typ nft.ChainType, hook *nft.ChainHook, prio nft.ChainPriority) *nft.Chain {
		return c.AddChain(&nft.Chain{Name: name, Table: b.table, Type: typ, Hooknum: hook, Priority: nft.ChainPriorityRef(prio)})
	}
	rule := func(ch *nft.Chain, exprs ...expr.Any) { c.AddRule(&nft.Rule{Table: b.table, Chain: ch, Exprs: exprs}) }
	mark := b.cfg.MasqueradeMark

	markMasq := chain(chainMarkForMasquerade)
	rule(markMasq, setMark(mark, false)...)

	masq := chain(chainMasquerading)
	rule(masq, append(matchMark(mark, true), verdict(expr.VerdictReturn, ""))...)
	rule(masq, setMark(mark, true)...)
	rule(masq, &expr.Masq{})

	services := chain(chainServices)
	// Traffic to a ClusterIP from outside the pod network may leave the
	// node to a remote endpoint, so its reply must come back here: one
	// rule over the set of forwarded ClusterIP ports, rather than a rule
	// in each Service port's chain (a rule costs a netlink message, an
	// echo and an acknowledgement per Service on every full sync).
	var offCluster []expr.Any
	if b.cfg.ClusterCIDR.IsValid() {
		offCluster = matchPrefix(offSaddr, b.cfg.ClusterCIDR, true)
	}
	rule(services, concat(offCluster, []expr.Any{
		loadAddr(offDaddr, reg1), loadL4Proto(reg32b), loadDport(reg32c),
		&expr.Lookup{SourceRegister: reg1, SetName: b.clusterIPs.Name, SetID: b.clusterIPs.ID},
		verdict(expr.VerdictJump, chainMarkForMasquerade),
	})...)
	rule(services, b.addrProtoPortVmap(offDaddr, b.serviceIPs)...)
	rule(services, b.nodePortVmap(b.serviceNodePorts)...)

	reject := chain(chainReject)
	rule(reject, append(matchL4Proto(unix.IPPROTO_TCP), &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})...)
	rule(reject, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable})

	check := chain(chainEndpointsCheck)
	rule(check, b.addrProtoPortVmap(offDaddr, b.noEndpointServices)...)
	rule(check, b.nodePortVmap(b.noEndpointNodePorts)...)

	for _, ch := range []*nft.Chain{
		base(chainNATPrerouting, nft.ChainTypeNAT, nft.ChainHookPrerouting, *nft.ChainPriorityNATDest),
		base(chainNATOutput, nft.ChainTypeNAT, nft.ChainHookOutput, *nft.ChainPriorityNATDest),
	} {
		rule(ch, verdict(expr.VerdictJump, chainServices))
	}
	post := base(chainNATPostrouting, nft.ChainTypeNAT, nft.ChainHookPostrouting, *nft.ChainPriorityNATSource)
	rule(post, verdict(expr.VerdictJump, chainMasquerading))
	// Hairpin: an endpoint reaching itself through a Service answers the
	// node, not itself. One set of (ip . ip) for every endpoint replaces
	// a rule per endpoint.
	rule(post, concat(matchCtDNAT(), []expr.Any{
		loadAddr(offSaddr, reg1), loadAddr(offDaddr, reg32b),
		&expr.Lookup{SourceRegister: reg1, SetName: setHairpinIPs},
		&expr.Masq{},
	})...)
	if b.masqSameBridge && b.cfg.LocalPodCIDR.IsValid() && b.cfg.LocalPodCIDR.Addr().Is4() {
		rule(post, concat(matchCtDNAT(),
			matchPrefix(offSaddr, b.cfg.LocalPodCIDR, false),
			matchPrefix(offDaddr, b.cfg.LocalPodCIDR, false),
			[]expr.Any{&expr.Masq{}})...)
	}
	for _, h := range []struct {
		name string
		hook *nft.ChainHook
	}{{chainFilterInput, nft.ChainHookInput}, {chainFilterForward, nft.ChainHookForward}, {chainFilterOutput, nft.ChainHookOutput}} {
		ch := base(h.name, nft.ChainTypeFilter, h.hook, *nft.ChainPriorityFilter+filterPriorityOffset)
		rule(ch, append(matchCtState(expr.CtStateBitNEW), verdict(expr.VerdictJump, chainEndpointsCheck))...)
	}
	return nil
}

// addrProtoPortVmap is "ip daddr . meta l4proto . th dport vmap @m".
func (b *Backend) addrProtoPortVmap(off uint32, m *nft.Set) []expr.Any {
	return []expr.Any{
		loadAddr(off, reg1), loadL4Proto(reg32b), loadDport(reg32c),
		&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
	}
}

// nodePortVmap is "ip daddr @nodeport-ips meta l4proto . th dport vmap @m".
func (b *Backend) nodePortVmap(m *nft.Set) []expr.Any {
	return []expr.Any{
		loadAddr(offDaddr, reg1),
		&expr.Lookup{SourceRegister: reg1, SetName: b.nodePortIPs.Name, SetID: b.nodePortIPs.ID},
		loadL4Proto(reg1), loadDport(reg32b),
		&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
	}
}

func addrElems(ips []netip.Addr) []nft.SetElement {
	out := make([]nft.SetElement, 0, len(ips))
	for _, ip := range ips {
		a := ip.As4()
		out = append(out, nft.SetElement{Key: a[:]})
	}
	return out
}

// plan is what one Service port owns in the table.
type plan struct {
	sp        *proxy.ServicePort
	chains    []chainPlan
	affinity  []string         // per-endpoint affinity set names
	endpoints []proxy.Endpoint // every endpoint a chain of the port uses
	// elements per map, keyed by the map's name
	elems map[string][]nft.SetElement
}

type chainPlan struct {
	name  string
	rules []rulePlan
}

// rulePlan is a rule. When modulus is set, the rule ends in a pick:
// "numgen random mod modulus", with the chain's number pick, looked up in
// the chain's shard of endpoint-picks ((number . i) -> addr . port, then
// DNAT; dnat is true) or of affinity-picks ((number . i) -> goto the i-th
// endpoint chain). Shared maps, rather than an anonymous map per rule, keep
// the kernel's set lookups (linear in the sets of a table) cheap with many
// Services.
type rulePlan struct {
	exprs   []expr.Any
	modulus uint32
	pick    uint32
	dnat    bool
	// affinity is the set name a dynset update or lookup refers to, so
	// that the set's batch ID can be filled in.
	affinity string
}

// portID names a Service port's objects: a short hash (chain names must
// be unique and bounded) and the readable name.
func portID(n proxy.ServicePortName) string {
	readable := fmt.Sprintf("%s/%s/%s/%s", n.Namespace, n.Name, n.Protocol, n.Port)
	return shortHash(n.String()) + "-" + readable
}

func endpointID(n proxy.ServicePortName, e proxy.Endpoint) string {
	readable := fmt.Sprintf("%s/%s/%s/%s__%s/%d", n.Namespace, n.Name, n.Protocol, n.Port, e.IP, e.Port)
	return shortHash(n.String()+"|"+e.String()) + "-" + readable
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:chainNameHashCharacters]
}

// buildPlan computes the chains, sets and map elements of one Service port.
// It decides nothing the compiler has not: it lays the ServicePort out as
// kube-proxy's nftables mode does.
func (b *Backend) buildPlan(sp *proxy.ServicePort) *plan {
	p := &plan{sp: sp, elems: map[string][]nft.SetElement{}}
	id := portID(sp.Name)
	proto := sp.Protocol.Number()
	clusterChain, localChain, extChain := servicePortChainPrefix+id, localChainPrefix+id, externalChainPrefix+id
	addElem := func(m string, key []byte, v expr.VerdictKind, chain string) {
		p.elems[m] = append(p.elems[m], nft.SetElement{Key: key, VerdictData: &expr.Verdict{Kind: v, Chain: chain}})
	}
	filterVerdict := func(f proxy.Filter) (expr.VerdictKind, string) {
		if f == proxy.FilterReject {
			return expr.VerdictGoto, chainReject
		}
		return expr.VerdictDrop, ""
	}

	// Map elements.
	internalChain := clusterChain
	if sp.InternalLocal {
		internalChain = localChain
	}
	cipKey := addrProtoPortKey(sp.ClusterIP, proto, sp.Port)
	// A port that takes only ClusterIP traffic, without affinity, has no
	// chain of its own: its ClusterIP goes to the shared chain for its
	// protocol and number of endpoints (vipPick).
	shared := !sp.External() && sp.Affinity == 0
	if f := sp.InternalFilter(); f == proxy.FilterNone {
		if shared {
			eps := sp.InternalEndpoints()
			var m string
			internalChain, m = b.vipPick(proto, len(eps))
			for i, e := range eps {
				a := e.IP.As4()
				val := append(a[:], 0, 0, 0, 0)
				binary.BigEndian.PutUint16(val[4:], e.Port)
				key := append(slices.Clone(cipKey), binaryutil.NativeEndian.PutUint32(uint32(i))...)
				p.elems[m] = append(p.elems[m], nft.SetElement{Key: key, Val: val})
			}
		}
		addElem(mapServiceIPs, cipKey, expr.VerdictGoto, internalChain)
		p.elems[setClusterIPs] = append(p.elems[setClusterIPs], nft.SetElement{Key: cipKey})
	} else {
		v, ch := filterVerdict(f)
		addElem(mapNoEndpointServices, cipKey, v, ch)
	}
	extFilter := sp.ExternalFilter()
	for _, ip := range append(slices.Clone(sp.ExternalIPs), sp.LoadBalancerIPs...) {
		key := addrProtoPortKey(ip, proto, sp.Port)
		if sp.HasEndpoints {
			addElem(mapServiceIPs, key, expr.VerdictGoto, extChain)
		}
		if extFilter != proxy.FilterNone {
			v, ch := filterVerdict(extFilter)
			addElem(mapNoEndpointServices, key, v, ch)
		}
	}
	if sp.NodePort != 0 {
		key := protoPortKey(proto, sp.NodePort)
		if sp.HasEndpoints {
			addElem(mapServiceNodePorts, key, expr.VerdictGoto, extChain)
		}
		if extFilter != proxy.FilterNone {
			v, ch := filterVerdict(extFilter)
			addElem(mapNoEndpointNodePorts, key, v, ch)
		}
	}
	if !sp.HasEndpoints {
		return p
	}

	spread := func(name string, eps []proxy.Endpoint) chainPlan {
		ch := chainPlan{name: name}
		id := b.pickID(name)
		if sp.Affinity == 0 {
			// numgen picks an index; endpoint-picks maps (chain number
			// . index) to the endpoint's address and port, which the
			// rule DNATs to. No chain per endpoint: the kernel's
			// validation of a goto walks the target chain and the
			// verdict maps it uses, which would cost as much as there
			// are Services.
			for i, e := range eps {
				key := append(binaryutil.NativeEndian.PutUint32(id), binaryutil.NativeEndian.PutUint32(uint32(i))...)
				a := e.IP.As4()
				val := append(a[:], 0, 0, 0, 0)
				binary.BigEndian.PutUint16(val[4:], e.Port)
				m := pickMap(mapEndpointPicks, id)
				p.elems[m] = append(p.elems[m], nft.SetElement{Key: key, Val: val})
			}
			ch.rules = append(ch.rules, rulePlan{exprs: matchL4Proto(proto), modulus: uint32(len(eps)), pick: id, dnat: true})
			return ch
		}
		var targets []string
		for _, e := range eps {
			eid := endpointID(sp.Name, e)
			ch.rules = append(ch.rules, rulePlan{
				exprs: []expr.Any{
					loadAddr(offSaddr, reg1),
					&expr.Lookup{SourceRegister: reg1, SetName: affinitySetPrefix + eid},
					verdict(expr.VerdictGoto, endpointChainPrefix+eid),
				},
				affinity: affinitySetPrefix + eid,
			})
			targets = append(targets, endpointChainPrefix+eid)
		}
		for i, target := range targets {
			key := append(binaryutil.NativeEndian.PutUint32(id), binaryutil.NativeEndian.PutUint32(uint32(i))...)
			addElem(pickMap(mapAffinityPicks, id), key, expr.VerdictGoto, target)
		}
		ch.rules = append(ch.rules, rulePlan{modulus: uint32(len(targets)), pick: id})
		return ch
	}
	if len(sp.ClusterEndpoints) > 0 && !shared {
		p.chains = append(p.chains, spread(clusterChain, sp.ClusterEndpoints))
	}
	if len(sp.LocalEndpoints) > 0 && !shared {
		p.chains = append(p.chains, spread(localChain, sp.LocalEndpoints))
	}
	if sp.External() {
		ext := chainPlan{name: extChain}
		if !sp.ExternalLocal {
			ext.rules = append(ext.rules,
				rulePlan{exprs: []expr.Any{verdict(expr.VerdictJump, chainMarkForMasquerade)}},
				rulePlan{exprs: []expr.Any{verdict(expr.VerdictGoto, clusterChain)}})
		} else {
			// Pods and the node itself reach an external destination of
			// a Local policy Service as if through an outside load
			// balancer: any endpoint will do.
			if b.cfg.ClusterCIDR.IsValid() && len(sp.ClusterEndpoints) > 0 {
				ext.rules = append(ext.rules, rulePlan{exprs: append(matchPrefix(offSaddr, b.cfg.ClusterCIDR, false), verdict(expr.VerdictGoto, clusterChain))})
			}
			if len(sp.ClusterEndpoints) > 0 {
				ext.rules = append(ext.rules,
					rulePlan{exprs: append(matchFibLocal(true), verdict(expr.VerdictJump, chainMarkForMasquerade))},
					rulePlan{exprs: append(matchFibLocal(true), verdict(expr.VerdictGoto, clusterChain))})
			}
			if len(sp.LocalEndpoints) > 0 {
				ext.rules = append(ext.rules, rulePlan{exprs: []expr.Any{verdict(expr.VerdictGoto, localChain)}})
			}
		}
		p.chains = append(p.chains, ext)
	}

	all := slices.Clone(sp.ClusterEndpoints)
	for _, e := range sp.LocalEndpoints {
		if !slices.Contains(all, e) {
			all = append(all, e)
		}
	}
	p.endpoints = all
	if sp.Affinity == 0 {
		return p
	}
	// With session affinity, a chain per endpoint records the client in
	// the endpoint's affinity set.
	for _, e := range all {
		eid := endpointID(sp.Name, e)
		ch := chainPlan{name: endpointChainPrefix + eid}
		set := affinitySetPrefix + eid
		p.affinity = append(p.affinity, set)
		ch.rules = append(ch.rules, rulePlan{
			exprs: []expr.Any{
				loadAddr(offSaddr, reg1),
				&expr.Dynset{SrcRegKey: reg1, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: sp.Affinity},
			},
			affinity: set,
		})
		a := e.IP.As4()
		ch.rules = append(ch.rules, rulePlan{exprs: concat(matchL4Proto(proto), []expr.Any{
			&expr.Immediate{Register: reg1, Data: a[:]},
			&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(e.Port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
		})})
		p.chains = append(p.chains, ch)
	}
	return p
}

// change queues the transition of one Service port from old to next (either
// may be nil). Chains old had and next does not are flushed and recorded in
// stale (nil during a full sync, where nothing is old).
func (b *Backend) change(old, next *plan, stale map[string]bool) error {
	c := b.conn
	b.countHairpins(old, -1)
	b.countHairpins(next, 1)
	oldChains := map[string]bool{}
	if old != nil {
		for m, els := range old.elems {
			for _, e := range els {
				b.delElems[m] = append(b.delElems[m], nft.SetElement{Key: e.Key})
			}
		}
		for _, ch := range old.chains {
			oldChains[ch.name] = true
		}
	}
	nextChains := map[string]bool{}
	if next != nil {
		for _, ch := range next.chains {
			nextChains[ch.name] = true
		}
	}
	// Flush every chain the port had (its rules are rewritten or it goes).
	for name := range oldChains {
		c.FlushChain(&nft.Chain{Name: name, Table: b.table})
		if !nextChains[name] {
			b.releasePick(name)
			if stale != nil {
				stale[name] = true
			}
		}
	}
	if next == nil {
		return b.deleteAffinitySets(old, nil)
	}
	chains := map[string]*nft.Chain{}
	for _, ch := range next.chains {
		chains[ch.name] = c.AddChain(&nft.Chain{Name: ch.name, Table: b.table})
		if !oldChains[ch.name] && b.stale[ch.name] {
			// A chain flushed by the last sync, about to be reused.
			c.FlushChain(chains[ch.name])
		}
	}
	// Affinity sets survive a change of their Service port, so that
	// clients keep their endpoint while it stays.
	sets := map[string]*nft.Set{}
	for _, name := range next.affinity {
		if old != nil && slices.Contains(old.affinity, name) {
			continue
		}
		s := &nft.Set{Table: b.table, Name: name, KeyType: nft.TypeIPAddr, HasTimeout: true, Dynamic: true, Timeout: next.sp.Affinity}
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("service %s: add affinity set: %w", next.sp.Name, err)
		}
		sets[name] = s
	}
	for _, ch := range next.chains {
		for _, r := range ch.rules {
			exprs := slices.Clone(r.exprs)
			if s := sets[r.affinity]; s != nil {
				for i, e := range exprs {
					switch x := e.(type) {
					case *expr.Lookup:
						y := *x
						y.SetID = s.ID
						exprs[i] = &y
					case *expr.Dynset:
						y := *x
						y.SetID = s.ID
						exprs[i] = &y
					}
				}
			}
			switch {
			case r.dnat:
				exprs = append(exprs,
					&expr.Immediate{Register: reg1, Data: binaryutil.NativeEndian.PutUint32(r.pick)},
					&expr.Numgen{Register: reg32b, Modulus: r.modulus, Type: unix.NFT_NG_RANDOM},
					&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: pickMap(mapEndpointPicks, r.pick)},
					&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg32b, Specified: true})
			case r.modulus > 0:
				exprs = append(exprs,
					&expr.Immediate{Register: reg1, Data: binaryutil.NativeEndian.PutUint32(r.pick)},
					&expr.Numgen{Register: reg32b, Modulus: r.modulus, Type: unix.NFT_NG_RANDOM},
					&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: pickMap(mapAffinityPicks, r.pick)})
			}
			c.AddRule(&nft.Rule{Table: b.table, Chain: chains[ch.name], Exprs: exprs})
		}
	}
	for m, els := range next.elems {
		b.addElems[m] = append(b.addElems[m], els...)
	}
	return b.deleteAffinitySets(old, next)
}

func (b *Backend) deleteAffinitySets(old, next *plan) error {
	if old == nil {
		return nil
	}
	for _, name := range old.affinity {
		if next != nil && slices.Contains(next.affinity, name) {
			continue
		}
		b.conn.DelSet(&nft.Set{Table: b.table, Name: name})
	}
	return nil
}

// socketBuffer is the netlink socket's send and receive buffer: a full
// sync of 10,000 Service ports is one transaction of tens of megabytes,
// which must fit in one sendmsg.
const socketBuffer = 256 << 20

var _ proxy.Backend = (*Backend)(nil)
