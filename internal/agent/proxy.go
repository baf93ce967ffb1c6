package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/iptables"
	"github.com/skiff-sh/skiff/internal/proxy/nftables"
	"github.com/skiff-sh/skiff/internal/proxy/userspace"
)

// The service proxy's backends (NodeConfig.ProxyMode).
const (
	ProxyModeNftables  = "nftables"
	ProxyModeIptables  = "iptables"
	ProxyModeUserspace = "userspace"
	// DefaultProxyMode is nftables: per-packet and per-change costs that
	// do not grow with the number of Services.
	DefaultProxyMode = ProxyModeNftables
)

// ProxyModes lists the valid NodeConfig.ProxyMode values.
func ProxyModes() []string {
	return []string{ProxyModeNftables, ProxyModeIptables, ProxyModeUserspace}
}

// serviceProxy runs the node's service proxy (internal/proxy with the
// backend NodeConfig.ProxyMode names) once the node knows its podCIDR,
// which the kernel backends need to masquerade same-bridge Service traffic
// when the kernel lacks br_netfilter. Start may be called on every podCIDR
// change; only the first starts it.
type serviceProxy struct {
	ctx  context.Context
	cfg  NodeConfig
	log  *slog.Logger
	once sync.Once
}

// proxyBackend is what the agent needs of a backend: it syncs, and Close
// releases it while leaving the rules in place.
type proxyBackend interface {
	proxy.Backend
	Close() error
}

// start runs the proxy with the node's podCIDR, unless disabled.
func (s *serviceProxy) start(podCIDR string) {
	if s.cfg.DisableProxy {
		return
	}
	s.once.Do(func() {
		local, err := netip.ParsePrefix(podCIDR)
		if err != nil {
			s.log.Error("service proxy not started: bad podCIDR", "podCIDR", podCIDR, "err", err)
			return
		}
		cluster, err := netip.ParsePrefix(s.cfg.ClusterCIDR)
		if err != nil {
			s.log.Error("service proxy not started: bad cluster CIDR", "clusterCIDR", s.cfg.ClusterCIDR, "err", err)
			return
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(s.cfg.NodeIP); err == nil {
			ips = append(ips, ip)
		}
		mode := s.cfg.ProxyMode
		if mode == "" {
			mode = DefaultProxyMode
		}
		s.cleanupOtherModes(mode)
		be, err := newProxyBackend(mode, cluster, local, s.log)
		if err != nil {
			s.log.Error("service proxy not started", "mode", mode, "err", err)
			return
		}
		health := proxy.NewHealthServer(proxy.HealthConfig{NodeIPs: ips, Logger: s.log})
		p, err := proxy.New(proxy.Config{Client: s.cfg.Client, Node: proxy.Node{Name: s.cfg.NodeName, IPs: ips}, Backend: be, Health: health, Logger: s.log})
		if err != nil {
			_ = be.Close()
			s.log.Error("service proxy not started", "err", err)
			return
		}
		go func() {
			// A node whose :10256 is taken still proxies; only the
			// proxy's own health endpoint is missing.
			if err := health.Run(s.ctx); err != nil {
				s.log.Error("service proxy health endpoint stopped", "err", err)
			}
		}()
		go func() {
			defer be.Close()
			if err := p.Run(s.ctx); err != nil {
				s.log.Error("service proxy stopped", "err", err)
			}
		}()
		s.log.Info("service proxy started", "mode", mode, "nodeIPs", ips)
	})
}

func newProxyBackend(mode string, cluster, local netip.Prefix, log *slog.Logger) (proxyBackend, error) {
	switch mode {
	case ProxyModeNftables:
		return nftables.New(nftables.Config{ClusterCIDR: cluster, LocalPodCIDR: local, Logger: log})
	case ProxyModeIptables:
		return iptables.New(iptables.Config{ClusterCIDR: cluster, LocalPodCIDR: local, Logger: log})
	case ProxyModeUserspace:
		return userspace.New(userspace.Config{ClusterCIDR: cluster, Logger: log})
	}
	return nil, fmt.Errorf("unknown proxy mode %q", mode)
}

// cleanupOtherModes removes what the other backends left on the node, as
// kube-proxy does when it starts: a node moved from one mode to another
// must not keep forwarding through stale rules or addresses.
func (s *serviceProxy) cleanupOtherModes(mode string) {
	if mode != ProxyModeNftables {
		if be, err := nftables.New(nftables.Config{Logger: s.log}); err == nil {
			if err := be.Cleanup(); err != nil {
				s.log.Warn("service proxy: stale nftables rules not removed", "err", err)
			}
			_ = be.Close()
		}
	}
	if mode != ProxyModeIptables {
		if err := iptables.Cleanup(""); err != nil {
			s.log.Warn("service proxy: stale iptables rules not removed", "err", err)
		}
	}
	if mode != ProxyModeUserspace {
		if err := userspace.Cleanup(""); err != nil {
			s.log.Warn("service proxy: stale userspace addresses not removed", "err", err)
		}
	}
}
