package server

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},         // nothing measured yet
		{50 * mib, 100},  // an idle server: the floor is more than GOGC=100 gives
		{256 * mib, 100}, // the floor is exactly GOGC=100
		{400 * mib, 64},  // 256 MiB of headroom
		{512 * mib, 50},  // half the live heap from here on
		{550 * mib, 50},  // 30,000 pods
		{4096 * mib, 50},
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestGCHeadroomMetrics checks that the runtime has the metrics
// keepGCHeadroom reads: with a name it does not know, it would never act.
func TestGCHeadroomMetrics(t *testing.T) {
	samples := []metrics.Sample{{Name: liveHeapMetric}, {Name: gcCyclesMetric}}
	runtime.GC()
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			t.Errorf("runtime metric %s: kind %v, want uint64", s.Name, s.Value.Kind())
		}
	}
	if samples[0].Value.Uint64() == 0 || samples[1].Value.Uint64() == 0 {
		t.Errorf("after a collection: live heap %d bytes, %d cycles", samples[0].Value.Uint64(), samples[1].Value.Uint64())
	}
}
