// Package runc runs pods' containers with runc, overlayfs, Linux
// namespaces and cgroups. It implements cri.Runtime; the kubelet drives it.
//
// # Sandboxes
//
// A sandbox has no infra container. RunSandbox unshares the pod's network,
// IPC and UTS namespaces on a locked OS thread that is then left to die,
// after bind mounting them onto files under RunDir/ns/<sandbox> (as
// CRI-O's pinns does); loopback is brought up in the new network
// namespace and the hostname is set. Host-network and host-IPC pods use
// the node's namespaces instead. A pod that shares its process namespace
// gets a small pause process (the shim binary's "pause" mode) that is
// PID 1 of a new PID namespace which every container joins. Network.Setup
// (CNI) attaches the network namespace and returns the pod's IPs; the
// pod's /etc/hosts, /etc/resolv.conf and /etc/hostname are written into
// the sandbox directory and bind mounted into every container.
//
// # Containers
//
// CreateContainer mounts an overlay (image layers below, the container's
// upper and work directories above) at <Root>/containers/<id>/rootfs,
// writes the OCI bundle there (config.json, computed by the pure Spec
// function) and starts a shim: the skiff binary re-executed through
// Config.ShimCommand in its own session. The shim becomes a child
// subreaper, runs `runc create` with its own pipes as the container's
// stdout and stderr, reports readiness on fd 3, and from then on copies
// both streams into the container's log file in the CRI format
// ("<RFC3339Nano> stdout F <line>"). StartContainer is `runc start`. When
// the container's init exits, the shim reaps it, reads the memory cgroup's
// OOM-kill counter (Reason "OOMKilled"), runs `runc delete` and writes
// exit.json atomically.
//
// # Restarts
//
// Nothing lives only in memory. Sandboxes and containers are JSON records
// under Root; a container is Exited once its exit.json exists, else
// Created or Running as `runc state` says. The shims and pause processes
// are in their own sessions and keep running when the process holding the
// Runtime exits; a new Runtime over the same Root reports every sandbox
// and container as it is, without restarting anything.
//
// # Rules for callers
//
// Root and RunDir belong to one Runtime at a time. Methods are safe for
// concurrent use, but the caller must not act on one pod from two
// goroutines at once (the kubelet's pod workers guarantee it). Logs stay
// until the sandbox is removed.
package runc
