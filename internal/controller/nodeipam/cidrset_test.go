package nodeipam

import (
	"net"
	"testing"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCIDRSet(t *testing.T) {
	s, err := NewCIDRSet(mustCIDR(t, "10.244.0.0/16"), 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Occupy(mustCIDR(t, "10.244.0.0/24")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.244.1.0/24", "10.244.2.0/24"} {
		got, err := s.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	s.Release(mustCIDR(t, "10.244.1.0/24"))
	if s.InUse() != 2 {
		t.Errorf("got %d in use, want 2", s.InUse())
	}
	if err := s.Occupy(mustCIDR(t, "10.245.0.0/24")); err == nil {
		t.Error("got no error occupying a subnet outside the cluster CIDR")
	}
	if err := s.Occupy(mustCIDR(t, "10.244.3.0/25")); err == nil {
		t.Error("got no error occupying a subnet of the wrong size")
	}
}

func TestCIDRSetFull(t *testing.T) {
	s, err := NewCIDRSet(mustCIDR(t, "10.0.0.0/30"), 31)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		n, err := s.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.String())
	}
	if got[0] != "10.0.0.0/31" || got[1] != "10.0.0.2/31" {
		t.Errorf("got %v, want [10.0.0.0/31 10.0.0.2/31]", got)
	}
	if _, err := s.Allocate(); err != ErrFull {
		t.Errorf("got %v, want ErrFull", err)
	}
}

func TestCIDRSetIPv6(t *testing.T) {
	s, err := NewCIDRSet(mustCIDR(t, "fd00::/48"), 64)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Allocate()
	n2, _ := s.Allocate()
	if n.String() != "fd00::/64" || n2.String() != "fd00:0:0:1::/64" {
		t.Errorf("got %s %s, want fd00::/64 fd00:0:0:1::/64", n, n2)
	}
}
