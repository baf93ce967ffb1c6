package framework

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	defaultReadyTimeout = 60 * time.Second
	defaultStopTimeout  = 30 * time.Second
	// kubectlTimeout bounds one kubectl invocation, so a hung command fails
	// the test that ran it instead of eating the whole suite's timeout.
	kubectlTimeout = 60 * time.Second
	// readyzTimeout bounds one readiness probe.
	readyzTimeout = 5 * time.Second
	// startAttempts is how often Start tries fresh ports when one it picked
	// was taken before the server could bind it.
	startAttempts = 3
	// errorLogTail is how much of the server log an error message carries.
	errorLogTail = 16 << 10
)

// errPortInUse marks a start that failed because a picked port was taken.
var errPortInUse = errors.New("a picked port was taken before the server bound it")

// Options configure a Cluster.
type Options struct {
	// Binary is the skiff binary to run. Start requires it; a Suite fills
	// it in.
	Binary string
	// ServerArgs are appended to the `skiff server` flags the framework
	// sets, so a test can add flags or override one of them.
	ServerArgs []string
	// ReadyTimeout bounds how long Start and Restart wait for /readyz.
	// Zero means 60 s.
	ReadyTimeout time.Duration
	// StopTimeout bounds how long Stop waits after SIGTERM before it
	// kills the server. Zero means 30 s.
	StopTimeout time.Duration
	// RealNode runs the server with its own node and the real runtime
	// (without --disable-agent), in a network namespace the cluster
	// creates, with an image registry on the host end of the namespace's
	// veth (see realnode.go). Without it the server runs no node; tests
	// add simulated ones.
	RealNode bool
	// AgentProcess, with RealNode, runs the node as a `skiff agent`
	// process of its own in the node's namespaces, joined to a server
	// that runs none (--disable-agent), so the node agent can be measured
	// apart from the control plane.
	AgentProcess bool
	// AgentBinary is what the AgentProcess runs (default Binary). A copy
	// of Binary measures the agent as on a machine of its own: the kernel
	// neither pages out nor stops counting the pages of a file that
	// another process (the server) maps too.
	AgentBinary string
}

func (o Options) withDefaults() Options {
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = defaultReadyTimeout
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = defaultStopTimeout
	}
	return o
}

// Cluster is one `skiff server` process and its work directory. Start,
// Stop, Restart and Close must not be called concurrently with each other;
// everything else may be called from parallel tests.
type Cluster struct {
	opts  Options
	dir   string
	ports Ports

	mu         sync.Mutex
	proc       *process // nil while stopped
	restConfig *rest.Config
	client     kubernetes.Interface
	closed     bool

	real  *realNode // nil unless Options.RealNode
	agent *process  // the node's own process with Options.AgentProcess
}

// process is one run of the server binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // the exit error; read only after done is closed
}

// Start creates a work directory, starts `skiff server` on free loopback
// ports, and returns once the server is ready (see the package doc). On
// error nothing is left running or on disk.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	if opts.Binary == "" {
		return nil, errors.New("start cluster: no skiff binary given")
	}
	dir, err := newWorkDir("cluster")
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir}
	if opts.RealNode {
		if c.real, err = newRealNode(ctx, dir); err != nil {
			return nil, errors.Join(fmt.Errorf("start cluster: %w", err), removeWorkDir(dir))
		}
	}
	for attempt := 1; ; attempt++ {
		if err = os.MkdirAll(c.DataDir(), 0o700); err != nil {
			break
		}
		if c.ports, err = c.clusterPorts(); err != nil {
			break
		}
		err = c.start(ctx)
		if err == nil {
			return c, nil
		}
		_ = c.Stop() // its error repeats what err already says
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			break
		}
		// etcd remembers the peer URL it was first started with, so a
		// retry on other ports starts from empty data.
		if err = os.RemoveAll(c.DataDir()); err != nil {
			break
		}
	}
	c.closed = true
	return nil, errors.Join(fmt.Errorf("start cluster: %w", err), c.removeRealNode(), removeWorkDir(dir))
}

// serverArgs returns the `skiff server` command line for a cluster whose
// work directory is dir. Without a real node the server runs no node of its
// own (--disable-agent).
func serverArgs(dir string, p Ports, real *realNode, agentProcess bool, extra []string) []string {
	args := []string{
		"server",
		"--data-dir", filepath.Join(dir, "data"),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(p.Secure),
		"--write-kubeconfig", filepath.Join(dir, "admin.yaml"),
		"--etcd-client-port", strconv.Itoa(p.EtcdClient),
		"--etcd-peer-port", strconv.Itoa(p.EtcdPeer),
	}
	switch {
	case real == nil:
		// No cluster DNS on the host's loopback port 53 unless a test
		// asks for one (ServerArgs).
		args = append(args, "--disable-agent", "--dns-port", "0")
	case agentProcess:
		args = append(args, real.controlPlaneArgs()...)
		args = append(args, "--disable-agent")
	default:
		args = append(args, real.serverArgs(dir)...)
	}
	return append(args, extra...)
}

// start runs the server once and waits until it is ready.
func (c *Cluster) start(ctx context.Context) error {
	// The server writes the kubeconfig when it starts; removing the old one
	// keeps the readiness check from reading a previous run's.
	if err := os.Remove(c.KubeconfigPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old kubeconfig: %w", err)
	}
	logFile, err := os.OpenFile(c.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	offset := c.logSize()
	args := serverArgs(c.dir, c.ports, c.real, c.opts.AgentProcess, c.opts.ServerArgs)
	fmt.Fprintf(logFile, "=== e2e framework %s: %s %s\n", time.Now().Format(time.RFC3339), c.opts.Binary, strings.Join(args, " "))

	cmd := c.serverCommand(c.opts.Binary, args)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	err = cmd.Start()
	_ = logFile.Close() // the child holds its own descriptor
	if err != nil {
		return fmt.Errorf("run %s: %w", c.opts.Binary, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	// Best effort: it fails only when the server has already exited, which
	// waitReady reports together with the server log.
	_ = writePIDFile(filepath.Join(c.dir, serverPIDFile), cmd.Process.Pid)
	c.holdMountNS(cmd.Process.Pid)

	if err := c.waitReady(ctx, p, offset); err != nil {
		return err
	}
	if c.real != nil && c.opts.AgentProcess && c.agent == nil {
		return c.startAgent()
	}
	return nil
}

// AgentLogPath is the file the node's `skiff agent` process writes to
// (Options.AgentProcess).
func (c *Cluster) AgentLogPath() string { return filepath.Join(c.dir, "agent.log") }

// ServerPID is the process ID of the running `skiff server`, or 0 while it
// is stopped.
func (c *Cluster) ServerPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.cmd.Process.Pid
}

// AgentPID is the process ID of the node's `skiff agent` process, or 0
// without Options.AgentProcess.
func (c *Cluster) AgentPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agent == nil {
		return 0
	}
	return c.agent.cmd.Process.Pid
}

// startAgent runs the real node as `skiff agent` in the node's network
// namespace, joined to the server.
func (c *Cluster) startAgent() error {
	join, err := c.JoinArgs()
	if err != nil {
		return err
	}
	args := append([]string{"agent", "--runtime", "runc", "--data-dir", filepath.Join(c.dir, "agent")}, join...)
	args = append(args, c.real.nodeArgs(c.dir)...)
	logFile, err := os.OpenFile(c.AgentLogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open agent log: %w", err)
	}
	bin := cmp.Or(c.opts.AgentBinary, c.opts.Binary)
	fmt.Fprintf(logFile, "=== e2e framework %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := c.serverCommand(bin, args)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Start()
	_ = logFile.Close()
	if err != nil {
		return fmt.Errorf("run %s agent: %w", c.opts.Binary, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.mu.Lock()
	c.agent = p
	c.mu.Unlock()
	return nil
}

// waitReady polls until the kubeconfig exists and GET /readyz with its
// credentials returns 200 "ok", the server exits, or the ready timeout
// passes.
func (c *Cluster) waitReady(ctx context.Context, p *process, logOffset int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	interval := 100 * time.Millisecond
	var last string
	for {
		cfg, client, observed := c.probeReady(ctx)
		if client != nil {
			c.mu.Lock()
			c.restConfig, c.client = cfg, client
			c.mu.Unlock()
			return nil
		}
		last = observed
		timer := time.NewTimer(interval)
		select {
		case <-p.done:
			timer.Stop()
			log := c.logSince(logOffset, -1)
			err := fmt.Errorf("skiff server exited (%s) before it was ready; last observation: %s\nserver log:\n%s",
				exitText(p.err), last, tail(log, errorLogTail))
			if strings.Contains(log, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return err
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("skiff server not ready after %v (%v); last observation: %s\nserver log:\n%s",
				c.opts.ReadyTimeout, ctx.Err(), last, tail(c.logSince(logOffset, -1), errorLogTail))
		case <-timer.C:
		}
		interval = min(interval*2, time.Second)
	}
}

// probeReady makes one readiness check. It returns a client only when the
// server is ready, and otherwise what it saw.
func (c *Cluster) probeReady(ctx context.Context) (*rest.Config, kubernetes.Interface, string) {
	if _, err := os.Stat(c.KubeconfigPath()); err != nil {
		return nil, nil, "kubeconfig " + c.KubeconfigPath() + " not written yet"
	}
	// Loaded on every try: the server may still be writing it.
	cfg, err := clientcmd.BuildConfigFromFlags(c.serverOverride(), c.KubeconfigPath())
	if err != nil {
		return nil, nil, fmt.Sprintf("load kubeconfig: %v", err)
	}
	// Tests create objects in bursts; client-go's default 5 QPS would
	// make them slow for no reason.
	cfg.QPS, cfg.Burst = 100, 200
	cfg.UserAgent = "skiff-e2e"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Sprintf("client from kubeconfig: %v", err)
	}
	probeCtx, cancel := context.WithTimeout(ctx, readyzTimeout)
	defer cancel()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(probeCtx)
	if err != nil {
		return nil, nil, fmt.Sprintf("GET /readyz: %v", err)
	}
	if got := strings.TrimSpace(string(body)); got != "ok" {
		return nil, nil, fmt.Sprintf("GET /readyz: got body %q, want \"ok\"", got)
	}
	return cfg, client, ""
}

// Stop stops the server: SIGTERM, up to Options.StopTimeout to exit, then
// SIGKILL to its process group. It returns an error unless the server was
// running and exited with status 0 after SIGTERM. Stopping a stopped
// cluster does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	p, agent := c.proc, c.agent
	c.proc, c.agent = nil, nil
	c.mu.Unlock()
	var agentErr error
	if agent != nil {
		if agentErr = agent.stop(c.opts.StopTimeout); agentErr != nil {
			agentErr = fmt.Errorf("agent: %w", agentErr)
		}
	}
	if p == nil {
		return agentErr
	}
	err := errors.Join(agentErr, p.stop(c.opts.StopTimeout))
	_ = os.Remove(filepath.Join(c.dir, serverPIDFile))
	return err
}

func (p *process) stop(timeout time.Duration) error {
	pid := p.cmd.Process.Pid
	// Whatever the server started and left running goes with it.
	defer func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }()
	select {
	case <-p.done:
		return fmt.Errorf("skiff server had already exited (%s) before Stop", exitText(p.err))
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal skiff server: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("skiff server did not exit cleanly on SIGTERM: %s", exitText(p.err))
		}
		return nil
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("skiff server still running %v after SIGTERM; killed it", timeout)
	}
}

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Restart stops the server (see Stop) and starts it again on the same
// ports and data. If Stop reports an error, Restart returns it and leaves
// the cluster stopped; calling Restart again then only starts it.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if err := c.start(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// Close stops the server and removes the work directory. With a real node
// it first deletes every workload and waits for the node to stop the pods,
// and afterwards removes what the node left: processes, cgroups, the network
// namespace. It reports a server that did not stop cleanly, and removes
// everything all the same.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	return errors.Join(c.drain(), c.Stop(), c.removeRealNode(), removeWorkDir(c.dir))
}

// Dir is the cluster's work directory.
func (c *Cluster) Dir() string { return c.dir }

// DataDir is the server's --data-dir.
func (c *Cluster) DataDir() string { return filepath.Join(c.dir, "data") }

// KubeconfigPath is the admin kubeconfig the server writes.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.dir, "admin.yaml") }

// LogPath is the file the server's stdout and stderr go to, across restarts.
func (c *Cluster) LogPath() string { return filepath.Join(c.dir, "server.log") }

// Ports are the loopback ports the cluster listens on.
func (c *Cluster) Ports() Ports { return c.ports }

// Endpoint is the API server's URL.
func (c *Cluster) Endpoint() string {
	return "https://" + c.apiHost() + ":" + strconv.Itoa(c.ports.Secure)
}

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return rest.CopyConfig(c.restConfig)
}

// Client returns an admin clientset for the cluster.
func (c *Cluster) Client() kubernetes.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// Logs returns everything the server has written so far, across restarts.
func (c *Cluster) Logs() string {
	b, err := os.ReadFile(c.LogPath())
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	return string(b)
}

func (c *Cluster) logSize() int64 {
	info, err := os.Stat(c.LogPath())
	if err != nil {
		return 0
	}
	return info.Size()
}

// logSince returns the log written after offset, at most limit bytes of it
// (the end), or all of it when limit < 0.
func (c *Cluster) logSince(offset int64, limit int) string {
	f, err := os.Open(c.LogPath())
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	if limit >= 0 {
		return tail(string(b), limit)
	}
	return string(b)
}

// tail returns about the last limit bytes of s, starting at a line boundary.
func tail(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	s = s[len(s)-limit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}

// Kubectl runs `skiff kubectl` with the admin kubeconfig and returns its
// stdout and stderr. err is non-nil when kubectl exits non-zero or runs
// longer than 60 s; it then quotes the command and its stderr.
func (c *Cluster) Kubectl(args ...string) (stdout, stderr string, err error) {
	return c.kubectl(nil, args)
}

// KubectlStdin is Kubectl with stdin as kubectl's standard input, for
// `apply -f -` and the like.
func (c *Cluster) KubectlStdin(stdin string, args ...string) (stdout, stderr string, err error) {
	return c.kubectl(strings.NewReader(stdin), args)
}

func (c *Cluster) kubectl(stdin io.Reader, args []string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	full := append(append([]string{"kubectl", "--kubeconfig", c.KubeconfigPath()}, c.kubectlServerArgs()...), args...)
	cmd := exec.CommandContext(ctx, c.opts.Binary, full...)
	cmd.Env = kubectlEnv(os.Environ(), c.KubeconfigPath(), filepath.Join(c.dir, "kube-cache"))
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("kubectl %s: timed out after %v; stderr: %s", strings.Join(args, " "), kubectlTimeout, strings.TrimSpace(stderr.String()))
	case err != nil:
		err = fmt.Errorf("kubectl %s: %w; stderr: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), err
}

// kubectlEnv returns the environment for a kubectl run: the test's own,
// pointed at the cluster, with the discovery cache in the cluster's
// directory (not the user's ~/.kube) and the user's kuberc preferences off,
// so a developer's aliases and defaults cannot change what tests see.
func kubectlEnv(environ []string, kubeconfig, cacheDir string) []string {
	drop := map[string]bool{"KUBECONFIG": true, "KUBECACHEDIR": true, "KUBERC": true}
	out := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			out = append(out, kv)
		}
	}
	return append(out, "KUBECONFIG="+kubeconfig, "KUBECACHEDIR="+cacheDir, "KUBERC=off")
}
