// Package runc runs pods' containers with runc, overlayfs, Linux
// namespaces and cgroups, each container supervised by conmon. It
// implements cri.Runtime and cri.Attacher; the kubelet drives it.
//
// # Sandboxes
//
// A sandbox has no infra container. RunSandbox unshares the pod's network,
// IPC and UTS namespaces on a locked OS thread that is then left to die,
// after bind mounting them onto files under RunDir/ns/<sandbox> (as
// CRI-O's pinns does); loopback is brought up in the new network
// namespace and the hostname is set. Host-network and host-IPC pods use
// the node's namespaces instead. A pod that shares its process namespace
// gets `catatonit -P` (pause mode), started in its own session as PID 1
// of a new PID namespace which every container joins. Network.Setup (CNI)
// attaches the network namespace and returns the pod's IPs; the pod's
// /etc/hosts, /etc/resolv.conf and /etc/hostname are written into the
// sandbox directory and bind mounted into every container.
//
// # Containers
//
// CreateContainer mounts an overlay (image layers below, the container's
// upper and work directories above) at <Root>/containers/<id>/rootfs,
// writes the OCI bundle there (config.json, computed by the pure Spec
// function) and starts conmon, as CRI-O does. No Go code runs per
// container: conmon (a small C program) daemonizes into its own session,
// runs `runc create` (runc's console socket for TTY containers), reports
// the container's PID or runc's failure on its sync pipe, writes the
// container's output to its log in the CRI format ("<RFC3339Nano> stdout
// F <line>", P for a piece of a line), serves attach clients on a
// SOCK_SEQPACKET socket in the bundle, and when the container exits
// writes the exit code (128+signal when killed) to a file named by the
// container's ID in the bundle, and a file "oom" when the memory cgroup
// saw an OOM kill. StartContainer is `runc start`.
//
// The runtime collects an exit the first time it looks at a container
// whose exit code is written: OOMKilled when conmon's marker exists or the
// memory cgroup's OOM-kill counter is non-zero (read before the cgroup
// goes), `runc delete`, and exit.json written atomically with the exit
// file's time as FinishedAt.
//
// Logs rotate as upstream's kubelet container log manager rotates them:
// Run checks every 10 s, renames a log past LogMaxSize aside and asks
// conmon to reopen it through the "ctl" fifo in the bundle, keeping
// LogMaxFiles files in all.
//
// # Restarts
//
// Nothing lives only in memory. Sandboxes and containers are JSON records
// under Root; a container is Exited once its exit code is written, else
// Created or Running while its conmon lives (its PID file, checked against
// the process's command line), Unknown without either. conmon and
// catatonit are in their own sessions and keep running when the process
// holding the Runtime exits; a new Runtime over the same Root reports
// every sandbox and container as it is, without restarting anything.
//
// # Rules for callers
//
// Root and RunDir belong to one Runtime at a time. Methods are safe for
// concurrent use, but the caller must not act on one pod from two
// goroutines at once (the kubelet's pod workers guarantee it). Logs stay
// until the sandbox is removed.
package runc
