// Package proxybench measures the service proxy on a real node end to
// end: how long after an endpoint shows ready in its EndpointSlice traffic
// to the Service's ClusterIP reaches it (network programming latency), and
// how much a request through a ClusterIP costs over the same request
// straight to the pod IP. It runs the skiff binary named by $SKIFF_BINARY
// (or builds one) with its own node in a network namespace of its own
// (test/e2e/framework) and sends every request from that namespace.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/proxybench/
//
// It needs root, runc, conmon and the CNI plugins, as the real-node e2e
// tests do. See docs/performance.md for the figures.
package proxybench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// Benchmark bounds.
const (
	// rounds is how many times the endpoint turns ready (and unready).
	rounds = 30
	// requests is how many HTTP requests go each way (pod IP and
	// ClusterIP) in the overhead benchmark.
	requests = 3000
	// warmup requests each way are sent before the clock starts.
	warmup = 200
	// transitionTimeout bounds one readiness change, from the file's
	// change to the traffic following it.
	transitionTimeout = 20 * time.Second
	// podTimeout bounds the pod's start.
	podTimeout = 3 * time.Minute
	// dialTimeout bounds one connection attempt.
	dialTimeout = time.Second
	// pollGap is the pause between two failed attempts while waiting
	// for the traffic to change.
	pollGap = 2 * time.Millisecond
	// serviceName names the Service and labels its pod.
	serviceName = "bench"
	// podName is the one backend's name.
	podName = "bench-0"
)

// cluster starts a real-node cluster with the test server image and a
// namespace holding one test-server pod whose readiness follows
// /tmp/ready and a ClusterIP Service over it; it returns the cluster, the
// namespace, the pod's IP and the ClusterIP.
func cluster(b *testing.B) (*framework.Cluster, string, string, string) {
	b.Helper()
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
	c, err := framework.Start(ctx, framework.Options{Binary: bin, RealNode: true})
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
	imagetest.Push(b, c.Image(framework.ImageTestServer), imagetest.TestServer(b))

	ns := fmt.Sprintf("proxybench-%d", os.Getpid())
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	labels := map[string]string{"app": serviceName}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:            "web",
				Image:           c.Image(framework.ImageTestServer),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
					PeriodSeconds:    1,
					FailureThreshold: 1,
					SuccessThreshold: 1,
				},
			}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if svc, err = client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var podIP string
	framework.WaitFor(b, podTimeout, func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		podIP = p.Status.PodIP
		return p.Status.Phase == corev1.PodRunning && podIP != "", fmt.Sprintf("pod %s: phase %s, IP %q", podName, p.Status.Phase, podIP)
	})
	return c, ns, podIP, svc.Spec.ClusterIP
}

func BenchmarkProgrammingLatency(b *testing.B) {
	c, ns, _, clusterIP := cluster(b)
	dialer := startNodeDialer(b, c.NetNS())
	target := net.JoinHostPort(clusterIP, "80")

	for i := 0; i < b.N; i++ {
		// Back to back, each change follows the last one as soon as
		// the traffic followed it: about one a second, so the
		// proxier's one-sync-a-second bound shows. Spaced, the proxy
		// has been idle for longer than that bound before each change.
		for _, pass := range []struct {
			name  string
			pause time.Duration
		}{{"back-to-back", 0}, {"spaced", spacedPause}} {
			up, down, gaps, slow := flip(b, c, ns, dialer, target, pass.pause)
			over := 0
			for _, d := range up {
				if d > target200 {
					over++
				}
			}
			b.ReportMetric(ms(quantile(up, 0.50)), pass.name+"-ready-p50-ms")
			b.ReportMetric(ms(quantile(up, 0.99)), pass.name+"-ready-p99-ms")
			b.ReportMetric(ms(quantile(down, 0.99)), pass.name+"-unready-p99-ms")
			b.Logf("%s (pause %v before each change), %d rounds: slice shows the endpoint ready -> first HTTP answer through the ClusterIP: p50 %v, p90 %v, p99 %v, min %v, max %v; %d of %d over 200 ms",
				pass.name, pass.pause, len(up), quantile(up, 0.50), quantile(up, 0.90), quantile(up, 0.99), up[0], up[len(up)-1], over, len(up))
			b.Logf("%s: slice shows the endpoint unready -> first refusal through the ClusterIP: p50 %v, p90 %v, p99 %v, min %v, max %v; time between two successive slice changes: min %v, p50 %v",
				pass.name, quantile(down, 0.50), quantile(down, 0.90), quantile(down, 0.99), down[0], down[len(down)-1], gaps[0], quantile(gaps, 0.5))
			// The benchmark's output is cut at 10 lines: one line for
			// every slow round.
			syncs := proxySyncs(b, c.LogPath())
			var rs []string
			for _, r := range slow {
				rs = append(rs, fmt.Sprintf("%v after the last logged sync, %v to answer", sinceLast(syncs, r.seen).Round(time.Millisecond), r.took.Round(time.Millisecond)))
			}
			b.Logf("%s: slow rounds (slice change seen ... after the proxy's last logged sync): %s", pass.name, strings.Join(rs, "; "))
		}
	}
}

// spacedPause is the idle time before each change in the spaced pass:
// longer than the proxier's least time between two syncs (1 s).
const spacedPause = 1500 * time.Millisecond

// target200 is the bound on the programming latency's p99.
const target200 = 200 * time.Millisecond

// flip makes the endpoint ready and unready rounds times, pausing before
// each change, and returns, sorted, the times from the slice showing it
// ready to the first answer through target, from the slice showing it
// unready to the first refusal, and between successive slice changes.
func flip(b *testing.B, c *framework.Cluster, ns string, dialer *nodeDialer, target string, pause time.Duration) (up, down, gaps []time.Duration, slow []slowRound) {
	b.Helper()
	client := c.Client()
	var last time.Time
	res := make(chan time.Time, 1)
	for r := range rounds {
		for _, ready := range []bool{true, false} {
			time.Sleep(pause)
			// Ready: the file appears, the probe passes, the slice
			// shows the endpoint ready, the proxy programs it.
			// Unready: the reverse, until the ClusterIP refuses.
			cmd := []string{"touch", "/tmp/ready"}
			if !ready {
				cmd = []string{"rm", "-f", "/tmp/ready"}
			}
			go func() { res <- dialer.waitFor(target, ready, transitionTimeout) }()
			seen := transition(b, client, ns, ready, func() { podExec(b, c, ns, cmd...) })
			at := <-res
			if at.IsZero() {
				b.Fatalf("round %d: traffic through %s did not follow ready=%v within %v", r, target, ready, transitionTimeout)
			}
			if ready {
				up = append(up, at.Sub(seen))
				if at.Sub(seen) > target200 {
					slow = append(slow, slowRound{seen: seen, took: at.Sub(seen)})
				}
			} else {
				down = append(down, at.Sub(seen))
			}
			if !last.IsZero() {
				gaps = append(gaps, seen.Sub(last))
			}
			last = seen
		}
	}
	slices.Sort(up)
	slices.Sort(down)
	slices.Sort(gaps)
	return up, down, gaps, slow
}

// slowRound is a round whose answer took longer than target200.
type slowRound struct {
	seen time.Time
	took time.Duration
}

// proxySyncs reads the times of the proxy's "synced" lines from the
// server's log (slog text: time=... msg="proxy: synced").
func proxySyncs(b *testing.B, path string) []time.Time {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return syncTimes(string(data))
}

// syncTimes picks the times of the proxy's "synced" lines from a log.
func syncTimes(log string) []time.Time {
	var out []time.Time
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `msg="proxy: synced"`) {
			continue
		}
		v, ok := strings.CutPrefix(strings.Fields(line)[0], "time=")
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// sinceLast is how long before t the last of the sorted times was; -1
// when none was before t.
func sinceLast(times []time.Time, t time.Time) time.Duration {
	last := time.Duration(-1)
	for _, x := range times {
		if x.Before(t) {
			last = t.Sub(x)
		}
	}
	return last
}

func BenchmarkClusterIPOverhead(b *testing.B) {
	c, ns, podIP, clusterIP := cluster(b)
	client := c.Client()
	dialer := startNodeDialer(b, c.NetNS())
	direct := net.JoinHostPort(podIP, "8080")
	service := net.JoinHostPort(clusterIP, "80")
	res := make(chan time.Time, 1)
	go func() { res <- dialer.waitFor(service, true, transitionTimeout) }()
	transition(b, client, ns, true, func() { podExec(b, c, ns, "touch", "/tmp/ready") })
	if (<-res).IsZero() {
		b.Fatalf("no answer through %s", service)
	}

	for i := 0; i < b.N; i++ {
		lost := map[string]int{}
		for range warmup {
			dialer.get(b, direct, lost)
			dialer.get(b, service, lost)
		}
		clear(lost)
		var viaPod, viaService []time.Duration
		for j := range 2 * requests {
			// Alternate, and alternate which goes first, so drift on
			// the machine falls on both alike.
			if j%4 < 2 == (j%2 == 0) {
				if d, ok := dialer.get(b, direct, lost); ok {
					viaPod = append(viaPod, d)
				}
			} else if d, ok := dialer.get(b, service, lost); ok {
				viaService = append(viaService, d)
			}
		}
		if lost[direct]+lost[service] > requests/100 {
			b.Fatalf("timed out: %d of %d GETs to %s, %d to %s", lost[direct], requests, direct, lost[service], service)
		}
		b.Logf("timed out and left out (%v bound): %d GETs to the pod IP, %d to the ClusterIP", dialTimeout, lost[direct], lost[service])
		slices.Sort(viaPod)
		slices.Sort(viaService)
		p50, s50 := quantile(viaPod, 0.5), quantile(viaService, 0.5)
		p99, s99 := quantile(viaPod, 0.99), quantile(viaService, 0.99)
		over50 := overhead(p50, s50)
		over99 := overhead(p99, s99)
		overMean := overhead(mean(viaPod), mean(viaService))
		b.ReportMetric(float64(p50.Microseconds()), "pod-p50-us")
		b.ReportMetric(float64(s50.Microseconds()), "clusterip-p50-us")
		b.ReportMetric(over50, "overhead-p50-%")
		b.ReportMetric(over99, "overhead-p99-%")
		b.Logf("%d GETs each way (new connection each, Connection: close), from the node's network namespace:", len(viaPod))
		b.Logf("  pod IP %s: p50 %v, p99 %v, mean %v", direct, p50, p99, mean(viaPod))
		b.Logf("  ClusterIP %s: p50 %v, p99 %v, mean %v", service, s50, s99, mean(viaService))
		b.Logf("  overhead: p50 %+.1f%%, p99 %+.1f%%, mean %+.1f%%", over50, over99, overMean)
	}
}

// overhead is how many percent longer via takes than base.
func overhead(base, via time.Duration) float64 {
	if base <= 0 {
		return 0
	}
	return 100 * float64(via-base) / float64(base)
}

// quantile is the q-quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// mean is the average of the durations.
func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// podExec runs a command in the backend pod.
func podExec(b *testing.B, c *framework.Cluster, ns string, args ...string) {
	b.Helper()
	if out, stderr, err := c.Kubectl(append([]string{"-n", ns, "exec", podName, "--"}, args...)...); err != nil {
		b.Fatalf("exec %v: %v\n%s%s", args, err, out, stderr)
	}
}

// transition watches the Service's EndpointSlices, calls change, and
// returns when a slice first shows the pod's endpoint with ready equal
// to ready: the moment the watch delivered that.
func transition(b *testing.B, client kubernetes.Interface, ns string, ready bool, change func()) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), transitionTimeout)
	defer cancel()
	w, err := client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + serviceName})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	change()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("endpointslice watch ended before the endpoint turned ready=%v", ready)
			}
			if ev.Type == watch.Error {
				b.Fatalf("endpointslice watch: %v", apierrors.FromObject(ev.Object))
			}
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if sliceReady(s) == ready {
				return time.Now()
			}
		case <-ctx.Done():
			b.Fatalf("endpoint not ready=%v within %v", ready, transitionTimeout)
		}
	}
}

// sliceReady reports whether the slice holds a ready endpoint.
func sliceReady(s *discoveryv1.EndpointSlice) bool {
	for _, e := range s.Endpoints {
		if e.Conditions.Ready != nil && *e.Conditions.Ready {
			return true
		}
	}
	return false
}

// nodeDialer runs calls on one goroutine locked to an OS thread that
// stays in the node's network namespace, so that the sockets it creates
// live there.
type nodeDialer struct {
	calls chan func()
}

// startNodeDialer starts the dialer's goroutine in the network namespace
// named netns; it ends with b. When it ends, its thread goes back to the
// test's namespace and is unlocked. It must not end locked: the runtime
// would then end the thread, and the framework starts the cluster's
// processes with a parent-death signal that the kernel sends when the
// thread that forked them ends (this killed the server before the
// benchmark could stop it).
func startNodeDialer(b *testing.B, netns string) *nodeDialer {
	b.Helper()
	d := &nodeDialer{calls: make(chan func())}
	started := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		defer home.Close()
		f, err := os.Open("/run/netns/" + netns)
		if err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		defer func() {
			// Back home before unlocking; if that fails the thread
			// stays locked and is discarded, as it must be.
			if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		for {
			select {
			case call := <-d.calls:
				call()
			case <-stop:
				return
			}
		}
	}()
	if err := <-started; err != nil {
		b.Fatalf("enter network namespace %s: %v", netns, err)
	}
	b.Cleanup(func() { close(stop) })
	return d
}

// run runs f in the node's network namespace and waits for it.
func (d *nodeDialer) run(f func()) {
	done := make(chan struct{})
	d.calls <- func() { f(); close(done) }
	<-done
}

// waitFor sends GETs to addr until one is answered (answered true) or one
// is refused (answered false), and returns when that happened; the zero
// time after timeout.
func (d *nodeDialer) waitFor(addr string, answered bool, timeout time.Duration) time.Time {
	var at time.Time
	d.run(func() {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			_, err := httpGet(addr)
			now := time.Now()
			if answered && err == nil {
				at = now
				return
			}
			if !answered && errors.Is(err, syscall.ECONNREFUSED) {
				at = now
				return
			}
			time.Sleep(pollGap)
		}
	})
	return at
}

// get times one GET to addr in the node's network namespace; a GET that
// timed out is counted in lost[addr] and reported not ok.
func (d *nodeDialer) get(b *testing.B, addr string, lost map[string]int) (time.Duration, bool) {
	b.Helper()
	var took time.Duration
	var err error
	d.run(func() { took, err = httpGet(addr) })
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		lost[addr]++
		return 0, false
	}
	if err != nil {
		b.Fatalf("GET %s: %v", addr, err)
	}
	return took, true
}

// httpGet sends GET /hostname to addr on a new connection that closes
// after the answer, reads the whole answer and returns how long it took
// from before the dial. It must run on the goroutine whose thread is in
// the namespace: it dials on the calling goroutine, which net/http's
// transport would not.
func httpGet(addr string) (time.Duration, error) {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(start.Add(5 * dialTimeout)); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(conn, "GET /hostname HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != podName {
		return 0, fmt.Errorf("GET %s: %s %q, want 200 %q", addr, resp.Status, body, podName)
	}
	return time.Since(start), nil
}

// waitNodeReady waits until the node is Ready with a podCIDR.
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
