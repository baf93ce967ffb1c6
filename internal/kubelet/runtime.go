package kubelet

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Runtime is what the kubelet needs from a container runtime. It is
// declared here, by its consumer; internal/kubelet/sim implements it in
// memory and internal/runc will implement it with real processes.
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
}
