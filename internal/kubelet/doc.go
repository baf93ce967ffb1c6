// Package kubelet is Skiff's node agent: it registers a Node, keeps its
// Lease and status current, and runs the pods bound to it through a
// container runtime, reporting their status as upstream's kubelet does.
//
// # What it owns
//
// A Kubelet is one node. A Fleet runs any number of them in one process
// over one client, one pod watch and one node watch (`skiff sim nodes`);
// Kubelet.Run, which `skiff agent` calls, runs a fleet of one. The
// container runtime is the Runtime interface of internal/cri: package sim
// implements it in memory, internal/runc with real processes.
//
// With a real runtime the kubelet also pulls images (ImageService) with
// upstream's back-off and events, sets pod volumes up under PodsDir
// (volumes.go, with upstream's atomic "..data" writer, atomicwriter.go),
// resolves the environment and pod configuration (containerconfig.go,
// podconfig.go), runs probes and lifecycle hooks (probes.go, hooks.go),
// and serves container logs, exec and port-forward to the API server over
// HTTPS on port 10250, to the API server's client certificate only
// (server.go, logs.go, exec.go, portforward.go). Static pods come from
// manifest files as mirror pods (static.go).
//
// # How a pod is driven
//
// Every change to a pod bound to the node, and a relist of the runtime
// every second, queue the pod's key. A sync reads the pod from the cache
// and what the runtime has for it, and computes what must change with the
// pure function computePodActions (sandbox to start, containers to start
// or kill, in upstream's order: init containers one by one, sidecars kept
// running, then the app containers, with restart policy and
// CrashLoopBackOff), applies those actions, and writes the status that
// generatePodStatus derives, as one pods/status patch, only when it
// differs from what the API server has. A pod being deleted is stopped
// within its grace period and then deleted with grace 0.
//
// # Rules a caller keeps
//
//   - The Runtime's IDs and attempt numbers survive a restart of the
//     process: a restarted agent adopts what runs without restarting it or
//     changing restart counts.
//   - Only one goroutine acts on a pod at a time; the runtime may be called
//     concurrently for different pods.
//   - The client should allow a high request rate: every pod transition is
//     one write, and every node renews its Lease every 10 s.
package kubelet
