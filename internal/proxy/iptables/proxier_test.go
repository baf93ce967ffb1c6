package iptables

import (
	"testing"

	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

// TestProxierWithIptables runs the whole proxy (informers, compiler,
// iptables) against a fake API (proxytest.RunProxier).
func TestProxierWithIptables(t *testing.T) {
	requireIptables(t)
	n := proxytest.New(t)
	b := newBackend(t, n, BridgeNetfilter, "")
	dumpOnFailure(t, n, DefaultProgram)
	proxytest.RunProxier(t, n, b, nil)
}
