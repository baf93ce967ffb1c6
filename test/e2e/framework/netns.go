package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// netnsDir is where `ip netns` pins named network namespaces.
	netnsDir = "/run/netns"
	// vethPrefix names the host end of a node's veth pair; with an 8
	// character id it stays within the 15 characters of an interface name.
	vethPrefix = "ske"
	// subnetAttempts bounds the search for a 10.213.n.0/24 nobody uses.
	subnetAttempts = 20
	// ipTimeout bounds one `ip` invocation.
	ipTimeout = 10 * time.Second
)

// nodeNet is a network namespace joined to the host by a veth pair: the
// host end has 10.213.n.1/24, the namespace end ("eth0") 10.213.n.2/24 and
// the namespace's default route points at the host end. The host forwards
// nothing, so traffic from the namespace never leaves the machine.
type nodeNet struct {
	// Name is the namespace's name under /run/netns.
	Name string `json:"name"`
	// HostIf is the host end of the veth pair.
	HostIf string `json:"hostIf"`
	// Subnet is n in 10.213.n.0/24.
	Subnet int `json:"subnet"`
	// Host is m in the namespace end's address 10.213.n.m; 0 means 2. The
	// extra nodes of a multi-node cluster share the server's subnet on a
	// bridge (multinode.go).
	Host int `json:"host,omitempty"`
	// Inode identifies the namespace (the nsfs inode of its pin), so that
	// processes still in it can be found after a crash.
	Inode uint64 `json:"inode"`
}

// HostIP is the host end's address, where the host serves the namespace
// (the test registry).
func (n *nodeNet) HostIP() string { return fmt.Sprintf("10.213.%d.1", n.Subnet) }

// NodeIP is the namespace end's address: the node's IP.
func (n *nodeNet) NodeIP() string {
	host := n.Host
	if host == 0 {
		host = 2
	}
	return fmt.Sprintf("10.213.%d.%d", n.Subnet, host)
}

// Path is the namespace's pin, for nsenter --net.
func (n *nodeNet) Path() string { return filepath.Join(netnsDir, n.Name) }

// createNodeNet creates the namespace skiff-e2e-<id> and its veth pair on a
// 10.213.n.0/24 no host interface or route uses yet. Parallel test
// processes pick n at random, so they collide only when two pick the same n
// at the same moment. On error nothing is left behind.
func createNodeNet(ctx context.Context, id string) (*nodeNet, error) {
	n := &nodeNet{Name: dirPrefix + id, HostIf: vethPrefix + id}
	for attempt := 0; ; attempt++ {
		if attempt == subnetAttempts {
			return nil, fmt.Errorf("create node network: no free 10.213.n.0/24 after %d tries", subnetAttempts)
		}
		n.Subnet = 1 + rand.IntN(250)
		used, err := subnetInUse(ctx, n.Subnet)
		if err != nil {
			return nil, fmt.Errorf("create node network: %w", err)
		}
		if !used {
			break
		}
	}
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.HostIf, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"addr", "add", n.HostIP() + "/24", "dev", n.HostIf},
		{"link", "set", n.HostIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "addr", "add", n.NodeIP() + "/24", "dev", "eth0"},
		{"-n", n.Name, "link", "set", "eth0", "up"},
		{"-n", n.Name, "route", "add", "default", "via", n.HostIP()},
	}
	for _, args := range steps {
		if _, err := ipCommand(ctx, args...); err != nil {
			return nil, errors.Join(fmt.Errorf("create node network %s: %w", n.Name, err), n.remove())
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(n.Path(), &st); err != nil {
		return nil, errors.Join(fmt.Errorf("create node network %s: %w", n.Name, err), n.remove())
	}
	n.Inode = st.Ino
	return n, nil
}

// subnetInUse reports whether any host address or route is in
// 10.213.n.0/24.
func subnetInUse(ctx context.Context, n int) (bool, error) {
	prefix := fmt.Sprintf("10.213.%d.0/24", n)
	for _, args := range [][]string{
		{"-o", "addr", "show", "to", prefix},
		{"route", "show", "root", prefix},
	} {
		out, err := ipCommand(ctx, args...)
		if err != nil {
			return false, err
		}
		if strings.TrimSpace(out) != "" {
			return true, nil
		}
	}
	return false, nil
}

// remove deletes the veth pair and the namespace; either may already be
// gone. Deleting the pin frees the namespace once no process is left in it,
// and with it everything inside: the pod bridge, the pods' veths, the nft
// tables.
func (n *nodeNet) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*ipTimeout)
	defer cancel()
	var errs []error
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.HostIf)); err == nil {
		if _, err := ipCommand(ctx, "link", "del", n.HostIf); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(n.Path()); err == nil {
		if _, err := ipCommand(ctx, "netns", "del", n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove node network %s: %w", n.Name, err)
	}
	return nil
}

// ipCommand runs `ip args...` and returns its standard output.
func ipCommand(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ipTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
