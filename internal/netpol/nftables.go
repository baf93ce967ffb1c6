package netpol

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strings"

	nft "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/nftconn"
)

// DefaultTable is the nftables table (family ip) the backend owns.
const DefaultTable = "skiff-netpol"

// Names inside the table.
const (
	chainForward = "forward"
	mapIngress   = "ingress-pods"
	mapEgress    = "egress-pods"
)

// BackendConfig configures a Backend.
type BackendConfig struct {
	// Table is the name of the ip-family table; DefaultTable when empty.
	Table string
	// NetNS is the path of the network namespace to program; empty means
	// the process's own.
	NetNS string
	// Logger receives mode decisions; slog.Default() when nil.
	Logger *slog.Logger
}

// Backend programs a Ruleset into nftables:
//
//	table ip skiff-netpol {
//	  chain forward { type filter hook forward priority filter; policy accept;
//	    ct state established,related accept
//	    ip daddr vmap @ingress-pods   # isolated local pod -> jump in-<ip>
//	    ip saddr vmap @egress-pods    # isolated local pod -> jump out-<ip>
//	  }
//	  chain in-<ip> { ip saddr <ip> return; [ip saddr @in-<ip>-<n>] [meta l4proto p] [th dport lo-hi] return; ...; reject }
//	}
//
// A packet's cost is two map lookups plus the rules of the (at most two)
// pods it concerns, whatever the number of policies. Every Sync that
// changes the Ruleset replaces the whole table in one netlink transaction
// (delete and re-create): the kernel applies it atomically and conntrack
// keeps established connections. Traffic the node itself sends to its pods
// (kubelet probes) passes the output hook, not forward, and stays allowed.
// It is not safe for concurrent use.
type Backend struct {
	cfg     BackendConfig
	log     *slog.Logger
	conn    *nft.Conn
	ns      *os.File
	table   *nft.Table
	applied *Ruleset
}

// NewBackend opens a netlink connection to the configured network
// namespace and makes bridged traffic pass netfilter, so that traffic
// between two pods of the node's bridge is filtered too. It programs
// nothing: Sync does.
func NewBackend(cfg BackendConfig) (*Backend, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, table: &nft.Table{Name: cfg.Table, Family: nft.TableFamilyIPv4}}
	var opts []nft.ConnOption
	if cfg.NetNS != "" {
		f, err := os.Open(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("netpol: open network namespace: %w", err)
		}
		b.ns = f
		opts = append(opts, nft.WithNetNSFd(int(f.Fd())))
	}
	opts = append(opts, nft.AsLasting(), nft.WithSockOptions(nftconn.Buffers(socketBuffer)))
	conn, err := nft.New(opts...)
	if err != nil {
		b.closeNS()
		return nil, fmt.Errorf("netpol: nftables netlink connection: %w", err)
	}
	b.conn = conn
	if err := nftconn.InNetNS(b.ns, nftconn.EnableBridgeNetfilter); err != nil {
		b.log.Warn("netpol: bridged traffic does not pass netfilter; traffic between two pods of this node is not filtered", "err", err)
	}
	return b, nil
}

// Close releases the netlink connection and leaves the rules in place;
// Cleanup removes them.
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

// Cleanup removes the backend's table; it succeeds when there is none.
func (b *Backend) Cleanup() error {
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	b.applied = nil
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("netpol: delete table ip %s: %w", b.cfg.Table, err)
	}
	return nil
}

// Sync makes the table match rs. It does nothing when rs equals the last
// applied Ruleset, unless force is set; otherwise it rewrites the table
// atomically. changed reports whether it wrote.
func (b *Backend) Sync(rs *Ruleset, force bool) (changed bool, err error) {
	if !force && b.applied != nil && reflect.DeepEqual(b.applied, rs) {
		return false, nil
	}
	b.applied = nil
	c := b.conn
	c.AddTable(b.table)
	c.DelTable(b.table)
	c.AddTable(b.table)
	in := &nft.Set{Table: b.table, Name: mapIngress, IsMap: true, KeyType: nft.TypeIPAddr, DataType: nft.TypeVerdict}
	out := &nft.Set{Table: b.table, Name: mapEgress, IsMap: true, KeyType: nft.TypeIPAddr, DataType: nft.TypeVerdict}
	var inElems, outElems []nft.SetElement
	for _, p := range rs.Pods {
		key := p.IP.As4()
		if p.Ingress != nil {
			name := "in-" + chainSuffix(p)
			if err := b.addPodChain(name, p.IP, p.Ingress, offSaddr); err != nil {
				return false, err
			}
			inElems = append(inElems, nft.SetElement{Key: key[:], VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: name}})
		}
		if p.Egress != nil {
			name := "out-" + chainSuffix(p)
			if err := b.addPodChain(name, p.IP, p.Egress, offDaddr); err != nil {
				return false, err
			}
			outElems = append(outElems, nft.SetElement{Key: key[:], VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: name}})
		}
	}
	if err := c.AddSet(in, inElems); err != nil {
		return false, fmt.Errorf("netpol: map %s: %w", mapIngress, err)
	}
	if err := c.AddSet(out, outElems); err != nil {
		return false, fmt.Errorf("netpol: map %s: %w", mapEgress, err)
	}
	accept := nft.ChainPolicyAccept
	fwd := c.AddChain(&nft.Chain{Name: chainForward, Table: b.table, Type: nft.ChainTypeFilter, Hooknum: nft.ChainHookForward, Priority: nft.ChainPriorityFilter, Policy: &accept})
	const established = expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED
	c.AddRule(&nft.Rule{Table: b.table, Chain: fwd, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(established), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, m := range []struct {
		set *nft.Set
		off uint32
	}{{in, offDaddr}, {out, offSaddr}} {
		c.AddRule(&nft.Rule{Table: b.table, Chain: fwd, Exprs: []expr.Any{
			loadAddr(m.off),
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.set.Name, SetID: m.set.ID},
		}})
	}
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("netpol: program table ip %s: %w", b.cfg.Table, err)
	}
	b.applied = rs
	return true, nil
}

// IPv4 header offsets of the source and destination addresses.
const (
	offSaddr = 12
	offDaddr = 16
)

func loadAddr(off uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
}

func chainSuffix(p PodRules) string { return strings.ReplaceAll(p.IP.String(), ".", "-") }

// addPodChain adds the chain of pod ip in one direction: a rule returning
// when the peer is the pod itself (a pod cannot block itself, as upstream;
// it reaches itself through a Service by hairpin), a rule returning for
// each Allow, then a reject. peerOff locates the peer's address in the IP
// header (the source for ingress, the destination for egress).
func (b *Backend) addPodChain(name string, ip netip.Addr, d *Direction, peerOff uint32) error {
	c := b.conn
	ch := c.AddChain(&nft.Chain{Name: name, Table: b.table})
	self := ip.As4()
	c.AddRule(&nft.Rule{Table: b.table, Chain: ch, Exprs: []expr.Any{
		loadAddr(peerOff),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: self[:]},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	for i, a := range d.Allows {
		var ex []expr.Any
		if !a.AnyPeer {
			set := &nft.Set{Table: b.table, Name: fmt.Sprintf("%s-%d", name, i), KeyType: nft.TypeIPAddr, Interval: true}
			if err := c.AddSet(set, intervalElems(a.Peers)); err != nil {
				return fmt.Errorf("netpol: set %s: %w", set.Name, err)
			}
			ex = append(ex, loadAddr(peerOff), &expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID})
		}
		if a.Proto != 0 {
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{a.Proto}})
			if a.PortLo != 0 {
				ex = append(ex,
					&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
					&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(a.PortLo)},
					&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(a.PortHi)})
			}
		}
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictReturn})
		c.AddRule(&nft.Rule{Table: b.table, Chain: ch, Exprs: ex})
	}
	// Refused at once (ICMP administratively prohibited) rather than
	// dropped, so that clients fail fast.
	c.AddRule(&nft.Rule{Table: b.table, Chain: ch, Exprs: []expr.Any{
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpAdminProhibited},
	}})
	return nil
}

// intervalElems are the elements of an interval set holding the
// normalized ranges rs: a start element, and an end element one past the
// range unless it reaches the last address.
func intervalElems(rs []Range) []nft.SetElement {
	var out []nft.SetElement
	for _, r := range rs {
		from := r.From.As4()
		out = append(out, nft.SetElement{Key: from[:]})
		if to := u32(r.To); to != ^uint32(0) {
			end := make([]byte, 4)
			binary.BigEndian.PutUint32(end, to+1)
			out = append(out, nft.SetElement{Key: end, IntervalEnd: true})
		}
	}
	return out
}

// icmpAdminProhibited is the ICMP destination unreachable code
// "communication administratively prohibited" (RFC 1812).
const icmpAdminProhibited = 13

// socketBuffer is the netlink socket's send and receive buffer size: a
// sync of many pods is one batch of many messages, whose acknowledgements
// must all fit.
const socketBuffer = 16 << 20
