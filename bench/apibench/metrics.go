package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// serverHist is the server's own apiserver_request_duration_seconds
// histogram for one verb on pods, summed over its other labels. Comparing
// it with the client's figures splits a latency into time inside the
// server's handler and time outside it (TLS, HTTP/2, client-go, and
// waiting for a CPU).
type serverHist struct {
	count   float64
	sum     float64 // seconds
	buckets map[float64]float64
}

// scrapeServerHist reads /metrics and returns the pods histogram of verb
// (the server's label: CREATE, UPDATE, GET, LIST).
func (c *client) scrapeServerHist(ctx context.Context, verb string) (serverHist, error) {
	h := serverHist{buckets: map[float64]float64{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return h, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return h, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return h, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseServerHist(resp.Body, verb)
}

// parseServerHist picks the pods series of verb out of Prometheus text.
func parseServerHist(r io.Reader, verb string) (serverHist, error) {
	const name = "apiserver_request_duration_seconds"
	h := serverHist{buckets: map[float64]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		lb, rb := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
		if lb < 0 || rb < lb {
			continue
		}
		series, labels := line[:lb], line[lb+1:rb]
		if !strings.Contains(labels, `resource="pods"`) || !strings.Contains(labels, `subresource=""`) ||
			!strings.Contains(labels, `verb="`+verb+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[rb+1:]), 64)
		if err != nil {
			return h, fmt.Errorf("parse %q: %w", line, err)
		}
		switch series {
		case name + "_count":
			h.count += v
		case name + "_sum":
			h.sum += v
		case name + "_bucket":
			_, le, ok := strings.Cut(labels, `le="`)
			if !ok {
				continue
			}
			le, _, _ = strings.Cut(le, `"`)
			bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses too
			if err != nil {
				return h, fmt.Errorf("parse bucket %q: %w", le, err)
			}
			h.buckets[bound] += v
		}
	}
	return h, sc.Err()
}

// since is the histogram of what happened between two scrapes.
func (h serverHist) since(before serverHist) serverHist {
	d := serverHist{count: h.count - before.count, sum: h.sum - before.sum, buckets: map[float64]float64{}}
	for b, v := range h.buckets {
		d.buckets[b] = v - before.buckets[b]
	}
	return d
}

// p99Bound is the upper bound of the bucket holding the 99th percentile:
// the histogram's resolution is its buckets, so this is all it can say.
func (h serverHist) p99Bound() float64 {
	bounds := make([]float64, 0, len(h.buckets))
	for b := range h.buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	want := math.Ceil(0.99 * h.count)
	for _, b := range bounds {
		if h.buckets[b] >= want {
			return b
		}
	}
	return math.Inf(1)
}

// describe summarises the server-side view for a result's detail.
func (h serverHist) describe() string {
	if h.count <= 0 {
		return "server histogram: no requests"
	}
	mean := h.sum / h.count * 1000
	p99 := h.p99Bound()
	bound := "+Inf"
	if !math.IsInf(p99, 1) {
		bound = strconv.FormatFloat(p99*1000, 'f', -1, 64) + " ms"
	}
	return fmt.Sprintf("inside the server's handler: mean %.1f ms, p99 <= %s (its histogram, %.0f requests)", mean, bound, h.count)
}

// serverView runs fn and describes what the server's histogram of verb saw
// meanwhile.
func serverView(ctx context.Context, c *client, verb string, fn func()) string {
	before, err := c.scrapeServerHist(ctx, verb)
	fn()
	if err != nil {
		return "server histogram unavailable: " + err.Error()
	}
	after, err := c.scrapeServerHist(ctx, verb)
	if err != nil {
		return "server histogram unavailable: " + err.Error()
	}
	return after.since(before).describe()
}
