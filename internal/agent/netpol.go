package agent

import (
	"context"
	"log/slog"

	"github.com/skiff-sh/skiff/internal/netpol"
)

// runNetworkPolicies enforces NetworkPolicies on the node (internal/netpol
// with its nftables backend) until ctx ends. The rules stay in place when
// it stops, so that a restarting node does not open its pods.
func runNetworkPolicies(ctx context.Context, cfg NodeConfig, log *slog.Logger) {
	if cfg.DisableNetworkPolicy {
		return
	}
	be, err := netpol.NewBackend(netpol.BackendConfig{Logger: log})
	if err != nil {
		log.Error("network policies not enforced", "err", err)
		return
	}
	defer be.Close()
	c, err := netpol.NewController(netpol.ControllerConfig{Client: cfg.Client, NodeName: cfg.NodeName, Backend: be, Logger: log})
	if err != nil {
		log.Error("network policies not enforced", "err", err)
		return
	}
	log.Info("network policy controller started", "table", netpol.DefaultTable)
	if err := c.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("network policy controller stopped", "err", err)
	}
}
