package agent

import (
	"context"
	"log/slog"

	"github.com/skiff-sh/skiff/internal/announce"
)

// runAnnouncer answers ARP on the node's network for the load balancer
// pool addresses this node wins (internal/announce) until ctx ends. It
// belongs with the service proxy, which forwards those addresses, so it is
// off when the proxy is. The addresses stay when it stops, so that a
// restarting node does not drop the Services' traffic.
func runAnnouncer(ctx context.Context, cfg NodeConfig, log *slog.Logger) {
	if cfg.DisableProxy {
		return
	}
	a, err := announce.New(announce.Config{Client: cfg.Client, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Logger: log})
	if err != nil {
		log.Error("load balancer addresses not announced", "err", err)
		return
	}
	if err := a.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("load balancer announcer stopped", "err", err)
	}
}
