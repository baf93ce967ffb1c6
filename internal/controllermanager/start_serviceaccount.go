package controllermanager

import (
	"context"

	"github.com/skiff-sh/skiff/internal/controller/serviceaccount"
)

// startServiceAccount keeps the default ServiceAccount in every namespace.
func startServiceAccount(ctx context.Context, cc *ControllerContext) error {
	c := serviceaccount.New(cc.Informers.Core().V1().Namespaces(), cc.Informers.Core().V1().ServiceAccounts(), cc.Client, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
