package controllermanager

import (
	"context"
	"fmt"
	"os"

	"github.com/skiff-sh/skiff/internal/controller/rootcacertpublisher"
)

// startRootCACertPublisher publishes the cluster CA (the configured root
// CA, else the one the controller manager's client trusts) as
// kube-root-ca.crt in every namespace.
func startRootCACertPublisher(ctx context.Context, cc *ControllerContext) error {
	ca := cc.RootCA
	if rc := cc.RestConfig; len(ca) == 0 && rc != nil {
		ca = rc.TLSClientConfig.CAData
		if len(ca) == 0 && rc.TLSClientConfig.CAFile != "" {
			data, err := os.ReadFile(rc.TLSClientConfig.CAFile)
			if err != nil {
				return fmt.Errorf("root CA: %w", err)
			}
			ca = data
		}
	}
	if len(ca) == 0 {
		cc.Logger.Warn("root-ca-cert-publisher not started: the controller manager's client has no CA")
		return nil
	}
	c := rootcacertpublisher.New(cc.Informers.Core().V1().Namespaces(), cc.Informers.Core().V1().ConfigMaps(), cc.Client, ca, cc.Logger)
	go c.Run(ctx, cc.Options.Workers)
	return nil
}
