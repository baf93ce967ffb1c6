package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/servicelb"
)

// startServiceLB runs the built-in load balancer, which gives LoadBalancer
// Services the Ready nodes' addresses (k3s's ServiceLB; k3s's name), or
// addresses of Options.LBAddressPool when one is configured.
func startServiceLB(ctx context.Context, cc *ControllerContext) error {
	pool, err := servicelb.ParsePool(cc.Options.LBAddressPool)
	if err != nil {
		return err
	}
	c := servicelb.New(cc.Informers.Core().V1().Services(), cc.Informers.Core().V1().Nodes(), cc.Client,
		cc.Recorder("servicelb-controller"), pool, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
