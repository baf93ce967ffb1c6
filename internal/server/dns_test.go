package server

import (
	"testing"

	"github.com/skiff-sh/skiff/internal/agent"
)

func TestDNSHost(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"node IP when the server runs a node", Config{BindAddress: "127.0.0.1", Node: &agent.NodeConfig{NodeIP: "10.1.0.5"}}, "10.1.0.5"},
		{"one bind address without a node", Config{BindAddress: "127.0.0.1"}, "127.0.0.1"},
		{"all addresses without a node: the advertised one", Config{BindAddress: "0.0.0.0"}, "192.0.2.9"},
		{"no bind address", Config{}, "192.0.2.9"},
	}
	for _, tt := range tests {
		s := &Server{cfg: tt.cfg}
		if got := s.dnsHost("192.0.2.9"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
