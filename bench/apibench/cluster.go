package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// The whole-cluster measurements: the control plane (controllers and
// scheduler) with thousands of simulated nodes run by `skiff sim nodes` in
// a second child process. They take minutes, so they run only when named
// in -only.
const (
	mScheduler  = "scheduler"
	mDeploy     = "deploy"
	mClusterRSS = "cluster-rss"
)

func clusterMeasurements() []string { return []string{mScheduler, mDeploy, mClusterRSS} }

func isClusterMeasurement(name string) bool {
	for _, m := range clusterMeasurements() {
		if m == name {
			return true
		}
	}
	return false
}

// clusterOptions size the whole-cluster measurements.
type clusterOptions struct {
	schedNodes       []int // node counts for the scheduler throughput rows
	schedPods        int   // plain pods per scheduler row
	constrainedPods  int   // pods with anti-affinity, and with spreading, per row
	deployNodes      int
	deployReplicas   int
	clusterPods      int // pods held for the memory and idle CPU row
	clusterIdleAfter time.Duration
}

// simNodes is a `skiff sim nodes` child process.
type simNodes struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startSim starts count simulated nodes named prefix-N joined to c.
func startSim(c *child, count int, prefix string) (*simNodes, error) {
	tok, err := os.ReadFile(filepath.Join(c.dataDir, "server", "token"))
	if err != nil {
		return nil, fmt.Errorf("join token: %w", err)
	}
	logFile, err := os.OpenFile(c.dataDir+"-sim.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin, "sim", "nodes",
		"--server", c.baseURL(), "--token", strings.TrimSpace(string(tok)),
		"--count", strconv.Itoa(count), "--name-prefix", prefix)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start sim nodes: %w", err)
	}
	s := &simNodes{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(s.exited)
	}()
	return s, nil
}

// stop ends the simulated nodes, killing them after 10 s.
func (s *simNodes) stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// waitNodesReady polls until n nodes report Ready.
func waitNodesReady(ctx context.Context, cl *client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ready := 0
	for time.Now().Before(deadline) {
		l, err := cl.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err == nil {
			ready = 0
			for _, nd := range l.Items {
				for _, cond := range nd.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			if ready >= n {
				return nil
			}
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	return fmt.Errorf("%d of %d nodes ready after %s", ready, n, timeout)
}

// createNodes registers n Ready nodes with 8 CPUs, 32 GiB and 110 pods
// each, spread over 10 zones.
func createNodes(ctx context.Context, cl *client, n int) error {
	p := runWorkers(ctx, shape{workers: 50, maxOps: n, limit: 15 * time.Minute}, func(ctx context.Context, _, i, _ int) error {
		name := fmt.Sprintf("node-%05d", i)
		nd := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%10)}}}
		created, err := cl.cs.CoreV1().Nodes().Create(ctx, nd, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		capacity := corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
			corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		}
		created.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		_, err = cl.cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	if p.errs > 0 {
		return fmt.Errorf("%d of %d nodes failed (first: %v)", p.errs, n, p.firstErr)
	}
	return nil
}

// benchPodSpec is a small pod: requests that let a node hold its 110.
func benchPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("10Mi"),
			}},
		}},
		TerminationGracePeriodSeconds: ptr.To[int64](0),
	}
}

// createPods creates n pods from spec in ns with 50 clients.
func createPods(ctx context.Context, cl *client, ns string, n int, labels map[string]string, spec func() corev1.PodSpec) error {
	if _, err := cl.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	p := runWorkers(ctx, shape{workers: 50, maxOps: n, limit: 15 * time.Minute}, func(ctx context.Context, _, i, _ int) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%06d", i), Labels: labels}, Spec: spec()}
		_, err := cl.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	if p.errs > 0 {
		return fmt.Errorf("%d of %d creates failed (first: %v)", p.errs, n, p.firstErr)
	}
	if len(p.samples) != n {
		return fmt.Errorf("created %d of %d pods", len(p.samples), n)
	}
	return nil
}

// bindings watches ns until want pods are bound to a node. It returns the
// pods already bound when it started, when it started, and when the last
// binding arrived.
type bindings struct {
	already    int
	start, end time.Time
	bound      int
}

func (b bindings) throughput(want int) float64 {
	d := b.end.Sub(b.start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(want-b.already) / d
}

func watchBindings(ctx context.Context, cl *client, ns string, want int, timeout time.Duration) (bindings, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var b bindings
	l, err := cl.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return b, err
	}
	b.start = time.Now()
	seen := map[string]bool{}
	for _, p := range l.Items {
		if p.Spec.NodeName != "" {
			seen[p.Name] = true
		}
	}
	b.already = len(seen)
	b.end = b.start
	w, err := cl.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		return b, err
	}
	defer w.Stop()
	for len(seen) < want {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.bound = len(seen)
				return b, fmt.Errorf("watch ended with %d of %d pods bound", len(seen), want)
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" && !seen[p.Name] {
				seen[p.Name] = true
				b.end = time.Now()
			}
		case <-ctx.Done():
			b.bound = len(seen)
			return b, fmt.Errorf("%d of %d pods bound after %s", len(seen), want, timeout)
		}
	}
	b.bound = len(seen)
	return b, nil
}

// runCluster runs the selected whole-cluster measurements.
func runCluster(ctx context.Context, o *options, spawn func(string) (*child, error), rep *report) error {
	if o.selected(mScheduler) {
		for _, n := range o.cluster.schedNodes {
			if err := schedulerRows(ctx, o, spawn, rep, n); err != nil {
				return err
			}
		}
	}
	if o.selected(mDeploy) || o.selected(mClusterRSS) {
		return deployRows(ctx, o, spawn, rep)
	}
	return nil
}

// schedulerRows measures scheduling throughput on nodes nodes, as
// upstream's scheduler_perf does: the API server and the scheduler alone,
// with Node objects that no kubelet backs (so nothing but the scheduler
// writes while it is timed). Pods are created while the server runs
// without its scheduler, then the server restarts with it and the
// bindings are timed from a watch.
func schedulerRows(ctx context.Context, o *options, spawn func(string) (*child, error), rep *report, nodes int) error {
	c, err := spawn(fmt.Sprintf("sched-%d", nodes))
	if err != nil {
		return err
	}
	c.controlPlane, c.noScheduler, c.noControllers = true, true, true
	if err := c.start(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	defer c.stop()
	cl, err := newClient(c.kubeconfig(), contentProtobuf)
	if err != nil {
		return err
	}
	defer cl.hc.CloseIdleConnections()
	fmt.Fprintf(rep.log, "scheduler, %d nodes:\n", nodes)
	if err := createNodes(ctx, cl, nodes); err != nil {
		return err
	}
	type variant struct {
		name, app string
		pods      int
		spec      func() corev1.PodSpec
		target    float64
	}
	selector := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	variants := []variant{
		{"plain pods", "plain", o.cluster.schedPods, benchPodSpec, 1000},
		{"required pod anti-affinity", "anti", min(o.cluster.constrainedPods, nodes), func() corev1.PodSpec {
			s := benchPodSpec()
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: selector("anti"), TopologyKey: "kubernetes.io/hostname"}}}}
			return s
		}, 300},
		{"topology spreading", "spread", o.cluster.constrainedPods, func() corev1.PodSpec {
			s := benchPodSpec()
			s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
				WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: selector("spread")}}
			return s
		}, 300},
	}
	for _, v := range variants {
		name := fmt.Sprintf("scheduler throughput, %d nodes, %s", nodes, v.name)
		if !c.noScheduler {
			// Pods wait for the next variant's measurement unscheduled.
			c.stop()
			c.noScheduler = true
			if err := c.start(); err != nil {
				return err
			}
			if err := c.waitReady(ctx, 60*time.Second); err != nil {
				return err
			}
		}
		ns := "sched-" + v.app
		if err := createPods(ctx, cl, ns, v.pods, map[string]string{"app": v.app}, v.spec); err != nil {
			rep.fail(name, fmt.Sprintf(">= %g pods/s", v.target), err)
			continue
		}
		c.stop()
		c.noScheduler = false
		if err := c.start(); err != nil {
			return err
		}
		if err := c.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
		cpu0 := sampleCPU(c.pid())
		b, err := watchBindings(ctx, cl, ns, v.pods, 5*time.Minute)
		if err != nil {
			rep.fail(name, fmt.Sprintf(">= %g pods/s", v.target), err)
			continue
		}
		tp := b.throughput(v.pods)
		rep.add(result{name: name, shown: fmt.Sprintf("%.0f pods/s", tp), value: tp, target: v.target, atLeast: true,
			tshown: fmt.Sprintf(">= %g pods/s", v.target),
			detail: fmt.Sprintf("%d pods; %d were bound before the watch began; the other %d in %s; %s",
				v.pods, b.already, v.pods-b.already, b.end.Sub(b.start).Round(time.Millisecond), cpuUse(cpu0, sampleCPU(c.pid())))})
	}
	return nil
}

// deployRows times a Deployment of deployReplicas on deployNodes nodes to
// full availability, then grows the cluster to clusterPods pods and reads
// the control plane's memory and idle CPU.
func deployRows(ctx context.Context, o *options, spawn func(string) (*child, error), rep *report) error {
	co := o.cluster
	c, err := spawn("deploy")
	if err != nil {
		return err
	}
	c.controlPlane = true
	if err := c.start(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	defer c.stop()
	sim, err := startSim(c, co.deployNodes, "sim-")
	if err != nil {
		return err
	}
	defer sim.stop()
	cl, err := newClient(c.kubeconfig(), contentProtobuf)
	if err != nil {
		return err
	}
	defer cl.hc.CloseIdleConnections()
	fmt.Fprintf(rep.log, "deployment, %d simulated nodes:\n", co.deployNodes)
	if err := waitNodesReady(ctx, cl, co.deployNodes, 10*time.Minute); err != nil {
		return err
	}
	deploy := func(name string, replicas int) (time.Duration, error) {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(replicas)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: benchPodSpec()},
			},
		}
		t0 := time.Now()
		if _, err := cl.cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return 0, err
		}
		return waitAvailable(ctx, cl, name, replicas, t0, 10*time.Minute)
	}
	name := fmt.Sprintf("Deployment of %d replicas on %d nodes, create to all available", co.deployReplicas, co.deployNodes)
	cpu0 := sampleCPU(c.pid())
	took, err := deploy("bench", co.deployReplicas)
	if err != nil {
		rep.fail(name, "<= 30000 ms", err)
		return nil
	}
	if o.selected(mDeploy) {
		rep.add(latencyRow(name, took, 30000, cpuUse(cpu0, sampleCPU(c.pid()))))
	}
	if !o.selected(mClusterRSS) {
		return nil
	}
	name = fmt.Sprintf("control plane RSS, %d nodes and %d pods", co.deployNodes, co.clusterPods)
	for i := 1; co.deployReplicas*(i) < co.clusterPods; i++ {
		n := min(co.deployReplicas, co.clusterPods-co.deployReplicas*i)
		if _, err := deploy(fmt.Sprintf("bench-%d", i), n); err != nil {
			rep.fail(name, "<= 1536 MiB", err)
			return nil
		}
	}
	fmt.Fprintf(rep.log, "  idle %s before reading memory and CPU\n", co.clusterIdleAfter)
	if err := settle(ctx, c, co.clusterIdleAfter, rep.log); err != nil {
		return err
	}
	cpu0 = sampleCPU(c.pid())
	if err := sleepOrDone(ctx, c, 30*time.Second); err != nil {
		return err
	}
	cpu1 := sampleCPU(c.pid())
	m, err := c.readMemory()
	if err != nil {
		rep.fail(name, "<= 1536 MiB", err)
		return nil
	}
	rep.add(memoryRow(name, m.rss, 1536, m.describe()))
	idle := (cpu1.server - cpu0.server).Seconds() / cpu1.at.Sub(cpu0.at).Seconds() * 100
	rep.add(result{name: fmt.Sprintf("control plane CPU, idle, %d nodes and %d pods", co.deployNodes, co.clusterPods),
		shown: fmt.Sprintf("%.1f%% of a core", idle), value: idle, target: 10, tshown: "<= 10% of a core",
		detail: "30 s, after " + co.clusterIdleAfter.String() + " of settling; the simulated nodes renew their leases meanwhile; " + cpuUse(cpu0, cpu1)})
	if o.serverHeapProfile != "" {
		fmt.Fprintf(rep.log, "  server heap profile to %s\n", o.serverHeapProfile)
		if err := cl.saveProfile(ctx, "heap?gc=1", o.serverHeapProfile); err != nil {
			return fmt.Errorf("server heap profile: %w", err)
		}
	}
	if o.serverProfile != "" {
		// After the timed window, so that profiling does not count in it.
		fmt.Fprintf(rep.log, "  30 s server CPU profile to %s\n", o.serverProfile)
		if err := cl.saveProfile(ctx, "profile?seconds=30", o.serverProfile); err != nil {
			return fmt.Errorf("server CPU profile: %w", err)
		}
	}
	return nil
}

// settle waits d, printing the server's memory and CPU every 15 s, so a
// run shows how fast both come down after the load.
func settle(ctx context.Context, c *child, d time.Duration, log io.Writer) error {
	const step = 15 * time.Second
	t0 := time.Now()
	last := sampleCPU(c.pid())
	for left := d; left > 0; left -= step {
		if err := sleepOrDone(ctx, c, min(step, left)); err != nil {
			return err
		}
		now := sampleCPU(c.pid())
		if m, err := c.readMemory(); err == nil {
			fmt.Fprintf(log, "    %3.0fs: RSS %s (anonymous %s), server CPU %.1f%% of a core\n",
				time.Since(t0).Seconds(), mib(m.rss), mib(m.anon),
				(now.server-last.server).Seconds()/now.at.Sub(last.at).Seconds()*100)
		}
		last = now
	}
	return nil
}

// saveProfile fetches the server's /debug/pprof/<which> (the admin may read
// it, for example "heap" or "profile?seconds=30") and writes it to path.
func (c *client) saveProfile(ctx context.Context, which, path string) error {
	url := c.base + "/debug/pprof/" + which
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/%s: HTTP %d: %.200s", which, resp.StatusCode, body)
	}
	return os.WriteFile(path, body, 0o644)
}

// waitAvailable watches the Deployment until availableReplicas reaches
// replicas and returns the time since t0.
func waitAvailable(ctx context.Context, cl *client, name string, replicas int, t0 time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := cl.cs.AppsV1().Deployments("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	last := int32(0)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, fmt.Errorf("watch ended with %d of %d available", last, replicas)
			}
			if ev.Type == watch.Error {
				continue
			}
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				last = d.Status.AvailableReplicas
				if int(last) >= replicas && d.Status.UpdatedReplicas == int32(replicas) {
					return time.Since(t0), nil
				}
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d available after %s", last, replicas, timeout)
		}
	}
}
