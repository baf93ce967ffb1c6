package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/nodeipam"
)

// startNodeIPAM gives nodes podCIDRs from Options.ClusterCIDR.
func startNodeIPAM(ctx context.Context, cc *ControllerContext) error {
	c, err := nodeipam.New(cc.Informers.Core().V1().Nodes(), cc.Client, cc.Options.ClusterCIDR, cc.Options.NodeCIDRMaskSize,
		cc.Recorder("node-ipam-controller"), cc.Logger)
	if err != nil {
		return err
	}
	go c.Run(ctx, 1)
	return nil
}
