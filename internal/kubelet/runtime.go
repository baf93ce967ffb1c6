package kubelet

import "github.com/skiff-sh/skiff/internal/cri"

// The runtime contract lives in internal/cri, a leaf both the kubelet and
// the runtimes import; these aliases keep the kubelet's code short.
type (
	Runtime         = cri.Runtime
	RuntimeInfo     = cri.RuntimeInfo
	SandboxConfig   = cri.SandboxConfig
	PortMapping     = cri.PortMapping
	DNSConfig       = cri.DNSConfig
	HostAlias       = cri.HostAlias
	SandboxState    = cri.SandboxState
	Sandbox         = cri.Sandbox
	ContainerConfig = cri.ContainerConfig
	Mount           = cri.Mount
	Resources       = cri.Resources
	Security        = cri.Security
	EnvVar          = cri.EnvVar
	ContainerState  = cri.ContainerState
	Container       = cri.Container
	ImageService    = cri.ImageService
	RegistryAuth    = cri.RegistryAuth
)

// Sandbox and container states.
const (
	SandboxReady     = cri.SandboxReady
	SandboxNotReady  = cri.SandboxNotReady
	ContainerCreated = cri.ContainerCreated
	ContainerRunning = cri.ContainerRunning
	ContainerExited  = cri.ContainerExited
	ContainerUnknown = cri.ContainerUnknown
)
