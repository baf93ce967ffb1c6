package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// benchNamespace holds every object the benchmark creates.
const benchNamespace = "bench"

// seqAnnotation is what every benchmark update changes, so each update is a
// real write (a new resourceVersion), not a no-op.
const seqAnnotation = "bench.skiff.sh/seq"

// client is one client-go setup shared by every simulated client: one
// transport, as a real controller process has, and no client-side rate
// limit, so the figures are the server's and not client-go's token bucket.
type client struct {
	cs   *kubernetes.Clientset
	hc   *http.Client
	base string
}

// Wire formats client-go can speak.
const (
	contentJSON     = "application/json"
	contentProtobuf = "application/vnd.kubernetes.protobuf"
)

func newClient(kubeconfig, contentType string) (*client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS = -1 // negative: no rate limiter at all
	cfg.Burst = 0
	cfg.ContentType = contentType
	cfg.AcceptContentTypes = contentType
	cfg.UserAgent = "skiff-apibench"
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return &client{cs: cs, hc: hc, base: cfg.Host}, nil
}

// rawGet fetches path with the shared client and returns the body size.
func (c *client) rawGet(ctx context.Context, path string) (int, error) {
	n, err := c.rawGetTo(ctx, path, io.Discard)
	return int(n), err
}

// rawGetTo fetches path as JSON with the shared client into w.
func (c *client) rawGetTo(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return n, nil
}

// ensureNamespace creates the benchmark namespace if it is not there.
func (c *client) ensureNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %q: %w", benchNamespace, err)
	}
	return nil
}

// phase is the outcome of one concurrent load phase.
type phase struct {
	samples  []time.Duration
	starts   []time.Duration // when each sample's operation started, from the phase's start
	ops      int
	errs     int
	firstErr error
	elapsed  time.Duration
}

func (p phase) detail() string {
	s := fmt.Sprintf("%d ops in %.1fs (%.0f/s)", p.ops, p.elapsed.Seconds(), float64(p.ops)/p.elapsed.Seconds())
	if p.errs > 0 {
		s += fmt.Sprintf(", %d errors (first: %v)", p.errs, p.firstErr)
	}
	if w := p.worstSeconds(3); w != "" {
		s += "; slowest seconds (start: max latency): " + w
	}
	return s
}

// worstSeconds names the n one-second windows of the phase with the
// slowest requests: a stall (GC, an etcd snapshot, another process) shows
// as a few bad seconds, a saturated server as slowness throughout.
func (p phase) worstSeconds(n int) string {
	if len(p.starts) != len(p.samples) || len(p.samples) == 0 {
		return ""
	}
	worst := map[int]time.Duration{}
	for i, st := range p.starts {
		sec := int(st / time.Second)
		worst[sec] = max(worst[sec], p.samples[i])
	}
	secs := slices.Collect(maps.Keys(worst))
	slices.SortFunc(secs, func(a, b int) int { return cmp.Compare(worst[b], worst[a]) })
	var parts []string
	for _, sec := range secs[:min(n, len(secs))] {
		parts = append(parts, fmt.Sprintf("%ds: %s", sec, ms(worst[sec])))
	}
	return strings.Join(parts, ", ")
}

// opTimeout bounds one operation. A phase's own deadline only stops new
// operations from starting: cancelling one in flight would leave the
// server applying a write whose answer the benchmark never saw, and the
// next update of that object would then conflict.
const opTimeout = 30 * time.Second

// shape is how a phase loads the server.
type shape struct {
	workers int
	maxOps  int           // operations started in total, at most
	limit   time.Duration // no operation starts after this
	// rate is the total operations per second over all workers; 0 means
	// closed loop: each worker sends its next request as soon as the last
	// one returned, which measures latency at saturation.
	rate float64
}

// runWorkers runs op on the shape's workers until maxOps operations have
// been started in total or the limit has passed, and times every call. op
// gets the worker's number, a global operation index and the worker's own
// count. With a rate, each worker starts its operations on a fixed
// schedule and latency counts from the scheduled start, so a slow server
// cannot hide its queueing by delaying the next request (coordinated
// omission).
func runWorkers(ctx context.Context, sh shape, op func(ctx context.Context, w, i, k int) error) phase {
	workers, maxOps := sh.workers, sh.maxOps
	var interval time.Duration
	if sh.rate > 0 {
		interval = time.Duration(float64(workers) / sh.rate * float64(time.Second))
	}
	var next atomic.Int64
	var mu sync.Mutex
	var res phase
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(sh.limit)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, min(maxOps/workers+1, 1<<16))
			var starts []time.Duration
			var errs int
			var firstErr error
			for k := 0; ; k++ {
				t0 := time.Now()
				if interval > 0 {
					// Workers are staggered over one interval.
					at := start.Add(time.Duration(k)*interval + time.Duration(w)*interval/time.Duration(workers))
					if d := time.Until(at); d > 0 {
						if sleepCtx(ctx, d) != nil {
							break
						}
					}
					t0 = at
				}
				if ctx.Err() != nil || time.Now().After(deadline) {
					break
				}
				i := int(next.Add(1) - 1)
				if i >= maxOps {
					break
				}
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				err := op(octx, w, i, k)
				d := time.Since(t0)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted, not a server error
					}
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				local = append(local, d)
				starts = append(starts, t0.Sub(start))
			}
			mu.Lock()
			res.samples = append(res.samples, local...)
			res.starts = append(res.starts, starts...)
			res.errs += errs
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ops = len(res.samples) + res.errs
	return res
}

// podSet is the benchmark's view of the pods it created: the latest
// object of each, from the server's last answer. Each index is written by
// one goroutine at a time (the phases partition them), so no lock.
type podSet struct {
	pods []*corev1.Pod
	// seq numbers every update across all phases, so no update ever
	// writes the value already stored: the server (like upstream) skips
	// such a no-op write, which then has no new resourceVersion and no
	// watch event.
	seq atomic.Int64
}

// fill creates n pods with `workers` concurrent clients and returns the
// create latencies.
func fill(ctx context.Context, c *client, set *podSet, n int, sh shape) phase {
	set.pods = make([]*corev1.Pod, n)
	pods := c.cs.CoreV1().Pods(benchNamespace)
	sh.maxOps = n
	return runWorkers(ctx, sh, func(ctx context.Context, _, i, _ int) error {
		p, err := pods.Create(ctx, benchPod(benchNamespace, i), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			p, err = pods.Get(ctx, podName(i), metav1.GetOptions{})
		}
		if err != nil {
			return err
		}
		set.pods[i] = p
		return nil
	})
}

// updateOne changes the sequence annotation of pod idx and stores the
// server's answer. On a conflict it refetches, so the next try succeeds;
// the conflict still counts as an error, as it should never happen here.
func updateOne(ctx context.Context, c *client, set *podSet, idx int) (*corev1.Pod, error) {
	p := set.pods[idx]
	if p == nil {
		return nil, fmt.Errorf("pod %d was never created", idx)
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[seqAnnotation] = strconv.FormatInt(set.seq.Add(1), 10)
	before := p.ResourceVersion
	pods := c.cs.CoreV1().Pods(benchNamespace)
	up, err := pods.Update(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) {
			if fresh, gerr := pods.Get(ctx, p.Name, metav1.GetOptions{}); gerr == nil {
				set.pods[idx] = fresh
			}
		}
		return nil, err
	}
	set.pods[idx] = up
	if up.ResourceVersion == before {
		return up, fmt.Errorf("pod %q: update changed nothing (resourceVersion still %s)", p.Name, before)
	}
	return up, nil
}

// updates runs `workers` clients that each update their own share of the
// pods round-robin (worker w owns the pods whose index is w modulo the
// worker count), so no two clients race on one object and every update is
// a clean read-modify-write with no conflicts.
func updates(ctx context.Context, c *client, set *podSet, sh shape) phase {
	n := len(set.pods)
	sh.workers = min(sh.workers, n)
	workers := sh.workers
	return runWorkers(ctx, sh, func(ctx context.Context, w, _, k int) error {
		owned := (n - w + workers - 1) / workers
		idx := w + (k%owned)*workers
		_, err := updateOne(ctx, c, set, idx)
		return err
	})
}

// gets runs `workers` clients that GET random pods.
func gets(ctx context.Context, c *client, set *podSet, sh shape) phase {
	n := len(set.pods)
	pods := c.cs.CoreV1().Pods(benchNamespace)
	return runWorkers(ctx, sh, func(ctx context.Context, _, i, _ int) error {
		_, err := pods.Get(ctx, podName(rand.IntN(n)), metav1.GetOptions{})
		return err
	})
}

// listResult is the timing of repeated full lists.
type listResult struct {
	samples []time.Duration
	items   int // items in the last typed list
	bytes   int // body size of the last raw list
}

// listTyped lists every pod in the namespace through client-go (decoded
// into a PodList, in the client's wire format), runs times, one at a time.
func listTyped(ctx context.Context, c *client, runs int) (listResult, error) {
	var res listResult
	for range runs {
		t0 := time.Now()
		l, err := c.cs.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{})
		d := time.Since(t0)
		if err != nil {
			return res, err
		}
		res.samples = append(res.samples, d)
		res.items = len(l.Items)
	}
	return res, nil
}

// listRaw lists every pod in the namespace over plain HTTP with the admin
// certificate, reading but not decoding the body: the server's share of a
// list, without client-go's decoding.
func listRaw(ctx context.Context, c *client, runs int) (listResult, error) {
	var res listResult
	for range runs {
		t0 := time.Now()
		n, err := c.rawGet(ctx, "/api/v1/namespaces/"+benchNamespace+"/pods")
		d := time.Since(t0)
		if err != nil {
			return res, err
		}
		res.samples = append(res.samples, d)
		res.bytes = n
	}
	return res, nil
}

// listDecode fetches the namespace's pods once as JSON and then times
// client-go's decoding of those bytes into a PodList, runs times, with no
// server involved: the client's share of the JSON LIST rows.
func listDecode(ctx context.Context, c *client, runs int) (listResult, error) {
	var body bytes.Buffer
	if _, err := c.rawGetTo(ctx, "/api/v1/namespaces/"+benchNamespace+"/pods", &body); err != nil {
		return listResult{}, err
	}
	res := listResult{bytes: body.Len()}
	dec := scheme.Codecs.UniversalDeserializer()
	for range runs {
		var list corev1.PodList
		t0 := time.Now()
		if _, _, err := dec.Decode(body.Bytes(), nil, &list); err != nil {
			return res, fmt.Errorf("decode the list: %w", err)
		}
		res.samples = append(res.samples, time.Since(t0))
		res.items = len(list.Items)
	}
	return res, nil
}

// watchResult is the outcome of the watch fan-out measurement.
type watchResult struct {
	delays    []time.Duration // write return -> event arrival, one per delivery
	fromSend  []time.Duration // write sent -> event arrival, one per delivery
	early     int             // deliveries that arrived before the write returned (counted as 0)
	missing   int             // deliveries that never arrived
	closed    int             // watches the server ended before every event came
	gaps      map[int]int     // write number -> watchers that never got it
	writes    int
	watchers  int
	writeLat  []time.Duration // latency of the writes themselves, under watch load
	setupTime time.Duration
}

// arrival is one event as one watcher saw it.
type arrival struct {
	rv string
	at time.Time
}

// watchFanout opens `watchers` watches on the namespace, then writes
// `writes` updates one at a time, `interval` apart, and records for every
// watcher and every write the time from the write's return to the event's
// arrival. A first, untimed write proves every watch is live before
// timing starts, so watch set-up is not counted as delivery delay.
func watchFanout(ctx context.Context, c *client, set *podSet, open openWatch, watchers, writes int, interval time.Duration) (watchResult, error) {
	res := watchResult{writes: writes, watchers: watchers}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+time.Duration(writes)*interval)
	defer cancel()
	n := len(set.pods)
	if n == 0 {
		return res, errors.New("no pods to update")
	}
	start, err := updateOne(ctx, c, set, 0)
	if err != nil {
		return res, fmt.Errorf("first update: %w", err)
	}
	t0 := time.Now()
	ws := make([]eventStream, 0, watchers)
	defer func() {
		for _, w := range ws {
			w.stop()
		}
	}()
	for i := range watchers {
		w, err := open(ctx, start.ResourceVersion)
		if err != nil {
			return res, fmt.Errorf("open watch %d: %w", i, err)
		}
		ws = append(ws, w)
	}
	// Each watcher expects the priming write plus `writes` more.
	want := writes + 1
	got := make([][]arrival, watchers)
	closed := make([]bool, watchers)
	var wg sync.WaitGroup
	var primed sync.WaitGroup
	primed.Add(watchers)
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make([]arrival, 0, want)
			defer func() {
				if len(seen) == 0 {
					primed.Done()
				}
				got[i] = seen
			}()
			for len(seen) < want {
				typ, rv, err := w.next(ctx)
				if err != nil {
					closed[i] = ctx.Err() == nil
					return
				}
				if typ != watch.Modified {
					continue
				}
				seen = append(seen, arrival{rv: rv, at: time.Now()})
				if len(seen) == 1 {
					primed.Done()
				}
			}
		}()
	}
	// Priming write: once every watcher has it, all watches are live.
	if _, err := updateOne(ctx, c, set, 1%n); err != nil {
		return res, fmt.Errorf("priming update: %w", err)
	}
	if err := waitGroupCtx(ctx, &primed); err != nil {
		return res, fmt.Errorf("watches never delivered the priming event: %w", err)
	}
	res.setupTime = time.Since(t0)

	returned := make(map[string]time.Time, writes)
	sent := make(map[string]time.Time, writes)
	order := make(map[string]int, writes)
	for k := range writes {
		w0 := time.Now()
		up, err := updateOne(ctx, c, set, (k+2)%n)
		now := time.Now()
		if err != nil {
			return res, fmt.Errorf("update %d: %w", k, err)
		}
		res.writeLat = append(res.writeLat, now.Sub(w0))
		returned[up.ResourceVersion] = now
		sent[up.ResourceVersion] = w0
		order[up.ResourceVersion] = k
		if k < writes-1 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	// Give stragglers up to 30 s, then stop whatever has not arrived.
	drain, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	_ = waitGroupCtx(drain, &wg)
	cancel()
	wg.Wait()

	res.gaps = map[int]int{}
	for i, seen := range got {
		if closed[i] {
			res.closed++
		}
		have := make([]bool, writes)
		for _, a := range seen {
			ret, ok := returned[a.rv]
			if !ok {
				continue // the priming write
			}
			have[order[a.rv]] = true
			res.fromSend = append(res.fromSend, a.at.Sub(sent[a.rv]))
			d := a.at.Sub(ret)
			if d < 0 {
				res.early++
				d = 0
			}
			res.delays = append(res.delays, d)
		}
		for k, ok := range have {
			if !ok {
				res.missing++
				res.gaps[k]++
			}
		}
	}
	return res, nil
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eventStream is one open watch, reduced to what the measurement needs.
type eventStream interface {
	// next blocks for the next event and returns its type and the
	// object's resourceVersion; an error ends the stream.
	next(ctx context.Context) (watch.EventType, string, error)
	stop()
}

// openWatch opens a pod watch on the benchmark namespace from rv.
type openWatch func(ctx context.Context, rv string) (eventStream, error)

// clientGoWatch opens watches through client-go, which decodes every event
// into a Pod before handing it over, as a controller's informer does.
func (c *client) clientGoWatch(ctx context.Context, rv string) (eventStream, error) {
	w, err := c.cs.CoreV1().Pods(benchNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		return nil, err
	}
	return typedStream{w}, nil
}

type typedStream struct{ w watch.Interface }

func (t typedStream) next(ctx context.Context) (watch.EventType, string, error) {
	select {
	case ev, ok := <-t.w.ResultChan():
		if !ok {
			return "", "", io.EOF
		}
		if p, ok := ev.Object.(*corev1.Pod); ok {
			return ev.Type, p.ResourceVersion, nil
		}
		return ev.Type, "", nil
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func (t typedStream) stop() { t.w.Stop() }

// rawWatch opens watches over plain HTTP and only scans each event line
// for its type and resourceVersion: how fast the server fans an event
// out, with as little client work in the way as possible.
func (c *client) rawWatch(ctx context.Context, rv string) (eventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.base+"/api/v1/namespaces/"+benchNamespace+"/pods?watch=1&resourceVersion="+rv, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("watch: HTTP %d", resp.StatusCode)
	}
	return &rawStream{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10), cancel: cancel}, nil
}

type rawStream struct {
	body   io.ReadCloser
	r      *bufio.Reader
	cancel context.CancelFunc
}

func (s *rawStream) next(context.Context) (watch.EventType, string, error) {
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A frame longer than the buffer: keep its head, drop the rest.
		head := slices.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		line = head
	}
	if err != nil {
		return "", "", err
	}
	return parseWatchFrame(line)
}

func (s *rawStream) stop() {
	s.cancel()
	_ = s.body.Close()
}

// parseWatchFrame reads the type and the object's resourceVersion from one
// watch event line without decoding it. The first resourceVersion in the
// frame is the object's: the type comes first, then the object, whose
// metadata holds it.
func parseWatchFrame(line []byte) (watch.EventType, string, error) {
	typ := between(line, `"type":"`, `"`)
	if typ == "" {
		return "", "", fmt.Errorf("watch frame without a type: %.100s", line)
	}
	return watch.EventType(typ), between(line, `"resourceVersion":"`, `"`), nil
}

// between returns what follows the first start in b, up to end.
func between(b []byte, start, end string) string {
	i := bytes.Index(b, []byte(start))
	if i < 0 {
		return ""
	}
	rest := b[i+len(start):]
	j := bytes.Index(rest, []byte(end))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// waitGroupCtx waits for wg or for ctx to end.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
