package runc

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/skiff-sh/skiff/internal/cri"
)

// managedHostsHeader opens every hosts file the kubelet writes.
const managedHostsHeader = "# Kubernetes-managed hosts file.\n"

// hostsFile renders a pod's /etc/hosts as the kubelet does: the localhost
// entries, the pod's own address and name, then its HostAliases. A pod on
// the host network gets the node's hosts file (nodeHosts) instead of the
// generated entries.
func hostsFile(cfg cri.SandboxConfig, ips []string, clusterDomain string, nodeHosts []byte) []byte {
	var b bytes.Buffer
	if cfg.HostNetwork {
		b.WriteString(managedHostsHeader[:len(managedHostsHeader)-1] + " (host network)\n")
		b.Write(nodeHosts)
		if len(nodeHosts) > 0 && !bytes.HasSuffix(nodeHosts, []byte("\n")) {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString(managedHostsHeader)
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\n")
		b.WriteString("fe00::0\tip6-mcastprefix\n")
		b.WriteString("fe00::1\tip6-allnodes\n")
		b.WriteString("fe00::2\tip6-allrouters\n")
		for _, ip := range ips {
			if cfg.Subdomain != "" {
				fqdn := fmt.Sprintf("%s.%s.%s.svc.%s", cfg.Hostname, cfg.Subdomain, cfg.Namespace, clusterDomain)
				fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fqdn, cfg.Hostname)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, cfg.Hostname)
			}
		}
	}
	if len(cfg.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range cfg.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// resolvConf renders a pod's /etc/resolv.conf from its DNS config, or
// returns the node's when the pod has none.
func resolvConf(dns *cri.DNSConfig, nodeResolv []byte) []byte {
	if dns == nil {
		return nodeResolv
	}
	var b bytes.Buffer
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return b.Bytes()
}
