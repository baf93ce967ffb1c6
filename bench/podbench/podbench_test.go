// Package podbench measures a real node: how fast pods become Ready when
// many are created at once, and how much memory the node agent and the
// per-pod machinery outside the containers take. It runs the skiff binary
// named by $SKIFF_BINARY (or builds one) as a control plane with
// --disable-agent and a separate `skiff agent` with the runc runtime, in a
// network namespace of its own (test/e2e/framework), pulling busybox from a
// registry inside the test.
//
//	go test -run '^$' -bench PodStartup -benchtime 1x ./bench/podbench/
//
// It needs root, runc, conmon and the CNI plugins, as the real-node e2e
// tests do. See docs/performance.md for the figures.
package podbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// Benchmark bounds.
const (
	// pods is how many pods are created at once, as the target
	// names it.
	pods = 100
	// serialPods are created one after the other before, each waited
	// for, to measure one pod's way on an idle node.
	serialPods = 10
	// creators is how many clients create them concurrently.
	creators = 20
	// readyTimeout bounds the wait for every pod to be Ready.
	readyTimeout = 5 * time.Minute
	// settle is how long the node runs the pods before memory is read.
	settle = 15 * time.Second
	// agentSettled is how long after its start the agent's memory is
	// read at the earliest: past the minute after which it releases its
	// start-up pages (internal/agent/pageout.go).
	agentSettled = 90 * time.Second
	// runcRuns is how many bare `runc run`s measure the floor.
	runcRuns = 10
)

func BenchmarkPodStartup(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root")
	}
	if missing := append(framework.MissingPrerequisites(false), framework.MissingRealNodePrerequisites()...); len(missing) > 0 {
		b.Skipf("prerequisites missing: %s", strings.Join(missing, "; "))
	}
	ctx := context.Background()
	bin := os.Getenv(framework.BinaryEnv)
	if bin == "" {
		var err error
		if bin, err = framework.Build(ctx, b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
	// With a profile asked for, the node runs inside the server, whose
	// /debug/pprof then covers the control plane and the node agent.
	profile := os.Getenv(profileEnv)
	started := time.Now()
	// The agent runs its own copy of the binary, as on a machine of its
	// own: pages of a file the server maps too would stay in the agent's
	// memory (the kernel pages out only pages no other process maps).
	agentBin := filepath.Join(b.TempDir(), "skiff-agent")
	if err := copyFile(bin, agentBin); err != nil {
		b.Fatal(err)
	}
	c, err := framework.Start(ctx, framework.Options{Binary: bin, AgentBinary: agentBin, RealNode: true, AgentProcess: profile == ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := c.Close(); err != nil {
			b.Errorf("close cluster: %v", err)
		}
	})
	client := c.Client()
	waitNodeReady(b, client, c.NodeName())
	busybox := imagetest.Busybox(b)
	imagetest.Push(b, c.Image(framework.ImageBusybox), busybox)
	floor := runcFloor(b, c)

	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("podbench-%d", i)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		// The image is present before the clock starts: one pod pulls it.
		runPods(b, client, ns, "warm", 1, c.Image(framework.ImageBusybox))
		deletePods(b, client, ns)
		if profile != "" {
			go cpuProfile(b, client, profile)
		}
		idle := readMemory(b, c.AgentPID())

		// One at a time: the path of a single pod on an idle node.
		var single []time.Duration
		for j := range serialPods {
			single = append(single, runPods(b, client, ns, fmt.Sprintf("s%d", j), 1, c.Image(framework.ImageBusybox))...)
		}
		slices.Sort(single)
		b.ReportMetric(float64(single[len(single)/2].Milliseconds()), "single-p50-ms")
		b.Logf("%d pods one at a time, creation to Ready: p50 %v, max %v", serialPods, single[len(single)/2], single[len(single)-1])
		deletePods(b, client, ns)

		cpu0 := readCPU(b, c.ServerPID(), c.AgentPID())
		b.ResetTimer()
		lat := runPods(b, client, ns, "p", pods, c.Image(framework.ImageBusybox))
		b.StopTimer()
		cpu := readCPU(b, c.ServerPID(), c.AgentPID()).minus(cpu0)
		b.Logf("CPU while the pods started: %.2f s in all on the machine; server %.2f s, agent %.2f s, the processes the agent ran and waited for (CNI plugins, runc start) %.2f s, everything else (runc create and the containers' init under conmon, conmon, other work on the machine) %.2f s",
			cpu.total, cpu.server, cpu.agent, cpu.children, cpu.total-cpu.server-cpu.agent-cpu.children)
		b.ReportMetric(cpu.total*1000/pods, "cpu-ms/pod")

		time.Sleep(max(settle, agentSettled-time.Since(started)))
		busy := readMemory(b, c.AgentPID())
		mons := monitors(b, c.Dir(), c.CgroupRoot())
		report(b, lat, floor, idle, busy, mons)
		deletePods(b, client, ns)
		if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// profileEnv names a file for a CPU profile of the server (with its node)
// while the pods start.
const profileEnv = "PODBENCH_CPUPROFILE"

// cpuProfile writes a 10 s CPU profile of the server to path.
func cpuProfile(b *testing.B, client kubernetes.Interface, path string) {
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "10").Timeout(time.Minute).DoRaw(context.Background())
	if err != nil {
		b.Logf("cpu profile: %v", err)
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Logf("cpu profile: %v", err)
	}
}

// runPods creates n sleeping busybox pods named prefix-<i> at once and
// returns, for each, the time from just before its create request to the
// watch event that showed it Ready.
func runPods(b *testing.B, client kubernetes.Interface, ns, prefix string, n int, img string) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	var mu sync.Mutex
	sent := make(map[string]time.Time, n)
	names := make(chan string, n)
	for i := range n {
		names <- fmt.Sprintf("%s-%d", prefix, i)
	}
	close(names)
	errs := make(chan error, creators)
	var wg sync.WaitGroup
	for range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{
							Name: "c", Image: img, Command: []string{"sleep", "3600"},
							ImagePullPolicy: corev1.PullIfNotPresent,
						}},
						TerminationGracePeriodSeconds: new(int64),
					},
				}
				mu.Lock()
				sent[name] = time.Now()
				mu.Unlock()
				if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	ready := make(map[string]time.Time, n)
	for len(ready) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("watch ended with %d of %d pods Ready", len(ready), n)
			}
			if ev.Type == watch.Error {
				b.Fatalf("watch: %v", apierrors.FromObject(ev.Object))
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || !podReady(pod) {
				continue
			}
			if _, ours := sent[pod.Name]; !ours {
				continue // an earlier round's pod
			}
			if _, seen := ready[pod.Name]; !seen {
				ready[pod.Name] = time.Now()
			}
		case <-ctx.Done():
			b.Fatalf("%d of %d pods Ready after %v", len(ready), n, readyTimeout)
		}
	}
	lat := make([]time.Duration, 0, n)
	for name, t := range ready {
		lat = append(lat, t.Sub(sent[name]))
	}
	slices.Sort(lat)
	return lat
}

// podReady reports whether the pod's Ready condition is true.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deletePods deletes every pod in ns and waits until they are gone.
func deletePods(b *testing.B, client kubernetes.Interface, ns string) {
	b.Helper()
	ctx := context.Background()
	if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	framework.WaitFor(b, readyTimeout, func() (bool, string) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d pods left", len(list.Items))
	})
}

// waitNodeReady waits until the agent's node is Ready with a podCIDR.
func waitNodeReady(b *testing.B, client kubernetes.Interface, name string) {
	b.Helper()
	framework.WaitFor(b, time.Minute, func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("node %s not Ready", name)
	})
}

// cpuTimes are CPU seconds used: by the whole machine, the server and the
// agent.
type cpuTimes struct {
	total, server, agent float64
	// children is the agent's children it waited for.
	children float64
}

func (a cpuTimes) minus(b cpuTimes) cpuTimes {
	return cpuTimes{total: a.total - b.total, server: a.server - b.server, agent: a.agent - b.agent, children: a.children - b.children}
}

// clockTicks is USER_HZ, the unit of /proc's CPU times.
const clockTicks = 100

// readCPU reads the machine's busy time from /proc/stat and the two
// processes' user and system time.
func readCPU(b *testing.B, server, agent int) cpuTimes {
	b.Helper()
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	var t cpuTimes
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, v := range f[1:] {
		if i == 3 || i == 4 {
			continue // idle, iowait
		}
		n, _ := strconv.ParseFloat(v, 64)
		t.total += n / clockTicks
	}
	t.server, _ = procCPU(server)
	t.agent, t.children = procCPU(agent)
	return t
}

// procCPU is pid's user and system time in seconds, and that of its
// children it has waited for (0 when unreadable).
func procCPU(pid int) (own, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command may contain spaces; the fields after it are fixed.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, 0
	}
	f := strings.Fields(rest) // state ppid ... utime(12) stime(13) cutime(14) cstime(15)
	if len(f) < 15 {
		return 0, 0
	}
	var v [4]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[11+i], 64)
	}
	return (v[0] + v[1]) / clockTicks, (v[2] + v[3]) / clockTicks
}

// memory is a process's resident memory, in KiB as /proc reports it.
type memory struct {
	rss, anon, file, pss, private int64
}

// readMemory reads pid's resident memory from /proc.
func readMemory(b *testing.B, pid int) memory {
	b.Helper()
	m, err := procMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// procMemory reads pid's VmRSS, RssAnon, RssFile and Pss; all zero for
// pid 0 (no such process).
func procMemory(pid int) (memory, error) {
	var m memory
	if pid == 0 {
		return m, nil
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && fields[f[0]] != nil {
			*fields[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for line := range strings.SplitSeq(string(rollup), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Pss:":
				m.pss = n
			case "Private_Clean:", "Private_Dirty:":
				m.private += n
			}
		}
	}
	return m, nil
}

// monitors sums the memory of the processes that exist for the pods but
// are not the containers' own: container monitors and namespace holders
// whose command line names the cluster's directory dir or who are in the
// node's cgroups.
func monitors(b *testing.B, dir, cgroupRoot string) (sum memory) {
	b.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		comm, err := os.ReadFile(p + "/comm")
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "conmon", "catatonit", "skiff":
		default:
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		if strings.TrimSpace(string(comm)) == "skiff" && (len(args) < 2 || args[1] != "shim") {
			continue // the agent and the server, not a per-container shim
		}
		cg, _ := os.ReadFile(p + "/cgroup")
		if !strings.Contains(string(cg), cgroupRoot) && !strings.Contains(string(cmdline), dir) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		m, err := procMemory(pid)
		if err != nil {
			continue
		}
		sum.rss += m.rss
		sum.anon += m.anon
		sum.file += m.file
		sum.pss += m.pss
		sum.private += m.private
		n++
	}
	b.Logf("%d monitor processes", n)
	return sum
}

// runcFloor times bare `runc run` of busybox `true` in a bundle of its
// own, the floor a pod's start cannot go under: the median time and the
// median CPU time of runc and the container together.
func runcFloor(b *testing.B, c *framework.Cluster) runcCost {
	b.Helper()
	dir := b.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(rootfs, "bin", "true")).CombinedOutput(); err != nil {
		b.Fatalf("copy busybox: %v: %s", err, out)
	}
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v: %s", err, out)
	}
	spec, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	spec = []byte(strings.Replace(strings.Replace(string(spec), `"sh"`, `"/bin/true"`, 1), `"terminal": true`, `"terminal": false`, 1))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), spec, 0o644); err != nil {
		b.Fatal(err)
	}
	var times, cpu []time.Duration
	for i := range runcRuns {
		id := fmt.Sprintf("podbench-floor-%d-%d", os.Getpid(), i)
		start := time.Now()
		cmd := exec.Command("runc", "--root", filepath.Join(dir, "state"), "run", "--bundle", dir, id)
		out, err := cmd.CombinedOutput()
		times = append(times, time.Since(start))
		if err != nil {
			b.Fatalf("runc run: %v: %s", err, out)
		}
		// runc waits for the container's process: its rusage counts both.
		cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	slices.Sort(times)
	slices.Sort(cpu)
	return runcCost{wall: times[len(times)/2], cpu: cpu[len(cpu)/2]}
}

// runcCost is what a bare `runc run` takes.
type runcCost struct{ wall, cpu time.Duration }

// report logs and reports the figures.
func report(b *testing.B, lat []time.Duration, floor runcCost, idle, busy, mons memory) {
	b.Helper()
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	p50, p99 := q(0.50), q(0.99)
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64(floor.wall.Milliseconds()), "runc-run-ms")
	b.ReportMetric(float64(floor.cpu.Milliseconds()), "runc-run-cpu-ms")
	b.ReportMetric(float64(busy.rss)/1024, "agent-rss-MiB")
	b.ReportMetric(float64(busy.anon)/1024, "agent-anon-MiB")
	b.ReportMetric(float64(mons.rss)/1024/pods, "per-pod-rss-MiB")
	b.ReportMetric(float64(mons.pss)/1024/pods, "per-pod-pss-MiB")
	b.ReportMetric(float64(mons.private)/1024/pods, "per-pod-private-MiB")
	b.Logf("%d pods created at once, creation to Ready: p50 %v, p99 %v, max %v (bare runc run of busybox: %v, %v of CPU)",
		len(lat), p50, p99, lat[len(lat)-1], floor.wall, floor.cpu)
	b.Logf("agent with no pods: RSS %d KiB (anon %d, file %d, PSS %d, private %d); with %d pods: RSS %d KiB (anon %d, file %d, PSS %d, private %d)",
		idle.rss, idle.anon, idle.file, idle.pss, idle.private, pods, busy.rss, busy.anon, busy.file, busy.pss, busy.private)
	b.Logf("per-pod processes outside the containers: RSS %d KiB in all (%.2f MiB per pod), PSS %d KiB (%.2f MiB per pod), private %d KiB (%.2f MiB per pod)",
		mons.rss, float64(mons.rss)/1024/pods, mons.pss, float64(mons.pss)/1024/pods, mons.private, float64(mons.private)/1024/pods)
}

// copyFile copies the executable src to dst, a new file with its own page
// cache.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
