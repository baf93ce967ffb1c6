package framework

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
)

const (
	// realNodeFile records, in a cluster's work directory, what its real
	// node created outside it, so RemoveStale can remove it after a crash.
	realNodeFile = "realnode.json"
	// registriesFile is the registries.yaml the server is given.
	registriesFile = "registries.yaml"
	// cgroupCheckRoot is where the cgroup hierarchies are mounted.
	cgroupCheckRoot = "/sys/fs/cgroup"
	// nodeReadyTimeout bounds the wait for the server's node to be Ready.
	nodeReadyTimeout = 90 * time.Second
	// drainTimeout bounds the wait for the node to stop every pod before
	// the server is stopped.
	drainTimeout = 60 * time.Second
	// leftoverTimeout bounds killing what a stopped server left running.
	leftoverTimeout = 10 * time.Second
	// cgroupTimeout bounds removing the cluster's cgroups.
	cgroupTimeout = 10 * time.Second
	// nodeExecTimeout bounds one command run in the node's namespace.
	nodeExecTimeout = 30 * time.Second
	// realNodeSecurePort etc. are the server's ports inside its own
	// network namespace, where nothing else listens.
	realNodeSecurePort     = 6443
	realNodeEtcdClientPort = 2379
	realNodeEtcdPeerPort   = 2380
)

// The images the shared real-node cluster's registry holds (see
// Suite.RealCluster); Cluster.Image turns one into a pullable reference.
const (
	// ImageBusybox is imagetest.Busybox.
	ImageBusybox = "busybox:1"
	// ImageTestServer is imagetest.TestServer (VERSION=v1).
	ImageTestServer = "testserver:1"
	// ImageTestServerV2 is imagetest.TestServerVersion "v2", for rollouts.
	ImageTestServerV2 = "testserver:2"
)

// realNode is what a cluster whose server runs a node with the real
// runtime has beyond the server: a network namespace for the server, its
// containers and their pod network, a registry on the host end of the
// namespace's veth, and a cgroup root of its own.
type realNode struct {
	record
	registry *http.Server
	regAddr  string // host:port of the registry
	// mountNS is the first server's private mount namespace, held open so
	// a restarted server enters it again and finds the mounts (pinned
	// namespaces, root filesystems, volumes) of the containers that
	// outlived its predecessor, as a server on a host would.
	mountNS *os.File
}

// record is what a real node creates outside its work directory, saved in
// realNodeFile.
type record struct {
	Net *nodeNet `json:"net"`
	// CgroupRoot is the server's --cgroup-root, a name of its own under
	// every cgroup hierarchy.
	CgroupRoot string `json:"cgroupRoot"`
	// DataDir is the server's --data-dir; leftover shims name it on their
	// command line.
	DataDir string `json:"dataDir"`
	// LAN, in a multi-node cluster, is the network namespace whose bridge
	// joins the nodes' veths (multinode.go).
	LAN string `json:"lan,omitempty"`
}

// newRealNode creates the namespace, starts the registry and writes the
// registries.yaml and record files into dir. On error nothing is left.
func newRealNode(ctx context.Context, dir string) (*realNode, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("real node: %w", err)
	}
	id := hex.EncodeToString(b)
	n, err := createNodeNet(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("real node: %w", err)
	}
	r := &realNode{record: record{Net: n, CgroupRoot: dirPrefix + id, DataDir: filepath.Join(dir, "data")}}
	if err := r.start(dir); err != nil {
		return nil, errors.Join(fmt.Errorf("real node: %w", err), r.remove())
	}
	return r, nil
}

func (r *realNode) start(dir string) error {
	rec, err := json.Marshal(r.record)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, realNodeFile), rec, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", realNodeFile, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(r.Net.HostIP(), "0"))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	r.regAddr = l.Addr().String()
	r.registry = &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = r.registry.Serve(l) }()
	return os.WriteFile(filepath.Join(dir, registriesFile), registriesYAML(r.regAddr), 0o644)
}

// registriesYAML marks the test registry at addr as plain HTTP: a mirror of
// itself whose only endpoint is http://addr.
func registriesYAML(addr string) []byte {
	return fmt.Appendf(nil, "mirrors:\n  %q:\n    endpoint:\n      - %q\n", addr, "http://"+addr)
}

// serverArgs are the `skiff server` flags of a real node in the cluster
// whose work directory is dir. The server binds every address of its own
// namespace: the host reaches it at NodeIP over the veth, and its own
// clients use 127.0.0.1.
func (r *realNode) serverArgs(dir string) []string {
	return append(r.controlPlaneArgs(), r.nodeArgs(dir)...)
}

// controlPlaneArgs are the server's flags that are not the node's.
func (r *realNode) controlPlaneArgs() []string {
	return []string{
		"--bind-address", "0.0.0.0",
		"--advertise-address", r.Net.NodeIP(),
		// Names outside the cluster go nowhere: tests never send
		// traffic off the machine.
		"--dns-upstreams", "127.0.0.1:9",
	}
}

// nodeArgs are the node's flags, which `skiff server` and `skiff agent`
// share.
func (r *realNode) nodeArgs(dir string) []string {
	return []string{
		"--node-name", r.Net.Name,
		"--node-ip", r.Net.NodeIP(),
		"--private-registry", filepath.Join(dir, registriesFile),
		"--cgroup-root", r.CgroupRoot,
		"--pod-manifest-path", filepath.Join(dir, staticPodDir),
		"--file-check-frequency", "1s",
		// Projected volumes follow their ConfigMaps and Secrets within
		// seconds rather than upstream's minute.
		"--sync-frequency", "5s",
		// A shared CI machine's disk may sit near upstream's 15% imagefs
		// threshold; the tests are not about pressure.
		"--eviction-hard", "memory.available<1Mi,nodefs.available<1%,imagefs.available<1%",
	}
}

// staticPodDir is the real node's --pod-manifest-path in its work
// directory.
const staticPodDir = "manifests"

// StaticPodDir is the real node's static pod directory; "" without a real
// node.
func (c *Cluster) StaticPodDir() string {
	if c.real == nil {
		return ""
	}
	return filepath.Join(c.dir, staticPodDir)
}

// remove stops the registry and removes what the node created outside the
// work directory. The server must have been stopped.
func (r *realNode) remove() error {
	var errs []error
	if r.registry != nil {
		if err := r.registry.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop registry: %w", err))
		}
	}
	if r.mountNS != nil {
		_ = r.mountNS.Close()
	}
	errs = append(errs, removeRecord(r.record))
	return errors.Join(errs...)
}

// removeRecord kills every process a stopped server left behind (shims,
// pause processes, containers), removes the cgroups and then the network
// namespace. Killing the processes also ends the server's private mount
// namespace, and with it the overlays and pinned pod namespaces mounted
// there.
func removeRecord(rec record) error {
	var errs []error
	if err := killLeftovers(rec); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(rec.CgroupRoot); err != nil {
		errs = append(errs, err)
	}
	if rec.Net != nil {
		if err := rec.Net.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeLAN(rec.LAN); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeStaleRealNode removes what the real node of a crashed run's work
// directory dir created outside it, if it had one.
func removeStaleRealNode(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, realNodeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stale real node in %s: %w", dir, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("stale real node in %s: %s: %w", dir, realNodeFile, err)
	}
	if err := removeRecord(rec); err != nil {
		return fmt.Errorf("stale real node in %s: %w", dir, err)
	}
	return nil
}

// killLeftovers SIGKILLs, until none is left or 10 s pass, every process
// that belongs to the node: whose command line names its data directory,
// that is in its network namespace, or that is in one of its cgroups.
func killLeftovers(rec record) error {
	var netIno uint64
	if rec.Net != nil {
		// Only while the pin exists is the inode surely still this
		// namespace's; a freed one may be reused.
		var st syscall.Stat_t
		if err := syscall.Stat(rec.Net.Path(), &st); err == nil && st.Ino == rec.Net.Inode {
			netIno = st.Ino
		}
	}
	deadline := time.Now().Add(leftoverTimeout)
	for {
		pids := nodeProcesses(rec, netIno)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of node %s still running %v after SIGKILL: %v", rec.CgroupRoot, leftoverTimeout, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeProcesses lists the live processes that belong to the node (see
// killLeftovers); netIno 0 skips the namespace test.
func nodeProcesses(rec record, netIno uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if state, _, err := procStat(pid); err != nil || state == "Z" {
			continue // gone, or dead and waiting for its parent
		}
		if belongsToNode(pid, rec, netIno) {
			out = append(out, pid)
		}
	}
	return out
}

func procStat(pid int) (state, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", err
	}
	return parseStat(b)
}

func belongsToNode(pid int, rec record, netIno uint64) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	if rec.DataDir != "" {
		if b, err := os.ReadFile(proc + "/cmdline"); err == nil && bytes.Contains(b, []byte(rec.DataDir)) {
			return true
		}
	}
	if netIno != 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(proc+"/ns/net", &st); err == nil && st.Ino == netIno {
			return true
		}
	}
	if rec.CgroupRoot != "" {
		if b, err := os.ReadFile(proc + "/cgroup"); err == nil && inCgroupRoot(string(b), rec.CgroupRoot) {
			return true
		}
	}
	return false
}

// inCgroupRoot reports whether a /proc/<pid>/cgroup text puts the process
// at or below /root in any hierarchy.
func inCgroupRoot(procCgroup, root string) bool {
	for _, line := range strings.Split(procCgroup, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := parts[2]
		if p == "/"+root || strings.HasPrefix(p, "/"+root+"/") {
			return true
		}
	}
	return false
}

// removeCgroups removes <hierarchy>/root and everything below it in every
// mounted cgroup hierarchy, deepest first, retrying while the kernel still
// counts exiting processes in them.
func removeCgroups(root string) error {
	if root == "" || strings.Contains(root, "/") {
		return fmt.Errorf("remove cgroups: bad cgroup root %q", root)
	}
	deadline := time.Now().Add(cgroupTimeout)
	for {
		left := cgroupDirs(root)
		var errs []error
		for _, d := range left {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
		if len(errs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroups of %s: %w", root, errors.Join(errs...))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cgroupDirs lists the cgroup directories at or below root in every
// hierarchy, deepest first.
func cgroupDirs(root string) []string {
	tops := []string{filepath.Join(cgroupCheckRoot, root)} // cgroup v2
	if entries, err := os.ReadDir(cgroupCheckRoot); err == nil {
		for _, e := range entries {
			if e.IsDir() { // skips the "cpu,cpuacct" style symlinks
				tops = append(tops, filepath.Join(cgroupCheckRoot, e.Name(), root))
			}
		}
	}
	var out []string
	for _, top := range tops {
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out
}

// serverCommand is the command that runs the server with args: the binary
// itself, or for a real node the binary in the node's network namespace
// and a private mount namespace. `ip netns exec` would remount /sys and so
// hide the cgroup hierarchies from the runtime; nsenter changes only the
// network namespace, and Unshareflags (which also makes every mount
// private) keeps the runtime's mounts out of the host's mount table.
func (c *Cluster) serverCommand(bin string, args []string) *exec.Cmd {
	// Its own process group, so Stop can kill whatever the server starts;
	// SIGKILL on our death, so a crashed test run leaves no server behind.
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.real == nil {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = attr
		return cmd
	}
	if c.real.mountNS != nil {
		// A restart: the mount namespace of the first start (fd 3).
		cmd := exec.Command("nsenter", append([]string{"--net=" + c.real.Net.Path(), "--mount=/proc/self/fd/3", "--", bin}, args...)...)
		cmd.ExtraFiles = []*os.File{c.real.mountNS}
		cmd.SysProcAttr = attr
		return cmd
	}
	attr.Unshareflags = syscall.CLONE_NEWNS
	cmd := exec.Command("nsenter", append([]string{"--net=" + c.real.Net.Path(), "--", bin}, args...)...)
	cmd.SysProcAttr = attr
	return cmd
}

// holdMountNS keeps the mount namespace of a real node's first server
// (process pid) for its restarts; see realNode.mountNS.
func (c *Cluster) holdMountNS(pid int) {
	if c.real == nil || c.real.mountNS != nil {
		return
	}
	if f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil {
		c.real.mountNS = f
	}
}

// clusterPorts are the ports for a new start: free loopback ports, or for a
// real node fixed ones inside its own namespace.
func (c *Cluster) clusterPorts() (Ports, error) {
	if c.real != nil {
		return Ports{Secure: realNodeSecurePort, EtcdClient: realNodeEtcdClientPort, EtcdPeer: realNodeEtcdPeerPort}, nil
	}
	return freePorts()
}

// apiHost is the address the test process reaches the API server at.
func (c *Cluster) apiHost() string {
	if c.real != nil {
		return c.real.Net.NodeIP()
	}
	return "127.0.0.1"
}

// serverOverride is the API server URL clients must use instead of the
// kubeconfig's (which names 127.0.0.1 inside the node's namespace), or ""
// to use the kubeconfig's.
func (c *Cluster) serverOverride() string {
	if c.real != nil {
		return c.Endpoint()
	}
	return ""
}

// kubectlServerArgs are the flags that point kubectl at serverOverride.
func (c *Cluster) kubectlServerArgs() []string {
	if s := c.serverOverride(); s != "" {
		return []string{"--server", s}
	}
	return nil
}

// drain deletes every workload and pod of a real-node cluster whose server
// runs, and waits (up to 60 s) until the node has stopped them all, so no
// container is left for the forced cleanup.
func (c *Cluster) drain() error {
	c.mu.Lock()
	running := c.proc != nil && c.client != nil
	client := c.client
	c.mu.Unlock()
	if c.real == nil || !running {
		return nil
	}
	var errs []error
	// Controllers go first, orphaning their pods so they create no new
	// ones; the pods then go with a short grace period.
	if _, _, err := c.Kubectl("delete", "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs",
		"--all", "--all-namespaces", "--cascade=orphan", "--wait=false"); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.Kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false"); err != nil {
		errs = append(errs, err)
	}
	err := Poll(context.Background(), drainTimeout, func() (bool, string) {
		list, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, "list pods: " + err.Error()
		}
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Namespace+"/"+p.Name+" ("+string(p.Status.Phase)+")")
		}
		return len(names) == 0, "pods left: " + strings.Join(names, ", ")
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("node did not stop every pod: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drain real node: %w", err)
	}
	return nil
}

// removeRealNode removes a real node's namespace, registry, processes and
// cgroups; it does nothing for a cluster without one.
func (c *Cluster) removeRealNode() error {
	if c.real == nil {
		return nil
	}
	return c.real.remove()
}

// HasRealNode reports whether the server runs a node with the real runtime
// (Options.RealNode).
func (c *Cluster) HasRealNode() bool { return c.real != nil }

// NodeName is the real node's name; "" without a real node.
func (c *Cluster) NodeName() string {
	if c.real == nil {
		return ""
	}
	return c.real.Net.Name
}

// NodeIP is the real node's IP, in the network namespace the server runs
// in; "" without a real node.
func (c *Cluster) NodeIP() string {
	if c.real == nil {
		return ""
	}
	return c.real.Net.NodeIP()
}

// NetNS is the name of the real node's network namespace (`ip netns`);
// "" without a real node.
func (c *Cluster) NetNS() string {
	if c.real == nil {
		return ""
	}
	return c.real.Net.Name
}

// CgroupRoot is the real node's --cgroup-root; "" without a real node.
func (c *Cluster) CgroupRoot() string {
	if c.real == nil {
		return ""
	}
	return c.real.CgroupRoot
}

// Registry is the "host:port" of the real node's image registry, which the
// node pulls from over plain HTTP and tests push to; "" without a real
// node.
func (c *Cluster) Registry() string {
	if c.real == nil {
		return ""
	}
	return c.real.regAddr
}

// Image is the reference of an image in the real node's registry, e.g.
// Image(ImageBusybox).
func (c *Cluster) Image(name string) string { return c.Registry() + "/" + name }

// InNode runs a command in the real node's network namespace (the host's
// other namespaces) and returns its standard output; the error carries its
// standard error. It gives up after 30 s.
func (c *Cluster) InNode(ctx context.Context, args ...string) (string, error) {
	if c.real == nil {
		return "", errors.New("in node: the cluster has no real node")
	}
	ctx, cancel := context.WithTimeout(ctx, nodeExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + c.real.Net.Path(), "--"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("in node %s: %s: %w; stderr: %s", c.real.Net.Name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// waitNodeReady waits until the real node is registered and Ready with a
// podCIDR.
func (c *Cluster) waitNodeReady(ctx context.Context) error {
	err := Poll(ctx, nodeReadyTimeout, func() (bool, string) {
		n, err := c.Client().CoreV1().Nodes().Get(ctx, c.NodeName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "node " + c.NodeName() + " not registered"
		}
		if err != nil {
			return false, "get node: " + err.Error()
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready = cond.Status == corev1.ConditionTrue
			}
		}
		if !ready || n.Spec.PodCIDR == "" {
			return false, fmt.Sprintf("node %s: Ready %v, podCIDR %q; conditions %+v", n.Name, ready, n.Spec.PodCIDR, n.Status.Conditions)
		}
		return true, ""
	})
	if err != nil {
		return fmt.Errorf("real node %s not ready: %w", c.NodeName(), err)
	}
	return nil
}

// MissingRealNodePrerequisites lists what this machine lacks to run a real
// node: the tools the framework and the runtime run, and the busybox and go
// the test images are built from.
func MissingRealNodePrerequisites() []string {
	var missing []string
	for _, tool := range []string{"runc", "nsenter", "ip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" on PATH")
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox (busybox-static) for the test images")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "the CNI plugins in /usr/lib/cni (containernetworking-plugins)")
	}
	return missing
}

// RealCluster returns the package's shared real-node cluster: a server
// running a node with the real runtime in a network namespace of its own,
// with ImageBusybox, ImageTestServer and ImageTestServerV2 in its registry.
// It starts it on the first call (waiting for the node to be Ready); Run
// tears it down after the last test. Tests using it must leave it running
// and remove what they create. It skips the test (fails it under CI=true)
// when a prerequisite is missing.
func (s *Suite) RealCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := s.Binary(t)
	if missing := append(MissingPrerequisites(false), MissingRealNodePrerequisites()...); len(missing) > 0 {
		SkipOrFail(t, "real-node prerequisites missing: %s", strings.Join(missing, "; "))
	}
	s.realOnce.Do(func() {
		// The images are built with t, whose Fatal ends this function
		// early; that must not leave a cluster that looks usable.
		done := false
		defer func() {
			if !done && s.realErr == nil {
				s.realErr = fmt.Errorf("setting up the real-node cluster failed in %s", t.Name())
			}
		}()
		opts := s.opts
		opts.Binary, opts.RealNode = bin, true
		s.real, s.realErr = Start(context.Background(), opts)
		if s.realErr != nil {
			return
		}
		if s.realErr = s.real.waitNodeReady(context.Background()); s.realErr != nil {
			s.realErr = fmt.Errorf("%w\nserver log:\n%s", s.realErr, tail(s.real.Logs(), errorLogTail))
			return
		}
		imagetest.Push(t, s.real.Image(ImageBusybox), imagetest.Busybox(t))
		imagetest.Push(t, s.real.Image(ImageTestServer), imagetest.TestServer(t))
		imagetest.Push(t, s.real.Image(ImageTestServerV2), imagetest.TestServerVersion(t, "v2"))
		done = true
	})
	if s.realErr != nil {
		fatalOnce(t, &s.realFull, "start the real-node cluster", s.realErr)
	}
	attachLogOnFailure(t, s.real)
	return s.real
}
