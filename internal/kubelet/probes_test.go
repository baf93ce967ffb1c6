package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestResolvePort(t *testing.T) {
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9000}}}
	tests := []struct {
		port    intstr.IntOrString
		want    int
		wantErr string
	}{
		{intstr.FromInt32(80), 80, ""},
		{intstr.FromString("http"), 8080, ""},
		{intstr.FromString("grpc"), 9000, ""},
		{intstr.FromString("8081"), 8081, ""},
		{intstr.FromString("metrics"), 0, "port metrics not found"},
		{intstr.FromInt32(0), 0, "invalid port number: 0"},
		{intstr.FromInt32(70000), 0, "invalid port number: 70000"},
	}
	for _, tt := range tests {
		got, err := resolvePort(tt.port, c)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("resolvePort(%s): got %d %q, want %d %q", tt.port.String(), got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestHTTPGetURL(t *testing.T) {
	tests := []struct {
		action corev1.HTTPGetAction
		podIP  string
		port   int
		want   string
	}{
		{corev1.HTTPGetAction{Path: "/healthz"}, "10.0.0.5", 8080, "http://10.0.0.5:8080/healthz"},
		{corev1.HTTPGetAction{Path: "healthz"}, "10.0.0.5", 80, "http://10.0.0.5:80/healthz"},
		{corev1.HTTPGetAction{}, "10.0.0.5", 80, "http://10.0.0.5:80"},
		{corev1.HTTPGetAction{Path: "/ready?full=1", Scheme: corev1.URISchemeHTTPS}, "10.0.0.5", 443, "https://10.0.0.5:443/ready?full=1"},
		{corev1.HTTPGetAction{Path: "/", Host: "example.test"}, "10.0.0.5", 81, "http://example.test:81/"},
		{corev1.HTTPGetAction{Path: "/"}, "fd00::5", 80, "http://[fd00::5]:80/"},
	}
	for _, tt := range tests {
		if got := httpGetURL(&tt.action, tt.podIP, tt.port).String(); got != tt.want {
			t.Errorf("httpGetURL(%+v): got %s, want %s", tt.action, got, tt.want)
		}
	}
}

func TestHTTPGetRequestHeaders(t *testing.T) {
	u := httpGetURL(&corev1.HTTPGetAction{Path: "/x"}, "10.0.0.5", 80)
	req, err := newHTTPGetRequest(context.Background(), u, nil, "kube-probe/1.37")
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("User-Agent"); got != "kube-probe/1.37" {
		t.Errorf("default User-Agent: got %q, want kube-probe/1.37", got)
	}
	if got := req.Header.Get("Accept"); got != "*/*" {
		t.Errorf("default Accept: got %q, want */*", got)
	}
	req, err = newHTTPGetRequest(context.Background(), u, []corev1.HTTPHeader{
		{Name: "User-Agent", Value: "mine"}, {Name: "Host", Value: "svc.example"}, {Name: "X-Custom", Value: "a"}, {Name: "X-Custom", Value: "b"},
	}, "kube-probe/1.37")
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("User-Agent"); got != "mine" {
		t.Errorf("User-Agent: got %q, want mine", got)
	}
	if req.Host != "svc.example" || req.Header.Get("Host") != "" {
		t.Errorf("Host: got req.Host %q header %q, want svc.example and no header", req.Host, req.Header.Get("Host"))
	}
	if got := req.Header.Values("X-Custom"); len(got) != 2 {
		t.Errorf("X-Custom: got %v, want [a b]", got)
	}
}

func TestHTTPOutcome(t *testing.T) {
	tests := []struct {
		code int
		want probeOutcome
		out  string
	}{
		{200, outcomeSuccess, "body"},
		{204, outcomeSuccess, "body"},
		{302, outcomeWarning, "Probe terminated redirects, Response body: body"},
		{399, outcomeWarning, "Probe terminated redirects, Response body: body"},
		{199, outcomeFailure, "HTTP probe failed with statuscode: 199"},
		{400, outcomeFailure, "HTTP probe failed with statuscode: 400"},
		{503, outcomeFailure, "HTTP probe failed with statuscode: 503"},
	}
	for _, tt := range tests {
		got, out := httpOutcome(tt.code, "body")
		if got != tt.want || out != tt.out {
			t.Errorf("httpOutcome(%d): got %d %q, want %d %q", tt.code, got, out, tt.want, tt.out)
		}
	}
}

func TestTimingDefaults(t *testing.T) {
	tests := []struct {
		probe corev1.Probe
		kind  probeKind
		want  probeTiming
	}{
		{corev1.Probe{}, probeReadiness, probeTiming{0, 10 * time.Second, time.Second, 1, 3}},
		{corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 2, FailureThreshold: 4}, probeReadiness,
			probeTiming{5 * time.Second, 2 * time.Second, 3 * time.Second, 2, 4}},
		// Liveness and startup succeed after one success.
		{corev1.Probe{SuccessThreshold: 3}, probeLiveness, probeTiming{0, 10 * time.Second, time.Second, 1, 3}},
		{corev1.Probe{SuccessThreshold: 3, FailureThreshold: 30}, probeStartup, probeTiming{0, 10 * time.Second, time.Second, 1, 30}},
	}
	for _, tt := range tests {
		if got := timingOf(&tt.probe, tt.kind); got != tt.want {
			t.Errorf("timingOf(%+v, %s): got %+v, want %+v", tt.probe, tt.kind, got, tt.want)
		}
	}
}

func TestProbeCounter(t *testing.T) {
	timing := probeTiming{SuccessThreshold: 2, FailureThreshold: 3}
	const S, F = resultSuccess, resultFailure
	tests := []struct {
		seq  []probeResult
		want []bool
	}{
		{[]probeResult{S, S, S}, []bool{false, true, true}},
		{[]probeResult{F, F, F, F}, []bool{false, false, true, true}},
		// A success in between starts the failure count over.
		{[]probeResult{F, F, S, F, F, F}, []bool{false, false, false, false, false, true}},
		{[]probeResult{S, F, S, S}, []bool{false, false, false, true}},
	}
	for _, tt := range tests {
		var c probeCounter
		for i, r := range tt.seq {
			if got := c.observe(r, timing); got != tt.want[i] {
				t.Errorf("sequence %v, step %d: got settled %v, want %v", tt.seq, i, got, tt.want[i])
			}
		}
	}
}

func TestMajorMinor(t *testing.T) {
	for in, want := range map[string]string{"v1.37.2": "1.37", "1.30.0": "1.30", "": "1.37", "devel": "1.37", "v2.1": "2.1"} {
		if got := majorMinor(in); got != want {
			t.Errorf("majorMinor(%q): got %q, want %q", in, got, want)
		}
	}
}

// execRuntime is a runtime whose Exec is scripted; the other methods are
// not used by the code under test.
type execRuntime struct {
	Runtime
	fn func(ctx context.Context, id string, cmd []string, out io.Writer) (int, error)
}

func (r *execRuntime) Exec(ctx context.Context, id string, cmd []string, _ io.Reader, stdout, _ io.Writer, _ bool) (int, error) {
	return r.fn(ctx, id, cmd, stdout)
}

func TestExecProbe(t *testing.T) {
	rt := &execRuntime{fn: func(ctx context.Context, id string, cmd []string, out io.Writer) (int, error) {
		switch cmd[0] {
		case "ok":
			return 0, nil
		case "fail":
			fmt.Fprint(out, "not healthy")
			return 1, nil
		case "hang":
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return -1, errors.New("container is not running")
	}}
	r := newProbeRunner(rt, "v1.37.2")
	target := probeTarget{Pod: &corev1.Pod{}, Container: &corev1.Container{Name: "c"}, ContainerID: "c1"}
	tests := []struct {
		cmd     string
		want    probeOutcome
		out     string
		wantErr bool
	}{
		{"ok", outcomeSuccess, "", false},
		{"fail", outcomeFailure, "not healthy", false},
		{"hang", outcomeFailure, `command "hang" timed out after 50ms`, false},
		{"gone", outcomeFailure, "", true},
	}
	for _, tt := range tests {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{tt.cmd}}}}
		got, out, err := r.run(context.Background(), target, p, 50*time.Millisecond)
		if got != tt.want || out != tt.out || (err != nil) != tt.wantErr {
			t.Errorf("exec %s: got %d %q %v, want %d %q err %v", tt.cmd, got, out, err, tt.want, tt.out, tt.wantErr)
		}
	}
}

// serverPort returns the host and port of a test server.
func serverPort(t *testing.T, rawURL string) (string, int32) {
	t.Helper()
	u := strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	fmt.Sscan(port, &n)
	return host, n
}

func TestHTTPProbe(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		fmt.Fprint(w, "fine")
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/local", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/ok", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	host, port := serverPort(t, srv.URL)
	_, tlsPort := serverPort(t, tlsSrv.URL)

	r := newProbeRunner(nil, "v1.37.2")
	container := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: port}}}
	target := probeTarget{Pod: &corev1.Pod{}, Container: container, ContainerID: "c1", PodIP: host}
	tests := []struct {
		name   string
		action corev1.HTTPGetAction
		want   probeOutcome
		out    string
	}{
		{"ok by number", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(port)}, outcomeSuccess, "fine"},
		{"ok by name", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("web")}, outcomeSuccess, "fine"},
		{"https unverified", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(tlsPort), Scheme: corev1.URISchemeHTTPS}, outcomeSuccess, "fine"},
		{"503", corev1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(port)}, outcomeFailure, "HTTP probe failed with statuscode: 503"},
		{"same-host redirect followed", corev1.HTTPGetAction{Path: "/local", Port: intstr.FromInt32(port)}, outcomeSuccess, "fine"},
		{"other-host redirect not followed", corev1.HTTPGetAction{Path: "/away", Port: intstr.FromInt32(port)}, outcomeWarning, "Probe terminated redirects, Response body: "},
	}
	for _, tt := range tests {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &tt.action}}
		got, out, err := r.run(context.Background(), target, p, time.Second)
		if err != nil || got != tt.want || strings.TrimSpace(out) != tt.out && !strings.HasPrefix(out, tt.out) {
			t.Errorf("%s: got %d %q %v, want %d %q", tt.name, got, out, err, tt.want, tt.out)
		}
	}
	mu.Lock()
	if ua := seen.Get("User-Agent"); ua != "kube-probe/1.37" {
		t.Errorf("User-Agent: got %q, want kube-probe/1.37", ua)
	}
	mu.Unlock()

	// The timeout bounds the request.
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt32(port)}}}
	begin := time.Now()
	got, out, err := r.run(context.Background(), target, p, 100*time.Millisecond)
	if err != nil || got != outcomeFailure || time.Since(begin) > time.Second {
		t.Errorf("slow: got %d %q %v after %s, want failure within the timeout", got, out, err, time.Since(begin))
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port := serverPort(t, l.Addr().String())
	// A port nobody listens on: one that was just released.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed := serverPort(t, l2.Addr().String())
	l2.Close()

	r := newProbeRunner(nil, "")
	target := probeTarget{Pod: &corev1.Pod{}, Container: &corev1.Container{Name: "c"}, PodIP: "127.0.0.1"}
	for _, tt := range []struct {
		port int32
		want probeOutcome
	}{{port, outcomeSuccess}, {closed, outcomeFailure}} {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(tt.port)}}}
		got, out, err := r.run(context.Background(), target, p, time.Second)
		if err != nil || got != tt.want {
			t.Errorf("tcp port %d: got %d %q %v, want %d", tt.port, got, out, err, tt.want)
		}
	}
}

func TestGRPCProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	_, port := serverPort(t, l.Addr().String())

	r := newProbeRunner(nil, "")
	target := probeTarget{Pod: &corev1.Pod{}, Container: &corev1.Container{Name: "c"}, PodIP: "127.0.0.1"}
	for _, tt := range []struct {
		service *string
		want    probeOutcome
		out     string
	}{
		{nil, outcomeSuccess, "service healthy"},
		{ptr.To("db"), outcomeFailure, `service unhealthy (responded with "NOT_SERVING")`},
	} {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port, Service: tt.service}}}
		got, out, err := r.run(context.Background(), target, p, 2*time.Second)
		if err != nil || got != tt.want || out != tt.out {
			t.Errorf("grpc service %v: got %d %q %v, want %d %q", tt.service, got, out, err, tt.want, tt.out)
		}
	}
}

// scriptedProbes answers probe attempts by kind, counting them.
type scriptedProbes struct {
	mu       sync.Mutex
	outcomes map[probeKind]probeOutcome
	calls    map[probeKind]int
	wakes    int
}

func newScriptedProbes() *scriptedProbes {
	return &scriptedProbes{outcomes: map[probeKind]probeOutcome{}, calls: map[probeKind]int{}}
}

func (s *scriptedProbes) run(_ context.Context, t probeTarget, p *corev1.Probe, _ time.Duration) (probeOutcome, string, error) {
	kind := probeLiveness
	switch p {
	case t.Container.ReadinessProbe:
		kind = probeReadiness
	case t.Container.StartupProbe:
		kind = probeStartup
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[kind]++
	return s.outcomes[kind], "scripted", nil
}

func (s *scriptedProbes) set(kind probeKind, o probeOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[kind] = o
}

func (s *scriptedProbes) count(kind probeKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

// proberFixture is a prober on a fake clock probing one running
// container "c" (ID c1) of a pod.
type proberFixture struct {
	t      *testing.T
	clk    *clocktesting.FakeClock
	p      *prober
	s      *scriptedProbes
	pod    *corev1.Pod
	c      Container
	events []string
	mu     sync.Mutex
}

func newProberFixture(t *testing.T, spec corev1.Container, outcomes map[probeKind]probeOutcome) *proberFixture {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := &proberFixture{t: t, clk: clk, s: newScriptedProbes()}
	for kind, o := range outcomes {
		f.s.set(kind, o)
	}
	f.p = newProber(clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.p.run = f.s.run
	f.p.wake = func(*corev1.Pod) { f.s.mu.Lock(); f.s.wakes++; f.s.mu.Unlock() }
	f.p.event = func(_ *corev1.Pod, _ *corev1.Container, typ, reason, msg string) {
		f.mu.Lock()
		f.events = append(f.events, typ+" "+reason+" "+msg)
		f.mu.Unlock()
	}
	spec.Name = "c"
	f.pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{spec}}}
	f.c = Container{ID: "c1", Name: "c", State: ContainerRunning, StartedAt: clk.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.p.ensure(ctx, f.pod, newPodRuntime(readySandbox(), []Container{f.c}), "10.0.0.5")
	return f
}

// waitFor polls cond for up to 5 s.
func (f *proberFixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// step advances the clock once n workers wait on it.
func (f *proberFixture) step(n int, d time.Duration) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("%d workers waiting", n), func() bool { return f.clk.Waiters() >= n })
	f.clk.Step(d)
}

func (f *proberFixture) state() (started, ready bool) {
	return f.p.state(f.pod.UID, &f.pod.Spec.Containers[0], &f.c)
}

func execProbe(mut func(*corev1.Probe)) *corev1.Probe {
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}, PeriodSeconds: 10}
	if mut != nil {
		mut(p)
	}
	return p
}

func TestReadinessUntilSuccessThenThreshold(t *testing.T) {
	f := newProberFixture(t, corev1.Container{ReadinessProbe: execProbe(func(p *corev1.Probe) { p.FailureThreshold = 3 })},
		map[probeKind]probeOutcome{probeReadiness: outcomeFailure})
	f.waitFor("first probe", func() bool { return f.s.count(probeReadiness) == 1 })
	if started, ready := f.state(); !started || ready {
		t.Fatalf("after a failure: got started %v ready %v, want started, not ready", started, ready)
	}
	f.s.set(probeReadiness, outcomeSuccess)
	f.step(1, 10*time.Second)
	f.waitFor("ready after a success", func() bool { _, r := f.state(); return r })
	f.s.mu.Lock()
	wakes := f.s.wakes
	f.s.mu.Unlock()
	if wakes != 1 {
		t.Errorf("wakes after becoming ready: got %d, want 1", wakes)
	}
	// Two failures stay under the threshold of three.
	f.s.set(probeReadiness, outcomeFailure)
	for i := 3; i <= 4; i++ {
		f.step(1, 10*time.Second)
		f.waitFor("probe ran", func() bool { return f.s.count(probeReadiness) == i })
	}
	f.step(1, 0) // the worker is waiting again, so the last result is recorded
	if _, ready := f.state(); !ready {
		t.Fatal("after 2 failures of 3: got not ready, want ready")
	}
	f.clk.Step(10 * time.Second)
	f.waitFor("not ready after the third failure", func() bool { _, r := f.state(); return !r })
	f.waitFor("woken", func() bool { f.s.mu.Lock(); defer f.s.mu.Unlock(); return f.s.wakes == 2 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 || f.events[0] != "Warning Unhealthy Readiness probe failed: scripted" {
		t.Errorf("events: got %q, want Warning Unhealthy Readiness probe failed: scripted", f.events)
	}
}

func TestInitialDelay(t *testing.T) {
	f := newProberFixture(t, corev1.Container{ReadinessProbe: execProbe(func(p *corev1.Probe) { p.InitialDelaySeconds = 5 })},
		map[probeKind]probeOutcome{probeReadiness: outcomeSuccess})
	f.step(1, 4*time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := f.s.count(probeReadiness); n != 0 {
		t.Fatalf("probes 4s into a 5s initial delay: got %d, want 0", n)
	}
	if _, ready := f.state(); ready {
		t.Fatal("ready before the first probe")
	}
	f.clk.Step(time.Second)
	f.waitFor("probe after the delay", func() bool { _, r := f.state(); return r })
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	f := newProberFixture(t, corev1.Container{
		StartupProbe:   execProbe(func(p *corev1.Probe) { p.FailureThreshold = 10 }),
		LivenessProbe:  execProbe(nil),
		ReadinessProbe: execProbe(nil),
	}, map[probeKind]probeOutcome{probeStartup: outcomeFailure, probeReadiness: outcomeSuccess, probeLiveness: outcomeSuccess})
	f.waitFor("startup probed", func() bool { return f.s.count(probeStartup) == 1 })
	f.step(3, 10*time.Second)
	f.waitFor("startup probed again", func() bool { return f.s.count(probeStartup) == 2 })
	if n, m := f.s.count(probeLiveness), f.s.count(probeReadiness); n+m != 0 {
		t.Fatalf("liveness/readiness probes before startup succeeded: got %d/%d, want 0", n, m)
	}
	if started, ready := f.state(); started || ready {
		t.Fatalf("before startup success: got started %v ready %v, want neither", started, ready)
	}
	if len(f.p.notStarted(f.pod.UID)) != 1 {
		t.Errorf("notStarted: got %v, want c1", f.p.notStarted(f.pod.UID))
	}
	f.s.set(probeStartup, outcomeSuccess)
	f.step(3, 10*time.Second)
	// Startup success wakes the gated workers at once.
	f.waitFor("started and ready", func() bool { s, r := f.state(); return s && r })
	if f.s.count(probeLiveness) == 0 {
		t.Error("liveness did not run after startup succeeded")
	}
	if len(f.p.notStarted(f.pod.UID)) != 0 {
		t.Errorf("notStarted after success: got %v, want none", f.p.notStarted(f.pod.UID))
	}
}

func TestLivenessFailureIsReported(t *testing.T) {
	f := newProberFixture(t, corev1.Container{LivenessProbe: execProbe(func(p *corev1.Probe) { p.FailureThreshold = 2 })},
		map[probeKind]probeOutcome{probeLiveness: outcomeFailure})
	f.waitFor("first probe", func() bool { return f.s.count(probeLiveness) == 1 })
	if got := f.p.failed(f.pod.UID); len(got) != 0 {
		t.Fatalf("failed after 1 of 2 failures: got %v, want none", got)
	}
	f.step(1, 10*time.Second)
	f.waitFor("liveness failed", func() bool { return f.p.failed(f.pod.UID)["c1"] == probeLiveness })
	// The worker holds: no more probes of this container.
	time.Sleep(20 * time.Millisecond)
	if f.clk.Waiters() != 0 {
		t.Errorf("worker still waiting after a liveness failure")
	}
	// The container is gone: its worker and result go too.
	f.p.ensure(context.Background(), f.pod, newPodRuntime(readySandbox(), nil), "")
	if got := f.p.failed(f.pod.UID); len(got) != 0 {
		t.Errorf("failed after the container went: got %v, want none", got)
	}
	if len(f.p.pods) != 0 {
		t.Errorf("pods with workers: got %d, want 0", len(f.p.pods))
	}
}

func TestNoProbesCostNothing(t *testing.T) {
	p := newProber(clocktesting.NewFakeClock(time.Now()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	p.ensure(context.Background(), pod, newPodRuntime(readySandbox(), []Container{{ID: "c1", Name: "c", State: ContainerRunning}}), "")
	if len(p.pods) != 0 {
		t.Errorf("workers for a pod without probes: got %d pods, want 0", len(p.pods))
	}
	if hasProbes(pod) {
		t.Error("hasProbes: got true, want false")
	}
}

func TestKilledContainersRestart(t *testing.T) {
	now := t0.Add(time.Hour)
	exited := ctr("a", 0, ContainerExited, 0, now.Add(-time.Second))
	restarted := ctr("a", 1, ContainerExited, 0, now.Add(-time.Second))
	tests := []struct {
		name       string
		policy     corev1.RestartPolicy
		containers []Container
		killed     bool
		backoff    map[string]backoffEntry
		wantStart  []string
		wantBO     bool
	}{
		{"OnFailure, exit 0, killed: restart", corev1.RestartPolicyOnFailure, []Container{exited}, true, nil, []string{"a#1"}, false},
		{"OnFailure, exit 0, not killed: done", corev1.RestartPolicyOnFailure, []Container{exited}, false, nil, nil, false},
		{"Never, killed: no restart", corev1.RestartPolicyNever, []Container{exited}, true, nil, nil, false},
		{"Always, killed: restart", corev1.RestartPolicyAlways, []Container{exited}, true, nil, []string{"a#1"}, false},
		// A second kill within the back-off window waits like a crash.
		{"OnFailure, killed again: back-off", corev1.RestartPolicyOnFailure, []Container{restarted, exited}, true,
			map[string]backoffEntry{"uid1/a": {Delay: initialBackoff, Updated: now.Add(-5 * time.Second)}}, nil, true},
	}
	for _, tt := range tests {
		rt := newPodRuntime(readySandbox(), tt.containers)
		if tt.killed {
			rt.Killed = map[string]bool{tt.containers[0].ID: true}
		}
		a := computePodActions(testPod(tt.policy, nil, "a"), rt, tt.backoff, now)
		if got := starts(a); !reflect.DeepEqual(got, tt.wantStart) {
			t.Errorf("%s: starts: got %v, want %v", tt.name, got, tt.wantStart)
		}
		if _, ok := a.Backoff["a"]; ok != tt.wantBO {
			t.Errorf("%s: back-off: got %v, want %v", tt.name, ok, tt.wantBO)
		}
	}
}

func TestSidecarWaitsForStartupProbe(t *testing.T) {
	side := corev1.Container{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	pod := testPod(corev1.RestartPolicyAlways, []corev1.Container{side}, "a")
	running := ctr("side", 0, ContainerRunning, 0, time.Time{})
	rt := newPodRuntime(readySandbox(), []Container{running})
	if got := starts(computePodActions(pod, rt, nil, t0)); !reflect.DeepEqual(got, []string{"a#0"}) {
		t.Errorf("sidecar started: got %v, want [a#0]", got)
	}
	rt.NotStarted = map[string]bool{running.ID: true}
	if got := starts(computePodActions(pod, rt, nil, t0)); len(got) != 0 {
		t.Errorf("sidecar not started yet: got %v, want no starts", got)
	}
}

func TestKilledOnFailureContainerInBackoffIsRunning(t *testing.T) {
	now := t0.Add(time.Hour)
	pod := testPod(corev1.RestartPolicyOnFailure, nil, "a")
	rt := newPodRuntime(readySandbox(), []Container{ctr("a", 1, ContainerExited, 0, now.Add(-time.Second)), ctr("a", 0, ContainerExited, 1, now.Add(-time.Minute))})
	s := generatePodStatus(statusInput{Pod: pod, Runtime: rt, Scheme: "sim", Backoff: map[string]time.Duration{"a": initialBackoff}, Now: now})
	if s.Phase != corev1.PodRunning {
		t.Errorf("phase of an OnFailure pod waiting to restart a killed container: got %s, want Running", s.Phase)
	}
}

func TestStatusStartedAndReady(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "a")
	rt := newPodRuntime(readySandbox(), []Container{ctr("a", 0, ContainerRunning, 0, time.Time{})})
	tests := []struct {
		started, ready         bool
		wantStarted, wantReady bool
		wantPodReady           corev1.ConditionStatus
	}{
		{true, true, true, true, corev1.ConditionTrue},
		{true, false, true, false, corev1.ConditionFalse},
		// Not started is never ready.
		{false, true, false, false, corev1.ConditionFalse},
	}
	for _, tt := range tests {
		s := generatePodStatus(statusInput{Pod: pod, Runtime: rt, Scheme: "sim", Now: t0,
			Started: func(*Container) bool { return tt.started }, Ready: func(*Container) bool { return tt.ready }})
		cs := s.ContainerStatuses[0]
		var podReady corev1.ConditionStatus
		for _, c := range s.Conditions {
			if c.Type == corev1.PodReady {
				podReady = c.Status
			}
		}
		if *cs.Started != tt.wantStarted || cs.Ready != tt.wantReady || podReady != tt.wantPodReady {
			t.Errorf("started %v ready %v: got started %v ready %v pod ready %s, want %v %v %s",
				tt.started, tt.ready, *cs.Started, cs.Ready, podReady, tt.wantStarted, tt.wantReady, tt.wantPodReady)
		}
	}
}

// hookKubelet is a kubelet with just what runHook needs.
func hookKubelet(rt Runtime) *Kubelet {
	return &Kubelet{rt: rt, runner: newProbeRunner(rt, "v1.37.2"), clock: clocktesting.NewFakeClock(t0),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestRunHook(t *testing.T) {
	var mu sync.Mutex
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ua = r.Header.Get("User-Agent")
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	host, port := serverPort(t, srv.URL)
	rt := &execRuntime{fn: func(_ context.Context, _ string, cmd []string, out io.Writer) (int, error) {
		if cmd[0] == "fail" {
			fmt.Fprint(out, "nope")
			return 3, nil
		}
		return 0, nil
	}}
	k := hookKubelet(rt)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}}
	target := probeTarget{Pod: pod, Container: &corev1.Container{Name: "c"}, ContainerID: "c1", PodIP: host}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		target  probeTarget
		h       corev1.LifecycleHandler
		wantErr string
	}{
		{"exec ok", context.Background(), target, corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"ok"}}}, ""},
		{"exec fails", context.Background(), target, corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"fail"}}},
			`exec lifecycle hook ([fail]) for container "c" in pod "p_ns(u1)" failed - error: command 'fail' exited with 3: nope, message: "nope"`},
		// Any response will do, even a 500.
		{"http 500", context.Background(), target, corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/x", Port: intstr.FromInt32(port)}}, ""},
		{"http without pod IP", context.Background(), probeTarget{Pod: pod, Container: target.Container},
			corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/x", Port: intstr.FromInt32(port)}},
			`http lifecycle hook (/x) for container "c" in pod "p_ns(u1)" failed - error: pod has no IP`},
		{"sleep 0", context.Background(), target, corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 0}}, ""},
		{"sleep cut short", cancelled, target, corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}, "container terminated before sleep hook finished"},
	}
	for _, tt := range tests {
		err := k.runHook(tt.ctx, tt.target, &tt.h)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("%s: got error %q, want %q", tt.name, got, tt.wantErr)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if ua != "kube-lifecycle/1.37" {
		t.Errorf("hook User-Agent: got %q, want kube-lifecycle/1.37", ua)
	}
}

func TestNetworkProbesNeedAPodIP(t *testing.T) {
	r := newProbeRunner(nil, "")
	target := probeTarget{Pod: &corev1.Pod{}, Container: &corev1.Container{Name: "c"}}
	for _, h := range []corev1.ProbeHandler{
		{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}},
		{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
		{GRPC: &corev1.GRPCAction{Port: 80}},
	} {
		if _, _, err := r.run(context.Background(), target, &corev1.Probe{ProbeHandler: h}, time.Second); !errors.Is(err, errNoPodIP) {
			t.Errorf("%+v without a pod IP: got %v, want %v", h, err, errNoPodIP)
		}
	}
}
