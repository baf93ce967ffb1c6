// Package cri is the contract between the node agent and container
// runtimes: the interfaces the kubelet calls and the values it passes, as
// upstream's Container Runtime Interface is. It is a shared leaf, so
// runtimes (internal/runc, internal/kubelet/sim) and the image store
// implement it without importing the kubelet.
package cri

import (
	"context"
	"io"
	"net"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Runtime is what the kubelet needs from a container runtime.
// internal/kubelet/sim implements it in memory and internal/runc with real
// processes.
//
// Every ID a Runtime hands out must survive a restart of the process that
// holds the Runtime: after a restart, ListSandboxes and ListContainers
// report what is still there, and the kubelet adopts it without starting
// anything again. Methods must be safe for concurrent use; the kubelet
// never acts on the same pod from two goroutines at once.
type Runtime interface {
	// Info names the runtime and its version, for the Node's nodeInfo and
	// the scheme of container IDs ("sim://...", "runc://...").
	Info(ctx context.Context) (RuntimeInfo, error)

	// RunSandbox creates and starts the pod-level environment (network
	// namespace, pod IP) and returns its ID.
	RunSandbox(ctx context.Context, cfg SandboxConfig) (string, error)
	// StopSandbox stops a sandbox whose containers were stopped; the pod
	// IP is released. Stopping a stopped or missing sandbox is not an error.
	StopSandbox(ctx context.Context, id string) error
	// RemoveSandbox removes a sandbox and any containers left in it.
	// Removing a missing sandbox is not an error.
	RemoveSandbox(ctx context.Context, id string) error

	// CreateContainer creates a container in a sandbox without starting it.
	CreateContainer(ctx context.Context, sandboxID string, cfg ContainerConfig) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, id string) error
	// StopContainer asks the container to stop (SIGTERM) and kills it
	// (SIGKILL) when it has not exited after grace. It returns once the
	// container has exited. Stopping an exited container is not an error.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer removes an exited container. Removing a missing
	// container is not an error.
	RemoveContainer(ctx context.Context, id string) error

	// ListSandboxes reports every sandbox the runtime holds.
	ListSandboxes(ctx context.Context) ([]Sandbox, error)
	// ListContainers reports every container the runtime holds, running or
	// not.
	ListContainers(ctx context.Context) ([]Container, error)

	// Exec runs cmd in a running container with the given streams (any
	// may be nil) and returns its exit code once it ends or ctx does; err
	// is for the exec itself failing, not the command. tty gives the
	// command a terminal.
	Exec(ctx context.Context, containerID string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error)
}

// RuntimeInfo identifies a runtime.
type RuntimeInfo struct {
	// Name is the scheme of container IDs in pod status, e.g. "sim".
	Name string
	// Version is reported as the node's containerRuntimeVersion
	// "<Name>://<Version>".
	Version string
}

// SandboxConfig describes the sandbox of one pod.
type SandboxConfig struct {
	PodUID    types.UID
	Namespace string
	Name      string
	// Attempt counts sandboxes created for this pod before this one.
	Attempt  uint32
	Hostname string
	// HostNetwork pods share the node's network and get the node's IP.
	HostNetwork bool
	HostIP      string
	// PodCIDR is the node's pod range the sandbox's IP comes from; empty
	// when the node has none yet.
	PodCIDR string
	Labels  map[string]string

	// PortMappings are the pod's containers' hostPorts, set up by the
	// network (CNI portmap) for pods that are not on the host network.
	PortMappings []PortMapping
	// DNS is written to the pod's /etc/resolv.conf; nil means the node's.
	DNS *DNSConfig
	// HostAliases and the pod's own name and IP go into /etc/hosts.
	HostAliases []HostAlias
	// Subdomain, with Hostname, gives the pod's fully qualified name in
	// /etc/hosts ("<hostname>.<subdomain>.<ns>.svc.<domain>").
	Subdomain string
	// HostIPC and HostPID share the node's IPC and PID namespaces.
	HostIPC, HostPID bool
	// ShareProcessNamespace puts the pod's containers in one PID namespace.
	ShareProcessNamespace bool
	// CgroupParent is the pod's cgroup, relative to the runtime's root,
	// e.g. "kubepods/burstable/pod<uid>".
	CgroupParent string
	// Sysctls are namespaced sysctls set in the sandbox.
	Sysctls map[string]string
}

// PortMapping is one hostPort of a pod.
type PortMapping struct {
	// Protocol is "TCP", "UDP" or "SCTP".
	Protocol      string
	ContainerPort int32
	HostPort      int32
	// HostIP binds the host port to one address; empty means all.
	HostIP string
}

// DNSConfig is the content of a pod's /etc/resolv.conf.
type DNSConfig struct {
	Servers  []string
	Searches []string
	// Options are "ndots:5" style resolver options.
	Options []string
}

// HostAlias is one extra /etc/hosts line.
type HostAlias struct {
	IP        string
	Hostnames []string
}

// SandboxState is the state of a sandbox.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "Ready"
	SandboxNotReady SandboxState = "NotReady"
)

// Sandbox is a sandbox as the runtime reports it.
type Sandbox struct {
	ID        string
	PodUID    types.UID
	Namespace string
	Name      string
	Attempt   uint32
	State     SandboxState
	// IPs are the pod's addresses, the primary first.
	IPs       []string
	CreatedAt time.Time
}

// ContainerConfig describes one container to create. Fields resolved by
// the kubelet (environment, later mounts and security settings) are given
// as values, so a runtime needs no API access.
type ContainerConfig struct {
	// Name is the container's name in the pod spec.
	Name string
	// Attempt counts earlier containers of this name in this pod; it is
	// the container's restartCount and must be reported back by
	// ListContainers, so counts survive a restart of the kubelet.
	Attempt    uint32
	Image      string
	Command    []string
	Args       []string
	Env        []EnvVar
	WorkingDir string
	// Labels are stored with the container and reported back; the kubelet
	// uses them to find the pod and the container's spec hash.
	Labels map[string]string

	// Mounts are the container's volumes, resolved by the kubelet to
	// directories or files on the node.
	Mounts []Mount
	// Resources become the container's cgroup limits.
	Resources Resources
	// Security is the container's effective security context (the pod's
	// settings with the container's overrides applied).
	Security Security
	// TTY and Stdin give the container a terminal and an open stdin.
	TTY, Stdin bool
	// StdinOnce closes the container's stdin when the first client that
	// attached to it detaches.
	StdinOnce bool
	// TerminationMessagePath is where the container may write its
	// termination message; empty means none.
	TerminationMessagePath string
}

// Mount is one bind mount into a container.
type Mount struct {
	// ContainerPath is where the mount appears in the container.
	ContainerPath string
	// HostPath is the node's file or directory.
	HostPath string
	ReadOnly bool
	// Propagation is "private" (default), "rslave" (HostToContainer) or
	// "rshared" (Bidirectional).
	Propagation string
}

// Resources are a container's cgroup settings, as the kubelet derives them
// from requests and limits. Zero means unset.
type Resources struct {
	// CPUShares is cgroup v1 cpu.shares (v2 weight is derived from it).
	CPUShares uint64
	// CPUQuota and CPUPeriod are the CFS quota in microseconds per period.
	CPUQuota  int64
	CPUPeriod uint64
	// MemoryLimit is in bytes.
	MemoryLimit int64
	// PidsLimit caps the number of processes.
	PidsLimit int64
	// OOMScoreAdj is the container processes' oom_score_adj.
	OOMScoreAdj int
}

// Security is a container's resolved security settings.
type Security struct {
	RunAsUser          *int64
	RunAsGroup         *int64
	SupplementalGroups []int64
	Privileged         bool
	// CapAdd and CapDrop are capability names without "CAP_", as in the
	// pod spec ("NET_ADMIN", or "ALL" in CapDrop).
	CapAdd, CapDrop        []string
	ReadOnlyRootFilesystem bool
	// NoNewPrivileges is allowPrivilegeEscalation: false.
	NoNewPrivileges bool
}

// EnvVar is one resolved environment variable.
type EnvVar struct {
	Name, Value string
}

// ContainerState is the state of a container.
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "Created"
	ContainerRunning ContainerState = "Running"
	ContainerExited  ContainerState = "Exited"
	ContainerUnknown ContainerState = "Unknown"
)

// Container is a container as the runtime reports it.
type Container struct {
	ID        string
	SandboxID string
	PodUID    types.UID
	Name      string
	Attempt   uint32
	Image     string
	// ImageID is the resolved image reference, e.g. "nginx@sha256:...".
	ImageID  string
	State    ContainerState
	ExitCode int32
	// Reason and Message explain an exit the runtime knows more about
	// (OOMKilled); empty otherwise.
	Reason     string
	Message    string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	Labels     map[string]string
	// LogPath is the container's log file in the CRI log format; empty
	// when the runtime keeps no logs.
	LogPath string
}

// ImageService is what the kubelet needs from an image store. It is
// separate from Runtime so a runtime can share one store with the CLI
// (`skiff images`).
type ImageService interface {
	// PullImage makes image present and returns its image ID (the
	// "repo@sha256:..." digest reference reported in container status).
	// Progress, when not nil, is called with human-readable progress
	// lines, at most a few a second.
	PullImage(ctx context.Context, image string, auth []RegistryAuth, progress func(string)) (string, error)
	// ImageStatus reports whether image is present, and its ID.
	ImageStatus(ctx context.Context, image string) (id string, present bool, err error)
}

// RegistryAuth is one set of credentials from an imagePullSecret.
type RegistryAuth struct {
	// Server is the registry host ("registry.example:5000"); credentials
	// apply to images on it.
	Server   string
	Username string
	Password string
	// Auth is the base64 "user:password" form of a docker config entry,
	// used when Username is empty.
	Auth string
	// IdentityToken and RegistryToken are OAuth tokens.
	IdentityToken string
	RegistryToken string
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Attacher is implemented by runtimes that can connect a client to a
// running container's main process, as `kubectl attach` does. The kubelet
// checks for it; a runtime without it answers attach requests with an
// error.
type Attacher interface {
	// Attach copies stdin (nil for none) to the container's stdin when the
	// container was created with Stdin, and the container's output from
	// now on to stdout and stderr (either may be nil; a TTY container's
	// output is all on stdout). Sizes received on resize (nil for none)
	// resize a TTY container's terminal. It returns when the container's
	// output ends (the container exited), when ctx ends, or when stdin
	// ends and no output is wanted; detaching leaves the container
	// running.
	Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan TerminalSize) error
}

// SandboxDialer is implemented by runtimes that can open connections
// inside a sandbox's network namespace. The kubelet reaches a pod's ports
// through it for `kubectl port-forward`, as upstream's runtimes do, so a
// port bound to the pod's own localhost is reachable too.
type SandboxDialer interface {
	// DialSandbox connects to 127.0.0.1:port (TCP) in the sandbox's
	// network namespace (the node's for a host-network pod).
	DialSandbox(ctx context.Context, sandboxID string, port uint16) (net.Conn, error)
}
