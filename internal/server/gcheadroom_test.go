package server

import "testing"

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
