package controllermanager

import (
	"context"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
)

// startGarbageCollector runs the garbage collector over every resource the
// server serves; it keeps its own metadata informers.
func startGarbageCollector(ctx context.Context, cc *ControllerContext) error {
	disco := cc.Client.Discovery()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	gc := garbagecollector.New(cc.Metadata, disco, mapper, cc.Logger)
	go gc.Run(ctx, cc.Options.Workers)
	return nil
}
