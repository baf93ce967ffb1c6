package cli

import (
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/nodenet"
	"github.com/skiff-sh/skiff/internal/server"
)

type serverFlags struct {
	dataDir          string
	bindAddress      string
	securePort       int
	advertiseAddress string
	kubeconfig       string
	etcdEndpoints    string
	etcdCA           string
	etcdCert         string
	etcdKey          string
	etcdClientPort   int
	etcdPeerPort     int
	serviceCIDR      string
	nodePortRange    string
	maxInFlight      int
	tokenAuthFile    string
	logLevel         string

	// Cluster DNS.
	clusterDomain, clusterDNS string
	dnsPort                   int
	dnsUpstreams, resolvConf  string

	disableControllers     []string
	disableScheduler       bool
	profiling              bool
	nodeMonitorGracePeriod time.Duration
	clusterCIDR            string
	nodeCIDRMaskSize       int
	lbAddressPool          string

	// The server's own node.
	disableAgent                bool
	nodeName, nodeIP            string
	nodeLabels, nodeTaints      string
	privateRegistry, cgroupRoot string
	staticPods                  string
	fileCheckFrequency          time.Duration
	syncFrequency               time.Duration
	evictionHard                string
	flannelBackend              string
	disableProxy                bool
	proxyMode                   string
	disableNetworkPolicy        bool
}

func newServerCommand(streams Streams) *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: the Kubernetes API on etcd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: level}))
			// client-go's packages (leader election, informers) log through
			// klog: send those lines to the same structured log.
			klog.SetSlogLogger(logger)
			var endpoints []string
			if f.etcdEndpoints != "" {
				endpoints = strings.Split(f.etcdEndpoints, ",")
			}
			var node *agent.NodeConfig
			if !f.disableAgent {
				labels, err := agent.ParseLabels(f.nodeLabels)
				if err != nil {
					return err
				}
				taints, err := agent.ParseTaints(f.nodeTaints)
				if err != nil {
					return err
				}
				node = &agent.NodeConfig{NodeName: f.nodeName, NodeIP: f.nodeIP, Labels: labels, Taints: taints,
					RegistriesFile: f.privateRegistry, CgroupRoot: f.cgroupRoot, StaticPodPath: f.staticPods,
					FileCheckFrequency: f.fileCheckFrequency, SyncFrequency: f.syncFrequency, EvictionHard: f.evictionHard,
					ClusterDNS: commaList(f.clusterDNS), ClusterDomain: f.clusterDomain, FlannelBackend: f.flannelBackend,
					DisableProxy: f.disableProxy, ProxyMode: f.proxyMode, DisableNetworkPolicy: f.disableNetworkPolicy}
			}
			var upstreams []string
			if f.dnsUpstreams != "" {
				upstreams = strings.Split(f.dnsUpstreams, ",")
			}
			s, err := server.New(server.Config{
				ClusterDomain:      f.clusterDomain,
				ClusterDNS:         f.clusterDNS,
				DNSPort:            f.dnsPort,
				DNSUpstreams:       upstreams,
				ResolvConf:         f.resolvConf,
				Node:               node,
				DataDir:            f.dataDir,
				BindAddress:        f.bindAddress,
				SecurePort:         f.securePort,
				AdvertiseAddress:   f.advertiseAddress,
				KubeconfigPath:     f.kubeconfig,
				EtcdEndpoints:      endpoints,
				EtcdTLS:            etcd.TLSFiles{CAFile: f.etcdCA, CertFile: f.etcdCert, KeyFile: f.etcdKey},
				EtcdClientPort:     f.etcdClientPort,
				EtcdPeerPort:       f.etcdPeerPort,
				ServiceCIDR:        f.serviceCIDR,
				NodePortRange:      f.nodePortRange,
				MaxInFlight:        f.maxInFlight,
				TokenAuthFile:      f.tokenAuthFile,
				DisableControllers: f.disableControllers,
				DisableScheduler:   f.disableScheduler,
				Profiling:          f.profiling,
				Controllers: controllermanager.Options{
					NodeMonitorGracePeriod: f.nodeMonitorGracePeriod,
					ClusterCIDR:            f.clusterCIDR,
					NodeCIDRMaskSize:       f.nodeCIDRMaskSize,
					LBAddressPool:          commaList(f.lbAddressPool),
				},
				Logger: logger,
			})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "/var/lib/skiff", "directory for etcd data, certificates and state")
	fl.StringVar(&f.bindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	fl.IntVar(&f.securePort, "secure-port", 6443, "HTTPS port of the API server")
	fl.StringVar(&f.advertiseAddress, "advertise-address", "", "address published in the kubernetes Service endpoints (default: first non-loopback IPv4)")
	fl.StringVar(&f.kubeconfig, "write-kubeconfig", DefaultKubeconfig, "where to write the admin kubeconfig (mode 0600); empty to skip")
	fl.StringVar(&f.etcdEndpoints, "etcd-endpoints", "", "comma-separated URLs of an external etcd cluster; empty runs embedded etcd")
	fl.StringVar(&f.etcdCA, "etcd-cafile", "", "CA file to verify an external etcd")
	fl.StringVar(&f.etcdCert, "etcd-certfile", "", "client certificate for an external etcd")
	fl.StringVar(&f.etcdKey, "etcd-keyfile", "", "client key for an external etcd")
	fl.IntVar(&f.etcdClientPort, "etcd-client-port", 2379, "client port of the embedded etcd on 127.0.0.1")
	fl.IntVar(&f.etcdPeerPort, "etcd-peer-port", 2380, "peer port of the embedded etcd on 127.0.0.1")
	fl.StringVar(&f.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "range Service cluster IPs are allocated from")
	fl.StringVar(&f.nodePortRange, "service-node-port-range", "30000-32767", "range NodePorts are allocated from")
	fl.IntVar(&f.maxInFlight, "max-requests-inflight", 400, "concurrent non-watch requests before the server answers 429")
	fl.StringVar(&f.tokenAuthFile, "token-auth-file", "", "static bearer tokens, one 'token,user,uid,\"group1,group2\"' line each")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "DNS zone of the cluster")
	fl.StringVar(&f.clusterDNS, "cluster-dns", "10.96.0.10", "cluster IP of the kube-system/kube-dns Service")
	fl.IntVar(&f.dnsPort, "dns-port", 53, "port the cluster DNS server listens on (UDP and TCP) at the bind address or the node IP; 0 runs none")
	fl.StringVar(&f.dnsUpstreams, "dns-upstreams", "", "comma-separated host:port resolvers for names outside the cluster zone (default: the nameservers of --resolv-conf)")
	fl.StringVar(&f.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolver configuration whose nameservers cluster DNS forwards to")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringSliceVar(&f.disableControllers, "disable-controllers", nil, "controllers not to run, comma-separated, or * for all (known: "+strings.Join(controllermanager.Names(), ", ")+")")
	fl.BoolVar(&f.disableScheduler, "disable-scheduler", false, "run no scheduler")
	fl.BoolVar(&f.profiling, "profiling", true, "serve Go profiles at /debug/pprof/ to authorized clients")
	fl.DurationVar(&f.nodeMonitorGracePeriod, "node-monitor-grace-period", 50*time.Second, "how long a node may miss heartbeats before it is marked NotReady")
	fl.StringVar(&f.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network; each node gets a podCIDR from it")
	fl.IntVar(&f.nodeCIDRMaskSize, "node-cidr-mask-size", 24, "prefix length of each node's podCIDR")
	fl.StringVar(&f.lbAddressPool, "lb-address-pool", "", "comma-separated IPv4 CIDRs and first-last ranges LoadBalancer Services get an address from (default: none, they get the nodes' addresses)")
	fl.BoolVar(&f.disableAgent, "disable-agent", false, "run no node on this server (it is then the control plane only)")
	fl.StringVar(&f.nodeName, "node-name", "", "name of this server's Node (default: the host name)")
	fl.StringVar(&f.nodeIP, "node-ip", "", "this server's node's InternalIP (default: first non-loopback IPv4)")
	fl.StringVar(&f.nodeLabels, "node-labels", "", "labels to add to this server's Node, k=v,k2=v2")
	fl.StringVar(&f.nodeTaints, "register-with-taints", "", "taints this server's Node registers with, k=v:Effect,k2:Effect")
	fl.StringVar(&f.privateRegistry, "private-registry", agent.DefaultRegistriesFile, "registries.yaml: registry mirrors and credentials")
	fl.StringVar(&f.cgroupRoot, "cgroup-root", agent.DefaultCgroupRoot, "cgroup the node's pods are created under")
	fl.DurationVar(&f.fileCheckFrequency, "file-check-frequency", kubelet.DefaultFileCheckFrequency, "how often the static pod directory is read")
	fl.DurationVar(&f.syncFrequency, "sync-frequency", kubelet.DefaultSyncFrequency, "how often running pods are synced again without an event, which refreshes their configMap, secret and downward API volumes")
	fl.StringVar(&f.evictionHard, "eviction-hard", agent.DefaultEvictionHard, "hard eviction thresholds of this server's node: it reports pressure and evicts pods below them")
	fl.StringVar(&f.staticPods, "pod-manifest-path", agent.DefaultStaticPodPath, "directory of static pod manifests of this server's node (\"-\" for none)")
	fl.BoolVar(&f.disableProxy, "disable-kube-proxy", false, "run no service proxy on the server's own node")
	fl.BoolVar(&f.disableNetworkPolicy, "disable-network-policy", false, "enforce no NetworkPolicy on the server's own node")
	fl.StringVar(&f.proxyMode, "proxy-mode", agent.DefaultProxyMode, "service proxy backend of the server's own node: nftables, iptables (iptables-restore, for older kernels) or userspace (a Go proxy, no kernel NAT)")
	fl.StringVar(&f.flannelBackend, "flannel-backend", string(nodenet.DefaultBackend), "how pods reach pods on other nodes: host-gw (nodes on one L2 network), vxlan or none; every agent must use the same")
	return cmd
}
