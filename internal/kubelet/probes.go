package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"
)

// Probe defaults and limits, as upstream.
const (
	defaultProbePeriod    = 10 * time.Second
	defaultProbeTimeout   = time.Second
	defaultProbeFailures  = 3
	defaultProbeSuccesses = 1
	// maxProbeOutput bounds what a probe reads of a response body or a
	// command's output.
	maxProbeOutput = 10 * 1024
	// defaultTerminationGrace is a pod's terminationGracePeriodSeconds
	// when the spec has none.
	defaultTerminationGrace = 30 * time.Second
)

// probeKind is one of a container's three probes.
type probeKind uint8

const (
	probeLiveness probeKind = iota
	probeReadiness
	probeStartup
)

// String is the kind as upstream's events name it ("Liveness").
func (p probeKind) String() string {
	switch p {
	case probeLiveness:
		return "Liveness"
	case probeReadiness:
		return "Readiness"
	default:
		return "Startup"
	}
}

var probeKinds = [...]probeKind{probeLiveness, probeReadiness, probeStartup}

// probeOf returns a container's probe of a kind, or nil.
func probeOf(c *corev1.Container, kind probeKind) *corev1.Probe {
	if c == nil {
		return nil
	}
	switch kind {
	case probeLiveness:
		return c.LivenessProbe
	case probeReadiness:
		return c.ReadinessProbe
	default:
		return c.StartupProbe
	}
}

// probedContainers returns the containers of a pod that may be probed:
// the app containers and the sidecars (regular init containers are not).
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isSidecar(c) && hasProbe(c) {
			out = append(out, c)
		}
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; hasProbe(c) {
			out = append(out, c)
		}
	}
	return out
}

func hasProbe(c *corev1.Container) bool {
	return c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil
}

// hasProbes reports whether any container of a pod is probed; a pod
// without probes costs the prober nothing.
func hasProbes(pod *corev1.Pod) bool {
	for i := range pod.Spec.Containers {
		if hasProbe(&pod.Spec.Containers[i]) {
			return true
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isSidecar(c) && hasProbe(c) {
			return true
		}
	}
	return false
}

// probeTiming is a probe's schedule and thresholds with upstream's
// defaults filled in.
type probeTiming struct {
	InitialDelay, Period, Timeout time.Duration
	SuccessThreshold              int
	FailureThreshold              int
}

// timingOf returns the timing of a probe. Liveness and startup probes
// succeed after one success whatever the spec says, as validation
// demands upstream.
func timingOf(p *corev1.Probe, kind probeKind) probeTiming {
	t := probeTiming{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	if t.Period <= 0 {
		t.Period = defaultProbePeriod
	}
	if t.Timeout <= 0 {
		t.Timeout = defaultProbeTimeout
	}
	if t.SuccessThreshold <= 0 || kind != probeReadiness {
		t.SuccessThreshold = defaultProbeSuccesses
	}
	if t.FailureThreshold <= 0 {
		t.FailureThreshold = defaultProbeFailures
	}
	return t
}

// probeResult is a probe's settled verdict on a container.
type probeResult uint8

const (
	resultUnknown probeResult = iota
	resultSuccess
	resultFailure
)

// initialResult is what a probe says before it has settled: a container is
// alive, not ready and not started until its probes tell otherwise.
func initialResult(kind probeKind) probeResult {
	switch kind {
	case probeLiveness:
		return resultSuccess
	case probeReadiness:
		return resultFailure
	default:
		return resultUnknown
	}
}

// probeCounter counts consecutive equal outcomes of a probe.
type probeCounter struct {
	last probeResult
	run  int
}

// observe records one outcome and reports whether it has now been seen
// often enough in a row (successThreshold or failureThreshold) to become
// the probe's result.
func (c *probeCounter) observe(r probeResult, t probeTiming) bool {
	if r == c.last {
		c.run++
	} else {
		c.last, c.run = r, 1
	}
	switch r {
	case resultSuccess:
		return c.run >= t.SuccessThreshold
	case resultFailure:
		return c.run >= t.FailureThreshold
	}
	return false
}

// probeOutcome is the outcome of one probe attempt.
type probeOutcome uint8

const (
	outcomeSuccess probeOutcome = iota
	// outcomeWarning succeeds with a warning event (a redirect to another
	// host, not followed).
	outcomeWarning
	outcomeFailure
)

// probeTarget is the container a probe or hook acts on.
type probeTarget struct {
	Pod         *corev1.Pod
	Container   *corev1.Container
	ContainerID string
	// PodIP is the default host of httpGet, tcpSocket and grpc actions.
	PodIP string
}

// probeRunner carries out single probe attempts and hook actions.
type probeRunner struct {
	rt     Runtime
	client *http.Client
	// version is the kubelet's "major.minor", for the User-Agents
	// "kube-probe/<version>" and "kube-lifecycle/<version>".
	version string
}

func newProbeRunner(rt Runtime, kubeletVersion string) *probeRunner {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // upstream probes do not verify
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
	}
	return &probeRunner{
		rt:      rt,
		client:  &http.Client{Transport: tr, CheckRedirect: sameHostRedirects},
		version: majorMinor(kubeletVersion),
	}
}

// majorMinor turns "v1.37.2" into "1.37"; anything else gives "1.37".
func majorMinor(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) >= 2 {
		if _, err := strconv.Atoi(parts[0]); err == nil {
			if _, err := strconv.Atoi(parts[1]); err == nil {
				return parts[0] + "." + parts[1]
			}
		}
	}
	return "1.37"
}

// sameHostRedirects follows redirects only to the host of the first
// request, at most 10; a redirect elsewhere ends with its 3xx response.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// run carries out one attempt of probe p. err means the probe could not
// be run at all (its result is thrown away, as upstream does).
func (r *probeRunner) run(ctx context.Context, t probeTarget, p *corev1.Probe, timeout time.Duration) (probeOutcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		return r.exec(ctx, t.ContainerID, p.Exec.Command, timeout)
	case p.HTTPGet != nil:
		return r.httpProbe(ctx, t, p.HTTPGet)
	case p.TCPSocket != nil:
		host := p.TCPSocket.Host
		if host == "" {
			host = t.PodIP
		}
		if host == "" {
			return outcomeFailure, "", errNoPodIP
		}
		port, err := resolvePort(p.TCPSocket.Port, t.Container)
		if err != nil {
			return outcomeFailure, "", err
		}
		return tcpProbe(ctx, net.JoinHostPort(host, strconv.Itoa(port)))
	case p.GRPC != nil:
		if t.PodIP == "" {
			return outcomeFailure, "", errNoPodIP
		}
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		return r.grpcProbe(ctx, net.JoinHostPort(t.PodIP, strconv.Itoa(int(p.GRPC.Port))), svc, timeout)
	}
	return outcomeFailure, "", errors.New("probe has no handler")
}

// errNoPodIP is a network probe or hook of a pod without an IP: there is
// nothing to connect to, and the node's own loopback must not stand in.
var errNoPodIP = errors.New("pod has no IP")

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.n - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// exec runs cmd in the container: exit 0 succeeds.
func (r *probeRunner) exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (probeOutcome, string, error) {
	out := &limitedBuffer{n: maxProbeOutput}
	code, err := r.rt.Exec(ctx, id, cmd, nil, out, out, false)
	if ctx.Err() == context.DeadlineExceeded {
		return outcomeFailure, fmt.Sprintf("command %q timed out after %s", strings.Join(cmd, " "), timeout), nil
	}
	if err != nil {
		return outcomeFailure, "", fmt.Errorf("exec %q: %w", strings.Join(cmd, " "), err)
	}
	if code != 0 {
		return outcomeFailure, out.String(), nil
	}
	return outcomeSuccess, out.String(), nil
}

// resolvePort returns the port an action names: a number, or the name of
// one of the container's ports (or a number written as a string).
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := 0
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		if c != nil {
			for _, cp := range c.Ports {
				if cp.Name == p.StrVal {
					port, found = int(cp.ContainerPort), true
					break
				}
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return 0, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	}
	if port <= 0 || port > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", port)
	}
	return port, nil
}

// httpGetURL is the URL an httpGet action requests: scheme (default
// http), host (default the pod IP), port and path with its query.
func httpGetURL(a *corev1.HTTPGetAction, podIP string, port int) *url.URL {
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := a.Host
	if host == "" {
		host = podIP
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	return u
}

// newHTTPGetRequest builds the request of an httpGet action with its
// headers; userAgent and Accept "*/*" apply unless the spec sets them, and
// a Host header becomes the request's host.
func newHTTPGetRequest(ctx context.Context, u *url.URL, headers []corev1.HTTPHeader, userAgent string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u, err)
	}
	for _, h := range headers {
		req.Header.Add(h.Name, h.Value)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", userAgent)
	}
	if _, ok := req.Header["Accept"]; !ok {
		req.Header.Set("Accept", "*/*")
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host")
	}
	return req, nil
}

// httpOutcome judges a probe's response code: 200-399 succeed, a 3xx
// left unfollowed with a warning.
func httpOutcome(code int, body string) (probeOutcome, string) {
	switch {
	case code >= 300 && code < 400:
		return outcomeWarning, "Probe terminated redirects, Response body: " + body
	case code >= 200 && code < 300:
		return outcomeSuccess, body
	}
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", code)
}

func (r *probeRunner) httpProbe(ctx context.Context, t probeTarget, a *corev1.HTTPGetAction) (probeOutcome, string, error) {
	if a.Host == "" && t.PodIP == "" {
		return outcomeFailure, "", errNoPodIP
	}
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return outcomeFailure, "", err
	}
	req, err := newHTTPGetRequest(ctx, httpGetURL(a, t.PodIP, port), a.HTTPHeaders, "kube-probe/"+r.version)
	if err != nil {
		return outcomeFailure, "", err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeOutput))
	o, out := httpOutcome(resp.StatusCode, string(body))
	return o, out, nil
}

func tcpProbe(ctx context.Context, addr string) (probeOutcome, string, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	_ = conn.Close()
	return outcomeSuccess, "", nil
}

// grpcProbe calls grpc.health.v1.Health/Check: SERVING succeeds.
func (r *probeRunner) grpcProbe(ctx context.Context, addr, service string, timeout time.Duration) (probeOutcome, string, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/"+r.version))
	if err != nil {
		return outcomeFailure, fmt.Sprintf("error: failed to connect service %q: %v", addr, err), nil
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	if err != nil {
		if st, ok := grpcstatus.FromError(err); ok {
			switch st.Code() {
			case codes.Unimplemented:
				return outcomeFailure, "this server does not implement the grpc health protocol (grpc.health.v1.Health): " + st.Message(), nil
			case codes.DeadlineExceeded:
				return outcomeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			}
		}
		return outcomeFailure, fmt.Sprintf("error: health rpc probe failed: %v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return outcomeFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return outcomeSuccess, "service healthy", nil
}

// simulated reports whether the kubelet runs the simulated runtime, whose
// pods have no network: their httpGet, tcpSocket and grpc probes and
// httpGet hooks succeed at once, as their execs do, rather than connect to
// addresses that lead nowhere.
func (k *Kubelet) simulated() bool { return k.rtInfo.Name == "sim" }

// runProbe is one probe attempt for the prober.
func (k *Kubelet) runProbe(ctx context.Context, t probeTarget, p *corev1.Probe, timeout time.Duration) (probeOutcome, string, error) {
	if p.Exec == nil && k.simulated() {
		return outcomeSuccess, "", nil
	}
	return k.runner.run(ctx, t, p, timeout)
}

// prober runs one worker goroutine per probe of each running container
// and keeps their results, by container ID, for the pod's status and for
// liveness kills.
type prober struct {
	clock clock.WithTicker
	log   *slog.Logger
	// run is one probe attempt (probeRunner.run outside tests).
	run func(ctx context.Context, t probeTarget, p *corev1.Probe, timeout time.Duration) (probeOutcome, string, error)
	// event records an event about a container; wake queues the pod's
	// sync after a result changed.
	event func(pod *corev1.Pod, c *corev1.Container, typ, reason, msg string)
	wake  func(pod *corev1.Pod)

	mu   sync.Mutex
	pods map[types.UID]map[workerKey]*probeWorker
}

// workerKey names one probe of one container.
type workerKey struct {
	containerID string
	kind        probeKind
}

// probeWorker probes one container with one probe while it runs.
type probeWorker struct {
	key       workerKey
	target    probeTarget
	probe     *corev1.Probe
	timing    probeTiming
	startedAt time.Time
	cancel    context.CancelFunc
	done      chan struct{}
	// poke makes a worker gated by a startup probe look again at once.
	poke chan struct{}
	// result is guarded by prober.mu.
	result probeResult
}

func newProber(clk clock.WithTicker, log *slog.Logger) *prober {
	return &prober{clock: clk, log: log, pods: map[types.UID]map[workerKey]*probeWorker{},
		event: func(*corev1.Pod, *corev1.Container, string, string, string) {},
		wake:  func(*corev1.Pod) {}}
}

// ensure starts a worker for every probe of every running container of
// the pod that has none, and stops the workers of containers that no
// longer run (or were replaced). podIP is the pod's primary IP. Workers
// also end with ctx (the kubelet's).
func (p *prober) ensure(ctx context.Context, pod *corev1.Pod, rt podRuntime, podIP string) {
	probed := probedContainers(pod)
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.pods[pod.UID]
	if len(probed) == 0 && ws == nil {
		return
	}
	want := map[workerKey]bool{}
	for _, spec := range probed {
		c := rt.latest(spec.Name)
		if c == nil || c.State != ContainerRunning {
			continue
		}
		for _, kind := range probeKinds {
			pr := probeOf(spec, kind)
			if pr == nil {
				continue
			}
			key := workerKey{c.ID, kind}
			want[key] = true
			if ws[key] != nil {
				continue
			}
			if ws == nil {
				ws = map[workerKey]*probeWorker{}
				p.pods[pod.UID] = ws
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &probeWorker{
				key:       key,
				target:    probeTarget{Pod: pod, Container: spec, ContainerID: c.ID, PodIP: podIP},
				probe:     pr,
				timing:    timingOf(pr, kind),
				startedAt: c.StartedAt,
				cancel:    cancel,
				done:      make(chan struct{}),
				poke:      make(chan struct{}, 1),
				result:    initialResult(kind),
			}
			ws[key] = w
			go p.work(wctx, w)
		}
	}
	for key, w := range ws {
		if !want[key] {
			w.cancel()
			delete(ws, key)
		}
	}
	if len(ws) == 0 {
		delete(p.pods, pod.UID)
	}
}

// forget stops every worker of a pod that is gone.
func (p *prober) forget(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.pods[uid] {
		w.cancel()
	}
	delete(p.pods, uid)
}

// state reports whether a running container has started (its startup
// probe succeeded, or it has none) and is ready (started, and its
// readiness probe succeeded, or it has none).
func (p *prober) state(uid types.UID, spec *corev1.Container, c *Container) (started, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.pods[uid]
	ok := func(kind probeKind) bool {
		if probeOf(spec, kind) == nil {
			return true
		}
		w := ws[workerKey{c.ID, kind}]
		return w != nil && w.result == resultSuccess
	}
	started = ok(probeStartup)
	return started, started && ok(probeReadiness)
}

// failed returns the containers, by ID, whose liveness or startup probe
// has failed, with the probe that did.
func (p *prober) failed(uid types.UID) map[string]probeKind {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string]probeKind
	for key, w := range p.pods[uid] {
		if key.kind != probeReadiness && w.result == resultFailure {
			if out == nil {
				out = map[string]probeKind{}
			}
			out[key.containerID] = key.kind
		}
	}
	return out
}

// notStarted returns the IDs of running containers whose startup probe
// has not succeeded yet.
func (p *prober) notStarted(uid types.UID) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string]bool
	for key, w := range p.pods[uid] {
		if key.kind == probeStartup && w.result != resultSuccess {
			if out == nil {
				out = map[string]bool{}
			}
			out[key.containerID] = true
		}
	}
	return out
}

// gated reports whether a liveness or readiness worker must wait for its
// container's startup probe.
func (p *prober) gated(w *probeWorker) bool {
	if w.key.kind == probeStartup || w.target.Container.StartupProbe == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.pods[w.target.Pod.UID][workerKey{w.key.containerID, probeStartup}]
	return s == nil || s.result != resultSuccess
}

// set records a worker's settled result and reports whether it changed.
func (p *prober) set(w *probeWorker, r probeResult) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := w.result != r
	w.result = r
	if changed && w.key.kind == probeStartup && r == resultSuccess {
		for key, o := range p.pods[w.target.Pod.UID] {
			if key.containerID == w.key.containerID && o != w {
				select {
				case o.poke <- struct{}{}:
				default:
				}
			}
		}
	}
	return changed
}

// wait sleeps d on the prober's clock; a poke ends it early when
// pokeable. It reports whether the worker is still wanted.
func (p *prober) wait(ctx context.Context, w *probeWorker, d time.Duration, pokeable bool) bool {
	t := p.clock.NewTimer(d)
	defer t.Stop()
	var poke chan struct{}
	if pokeable {
		poke = w.poke
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	case <-poke:
		return true
	}
}

// work is one worker's loop: after the initial delay (counted from the
// container's start) it probes every period until its container stops;
// a liveness or startup probe that failed, or a startup probe that
// succeeded, has nothing more to say about this container.
func (p *prober) work(ctx context.Context, w *probeWorker) {
	defer close(w.done)
	if d := w.startedAt.Add(w.timing.InitialDelay).Sub(p.clock.Now()); d > 0 {
		if !p.wait(ctx, w, d, false) {
			return
		}
	}
	var counter probeCounter
	pod, spec, kind := w.target.Pod, w.target.Container, w.key.kind
	for {
		if p.gated(w) {
			if !p.wait(ctx, w, w.timing.Period, true) {
				return
			}
			continue
		}
		outcome, output, err := p.run(ctx, w.target, w.probe, w.timing.Timeout)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.event(pod, spec, corev1.EventTypeWarning, "Unhealthy",
				fmt.Sprintf("%s probe errored and resulted in unknown state: %v", kind, err))
		} else {
			r := resultSuccess
			switch outcome {
			case outcomeFailure:
				r = resultFailure
				p.event(pod, spec, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", kind, output))
			case outcomeWarning:
				p.event(pod, spec, corev1.EventTypeWarning, "ProbeWarning", fmt.Sprintf("%s probe warning: %s", kind, output))
			}
			if counter.observe(r, w.timing) {
				if p.set(w, r) {
					p.log.Info("probe result changed", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name,
						"probe", kind.String(), "success", r == resultSuccess)
					p.wake(pod)
				}
				if (kind != probeReadiness && r == resultFailure) || (kind == probeStartup && r == resultSuccess) {
					return
				}
			}
		}
		if !p.wait(ctx, w, w.timing.Period, false) {
			return
		}
	}
}
