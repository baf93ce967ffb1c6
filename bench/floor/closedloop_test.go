package floor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// closedLoopClients and closedLoopWindow are the API benchmark's: 50
// clients on one connection, each sending its next request as soon as its
// last one returned, for 10 s.
const (
	closedLoopClients = 50
	closedLoopWindow  = 10 * time.Second
	closedLoopKeys    = 200 // distinct objects per client
)

// podBody is as large as the API benchmark's pod in JSON (5,177 bytes);
// what is in it does not matter to TLS, HTTP/2 or etcd.
func podBody() []byte { return bytes.Repeat([]byte("p"), 5177) }

// BenchmarkClosedLoopFloor measures the latency floor under the API
// benchmark's closed-loop rows (create and update p99 <= 25 ms, GET p99 <=
// 5 ms, with 50 clients):
//
//		go test -run '^$' -bench ClosedLoopFloor -benchtime 1x ./bench/floor/
//
//	  - PUT: 50 clients on one HTTP/2 connection PUT pod-sized bodies to the
//	    https+etcd child, which stores each with a compare-and-swap before it
//	    answers with the same bytes (no decoding, admission, validation,
//	    managed fields, cache or watchers);
//	  - GET: the same clients GET from the https child, which answers with
//	    pod-sized bytes from memory (no cache lookup, no encoding); the
//	    clients read the bytes and do not decode them, where client-go
//	    decodes every answer.
func BenchmarkClosedLoopFloor(b *testing.B) {
	for b.Loop() {
		for _, tc := range []struct{ mode, method string }{{"https+etcd", http.MethodPut}, {"https", http.MethodGet}} {
			lat, took := closedLoop(b, tc.mode, tc.method, 0)
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			rate := float64(len(lat)) / took.Seconds()
			b.Logf("%-4s %-10s %6.0f/s  p50 %5.1f ms  p99 %5.1f ms  max %5.1f ms  (%d requests)",
				tc.method, tc.mode, rate, ms(p50), ms(p99), ms(lat[len(lat)-1]), len(lat))
			b.ReportMetric(ms(p99), tc.method+"-p99-ms")
			b.ReportMetric(rate, tc.method+"/s")
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFixedRateFloor is the same load at the API benchmark's -rate
// 200: the 50 clients start 200 requests a second in total on a fixed
// schedule, each timed from its scheduled start, for the latency floor
// under the create, update and GET rows at that rate:
//
//	go test -run '^$' -bench FixedRateFloor -benchtime 1x ./bench/floor/
func BenchmarkFixedRateFloor(b *testing.B) {
	for b.Loop() {
		for _, tc := range []struct{ mode, method string }{{"https+etcd", http.MethodPut}, {"https", http.MethodGet}} {
			lat, _ := closedLoop(b, tc.mode, tc.method, fixedRate)
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			b.Logf("%-4s %-10s at %d/s  p50 %5.2f ms  p99 %5.2f ms  max %5.1f ms  (%d requests)",
				tc.method, tc.mode, fixedRate, ms(p50), ms(p99), ms(lat[len(lat)-1]), len(lat))
			b.ReportMetric(ms(p99), tc.method+"-p99-ms")
		}
	}
}

// fixedRate is the API benchmark's -rate for its fixed-rate rows.
const fixedRate = 200

// closedLoop runs the clients against a child in mode for the window after
// a second of warm-up, and returns every request's latency in the window.
// With rate 0 each client sends its next request as soon as its last one
// returned; otherwise the clients start rate requests a second in total,
// client c's k-th at a fixed time, and each is timed from that time.
func closedLoop(b *testing.B, mode, method string, rate int) ([]time.Duration, time.Duration) {
	ctx, cancel := context.WithTimeout(b.Context(), closedLoopWindow+time.Minute)
	defer cancel()
	_, addr := startChild(ctx, b, mode)
	hc, err := newHTTPClient(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	body := podBody()
	start := time.Now().Add(time.Second)
	end := start.Add(closedLoopWindow)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	for c := range closedLoopClients {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(end); i++ {
				var at time.Time
				if rate > 0 {
					interval := time.Second * closedLoopClients / time.Duration(rate)
					at = start.Add(-time.Second + time.Duration(i)*interval + time.Duration(c)*interval/closedLoopClients)
					if !sleepCtx(ctx, time.Until(at)) {
						break
					}
				}
				url := fmt.Sprintf("https://%s/api/v1/namespaces/bench/pods/pod-%d-%d", addr, c, i%closedLoopKeys)
				var rd io.Reader
				if method == http.MethodPut {
					rd = bytes.NewReader(body)
				}
				req, _ := http.NewRequestWithContext(ctx, method, url, rd)
				t0 := time.Now()
				if rate > 0 {
					t0 = at
				}
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s %s: HTTP %d", method, url, resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if t0.After(start) {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d clients failed, the first: %v", len(errs), errs[0])
	}
	if len(lat) == 0 {
		b.Fatal("no request finished in the window")
	}
	return lat, closedLoopWindow
}
