package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/skiff-sh/skiff/internal/cri"
)

const (
	// specVersion is the CNI spec version of the generated configuration:
	// the newest that Debian 12's containernetworking-plugins 1.1.1
	// support (`CNI_COMMAND=VERSION /usr/lib/cni/bridge`).
	specVersion = "1.0.0"
	// networkName names the pod network. It keys host-local's data
	// directory (StateDir/ipam/skiff) and libcni's cache entries.
	networkName = "skiff"
	// loopbackName names the separate network that brings up lo.
	loopbackName = "skiff-loopback"
	// podIfName is the pod's interface.
	podIfName = "eth0"
	// natTable is the nftables table (family ip) holding the masquerade
	// rule.
	natTable = "skiff-nat"
)

// netConf is everything the generated configuration depends on.
type netConf struct {
	bridge  string
	subnet  string
	mtu     int
	ipamDir string
	// portmap adds the portmap plugin, for pods with hostPorts.
	portmap bool
}

type bridgePlugin struct {
	Type        string    `json:"type"`
	Bridge      string    `json:"bridge"`
	IsGateway   bool      `json:"isGateway"`
	IPMasq      bool      `json:"ipMasq"`
	HairpinMode bool      `json:"hairpinMode"`
	MTU         int       `json:"mtu,omitempty"`
	IPAM        hostLocal `json:"ipam"`
}

type hostLocal struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes"`
	DataDir string        `json:"dataDir"`
}

type ipamRange struct {
	Subnet string `json:"subnet"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type portmapPlugin struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

type confList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

// conflist is the pod network's CNI configuration list: bridge with
// host-local IPAM, then, for pods with hostPorts (c.portmap), portmap.
// Pods without hostPorts skip portmap: one plugin process less per pod
// set up and torn down.
//
// ipMasq is off because the masquerade rule is skiff's own (it must spare
// pod-to-pod traffic across nodes, which the bridge plugin's rule, keyed on
// the node's subnet, would not). hairpinMode lets a pod reach itself through
// a Service or hostPort. portmap's snat masquerades hairpin and localhost
// connections to a hostPort, without which their replies would not find
// their way back.
func conflist(c netConf) ([]byte, error) {
	if c.bridge == "" || c.subnet == "" || c.ipamDir == "" {
		return nil, fmt.Errorf("cni config: bridge %q, subnet %q and ipam dir %q are all required", c.bridge, c.subnet, c.ipamDir)
	}
	l := confList{
		CNIVersion: specVersion,
		Name:       networkName,
		Plugins: []any{
			bridgePlugin{
				Type:        "bridge",
				Bridge:      c.bridge,
				IsGateway:   true,
				IPMasq:      false,
				HairpinMode: true,
				MTU:         c.mtu,
				IPAM: hostLocal{
					Type:    "host-local",
					Ranges:  [][]ipamRange{{{Subnet: c.subnet}}},
					Routes:  []ipamRoute{{Dst: "0.0.0.0/0"}},
					DataDir: c.ipamDir,
				},
			},
		},
	}
	if c.portmap {
		l.Plugins = append(l.Plugins, portmapPlugin{
			Type:         "portmap",
			Capabilities: map[string]bool{"portMappings": true},
			SNAT:         true,
		})
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	return b, nil
}

// loopbackConf is the configuration of the network that brings up lo in a
// pod.
func loopbackConf() []byte {
	return []byte(`{"cniVersion":"` + specVersion + `","name":"` + loopbackName + `","type":"loopback"}`)
}

// portMapEntry is one entry of the portMappings capability, as the portmap
// plugin reads it.
type portMapEntry struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// portMappings converts a pod's hostPorts to the portMappings capability.
// Entries without a hostPort are no hostPorts and are dropped; the protocol
// is lower case, as portmap expects, and TCP when unset.
func portMappings(ports []cri.PortMapping) []portMapEntry {
	var out []portMapEntry
	for _, p := range ports {
		if p.HostPort <= 0 || p.ContainerPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, portMapEntry{
			HostPort:      int(p.HostPort),
			ContainerPort: int(p.ContainerPort),
			Protocol:      proto,
			HostIP:        p.HostIP,
		})
	}
	return out
}

// masqueradeScript is the nft script that (re)creates the masquerade table:
// traffic from the cluster's pod range to anything outside it leaves with
// the node's address; pod-to-pod traffic, on this node or across nodes,
// keeps the pod's. "add" before "delete" makes the delete succeed when the
// table is missing, and nft -f applies the whole script in one transaction,
// so the rule is never absent while it is replaced.
func masqueradeScript(clusterCIDR string) string {
	return "add table ip " + natTable + "\n" +
		"delete table ip " + natTable + "\n" +
		"table ip " + natTable + " {\n" +
		"\tchain postrouting {\n" +
		"\t\ttype nat hook postrouting priority srcnat; policy accept;\n" +
		"\t\tip saddr " + clusterCIDR + " ip daddr != " + clusterCIDR + " masquerade\n" +
		"\t}\n" +
		"}\n"
}

// deleteScript is the nft script that removes the masquerade table, also
// when it does not exist.
func deleteScript() string {
	return "add table ip " + natTable + "\ndelete table ip " + natTable + "\n"
}

// parseIPv4Prefix parses an IPv4 CIDR in its canonical form (no host bits
// set).
func parseIPv4Prefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q: %w", what, s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q: only IPv4 is supported", what, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %q: host bits set, want %s", what, s, p.Masked())
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%s %q: too small, want /30 or larger", what, s)
	}
	return p, nil
}

// checkPodCIDR validates the node's podCIDR against the cluster's range:
// the masquerade rule spares only the cluster range, so a podCIDR outside
// it would have its pod-to-pod traffic masqueraded.
func checkPodCIDR(podCIDR string, cluster netip.Prefix) (netip.Prefix, error) {
	p, err := parseIPv4Prefix("pod CIDR", podCIDR)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() < cluster.Bits() || !cluster.Contains(p.Addr()) {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %q is not inside the cluster CIDR %q", podCIDR, cluster)
	}
	return p, nil
}

// ipamDir is host-local's data directory under the state dir.
func ipamDir(stateDir string) string { return filepath.Join(stateDir, "ipam") }

// cacheDir is libcni's cache directory under the state dir.
func cacheDir(stateDir string) string { return filepath.Join(stateDir, "cache") }
