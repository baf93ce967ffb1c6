// Package framework runs real skiff servers for the end-to-end tests and gives
// the tests kubectl, client-go and polling helpers against them.
//
// # What it owns
//
// A Cluster is one `skiff server` process started from the built binary, with
// its own work directory (etcd data, PKI, admin kubeconfig, server log) and
// its own loopback ports, so clusters never collide with each other or with a
// skiff the developer runs on the default ports. Its lifecycle:
//
//	Start -> (Stop -> Restart)* -> Close
//
// Start and Restart return once the kubeconfig exists and GET /readyz, made
// with the kubeconfig's credentials, answers 200 "ok"; they give up after
// Options.ReadyTimeout (60 s) or as soon as the process exits, and their error
// carries the end of the server log. Stop sends SIGTERM, waits up to
// Options.StopTimeout (30 s), then kills the whole process group, and reports
// an error unless the server exited 0 on its own after SIGTERM: a clean stop
// is part of the contract under test. Close stops and removes everything.
//
// # The shared-cluster pattern
//
// Starting a control plane costs seconds, so a test package starts one and
// shares it between its tests. The package variable lives in the test package
// (test code may hold one; product code keeps no mutable package state):
//
//	var suite *framework.Suite
//
//	func TestMain(m *testing.M) {
//		suite = framework.NewSuite(framework.Options{})
//		os.Exit(suite.Run(m))
//	}
//
//	func TestSomething(t *testing.T) {
//		c := suite.Cluster(t)
//		out, _, err := c.Kubectl("get", "namespaces")
//		...
//	}
//
// Suite.Cluster builds (or finds) the binary and starts the shared cluster on
// first use, and Suite.Run tears it down after the last test. Tests that stop,
// restart or break the server must not do it to the shared one: they take a
// private cluster with Suite.NewCluster, which t.Cleanup closes. When a test
// fails, the part of the server log written while it ran is attached.
//
// # The binary
//
// $SKIFF_BINARY names the skiff binary to test (`make test-e2e` sets it to the
// freshly built bin/skiff). Without it, the suite builds ./cmd/skiff once per
// test process into a temporary directory, stamping the Kubernetes version
// derived from go.mod as the Makefile does, so `kubectl version` reports a
// real release either way.
//
// # Prerequisites
//
// The tests need root (the node agent and networking will) and, without
// $SKIFF_BINARY, a go command. When one is missing, a test skips saying what is
// missing; under CI=true it fails instead, because CI must not pass by
// skipping.
//
// # Cleanup
//
// Every directory the framework creates is named skiff-e2e-* under the
// system temporary directory and records the pid of the test process that owns
// it, and of the server running in it. Servers run in their own process group
// with SIGKILL as their parent-death signal, so a crashed or timed-out test
// process takes its servers with it. Suite.Run first removes what a previous,
// crashed run left behind: directories whose owner is gone, after killing
// their server's process group and unmounting anything mounted below them.
//
// The clusters listen on 127.0.0.1 only and run no node of their own
// (--disable-agent); tests add simulated nodes with StartAgent and
// StartSimNodes.
//
// # Real nodes
//
// With Options.RealNode the server runs its own node with the real runtime
// (runc, CNI, the image store), confined so that tests never touch the
// host's own firewall, routes or mounts: it runs under nsenter in a network
// namespace skiff-e2e-<id> joined to the host by a veth pair (host end
// ske<id> with 10.213.n.1/24, node end eth0 with 10.213.n.2/24, default
// route via the host, which forwards nothing), in a private mount
// namespace, with --cgroup-root skiff-e2e-<id>. The pod bridge and its nft
// table live inside the namespace. An image registry served by the test
// process on 10.213.n.1 is the node's plain-HTTP registry (registries.yaml
// in the work directory). Close deletes the workloads and waits for the
// node to stop them, stops the server, kills whatever is left (shims,
// containers: by data directory, namespace and cgroup), removes the cgroups
// and the namespace. The record in realnode.json lets Suite.Run do the same
// for a crashed run. Suite.RealCluster shares one such cluster, with the
// test images pushed, between the tests that need real containers.
package framework
