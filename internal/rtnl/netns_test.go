package rtnl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dialNetns creates a network namespace, removed when the test ends, and
// dials rtnetlink in it.
func dialNetns(t *testing.T) (*Conn, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (network namespaces)")
		}
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs ip on PATH")
		}
		t.Skip("needs ip on PATH")
	}
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	ns := "skiff-rtnl-" + hex.EncodeToString(buf)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Dial(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ns
}

// ip runs ip(8) in the namespace ns, with a deadline.
func ip(t *testing.T, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestConnInNamespace drives every request against a real kernel, in a
// namespace of its own, and checks each against what `ip` reports.
func TestConnInNamespace(t *testing.T) {
	c, ns := dialNetns(t)

	if _, ok, err := c.LinkByName("skiff-none"); err != nil || ok {
		t.Fatalf("LinkByName of a missing link: got ok %v, err %v, want false, nil", ok, err)
	}

	for _, tc := range []struct {
		name string
		up   bool
	}{
		{name: "skiff-down0", up: false},
		{name: "skiff-up0", up: true},
	} {
		index, kind, err := c.EnsureAddressDevice(tc.name, tc.up)
		if err != nil {
			t.Fatalf("EnsureAddressDevice(%s): %v", tc.name, err)
		}
		if !IsAddressDevice(kind) {
			t.Errorf("EnsureAddressDevice(%s): got kind %q, want dummy or bridge", tc.name, kind)
		}
		l, ok, err := c.LinkByName(tc.name)
		if err != nil || !ok || l.Index != index || l.Kind != kind || l.Name != tc.name {
			t.Fatalf("LinkByName(%s): got %+v, %v, %v, want index %d kind %s", tc.name, l, ok, err, index, kind)
		}
		if l.Up() != tc.up {
			t.Errorf("%s: got up %v, want %v (ip: %s)", tc.name, l.Up(), tc.up, ip(t, ns, "link", "show", tc.name))
		}
		// A second call finds the device rather than failing.
		again, _, err := c.EnsureAddressDevice(tc.name, tc.up)
		if err != nil || again != index {
			t.Errorf("EnsureAddressDevice(%s) again: got %d, %v, want %d, nil", tc.name, again, err, index)
		}
		byIndex, err := c.LinkByIndex(index)
		if err != nil || byIndex.Name != tc.name {
			t.Errorf("LinkByIndex(%d): got %+v, %v, want %s", index, byIndex, err, tc.name)
		}
	}

	// A device of another kind is not taken over.
	ip(t, ns, "link", "add", "skiff-veth0", "type", "veth", "peer", "name", "skiff-veth1")
	if _, _, err := c.EnsureAddressDevice("skiff-veth0", false); err == nil || !strings.Contains(err.Error(), `"veth"`) {
		t.Errorf("EnsureAddressDevice over a veth: got %v, want an error naming the veth", err)
	}

	// The kind's own attributes are handed over undecoded.
	ip(t, ns, "link", "add", "skiff-vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", "10.78.0.1")
	vx, ok, err := c.LinkByName("skiff-vx0")
	if err != nil || !ok || vx.Kind != "vxlan" {
		t.Fatalf("LinkByName(skiff-vx0): got %+v, %v, %v, want a vxlan", vx, ok, err)
	}
	ad, err := netlink.NewAttributeDecoder(vx.InfoData)
	if err != nil {
		t.Fatal(err)
	}
	var vni uint32
	for ad.Next() {
		if ad.Type() == unix.IFLA_VXLAN_ID {
			vni = ad.Uint32()
		}
	}
	if vni != 42 {
		t.Errorf("skiff-vx0's IFLA_VXLAN_ID: got %d, want 42 (InfoData %x)", vni, vx.InfoData)
	}

	l, _, err := c.LinkByName("skiff-down0")
	if err != nil {
		t.Fatal(err)
	}
	host, network := netip.MustParsePrefix("10.96.0.10/32"), netip.MustParsePrefix("10.244.1.5/24")
	for _, p := range []netip.Prefix{host, network, host} {
		if err := c.AddAddr(l.Index, p); err != nil {
			t.Fatalf("AddAddr(%s): %v", p, err)
		}
	}
	got, err := c.Addrs(l.Index)
	if err != nil {
		t.Fatal(err)
	}
	want := []Addr{{Index: l.Index, Prefix: host}, {Index: l.Index, Prefix: network}}
	if !sameAddrs(got, want) {
		t.Errorf("Addrs(%d): got %v, want %v (ip: %s)", l.Index, got, want, ip(t, ns, "addr"))
	}
	all, err := c.Addrs(0)
	if err != nil || !sameAddrs(all, want) {
		t.Errorf("Addrs(0): got %v, %v, want %v (no other link has an IPv4 address)", all, err, want)
	}
	if other, err := c.Addrs(l.Index + 1000); err != nil || len(other) != 0 {
		t.Errorf("Addrs of another link: got %v, %v, want none", other, err)
	}

	// A deletion matches the prefix length; a missing address is no error.
	if err := c.DeleteAddr(l.Index, netip.MustParsePrefix("10.244.1.5/32")); err != nil {
		t.Errorf("DeleteAddr with another prefix length: %v", err)
	}
	if got, err := c.Addrs(l.Index); err != nil || !sameAddrs(got, want) {
		t.Errorf("Addrs after deleting another prefix length: got %v, %v, want %v", got, err, want)
	}
	for _, p := range []netip.Prefix{host, network, host} {
		if err := c.DeleteAddr(l.Index, p); err != nil {
			t.Errorf("DeleteAddr(%s): %v", p, err)
		}
	}
	if got, err := c.Addrs(l.Index); err != nil || len(got) != 0 {
		t.Errorf("Addrs after deleting: got %v, %v, want none", got, err)
	}

	for range 2 {
		if err := c.DeleteLink(l.Index); err != nil {
			t.Errorf("DeleteLink(%d): %v", l.Index, err)
		}
	}
	if _, ok, err := c.LinkByName("skiff-down0"); err != nil || ok {
		t.Errorf("LinkByName after DeleteLink: got ok %v, err %v, want false, nil", ok, err)
	}
}

func sameAddrs(got, want []Addr) bool {
	cmp := func(a, b Addr) int { return strings.Compare(a.Prefix.String(), b.Prefix.String()) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	return slices.Equal(got, want)
}
