package nftables

import (
	"testing"

	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

// TestProxierWithNftables runs the whole proxy (informers, compiler,
// nftables) against a fake API (proxytest.RunProxier).
func TestProxierWithNftables(t *testing.T) {
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter)
	dumpOnFailure(t, n)
	proxytest.RunProxier(t, n, b, nil)
}
