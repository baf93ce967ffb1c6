package iptables

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

// manyServices returns n Service ports of 5 endpoints each, the first
// 2,000 with NodePorts (the nftables backend's benchmark input).
func manyServices(n int) *proxy.Ruleset {
	rs := &proxy.Ruleset{NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.77.1")}}
	for i := range n {
		var eps []proxy.Endpoint
		for j := range 5 {
			eps = append(eps, proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i%250 + j)}), Port: 8080})
		}
		sp := port(fmt.Sprintf("svc-%05d", i), "10.96.0.1", uint16(30000+i%2000), eps...)
		sp.ClusterIP = netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(i%250 + 1)})
		if i >= 2000 {
			sp.NodePort = 0
		}
		rs.Services = append(rs.Services, sp)
	}
	return rs
}

// BenchmarkSync measures a full sync of 10,000 Service ports of 5
// endpoints, and an incremental sync changing one of them, in a network
// namespace of its own (root):
//
//	go test -run '^$' -bench Sync -benchtime 3x ./internal/proxy/iptables/
//
// BenchmarkRender measures the pure part alone.
func BenchmarkSync(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	ns := fmt.Sprintf("skpxbench%d", time.Now().UnixNano()%1e9)
	if err := exec.Command("ip", "netns", "add", ns).Run(); err != nil {
		b.Skipf("needs root and ip: %v", err)
	}
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, prog := range programs() {
		b.Run(prog, func(b *testing.B) {
			be, err := New(Config{Program: prog, NetNS: proxytest.NSPath(ns), ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
				Bridge: BridgeMasquerade, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cleanup(context.Background(), proxytest.NSPath(ns), prog) })
			benchSync(b, be)
		})
	}
}

func benchSync(b *testing.B, be *Backend) {
	rs := manyServices(10000)
	ctx := context.Background()
	b.Run("full-10000x5", func(b *testing.B) {
		for b.Loop() {
			be.applied = nil
			if _, err := be.Sync(ctx, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-change-of-10000", func(b *testing.B) {
		be.applied = nil
		if _, err := be.Sync(ctx, rs); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			next := *rs
			next.Services = append([]*proxy.ServicePort(nil), rs.Services...)
			changed := *next.Services[42]
			changed.ClusterEndpoints = changed.ClusterEndpoints[:1+i%4]
			next.Services[42] = &changed
			if res, err := be.Sync(ctx, &next); err != nil || res.Changed != 1 {
				b.Fatalf("got %+v, %v", res, err)
			}
		}
	})
}

// BenchmarkRender measures computing the restore input alone (no root).
func BenchmarkRender(b *testing.B) {
	rs := manyServices(10000)
	b.Run("full-10000x5", func(b *testing.B) {
		for b.Loop() {
			render(nil, &found{}, rs, testConfig)
		}
	})
	b.Run("one-change-of-10000", func(b *testing.B) {
		_, applied, _ := render(nil, &found{}, rs, testConfig)
		next := *rs
		next.Services = append([]*proxy.ServicePort(nil), rs.Services...)
		changed := *next.Services[42]
		changed.ClusterEndpoints = changed.ClusterEndpoints[:2]
		next.Services[42] = &changed
		for b.Loop() {
			render(applied, nil, &next, testConfig)
		}
	})
}
