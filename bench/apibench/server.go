package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// readyMarker is what `skiff server` logs once bootstrap is done.
const readyMarker = `msg="skiff server ready"`

// child is one `skiff server` process on a data dir of its own. Its ports
// stay fixed for the life of the data dir: embedded etcd remembers its peer
// URL, so a restart on other ports would test something else.
type child struct {
	bin     string
	dataDir string
	apiPort int
	etcdCP  int
	etcdPP  int

	// controlPlane runs the controllers and, unless noScheduler, the
	// scheduler too; otherwise the server is the API alone.
	controlPlane  bool
	noScheduler   bool
	noControllers bool // with controlPlane: the scheduler alone

	cmd     *exec.Cmd
	started time.Time
	log     *logWatcher
	exited  chan struct{}
	exitErr error
}

// newChild picks three free loopback ports for a server on dataDir.
func newChild(bin, dataDir string) (*child, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return &child{bin: bin, dataDir: dataDir, apiPort: ports[0], etcdCP: ports[1], etcdPP: ports[2]}, nil
}

// freePorts asks the kernel for n distinct free ports on 127.0.0.1. The
// listeners are held open together so the kernel cannot hand out one port
// twice, then closed for the server to take.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *child) kubeconfig() string { return filepath.Join(c.dataDir, "admin.yaml") }
func (c *child) baseURL() string    { return "https://127.0.0.1:" + strconv.Itoa(c.apiPort) }

// start launches the process and returns at once; started is taken just
// before the fork so start-up figures include exec and the Go runtime's init.
func (c *child) start() error {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(filepath.Dir(c.dataDir), filepath.Base(c.dataDir)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	c.log = &logWatcher{out: logFile, ready: make(chan struct{})}
	args := []string{"server",
		"--data-dir", c.dataDir,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.apiPort),
		"--write-kubeconfig", c.kubeconfig(),
		"--etcd-client-port", strconv.Itoa(c.etcdCP),
		"--etcd-peer-port", strconv.Itoa(c.etcdPP),
		"--log-level", "info",
		// Benchmarks measure the control plane; nodes are simulated.
		"--disable-agent",
	}
	if !c.controlPlane {
		// The API server alone: these are its targets, and 10,000 pods
		// with no node would keep a scheduler busy failing them.
		args = append(args, "--disable-controllers", "*", "--disable-scheduler")
	} else {
		// Room for thousands of simulated nodes' /24s (the default
		// 10.244.0.0/16 holds 256), clear of the service range.
		args = append(args, "--cluster-cidr", "10.64.0.0/11")
		if c.noScheduler {
			args = append(args, "--disable-scheduler")
		}
		if c.noControllers {
			args = append(args, "--disable-controllers", "*")
		}
	}
	c.cmd = exec.Command(c.bin, args...)
	c.cmd.Stdout = c.log
	c.cmd.Stderr = c.log
	// If the benchmark dies without running its cleanup (SIGKILL, a
	// panic in a goroutine), the kernel still kills the server.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.exited = make(chan struct{})
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", c.bin, err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		_ = logFile.Close()
		close(c.exited)
	}()
	return nil
}

// stop asks the server to shut down and kills it if it has not within 15 s.
// It is safe to call on a child that never started or already stopped.
func (c *child) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// pid is the server's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// alive reports whether the process is still running.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// exitError describes how the server ended, with the end of its log.
func (c *child) exitError() error {
	return fmt.Errorf("skiff server exited (%v); last log lines:\n%s", c.exitErr, c.log.tail())
}

// startupTimes are the moments, counted from the fork, at which the server
// first did each thing.
type startupTimes struct {
	readyz   time.Duration // first 200 "ok" from anonymous GET /readyz
	api      time.Duration // first 200 from GET /api with the admin client certificate
	readyLog time.Duration // the "skiff server ready" log line was read
}

// startAndTime starts the server and polls it every pollEvery until /readyz
// and an authenticated /api have both answered 200, or timeout passes.
func (c *child) startAndTime(ctx context.Context, timeout time.Duration) (startupTimes, error) {
	var st startupTimes
	if err := c.start(); err != nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	var readyzErr, apiErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		st.readyz, readyzErr = c.pollReadyz(ctx)
	}()
	go func() {
		defer wg.Done()
		st.api, apiErr = c.pollAPI(ctx)
	}()
	wg.Wait()
	if err := errors.Join(readyzErr, apiErr); err != nil {
		if !c.alive() {
			return st, c.exitError()
		}
		return st, fmt.Errorf("%w; last log lines:\n%s", err, c.log.tail())
	}
	// The log line is written just before /readyz turns ok, so it is
	// normally already there; wait briefly rather than not at all.
	select {
	case <-c.log.ready:
		st.readyLog = c.log.readyAt.Sub(c.started)
	case <-time.After(2 * time.Second):
	}
	return st, nil
}

const pollEvery = 5 * time.Millisecond

// pollReadyz polls anonymous GET /readyz. It skips certificate
// verification: on a new data dir the CA does not exist until the server
// has made it, and this is a fixed loopback address the benchmark owns.
func (c *child) pollReadyz(ctx context.Context) (time.Duration, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback server we started
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	last := "no answer"
	for {
		body, code, err := get(ctx, hc, c.baseURL()+"/readyz")
		now := time.Now()
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK && strings.TrimSpace(string(body)) == "ok":
			return now.Sub(c.started), nil
		default:
			last = fmt.Sprintf("HTTP %d: %.200s", code, body)
		}
		if err := sleepOrDone(ctx, c, pollEvery); err != nil {
			return 0, fmt.Errorf("/readyz never ok (last: %s): %w", last, err)
		}
	}
}

// pollAPI polls GET /api as the admin. The kubeconfig is re-read on every
// try: on a new data dir it appears part-way through start-up, and on an
// existing one the server rewrites it.
func (c *child) pollAPI(ctx context.Context) (time.Duration, error) {
	last := "no kubeconfig yet"
	for {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
		if err == nil {
			var rt http.RoundTripper
			rt, err = rest.TransportFor(cfg)
			if err == nil {
				hc := &http.Client{Transport: rt, Timeout: 2 * time.Second}
				body, code, gerr := get(ctx, hc, c.baseURL()+"/api")
				now := time.Now()
				if tr, ok := rt.(interface{ CloseIdleConnections() }); ok {
					tr.CloseIdleConnections()
				}
				switch {
				case gerr != nil:
					last = gerr.Error()
				case code == http.StatusOK:
					return now.Sub(c.started), nil
				default:
					last = fmt.Sprintf("HTTP %d: %.200s", code, body)
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		if err := sleepOrDone(ctx, c, pollEvery); err != nil {
			return 0, fmt.Errorf("authenticated /api never 200 (last: %s): %w", last, err)
		}
	}
}

// waitReady waits until /readyz answers ok, without timing anything.
func (c *child) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := c.pollReadyz(ctx); err != nil {
		if !c.alive() {
			return c.exitError()
		}
		return err
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return body, resp.StatusCode, err
}

// sleepOrDone sleeps d, or returns early with an error when ctx ends or
// the server process exits (polling a dead server would only time out).
func sleepOrDone(ctx context.Context, c *child, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.exited:
		return errors.New("server process exited")
	}
}

// memory is what /proc/PID/status says about the server's memory.
type memory struct {
	rss, hwm int64 // VmRSS and VmHWM (peak RSS), bytes
	// RssAnon is heap and stacks; RssFile is mapped files, mostly the
	// binary's own pages; they tell a big heap from a big binary.
	anon, file int64
}

// describe gives the breakdown for a result's detail.
func (m memory) describe() string {
	return fmt.Sprintf("peak (VmHWM) %s; anonymous %s, file-backed %s", mib(m.hwm), mib(m.anon), mib(m.file))
}

// readMemory reads VmRSS and VmHWM of the server process.
func (c *child) readMemory() (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.rss
		case "VmHWM":
			dst = &m.hwm
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %s %q: %w", key, val, err)
		}
		*dst = kb << 10
	}
	if m.rss == 0 {
		return memory{}, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

// logWatcher copies the server's output to its log file, keeps the last
// lines for error messages, and notes when the ready line went by.
type logWatcher struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	lines   []string
	ready   chan struct{}
	readyAt time.Time
}

const keepLines = 30

func (w *logWatcher) Write(p []byte) (int, error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if w.readyAt.IsZero() && strings.Contains(line, readyMarker) {
			w.readyAt = now
			close(w.ready)
		}
		w.lines = append(w.lines, line)
		if len(w.lines) > keepLines {
			w.lines = w.lines[len(w.lines)-keepLines:]
		}
	}
	return w.out.Write(p)
}

func (w *logWatcher) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}
