package main

import (
	"encoding/json"
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

func TestSummarizeSorts(t *testing.T) {
	s := summarize([]time.Duration{5, 1, 4, 2, 3})
	want := summary{n: 5, p50: 3, p99: 5, max: 5}
	if s != want {
		t.Errorf("summarize got %+v, want %+v", s, want)
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
