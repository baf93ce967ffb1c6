package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
)

const (
	// lanSuffix names the namespace of a multi-node cluster's bridge:
	// skiff-e2e-<server id>-lan.
	lanSuffix = "-lan"
	// lanBridge is the bridge in that namespace.
	lanBridge = "br0"
	// uplinkPrefix names the host end of the host's veth to the bridge;
	// with the server veth's 8 character id it fits an interface name.
	uplinkPrefix = "skh"
	// agentLogFile is the log of an extra node's `skiff agent`.
	agentLogFile = "agent.log"
	// agentStopTimeout bounds an extra node's exit after SIGTERM.
	agentStopTimeout = 20 * time.Second
)

// MultiNode is a cluster of several real nodes: the server's own node plus
// `skiff agent --runtime runc` processes, each in a network namespace of
// its own. Every node's veth ends on one bridge, in a namespace of its own
// (skiff-e2e-<id>-lan), which carries the server's subnet 10.213.n.0/24
// (the server's node is .2, the agents .3, .4, ...; the host is .1 through
// a veth of its own), so the nodes share one L2 network and reach the
// registry at 10.213.n.1.
type MultiNode struct {
	*Cluster
	agents []*extraNode
}

// extraNode is one agent of a MultiNode.
type extraNode struct {
	record
	dir  string // its own work directory (with realnode.json for RemoveStale)
	proc *process
}

// MultiNodeOptions configure StartMultiNode.
type MultiNodeOptions struct {
	// Agents is the number of nodes besides the server's (default 2).
	Agents int
	// FlannelBackend is passed to the server and every agent ("" for the
	// default, host-gw).
	FlannelBackend string
	// AgentArgs[i], when present, are extra `skiff agent` flags of agent
	// i (0 is the first agent), e.g. another --proxy-mode per node.
	AgentArgs [][]string
}

// StartMultiNode starts a real-node cluster (opts.RealNode is implied; its
// Binary is filled in from s) with mo.Agents extra real nodes, waits until
// every node is Ready with a podCIDR, pushes ImageBusybox and
// ImageTestServer to its registry, and removes it all when t ends. It
// skips t (fails it under CI=true) when a prerequisite is missing.
func (s *Suite) StartMultiNode(t testing.TB, opts Options, mo MultiNodeOptions) *MultiNode {
	t.Helper()
	bin := s.Binary(t)
	if missing := append(MissingPrerequisites(false), MissingRealNodePrerequisites()...); len(missing) > 0 {
		SkipOrFail(t, "real-node prerequisites missing: %s", strings.Join(missing, "; "))
	}
	if mo.Agents == 0 {
		mo.Agents = 2
	}
	opts.Binary, opts.RealNode, opts.AgentProcess = bin, true, false
	var backendArgs []string
	if mo.FlannelBackend != "" {
		backendArgs = []string{"--flannel-backend", mo.FlannelBackend}
	}
	opts.ServerArgs = append(append([]string(nil), opts.ServerArgs...), backendArgs...)
	c := StartForTest(t, opts)
	m := &MultiNode{Cluster: c}
	// Registered after the cluster's Close, so it runs before it: the
	// agents' pods must be gone before the server stops.
	t.Cleanup(func() {
		if err := m.close(); err != nil {
			t.Errorf("close multi-node cluster: %v", err)
		}
	})
	ctx := t.Context()
	if err := c.waitNodeReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.bridgeServer(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range mo.Agents {
		args := backendArgs
		if i < len(mo.AgentArgs) {
			args = append(append([]string(nil), backendArgs...), mo.AgentArgs[i]...)
		}
		if err := m.addAgent(ctx, i, args); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, a := range m.agents {
				b, _ := os.ReadFile(filepath.Join(a.dir, agentLogFile))
				t.Logf("agent %d (%s) log:\n%s", i+1, a.Net.Name, tail(string(b), failureLogLimit/2))
			}
		}
	})
	if err := m.waitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
	imagetest.Push(t, c.Image(ImageBusybox), imagetest.Busybox(t))
	imagetest.Push(t, c.Image(ImageTestServer), imagetest.TestServer(t))
	return m
}

// bridgeServer builds the nodes' shared network: a namespace ("LAN")
// with a bridge, which the server's veth moves into and the agents' veths
// will join, and a new veth from the host to the bridge that takes over
// the host's address 10.213.n.1 (registry, API access). Node-to-node
// traffic is bridged inside LAN and never crosses the host's firewall.
func (m *MultiNode) bridgeServer(ctx context.Context) error {
	r := m.real
	id := strings.TrimPrefix(r.Net.HostIf, vethPrefix)
	r.LAN = dirPrefix + id + lanSuffix
	// Recorded first, so a crash in between still removes it.
	if err := writeRecord(m.dir, r.record); err != nil {
		return err
	}
	uplink, addr := uplinkPrefix+id, r.Net.HostIP()+"/24"
	for _, args := range [][]string{
		{"netns", "add", r.LAN},
		{"-n", r.LAN, "link", "set", "lo", "up"},
		{"-n", r.LAN, "link", "add", lanBridge, "type", "bridge"},
		{"-n", r.LAN, "link", "set", lanBridge, "up"},
		{"link", "add", uplink, "type", "veth", "peer", "name", "uplink", "netns", r.LAN},
		{"-n", r.LAN, "link", "set", "uplink", "master", lanBridge},
		{"-n", r.LAN, "link", "set", "uplink", "up"},
		{"addr", "del", addr, "dev", r.Net.HostIf},
		{"link", "set", r.Net.HostIf, "netns", r.LAN},
		{"-n", r.LAN, "link", "set", r.Net.HostIf, "master", lanBridge},
		{"-n", r.LAN, "link", "set", r.Net.HostIf, "up"},
		{"addr", "add", addr, "dev", uplink},
		{"link", "set", uplink, "up"},
	} {
		if _, err := ipCommand(ctx, args...); err != nil {
			return fmt.Errorf("bridge the server's node: %w", err)
		}
	}
	return nil
}

func writeRecord(dir string, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, realNodeFile), b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", realNodeFile, err)
	}
	return nil
}

// addAgent creates agent i's namespace on the bridge and starts its
// `skiff agent`.
func (m *MultiNode) addAgent(ctx context.Context, i int, extra []string) error {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	id := hex.EncodeToString(b)
	dir, err := newWorkDir("agent")
	if err != nil {
		return err
	}
	srv := m.real.Net
	a := &extraNode{dir: dir, record: record{
		Net:        &nodeNet{Name: dirPrefix + id, HostIf: vethPrefix + id, Subnet: srv.Subnet, Host: 3 + i},
		CgroupRoot: dirPrefix + id, DataDir: filepath.Join(dir, "data"),
	}}
	m.agents = append(m.agents, a)
	if err := writeRecord(dir, a.record); err != nil {
		return err
	}
	n := a.Net
	for _, args := range [][]string{
		{"netns", "add", n.Name},
		{"-n", m.real.LAN, "link", "add", n.HostIf, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"-n", m.real.LAN, "link", "set", n.HostIf, "master", lanBridge},
		{"-n", m.real.LAN, "link", "set", n.HostIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "addr", "add", n.NodeIP() + "/24", "dev", "eth0"},
		{"-n", n.Name, "link", "set", "eth0", "up"},
		{"-n", n.Name, "route", "add", "default", "via", srv.HostIP()},
	} {
		if _, err := ipCommand(ctx, args...); err != nil {
			return fmt.Errorf("agent %d network: %w", i+1, err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(n.Path(), &st); err != nil {
		return err
	}
	n.Inode = st.Ino
	if err := writeRecord(dir, a.record); err != nil {
		return err
	}
	// The agent's registries.yaml and static pod directory, where
	// nodeArgs names them.
	regs, err := os.ReadFile(filepath.Join(m.dir, registriesFile))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, registriesFile), regs, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, staticPodDir), 0o755); err != nil {
		return err
	}
	join, err := m.JoinArgs()
	if err != nil {
		return err
	}
	args := append([]string{"agent", "--runtime", "runc", "--data-dir", a.DataDir}, join...)
	args = append(append(args, (&realNode{record: a.record}).nodeArgs(dir)...), extra...)
	logFile, err := os.OpenFile(filepath.Join(dir, agentLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== e2e framework %s: %s %s\n", time.Now().Format(time.RFC3339), m.opts.Binary, strings.Join(args, " "))
	// As the server's first start: its own network namespace, a private
	// mount namespace, its own process group, killed with the test.
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--", m.opts.Binary}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Unshareflags: syscall.CLONE_NEWNS}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Start()
	_ = logFile.Close()
	if err != nil {
		return fmt.Errorf("run agent %d: %w", i+1, err)
	}
	a.proc = &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		a.proc.err = cmd.Wait()
		close(a.proc.done)
	}()
	_ = writePIDFile(filepath.Join(dir, serverPIDFile), cmd.Process.Pid)
	return nil
}

// waitAllReady waits until every node is registered and Ready with a
// podCIDR.
func (m *MultiNode) waitAllReady(ctx context.Context) error {
	names := m.NodeNames()
	err := Poll(ctx, nodeReadyTimeout, func() (bool, string) {
		var problems []string
		for _, name := range names {
			n, err := m.Client().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			ready := false
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					ready = c.Status == corev1.ConditionTrue
				}
			}
			if !ready || n.Spec.PodCIDR == "" {
				problems = append(problems, fmt.Sprintf("node %s: Ready %v, podCIDR %q", name, ready, n.Spec.PodCIDR))
			}
		}
		for _, a := range m.agents {
			select {
			case <-a.proc.done:
				return true, "" // an agent exited: reported below
			default:
			}
		}
		return len(problems) == 0, strings.Join(problems, "; ")
	})
	for i, a := range m.agents {
		select {
		case <-a.proc.done:
			b, _ := os.ReadFile(filepath.Join(a.dir, agentLogFile))
			return fmt.Errorf("agent %d exited (%s):\n%s", i+1, exitText(a.proc.err), tail(string(b), errorLogTail))
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("multi-node cluster not ready: %w", err)
	}
	return nil
}

// NodeNames are the nodes' names: the server's first, then the agents'.
func (m *MultiNode) NodeNames() []string {
	names := []string{m.NodeName()}
	for _, a := range m.agents {
		names = append(names, a.Net.Name)
	}
	return names
}

// NodeIPs are the nodes' IPs, in NodeNames' order.
func (m *MultiNode) NodeIPs() []string {
	ips := []string{m.NodeIP()}
	for _, a := range m.agents {
		ips = append(ips, a.Net.NodeIP())
	}
	return ips
}

// InNodeNS runs a command in node i's network namespace (0 is the
// server's, NodeNames' order) and returns its standard output.
func (m *MultiNode) InNodeNS(ctx context.Context, i int, args ...string) (string, error) {
	if i == 0 {
		return m.InNode(ctx, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, nodeExecTimeout)
	defer cancel()
	ns := m.agents[i-1].Net
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns.Path(), "--"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w; stderr: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return string(out), fmt.Errorf("in node %s: %s: %w", ns.Name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// InLAN runs a command in the namespace of the nodes' bridge
// (skiff-e2e-<id>-lan, bridge br0), which is on the nodes' network but is
// none of them: a client there reaches the nodes as a machine on their LAN
// would, without touching the host's routes. It returns standard output.
func (m *MultiNode) InLAN(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, nodeExecTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + filepath.Join(netnsDir, m.real.LAN), "--"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w; stderr: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return string(out), fmt.Errorf("in %s: %s: %w", m.real.LAN, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// AgentLog is agent i's log (1 is the first agent, NodeNames' order).
func (m *MultiNode) AgentLog(i int) string {
	b, err := os.ReadFile(filepath.Join(m.agents[i-1].dir, agentLogFile))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// RemoveNode takes node i (an agent, 1 or more) out of the cluster, as an
// administrator retiring a machine would: its agent is stopped, its pods
// are force-deleted, its Node is deleted, and what it ran is killed and
// removed.
func (m *MultiNode) RemoveNode(ctx context.Context, i int) error {
	a := m.agents[i-1]
	var errs []error
	if a.proc != nil {
		if err := a.proc.stop(agentStopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("agent %d: %w", i, err))
		}
		a.proc = nil
	}
	if _, _, err := m.Kubectl("delete", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+a.Net.Name,
		"--force", "--grace-period=0"); err != nil {
		errs = append(errs, err)
	}
	if err := m.Client().CoreV1().Nodes().Delete(ctx, a.Net.Name, metav1.DeleteOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("delete node %s: %w", a.Net.Name, err))
	}
	errs = append(errs, m.removeAgent(a))
	return errors.Join(errs...)
}

// removeAgent kills what an agent left and removes its namespace, cgroups
// and work directory.
func (m *MultiNode) removeAgent(a *extraNode) error {
	if a.dir == "" {
		return nil
	}
	var errs []error
	if a.proc != nil {
		if err := a.proc.stop(agentStopTimeout); err != nil {
			errs = append(errs, err)
		}
		a.proc = nil
	}
	errs = append(errs, removeRecord(a.record), removeWorkDir(a.dir))
	a.dir = ""
	return errors.Join(errs...)
}

// close drains the cluster while the agents still run (so they stop their
// pods), then removes the agents; the Cluster's own Close removes the
// server, its namespace and the bridge.
func (m *MultiNode) close() error {
	errs := []error{m.drain()}
	for _, a := range m.agents {
		errs = append(errs, m.removeAgent(a))
	}
	return errors.Join(errs...)
}

// removeLAN deletes a multi-node cluster's bridge namespace, if it
// exists, and with it the bridge and every veth pair with an end in it.
func removeLAN(name string) error {
	if name == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*ipTimeout)
	defer cancel()
	// The host's end of the uplink, deleted here because a namespace's
	// devices go only once the kernel has freed it, a moment later.
	uplink := uplinkPrefix + strings.TrimSuffix(strings.TrimPrefix(name, dirPrefix), lanSuffix)
	if _, err := os.Stat(filepath.Join("/sys/class/net", uplink)); err == nil {
		if _, err := ipCommand(ctx, "link", "del", uplink); err != nil {
			return fmt.Errorf("remove bridge namespace %s: %w", name, err)
		}
	}
	if _, err := ipCommand(ctx, "netns", "del", name); err != nil {
		return fmt.Errorf("remove bridge namespace %s: %w", name, err)
	}
	return nil
}
