package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-sh/skiff/internal/nftconn"
	"github.com/skiff-sh/skiff/internal/proxy"
)

// DefaultMasqueradeMark is the packet mark bit that asks for masquerade,
// kube-proxy's (and the nftables backend's).
const DefaultMasqueradeMark = 0x4000

// DefaultProgram is the iptables variant used: whichever the node's
// alternatives select ("iptables-legacy" on kernels without nf_tables).
const DefaultProgram = "iptables"

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
	// ClusterCIDR is the pod network. Traffic to a ClusterIP from outside
	// it is masqueraded; traffic from inside it to an external destination
	// of a Local policy Service is short-circuited to all endpoints. When
	// invalid, all ClusterIP traffic is masqueraded and there is no
	// short-circuit for pods.
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
	// Program is the iptables variant ("iptables", "iptables-legacy",
	// "iptables-nft"): the backend runs Program+"-restore" and
	// Program+"-save". DefaultProgram when empty.
	Program string
	// Logger receives one line per full sync and per failure; slog.Default()
	// when nil.
	Logger *slog.Logger
}

// Backend programs a proxy.Ruleset as iptables rules through
// iptables-restore. It is not safe for concurrent use: one goroutine (the
// Proxier's) calls Sync.
type Backend struct {
	cfg            Config
	log            *slog.Logger
	masqSameBridge bool
	// applied is what the last successful sync wrote; nil until the first
	// full sync and after any failure, so that the next Sync starts over.
	applied *state
}

// New checks that the iptables programs exist and decides the bridge mode.
// It programs nothing: the first Sync does a full sync.
func New(cfg Config) (*Backend, error) {
	if cfg.MasqueradeMark == 0 {
		cfg.MasqueradeMark = DefaultMasqueradeMark
	}
	if cfg.Program == "" {
		cfg.Program = DefaultProgram
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	progs := []string{cfg.Program + "-restore", cfg.Program + "-save"}
	if cfg.NetNS != "" {
		progs = append(progs, "nsenter")
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("iptables backend: %w", err)
		}
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, masqSameBridge: cfg.Bridge == BridgeMasquerade}
	if cfg.Bridge == BridgeNetfilter {
		var ns *os.File
		if cfg.NetNS != "" {
			f, err := os.Open(cfg.NetNS)
			if err != nil {
				return nil, fmt.Errorf("open network namespace: %w", err)
			}
			defer f.Close()
			ns = f
		}
		if err := nftconn.InNetNS(ns, nftconn.EnableBridgeNetfilter); err != nil {
			b.masqSameBridge = true
			b.log.Warn("proxy: bridged traffic does not pass netfilter; masquerading same-bridge service traffic instead", "err", err)
		}
	}
	return b, nil
}

// Close releases nothing the kernel holds: the rules stay in place, so
// that a restarted proxy does not interrupt traffic. Cleanup removes them.
func (b *Backend) Close() error { return nil }

// MasqueradesSameBridge reports whether same-bridge Service traffic is
// masqueraded (see BridgeMode).
func (b *Backend) MasqueradesSameBridge() bool { return b.masqSameBridge }

// Sync makes the kernel's rules match rs, through one iptables-restore
// (nat and filter tables in one input, each committed atomically). The
// first call, and the first after a failure, rewrites every chain of the
// backend and deletes SKIFF- chains it no longer uses; later calls rewrite
// the dispatch chains and the chains of the Service ports that differ
// from the last applied rs, and write nothing when none does.
func (b *Backend) Sync(ctx context.Context, rs *proxy.Ruleset) (proxy.SyncResult, error) {
	if err := ctx.Err(); err != nil {
		return proxy.SyncResult{}, err
	}
	start := time.Now()
	full := b.applied == nil
	var f *found
	if full {
		out, err := b.run(ctx, nil, b.cfg.Program+"-save")
		if err != nil {
			return proxy.SyncResult{}, b.fail(err)
		}
		f = parseSave(string(out))
	}
	input, next, changed := render(b.applied, f, rs, b.renderConfig())
	if len(input) > 0 {
		if err := b.restore(ctx, input); err != nil {
			return proxy.SyncResult{}, b.fail(err)
		}
	}
	b.applied = next
	if full {
		b.log.Info("proxy: iptables full sync", "servicePorts", len(rs.Services),
			"bytes", len(input), "duration", time.Since(start))
	}
	return proxy.SyncResult{Full: full, Changed: changed}, nil
}

func (b *Backend) renderConfig() renderConfig {
	return renderConfig{
		clusterCIDR:    b.cfg.ClusterCIDR,
		localPodCIDR:   b.cfg.LocalPodCIDR,
		masqSameBridge: b.masqSameBridge,
		mark:           b.cfg.MasqueradeMark,
	}
}

// fail forgets the applied state, so that the next Sync starts over.
func (b *Backend) fail(err error) error {
	b.applied = nil
	b.log.Error("proxy: iptables sync failed", "err", err)
	return err
}

func (b *Backend) restore(ctx context.Context, input []byte) error {
	return restore(ctx, b.cfg.NetNS, b.cfg.Program, input)
}

func (b *Backend) run(ctx context.Context, stdin []byte, prog string, args ...string) ([]byte, error) {
	return run(ctx, b.cfg.NetNS, stdin, prog, args...)
}

// Cleanup removes every SKIFF- chain of the nat and filter tables of the
// network namespace netns ("" for the process's own), and the rules that
// jump to them, in one iptables-restore. It is used when switching proxy
// modes and by tests; it succeeds when there is nothing to remove, also
// when the iptables programs are not installed (then nothing can have been
// programmed with them). It uses DefaultProgram.
func Cleanup(netns string) error {
	return cleanup(context.Background(), netns, DefaultProgram)
}

func cleanup(ctx context.Context, netns, program string) error {
	if _, err := exec.LookPath(program + "-save"); err != nil {
		return nil
	}
	out, err := run(ctx, netns, nil, program+"-save")
	if err != nil {
		return err
	}
	input := cleanupInput(parseSave(string(out)))
	if len(input) == 0 {
		return nil
	}
	return restore(ctx, netns, program, input)
}

// restore runs iptables-restore without flushing the tables (only the
// chains the input declares are flushed), waiting for the xtables lock
// rather than failing when another program holds it.
func restore(ctx context.Context, netns, program string, input []byte) error {
	_, err := run(ctx, netns, input, program+"-restore", "--noflush", "--wait")
	if err == nil {
		return nil
	}
	// iptables-restore names the input line that failed; quote it.
	if m := failedLine.FindStringSubmatch(err.Error()); m != nil {
		if n, _ := strconv.Atoi(m[1]); n > 0 {
			lines := bytes.Split(input, []byte("\n"))
			if n <= len(lines) {
				return fmt.Errorf("%w (input line %d: %s)", err, n, lines[n-1])
			}
		}
	}
	return err
}

var failedLine = regexp.MustCompile(`line (\d+)`)

// run runs prog in the network namespace netns through nsenter. nsenter
// (util-linux, present wherever iptables is) enters the namespace in the
// child only; doing it in-process would mean a setns on a locked OS thread
// and forking from exactly that thread, a thread that must then be thrown
// away, for no gain over one more exec per sync.
func run(ctx context.Context, netns string, stdin []byte, prog string, args ...string) ([]byte, error) {
	argv := append([]string{prog}, args...)
	if netns != "" {
		argv = append([]string{"nsenter", "--net=" + netns, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		where := ""
		if netns != "" {
			where = " in " + netns
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && msg != "" {
			return nil, fmt.Errorf("%s%s: %v: %s", prog, where, err, msg)
		}
		return nil, fmt.Errorf("%s%s: %w", prog, where, err)
	}
	return stdout.Bytes(), nil
}

var _ proxy.Backend = (*Backend)(nil)
