package proxybench

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{7}, 0.99, 7},
		{"p50 of 100", hundred, 0.50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p99 of 30 is the max", hundred[:30], 0.99, 30 * time.Millisecond},
		{"p0", hundred, 0, time.Millisecond},
	} {
		if got := quantile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("%s: quantile(%v): got %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestOverhead(t *testing.T) {
	for _, tc := range []struct {
		base, via time.Duration
		want      float64
	}{
		{100, 105, 5},
		{200, 190, -5},
		{0, 10, 0},
	} {
		if got := overhead(tc.base, tc.via); got != tc.want {
			t.Errorf("overhead(%v, %v): got %v, want %v", tc.base, tc.via, got, tc.want)
		}
	}
}

func TestSyncTimes(t *testing.T) {
	log := `time=2026-11-24T22:21:31.100Z level=INFO msg="proxy: synced" full=false
time=2026-11-24T22:21:31.200Z level=INFO msg="kubelet: pod started"
time=2026-11-24T22:21:32.300Z level=INFO msg="proxy: synced" full=true
garbage`
	got := syncTimes(log)
	if len(got) != 2 {
		t.Fatalf("syncTimes: got %d times, want 2", len(got))
	}
	at := got[1].Add(400 * time.Millisecond)
	if d := sinceLast(got, at); d != 400*time.Millisecond {
		t.Errorf("sinceLast: got %v, want 400ms", d)
	}
	if d := sinceLast(got, got[0]); d != -1 {
		t.Errorf("sinceLast before every sync: got %v, want -1", d)
	}
}
