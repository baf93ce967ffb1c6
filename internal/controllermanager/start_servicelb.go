package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/servicelb"
)

// startServiceLB runs the built-in load balancer, which gives LoadBalancer
// Services the Ready nodes' addresses (k3s's ServiceLB; k3s's name).
func startServiceLB(ctx context.Context, cc *ControllerContext) error {
	c := servicelb.New(cc.Informers.Core().V1().Services(), cc.Informers.Core().V1().Nodes(), cc.Client, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
