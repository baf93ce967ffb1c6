package main

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample is every percentile", []time.Duration{7}, 99, 7},
		{"p50 of 100 is the 50th", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100 is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p99 of 10 rounds up to the max", hundred[:10], 99, 10 * time.Millisecond},
		{"p0 is the min", hundred, 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(q=%v) got %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(in)
	want := summary{n: 5, p50: 3, p99: 5, max: 5}
	if s != want {
		t.Errorf("summarize got %+v, want %+v", s, want)
	}
	if in[0] != 5 || in[4] != 3 {
		t.Errorf("summarize reordered its input: got %v, want [5 1 4 2 3]", in)
	}
}

func TestWorstSeconds(t *testing.T) {
	p := phase{
		samples: []time.Duration{time.Millisecond, 90 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond},
		starts:  []time.Duration{100 * time.Millisecond, 1500 * time.Millisecond, 1600 * time.Millisecond, 2100 * time.Millisecond},
	}
	if got, want := p.worstSeconds(2), "1s: 90.0 ms, 2s: 5.00 ms"; got != want {
		t.Errorf("worstSeconds got %q, want %q", got, want)
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name        string
		got, target float64
		err         bool
		want        string
	}{
		{"under", 1, 2, false, "PASS"},
		{"equal passes", 2, 2, false, "PASS"},
		{"over", 3, 2, false, "MISS"},
		{"error", 1, 2, true, "ERROR"},
		{"informational", 1, 0, false, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := result{value: tt.got, target: tt.target}
			if tt.err {
				r.err = "boom"
			}
			if got := r.verdict(); got != tt.want {
				t.Errorf("verdict(%v <= %v) got %s, want %s", tt.got, tt.target, got, tt.want)
			}
		})
	}
}

func TestBenchPodSize(t *testing.T) {
	// The pods must cost what real pods cost: 2-3 KB of JSON once the
	// server has defaulted them; the client's own encoding is a bit less.
	data, err := json.Marshal(benchPod(benchNamespace, 42))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", data)
	if n := len(data); n < 1500 || n > 3000 {
		t.Errorf("benchPod JSON got %d bytes, want 1500-3000", n)
	}
}

func TestParseServerHist(t *testing.T) {
	text := `# HELP apiserver_request_duration_seconds x
apiserver_request_duration_seconds_bucket{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1",le="0.005"} 10
apiserver_request_duration_seconds_bucket{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1",le="0.01"} 90
apiserver_request_duration_seconds_bucket{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1",le="0.025"} 99
apiserver_request_duration_seconds_bucket{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1",le="+Inf"} 100
apiserver_request_duration_seconds_sum{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1"} 0.8
apiserver_request_duration_seconds_count{group="",resource="pods",scope="namespace",subresource="",verb="CREATE",version="v1"} 100
apiserver_request_duration_seconds_count{group="",resource="pods",scope="namespace",subresource="status",verb="CREATE",version="v1"} 7
apiserver_request_duration_seconds_count{group="",resource="pods",scope="namespace",subresource="",verb="GET",version="v1"} 5
apiserver_request_duration_seconds_count{group="",resource="namespaces",scope="cluster",subresource="",verb="CREATE",version="v1"} 3
`
	h, err := parseServerHist(strings.NewReader(text), "CREATE")
	if err != nil {
		t.Fatal(err)
	}
	if h.count != 100 || h.sum != 0.8 {
		t.Errorf("got count %v sum %v, want 100 and 0.8", h.count, h.sum)
	}
	if got := h.p99Bound(); got != 0.025 {
		t.Errorf("p99Bound got %v, want 0.025", got)
	}
	before := serverHist{count: 90, sum: 0.5, buckets: map[float64]float64{0.005: 10, 0.01: 89, 0.025: 90, math.Inf(1): 90}}
	d := h.since(before)
	if d.count != 10 {
		t.Errorf("since: got count %v, want 10", d.count)
	}
	if got := d.p99Bound(); got != math.Inf(1) {
		t.Errorf("since: p99Bound got %v, want +Inf (one of ten above 25 ms)", got)
	}
}

func TestRunWorkersBounds(t *testing.T) {
	noop := func(context.Context, int, int, int) error { return nil }
	tests := []struct {
		name     string
		sh       shape
		min, max int
	}{
		{"count bound", shape{workers: 4, maxOps: 10, limit: time.Minute}, 10, 10},
		{"time bound", shape{workers: 2, maxOps: 1 << 30, limit: 50 * time.Millisecond, rate: 100}, 4, 7},
		{"rate paces", shape{workers: 3, maxOps: 1 << 30, limit: 200 * time.Millisecond, rate: 50}, 9, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := runWorkers(context.Background(), tt.sh, noop)
			if p.ops < tt.min || p.ops > tt.max {
				t.Errorf("got %d ops, want %d-%d", p.ops, tt.min, tt.max)
			}
			if len(p.samples) != p.ops || p.errs != 0 {
				t.Errorf("got %d samples and %d errors for %d ops, want all samples", len(p.samples), p.errs, p.ops)
			}
		})
	}
}

func TestParseWatchFrame(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		typ, rv string
		err     bool
	}{
		{"modified", `{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"resourceVersion":"42","name":"a","annotations":{"x":"\"resourceVersion\":\"1\""}}}}` + "\n", "MODIFIED", "42", false},
		{"bookmark", `{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"7"}}}`, "BOOKMARK", "7", false},
		{"no type", `{"object":{}}`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, rv, err := parseWatchFrame([]byte(tt.line))
			if (err != nil) != tt.err {
				t.Fatalf("error got %v, want error %v", err, tt.err)
			}
			if string(typ) != tt.typ || rv != tt.rv {
				t.Errorf("got %q %q, want %q %q", typ, rv, tt.typ, tt.rv)
			}
		})
	}
}
