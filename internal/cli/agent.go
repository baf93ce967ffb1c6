package cli

import (
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/nodenet"
)

type agentFlags struct {
	join     joinFlags
	runtime  string
	nodeName string
	nodeIP   string
	node     nodeFlags

	dataDir, registries, cgroupRoot, clusterCIDR, staticPods string
	evictionHard, clusterDNS, clusterDomain                  string
	flannelBackend                                           string
	disableProxy, disableNetworkPolicy                       bool
	proxyMode                                                string
	fileCheckFrequency                                       time.Duration
	syncFrequency                                            time.Duration
}

// joinFlags are the flags every command that joins a server shares.
type joinFlags struct {
	server, token, caFile string
}

func (j *joinFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&j.server, "server", "", "URL of the API server, https://HOST:6443")
	fl.StringVar(&j.token, "token", "", "join token, as in the server's DATA_DIR/server/token")
	fl.StringVar(&j.caFile, "ca-file", "", "CA of the server, for a token without the CA hash")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("token")
}

func (j *joinFlags) config() agent.JoinConfig {
	return agent.JoinConfig{Server: j.server, Token: j.token, CAFile: j.caFile}
}

// nodeFlags are the flags of the commands that register nodes.
type nodeFlags struct {
	labels, taints, logLevel string
}

// add registers the flags; nodes names the nodes in the help ("the Node").
func (n *nodeFlags) add(cmd *cobra.Command, nodes string) {
	fl := cmd.Flags()
	fl.StringVar(&n.labels, "node-labels", "", "labels to add to "+nodes+", k=v,k2=v2")
	fl.StringVar(&n.taints, "register-with-taints", "", "taints "+nodes+" registers with, k=v:Effect,k2:Effect")
	fl.StringVar(&n.logLevel, "log-level", "info", "debug, info, warn or error")
}

// parse returns the logger, labels and taints the flags ask for.
func (n *nodeFlags) parse(streams Streams) (*slog.Logger, map[string]string, []corev1.Taint, error) {
	logger, err := newLogger(streams, n.logLevel)
	if err != nil {
		return nil, nil, nil, err
	}
	labels, err := agent.ParseLabels(n.labels)
	if err != nil {
		return nil, nil, nil, err
	}
	taints, err := agent.ParseTaints(n.taints)
	if err != nil {
		return nil, nil, nil, err
	}
	return logger, labels, taints, nil
}

// commaList splits a comma-separated flag value, dropping empty items.
func commaList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func newLogger(streams Streams, levelText string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelText)); err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: level})), nil
}

func newAgentCommand(streams Streams) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node that joins a server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, labels, taints, err := f.node.parse(streams)
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{
				Join: f.join.config(), Runtime: f.runtime, NodeName: f.nodeName, NodeIP: f.nodeIP,
				Labels: labels, Taints: taints, Logger: logger,
				DataDir: f.dataDir, RegistriesFile: f.registries, CgroupRoot: f.cgroupRoot, ClusterCIDR: f.clusterCIDR, StaticPodPath: f.staticPods,
				FileCheckFrequency: f.fileCheckFrequency, SyncFrequency: f.syncFrequency, EvictionHard: f.evictionHard,
				ClusterDNS: commaList(f.clusterDNS), ClusterDomain: f.clusterDomain, FlannelBackend: f.flannelBackend,
				DisableProxy: f.disableProxy, ProxyMode: f.proxyMode, DisableNetworkPolicy: f.disableNetworkPolicy,
			})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f.join.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.runtime, "runtime", agent.RuntimeRunc, "container runtime: runc, or simulated (containers that only pretend to run, for scale tests)")
	fl.StringVar(&f.dataDir, "data-dir", agent.DefaultDataDir, "directory of images, containers and pod volumes")
	fl.StringVar(&f.registries, "private-registry", agent.DefaultRegistriesFile, "registries.yaml: registry mirrors and credentials")
	fl.StringVar(&f.cgroupRoot, "cgroup-root", agent.DefaultCgroupRoot, "cgroup the node's pods are created under")
	fl.DurationVar(&f.fileCheckFrequency, "file-check-frequency", kubelet.DefaultFileCheckFrequency, "how often the static pod directory is read")
	fl.DurationVar(&f.syncFrequency, "sync-frequency", kubelet.DefaultSyncFrequency, "how often running pods are synced again without an event, which refreshes their configMap, secret and downward API volumes")
	fl.StringVar(&f.evictionHard, "eviction-hard", agent.DefaultEvictionHard, "hard eviction thresholds: the node reports pressure and evicts pods below them")
	fl.StringVar(&f.staticPods, "pod-manifest-path", agent.DefaultStaticPodPath, "directory of static pod manifests (\"-\" for none)")
	fl.StringVar(&f.clusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "pod network of the whole cluster, as the server's --cluster-cidr")
	fl.StringVar(&f.clusterDNS, "cluster-dns", "10.96.0.10", "cluster DNS server IPs, comma-separated (the server's --cluster-dns); pods with dnsPolicy ClusterFirst use them")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the cluster DNS domain, as the server's --cluster-domain")
	fl.BoolVar(&f.disableProxy, "disable-kube-proxy", false, "run no service proxy on this node")
	fl.BoolVar(&f.disableNetworkPolicy, "disable-network-policy", false, "enforce no NetworkPolicy on this node")
	fl.StringVar(&f.proxyMode, "proxy-mode", agent.DefaultProxyMode, "service proxy backend: nftables, iptables (iptables-restore, for older kernels) or userspace (a Go proxy, no kernel NAT)")
	fl.StringVar(&f.flannelBackend, "flannel-backend", string(nodenet.DefaultBackend), "how pods reach pods on other nodes: host-gw (nodes on one L2 network), vxlan or none; as the server's")
	fl.StringVar(&f.nodeName, "node-name", "", "name of the Node (default: the host name)")
	fl.StringVar(&f.nodeIP, "node-ip", "", "the node's InternalIP (default: first non-loopback IPv4)")
	f.node.add(cmd, "the Node")
	return cmd
}
