package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/deployment"
)

// startDeployment runs the deployment controller.
func startDeployment(ctx context.Context, cc *ControllerContext) error {
	c := deployment.New(cc.Informers.Apps().V1().Deployments(), cc.Informers.Apps().V1().ReplicaSets(), cc.Informers.Core().V1().Pods(),
		cc.Client, cc.Recorder("deployment-controller"), cc.Logger, nil)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
