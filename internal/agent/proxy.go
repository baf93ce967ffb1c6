package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/nftables"
)

// serviceProxy runs the node's service proxy (internal/proxy with its
// nftables backend) once the node knows its podCIDR, which the backend
// needs to masquerade same-bridge Service traffic when the kernel lacks
// br_netfilter. Start may be called on every podCIDR change; only the
// first starts it.
type serviceProxy struct {
	ctx  context.Context
	cfg  NodeConfig
	log  *slog.Logger
	once sync.Once
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
		be, err := nftables.New(nftables.Config{ClusterCIDR: cluster, LocalPodCIDR: local, Logger: s.log})
		if err != nil {
			s.log.Error("service proxy not started", "err", err)
			return
		}
		p, err := proxy.New(proxy.Config{Client: s.cfg.Client, Node: proxy.Node{Name: s.cfg.NodeName, IPs: ips}, Backend: be, Logger: s.log})
		if err != nil {
			_ = be.Close()
			s.log.Error("service proxy not started", "err", err)
			return
		}
		go func() {
			defer be.Close()
			if err := p.Run(s.ctx); err != nil {
				s.log.Error("service proxy stopped", "err", err)
			}
		}()
		s.log.Info("service proxy started", "backend", "nftables", "nodeIPs", ips)
	})
}
