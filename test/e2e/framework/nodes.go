package framework

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodesStopTimeout bounds how long a node process gets to exit on SIGTERM.
const nodesStopTimeout = 10 * time.Second

// Nodes is a `skiff agent` or `skiff sim nodes` process joined to a
// Cluster. It is stopped when the test that started it ends.
type Nodes struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // read only after done is closed
}

// JoinToken returns the cluster's join token (DATA_DIR/server/token) and,
// when the token carries no CA hash (a bare secret), the CA file an agent
// needs with it; otherwise caFile is empty.
func (c *Cluster) JoinToken() (token, caFile string, err error) {
	b, err := os.ReadFile(filepath.Join(c.DataDir(), "server", "token"))
	if err != nil {
		return "", "", fmt.Errorf("read join token: %w", err)
	}
	token = strings.TrimSpace(string(b))
	if !strings.Contains(token, "::") {
		caFile = filepath.Join(c.DataDir(), "server", "tls", "ca.crt")
	}
	return token, caFile, nil
}

// JoinArgs are the --server, --token (and, for a bare token, --ca-file)
// flags that join a node to the cluster.
func (c *Cluster) JoinArgs() ([]string, error) {
	token, caFile, err := c.JoinToken()
	if err != nil {
		return nil, err
	}
	args := []string{"--server", c.Endpoint(), "--token", token}
	if caFile != "" {
		args = append(args, "--ca-file", caFile)
	}
	return args, nil
}

// StartAgent runs `skiff agent --runtime simulated --node-name name` joined
// to the cluster, with extra flags appended, and stops it when t ends.
func (c *Cluster) StartAgent(t testing.TB, name string, extra ...string) *Nodes {
	t.Helper()
	args := append([]string{"agent", "--runtime", "simulated", "--node-name", name, "--node-ip", "127.0.0.1"}, extra...)
	return c.startNodes(t, "agent-"+name, args)
}

// StartSimNodes runs `skiff sim nodes --count count --name-prefix prefix`
// joined to the cluster, with extra flags appended (e.g. --node-labels),
// and stops it when t ends. The nodes are named prefix + a zero-padded
// index: prefix0 .. prefix<count-1>.
func (c *Cluster) StartSimNodes(t testing.TB, prefix string, count int, extra ...string) *Nodes {
	t.Helper()
	args := append([]string{"sim", "nodes", "--count", strconv.Itoa(count), "--name-prefix", prefix}, extra...)
	return c.startNodes(t, "sim-"+prefix, args)
}

func (c *Cluster) startNodes(t testing.TB, name string, args []string) *Nodes {
	t.Helper()
	join, err := c.JoinArgs()
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, join...)
	logPath := filepath.Join(c.dir, "nodes-"+name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open node log: %v", err)
	}
	fmt.Fprintf(logFile, "=== e2e framework %s: %s %s\n", time.Now().Format(time.RFC3339), c.opts.Binary, strings.Join(args, " "))
	cmd := exec.Command(c.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	_ = logFile.Close()
	if err != nil {
		t.Fatalf("run %s: %v", c.opts.Binary, err)
	}
	n := &Nodes{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, logPath, tail(n.Logs(), failureLogLimit))
		}
	})
	return n
}

// Logs returns what the node process has written so far.
func (n *Nodes) Logs() string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read node log: %v)", err)
	}
	return string(b)
}

// Exited reports whether the process has ended, and how.
func (n *Nodes) Exited() (bool, error) {
	select {
	case <-n.done:
		return true, n.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to 10 s, then kills the process group. It
// reports a process that had already exited or did not exit cleanly.
// Stopping twice does nothing.
func (n *Nodes) Stop() error {
	pid := n.cmd.Process.Pid
	defer func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }()
	select {
	case <-n.done:
		if n.err != nil && !strings.Contains(n.err.Error(), "signal: terminated") {
			return fmt.Errorf("%s had exited: %s", n.name, exitText(n.err))
		}
		return nil
	default:
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	timer := time.NewTimer(nodesStopTimeout)
	defer timer.Stop()
	select {
	case <-n.done:
		if n.err != nil {
			return fmt.Errorf("%s did not exit cleanly on SIGTERM: %s", n.name, exitText(n.err))
		}
		return nil
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-n.done
		return fmt.Errorf("%s still running %v after SIGTERM; killed it", n.name, nodesStopTimeout)
	}
}
