// Command apibench measures `skiff server` against the API server's
// performance targets: write and read latency under concurrent clients,
// full-list time, watch fan-out delay, start-up time and resident memory.
//
// It runs the real binary as a child process, on a temporary data dir and
// free loopback ports, talks to it only over 127.0.0.1, and removes both
// the process and the data when it ends, also on error or Ctrl-C. Every
// loop is bounded in count and in time. docs/performance.md describes the
// measurements and holds the latest figures.
//
//	go run ./bench/apibench -skiff bin/skiff [-pods 10000] [-clients 50] [-watchers 100] [-out results.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Measurement names, for -only.
const (
	mStartup   = "startup"
	mIdleRSS   = "idle-rss"
	mCreate    = "create"
	mUpdate    = "update"
	mGet       = "get"
	mList      = "list"
	mWatch     = "watch"
	mLoadedRSS = "rss-loaded"
)

// allMeasurements lists the measurement names in the order they run.
func allMeasurements() []string {
	return []string{mStartup, mIdleRSS, mCreate, mUpdate, mGet, mList, mWatch, mLoadedRSS}
}

type options struct {
	skiff         string
	pods          int
	clients       int
	watchers      int
	duration      time.Duration
	out           string
	only          map[string]bool
	startupRuns   int
	listRuns      int
	watchWrites   int
	watchInterval time.Duration
	settle        time.Duration
	maxOps        int
	timeout       time.Duration
	cpuProfile    string
	// serverProfile, if set, is where a CPU profile of the server during
	// the whole-cluster idle phase is written.
	serverProfile string
	// serverHeapProfile, if set, is where the server's heap profile is
	// written after the whole-cluster memory row.
	serverHeapProfile string
	rate              float64
	cluster           clusterOptions
}

// selected reports whether a measurement runs: every API measurement by
// default, the whole-cluster ones only when named.
func (o *options) selected(name string) bool {
	if o.only == nil {
		return !isClusterMeasurement(name)
	}
	return o.only[name]
}

// loadName says how the latency rows loaded the server.
func (o *options) loadName() string {
	if o.rate > 0 {
		return fmt.Sprintf("%d clients, %g req/s in total", o.clients, o.rate)
	}
	return fmt.Sprintf("%d clients, closed loop", o.clients)
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("apibench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var only string
	fs.StringVar(&o.skiff, "skiff", "bin/skiff", "path of the skiff binary to measure")
	fs.IntVar(&o.pods, "pods", 10000, "pods to create in namespace \"bench\" (create latency, then list, memory)")
	fs.IntVar(&o.clients, "clients", 50, "concurrent clients for create, update and get")
	fs.IntVar(&o.watchers, "watchers", 100, "concurrent watches for the fan-out measurement")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the timed update and get phases")
	fs.StringVar(&o.out, "out", "", "also write the results as markdown to this file")
	fs.StringVar(&only, "only", "", "comma-separated measurements to run (default all): "+strings.Join(allMeasurements(), ","))
	fs.IntVar(&o.startupRuns, "startup-runs", 3, "start-ups to time, on a new and on an existing data dir each")
	fs.IntVar(&o.listRuns, "list-runs", 10, "full lists to time, through client-go and over plain HTTP each")
	fs.IntVar(&o.watchWrites, "watch-writes", 200, "updates written while the watches are open")
	fs.DurationVar(&o.watchInterval, "watch-interval", 20*time.Millisecond, "pause between two of those updates")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "idle time before memory is read")
	fs.IntVar(&o.maxOps, "max-ops", 500000, "upper bound on operations in one timed phase")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "upper bound on the whole run")
	fs.Float64Var(&o.rate, "rate", 0, "total requests per second for create, update and get, spread over the clients; 0: closed loop, each client sends as soon as its last request returned")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmark client (not the server) to this file")
	fs.StringVar(&o.serverHeapProfile, "server-heapprofile", "", "write the server's heap profile, taken right after the memory row of cluster-rss, to this file")
	fs.StringVar(&o.serverProfile, "server-cpuprofile", "", "write a 30 s CPU profile of the server, taken right after the idle CPU row of cluster-rss, to this file")
	var schedNodes string
	fs.StringVar(&schedNodes, "sched-nodes", "1000,5000", "simulated node counts for the scheduler throughput rows")
	fs.IntVar(&o.cluster.schedPods, "sched-pods", 5000, "plain pods per scheduler throughput row")
	fs.IntVar(&o.cluster.constrainedPods, "sched-constrained-pods", 1000, "pods per anti-affinity and per spreading row (at most one per node for anti-affinity)")
	fs.IntVar(&o.cluster.deployNodes, "deploy-nodes", 1000, "simulated nodes for the Deployment and whole-cluster rows")
	fs.IntVar(&o.cluster.deployReplicas, "deploy-replicas", 10000, "replicas of the timed Deployment")
	fs.IntVar(&o.cluster.clusterPods, "cluster-pods", 30000, "pods held for the control plane's memory and idle CPU rows")
	fs.DurationVar(&o.cluster.clusterIdleAfter, "cluster-settle", 30*time.Second, "settling time before the whole-cluster memory and CPU are read")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(schedNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sched-nodes: %q is not a node count", f)
		}
		o.cluster.schedNodes = append(o.cluster.schedNodes, n)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, name := range strings.Split(only, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(allMeasurements(), name) && !isClusterMeasurement(name) {
				return nil, fmt.Errorf("-only: unknown measurement %q (known: %s)", name, strings.Join(append(allMeasurements(), clusterMeasurements()...), ","))
			}
			o.only[name] = true
		}
	}
	switch {
	case o.pods < 2:
		return nil, errors.New("-pods must be at least 2")
	case o.clients < 1 || o.watchers < 1 || o.startupRuns < 1 || o.listRuns < 1 || o.watchWrites < 1 || o.maxOps < 1:
		return nil, errors.New("-clients, -watchers, -startup-runs, -list-runs, -watch-writes and -max-ops must be positive")
	case o.rate < 0:
		return nil, errors.New("-rate must not be negative")
	case o.duration <= 0 || o.timeout <= 0:
		return nil, errors.New("-duration and -timeout must be positive")
	}
	return o, nil
}

// result is one row of the results table.
type result struct {
	name   string
	shown  string  // the figure as printed
	value  float64 // the figure in the target's unit, for the verdict
	target float64 // 0: informational, no target
	tshown string
	detail string
	err    string
	// atLeast: the target is a floor (throughput), not a ceiling.
	atLeast bool
}

// verdict compares a figure with its target.
func (r result) verdict() string {
	switch {
	case r.err != "":
		return "ERROR"
	case r.target == 0:
		return "-"
	case r.atLeast && r.value >= r.target, !r.atLeast && r.value <= r.target:
		return "PASS"
	default:
		return "MISS"
	}
}

// report collects rows and prints progress as they come.
type report struct {
	rows []result
	log  io.Writer
}

func (r *report) add(row result) {
	r.rows = append(r.rows, row)
	status := row.verdict()
	if row.err != "" {
		fmt.Fprintf(r.log, "  %-52s ERROR: %s\n", row.name, row.err)
		return
	}
	fmt.Fprintf(r.log, "  %-52s %-12s %s\n", row.name, row.shown, status)
}

func (r *report) fail(name, tshown string, err error) {
	r.add(result{name: name, tshown: tshown, err: err.Error()})
}

// latencyRow is a row judged on a duration against a millisecond target.
func latencyRow(name string, d time.Duration, targetMS float64, detail string) result {
	r := result{name: name, shown: ms(d), value: float64(d) / float64(time.Millisecond), target: targetMS, detail: detail}
	if targetMS > 0 {
		r.tshown = fmt.Sprintf("<= %g ms", targetMS)
	}
	return r
}

// memoryRow is a row judged on bytes against a MiB target.
func memoryRow(name string, b int64, targetMiB float64, detail string) result {
	r := result{name: name, shown: mib(b), value: float64(b) / (1 << 20), target: targetMiB, detail: detail}
	if targetMiB > 0 {
		r.tshown = fmt.Sprintf("<= %g MiB", targetMiB)
	}
	return r
}

func run(ctx context.Context, o *options, stdout, log io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	bin, err := filepath.Abs(o.skiff)
	if err != nil {
		return err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return fmt.Errorf("skiff binary %q not found (run make build, or pass -skiff)", o.skiff)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
	}
	tmp, err := os.MkdirTemp("", "skiff-apibench-")
	if err != nil {
		return err
	}
	// Every server started is stopped, and the data removed, however run
	// returns; the children also die with this process (Pdeathsig).
	var children []*child
	defer func() {
		for _, c := range children {
			c.stop()
		}
		_ = os.RemoveAll(tmp)
	}()
	spawn := func(name string) (*child, error) {
		c, err := newChild(bin, filepath.Join(tmp, name))
		if err == nil {
			children = append(children, c)
		}
		return c, err
	}

	rep := &report{log: log}
	began := time.Now()
	loadBefore := loadavg()
	fmt.Fprintf(log, "apibench: %s, %d pods, %d clients, %d watchers, data under %s\n", bin, o.pods, o.clients, o.watchers, tmp)

	var runErr error
	if o.selected(mStartup) || o.selected(mIdleRSS) {
		runErr = startupRuns(ctx, o, spawn, rep)
	}
	needPods := o.selected(mCreate) || o.selected(mUpdate) || o.selected(mGet) || o.selected(mList) || o.selected(mWatch) || o.selected(mLoadedRSS)
	if needPods && runErr == nil {
		runErr = loadRuns(ctx, o, spawn, rep)
	}
	if runErr == nil && (o.selected(mScheduler) || o.selected(mDeploy) || o.selected(mClusterRSS)) {
		runErr = runCluster(ctx, o, spawn, rep)
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = fmt.Errorf("stopped: %w", ctx.Err())
	}
	if len(rep.rows) == 0 {
		return runErr
	}
	// What was measured before a failure is still worth seeing.
	md := markdown(o, bin, rep.rows, began, time.Since(began), loadBefore, loadavg())
	if runErr != nil {
		md += fmt.Sprintf("\nIncomplete: %v\n", runErr)
	}
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return errors.Join(runErr, err)
		}
	}
	return runErr
}

// startupRuns times start-ups on new and existing data dirs, and reads the
// idle memory of the first fresh server after the settle time.
func startupRuns(ctx context.Context, o *options, spawn func(string) (*child, error), rep *report) error {
	const limit = 60 * time.Second
	const tNew, tExisting = 2000, 1000
	var fresh, existing []startupTimes
	runs := o.startupRuns
	if !o.selected(mStartup) {
		runs = 1 // only the idle memory, which needs one fresh server
	}
	fmt.Fprintln(rep.log, "start-up:")
	for run := range runs {
		c, err := spawn(fmt.Sprintf("startup-%d", run))
		if err != nil {
			return err
		}
		st, err := c.startAndTime(ctx, limit)
		if err != nil {
			c.stop()
			rep.fail("start-up, new data dir", fmt.Sprintf("<= %d ms", tNew), err)
			return nil
		}
		fresh = append(fresh, st)
		fmt.Fprintf(rep.log, "  run %d, new data dir: /readyz %s, /api %s\n", run+1, ms(st.readyz), ms(st.api))
		if run == 0 && o.selected(mIdleRSS) {
			idleMemory(ctx, o, c, rep)
		}
		c.stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st, err = c.startAndTime(ctx, limit)
		if err != nil {
			c.stop()
			rep.fail("start-up, existing data dir", fmt.Sprintf("<= %d ms", tExisting), err)
			return nil
		}
		existing = append(existing, st)
		fmt.Fprintf(rep.log, "  run %d, existing data dir: /readyz %s, /api %s\n", run+1, ms(st.readyz), ms(st.api))
		c.stop()
		if err := os.RemoveAll(c.dataDir); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if !o.selected(mStartup) {
		return nil
	}
	rep.add(startupRow("start-up to /readyz ok, new data dir", fresh, func(s startupTimes) time.Duration { return s.readyz }, tNew))
	rep.add(startupRow("start-up to authenticated /api 200, new data dir", fresh, func(s startupTimes) time.Duration { return s.api }, tNew))
	rep.add(startupRow("start-up to /readyz ok, existing data dir", existing, func(s startupTimes) time.Duration { return s.readyz }, tExisting))
	rep.add(startupRow("start-up to authenticated /api 200, existing data dir", existing, func(s startupTimes) time.Duration { return s.api }, tExisting))
	return nil
}

// startupRow judges the slowest of the runs: a start-up target is a
// promise about every start, not the typical one.
func startupRow(name string, runs []startupTimes, pick func(startupTimes) time.Duration, targetMS float64) result {
	var all []time.Duration
	var logs []string
	for _, r := range runs {
		all = append(all, pick(r))
		if r.readyLog > 0 {
			logs = append(logs, ms(r.readyLog))
		}
	}
	s := summarize(all)
	detail := fmt.Sprintf("worst of %d; runs: %s", s.n, joinMS(all))
	if len(logs) > 0 {
		detail += fmt.Sprintf("; ready log line at %s", strings.Join(logs, ", "))
	}
	return latencyRow(name, s.max, targetMS, detail)
}

func joinMS(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, ms(d))
	}
	return strings.Join(s, ", ")
}

// idleMemory waits the settle time on a fresh server and reads its memory.
func idleMemory(ctx context.Context, o *options, c *child, rep *report) {
	fmt.Fprintf(rep.log, "  idle %s before reading memory\n", o.settle)
	if err := sleepOrDone(ctx, c, o.settle); err != nil {
		rep.fail("RSS, idle fresh server", "<= 80 MiB", err)
		return
	}
	m, err := c.readMemory()
	if err != nil {
		rep.fail("RSS, idle fresh server", "<= 80 MiB", err)
		return
	}
	rep.add(memoryRow("RSS, idle fresh server", m.rss, 80, fmt.Sprintf("after %s idle; %s", o.settle, m.describe())))
}

// loadRuns runs the load measurements on one server: fill it with pods,
// then update, get, list and watch; then restart it on its data dir and
// read its memory with every pod stored.
func loadRuns(ctx context.Context, o *options, spawn func(string) (*child, error), rep *report) error {
	c, err := spawn("load")
	if err != nil {
		return err
	}
	if err := c.start(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("server for the load measurements: %w", err)
	}
	cl, err := newClient(c.kubeconfig(), contentJSON)
	if err != nil {
		return err
	}
	defer cl.hc.CloseIdleConnections()
	// Upstream's components (informers, controllers) speak protobuf;
	// kubectl and most other tools JSON. Lists and watches are measured in
	// both.
	pcl, err := newClient(c.kubeconfig(), contentProtobuf)
	if err != nil {
		return err
	}
	defer pcl.hc.CloseIdleConnections()
	if err := cl.ensureNamespace(ctx); err != nil {
		return err
	}
	// The server builds its OpenAPI documents in the background after
	// every start (about half a second of CPU), and /openapi/v3 answers
	// once they are built. The load rows measure a server that has
	// finished starting, not requests sharing the cores with that.
	if _, err := cl.rawGet(ctx, "/openapi/v3"); err != nil {
		return fmt.Errorf("wait for the OpenAPI documents: %w", err)
	}

	// observe runs a phase and says how busy the cores were (the server,
	// this client, everything else) and what the server's own latency
	// histogram for verb saw meanwhile.
	observe := func(verb string, fn func()) string {
		cpu0 := sampleCPU(c.pid())
		view := serverView(ctx, cl, verb, fn)
		return cpuUse(cpu0, sampleCPU(c.pid())) + "; " + view
	}

	fmt.Fprintf(rep.log, "load (%d pods, %d clients):\n", o.pods, o.clients)
	set := &podSet{}
	var created phase
	seen := observe("CREATE", func() {
		created = fill(ctx, cl, set, o.pods, shape{workers: o.clients, limit: 15 * time.Minute, rate: o.rate})
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	podBytes, _ := cl.rawGet(ctx, "/api/v1/namespaces/"+benchNamespace+"/pods/"+podName(0))
	if o.selected(mCreate) {
		s := summarize(created.samples)
		detail := fmt.Sprintf("p50 %s, max %s; %s; a stored pod is %d bytes of JSON; %s", ms(s.p50), ms(s.max), created.detail(), podBytes, seen)
		rep.add(latencyRow(fmt.Sprintf("create p99, %s", o.loadName()), s.p99, 25, detail))
	}
	if created.errs > 0 {
		return fmt.Errorf("%d of %d creates failed (first: %v)", created.errs, o.pods, created.firstErr)
	}
	if o.selected(mUpdate) {
		var p phase
		seen := observe("UPDATE", func() {
			p = updates(ctx, cl, set, shape{workers: o.clients, maxOps: o.maxOps, limit: o.duration, rate: o.rate})
		})
		s := summarize(p.samples)
		rep.add(latencyRow(fmt.Sprintf("update p99, %s", o.loadName()), s.p99, 25, fmt.Sprintf("p50 %s, max %s; %s; %s", ms(s.p50), ms(s.max), p.detail(), seen)))
	}
	if o.selected(mGet) {
		var p phase
		seen := observe("GET", func() {
			p = gets(ctx, cl, set, shape{workers: o.clients, maxOps: o.maxOps, limit: o.duration, rate: o.rate})
		})
		s := summarize(p.samples)
		rep.add(latencyRow(fmt.Sprintf("get p99, %s", o.loadName()), s.p99, 5, fmt.Sprintf("p50 %s, max %s; %s; %s", ms(s.p50), ms(s.max), p.detail(), seen)))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.selected(mList) {
		name := fmt.Sprintf("list %d pods, client-go (JSON, decoded into a PodList), median", o.pods)
		var l listResult
		var err error
		seen := observe("LIST", func() { l, err = listTyped(ctx, cl, o.listRuns) })
		if err != nil {
			rep.fail(name, "<= 300 ms", err)
		} else {
			s := summarize(l.samples)
			detail := fmt.Sprintf("%d runs, max %s; %d items", s.n, ms(s.max), l.items)
			if l.items != o.pods {
				detail += fmt.Sprintf(" (want %d)", o.pods)
			}
			// Most of this time is client-go decoding the pods on the
			// client's share of the cores, hence the plain HTTP row below.
			rep.add(latencyRow(name, s.p50, 300, detail+"; "+seen))
		}
		name = fmt.Sprintf("list %d pods, client-go (protobuf, decoded into a PodList), median", o.pods)
		seen = observe("LIST", func() { l, err = listTyped(ctx, pcl, o.listRuns) })
		if err != nil {
			rep.fail(name, "<= 300 ms", err)
		} else {
			s := summarize(l.samples)
			rep.add(latencyRow(name, s.p50, 300, fmt.Sprintf("%d runs, max %s; %d items; %s", s.n, ms(s.max), l.items, seen)))
		}
		name = fmt.Sprintf("list %d pods, client-go's JSON decoding alone (no server), median", o.pods)
		if l, err = listDecode(ctx, cl, o.listRuns); err != nil {
			rep.fail(name, "<= 300 ms", err)
		} else {
			s := summarize(l.samples)
			rep.add(latencyRow(name, s.p50, 300, fmt.Sprintf("%d runs, max %s; %d items from a %.1f MiB body fetched once; the floor under the JSON row", s.n, ms(s.max), l.items, float64(l.bytes)/(1<<20))))
		}
		name = fmt.Sprintf("list %d pods, plain HTTP (body read, not decoded), median", o.pods)
		seen = observe("LIST", func() { l, err = listRaw(ctx, cl, o.listRuns) })
		if err != nil {
			rep.fail(name, "<= 300 ms", err)
		} else {
			s := summarize(l.samples)
			rep.add(latencyRow(name, s.p50, 300, fmt.Sprintf("%d runs, max %s; %.1f MiB body; %s", s.n, ms(s.max), float64(l.bytes)/(1<<20), seen)))
		}
	}
	if o.selected(mWatch) {
		watchRow := func(name string, targetMS float64, open openWatch) {
			var w watchResult
			var err error
			seen := observe("UPDATE", func() { w, err = watchFanout(ctx, cl, set, open, o.watchers, o.watchWrites, o.watchInterval) })
			if err != nil {
				rep.fail(name, fmt.Sprintf("<= %g ms", targetMS), err)
				return
			}
			s := summarize(w.delays)
			ws := summarize(w.writeLat)
			fs := summarize(w.fromSend)
			detail := fmt.Sprintf("p50 %s, max %s over %d deliveries (%d writes %s apart); %d arrived before their write returned (counted as 0); from write sent: p50 %s, p99 %s; write p50 %s, p99 %s; %d missing; %s",
				ms(s.p50), ms(s.max), s.n, w.writes, o.watchInterval, w.early, ms(fs.p50), ms(fs.p99), ms(ws.p50), ms(ws.p99), w.missing, seen)
			row := latencyRow(name, s.p99, targetMS, detail)
			if w.missing > 0 {
				row.err = fmt.Sprintf("%d of %d deliveries never arrived (%d watches ended early by the server; missed writes, number:watchers: %s); %s",
					w.missing, w.writes*w.watchers, w.closed, gapList(w.gaps, 10), detail)
			}
			rep.add(row)
		}
		watchRow(fmt.Sprintf("watch delivery p99, %d client-go watchers (JSON)", o.watchers), 50, cl.clientGoWatch)
		watchRow(fmt.Sprintf("watch delivery p99, %d client-go watchers (protobuf)", o.watchers), 50, pcl.clientGoWatch)
		// The same with next to no client work, to tell the server's
		// fan-out from the client's decoding on the shared cores.
		watchRow(fmt.Sprintf("watch delivery p99, %d raw HTTP watchers (not decoded)", o.watchers), 50, cl.rawWatch)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if m, err := c.readMemory(); err == nil {
		rep.add(memoryRow("RSS right after the load above", m.rss, 0, m.describe()))
	}

	// A restart on the filled data dir: start-up with real data, and the
	// memory the stored pods cost without any load's leftovers.
	cl.hc.CloseIdleConnections()
	c.stop()
	if !o.selected(mStartup) && !o.selected(mLoadedRSS) {
		return nil
	}
	st, err := c.startAndTime(ctx, 120*time.Second)
	if err != nil {
		rep.fail(fmt.Sprintf("start-up, existing data dir with %d pods", o.pods), "<= 1000 ms", err)
		return nil
	}
	if o.selected(mStartup) {
		one := []startupTimes{st}
		rep.add(startupRow(fmt.Sprintf("start-up to /readyz ok, existing data dir, %d pods", o.pods), one, func(s startupTimes) time.Duration { return s.readyz }, 1000))
		rep.add(startupRow(fmt.Sprintf("start-up to authenticated /api 200, existing data dir, %d pods", o.pods), one, func(s startupTimes) time.Duration { return s.api }, 1000))
	}
	if o.selected(mLoadedRSS) {
		name := fmt.Sprintf("RSS, %d pods stored, restarted, idle", o.pods)
		fmt.Fprintf(rep.log, "  idle %s before reading memory\n", o.settle)
		if err := sleepOrDone(ctx, c, o.settle); err != nil {
			rep.fail(name, "<= 300 MiB", err)
			return nil
		}
		m, err := c.readMemory()
		if err != nil {
			rep.fail(name, "<= 300 MiB", err)
			return nil
		}
		rep.add(memoryRow(name, m.rss, 300, fmt.Sprintf("after %s idle; %s", o.settle, m.describe())))
	}
	c.stop()
	return nil
}

// markdown renders the results with the machine and the parameters, so a
// pasted table says what it was measured on.
func markdown(o *options, bin string, rows []result, began time.Time, took time.Duration, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# skiff API benchmark, %s\n\n", began.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- binary: `%s` (%s)\n", bin, skiffVersion(bin))
	fmt.Fprintf(&b, "- machine: %s\n", machine())
	fmt.Fprintf(&b, "- parameters: -pods %d -clients %d -rate %g -watchers %d -duration %s -watch-writes %d -watch-interval %s -startup-runs %d -list-runs %d -settle %s\n",
		o.pods, o.clients, o.rate, o.watchers, o.duration, o.watchWrites, o.watchInterval, o.startupRuns, o.listRuns, o.settle)
	fmt.Fprintf(&b, "- run took %s; load average (1, 5, 15 min) before: %s, after: %s\n\n", took.Round(time.Second), loadBefore, loadAfter)
	b.WriteString("| measurement | result | target | status | detail |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		shown, detail := r.shown, r.detail
		if r.err != "" {
			shown, detail = "-", r.err
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.name, shown, r.tshown, r.verdict(), mdEscape(detail))
	}
	return b.String()
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// skiffVersion asks the binary for its version, best effort.
func skiffVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// machine describes the CPU count, model and memory, from /proc.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb); err == nil {
					mem = fmt.Sprintf(", %.1f GiB memory", float64(kb)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s, %s/%s, benchmark client %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// loadavg is the first three fields of /proc/loadavg: on a shared machine
// other work skews every figure, and the table should say how much ran.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// gapList lists up to limit "write:watchers" pairs, in write order.
func gapList(gaps map[int]int, limit int) string {
	keys := slices.Sorted(maps.Keys(gaps))
	var parts []string
	for i, k := range keys {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-limit))
			break
		}
		parts = append(parts, fmt.Sprintf("%d:%d", k, gaps[k]))
	}
	return strings.Join(parts, " ")
}
