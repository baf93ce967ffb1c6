package server

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector lets the heap grow by GOGC percent of the live heap
// (100 by default) before it collects again, so a process holds about twice
// its live heap. The server's live heap is mostly caches (the watch cache,
// the components' informers) whose size follows the cluster, while the
// garbage made between two collections follows the request rate: the
// headroom need not grow with the caches. With 30,000 pods the live heap is
// about 550 MB and GOGC=100 made the server hold over 1.1 GB of heap for it.
//
// So, as Prometheus does for its own cache-heavy heap, the server lowers
// GOGC, and only for large heaps: the headroom is half the live heap, but
// never less than headroomFloor and never more than GOGC=100 gives. Small
// clusters keep GOGC=100 (their collections are cheap and rare); a live
// heap of 1 GB gets GOGC=50. The cost is more frequent collections of a
// large heap: with 1,000 simulated nodes and 30,000 pods, about two more
// percent of a core while idle. GOGC or GOMEMLIMIT in the environment
// turns this off: the user chose.
const (
	headroomFloor  = 256 << 20
	minGCPercent   = 50
	maxGCPercent   = 100
	headroomPeriod = 5 * time.Second
	liveHeapMetric = "/gc/heap/live:bytes"
	gcCyclesMetric = "/gc/cycles/total:gc-cycles"
)

// gcPercentFor is the GOGC that gives a live heap of live bytes its
// headroom.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	headroom := max(live/2, headroomFloor)
	p := headroom * 100 / live
	return int(min(max(p, minGCPercent), maxGCPercent))
}

// keepGCHeadroom sets GOGC from the live heap after each collection, until
// ctx ends.
func keepGCHeadroom(ctx context.Context, log *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	samples := []metrics.Sample{{Name: liveHeapMetric}, {Name: gcCyclesMetric}}
	cur, cycles := maxGCPercent, uint64(0)
	t := time.NewTicker(headroomPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 || samples[1].Value.Uint64() == cycles {
			continue
		}
		cycles = samples[1].Value.Uint64()
		if p := gcPercentFor(samples[0].Value.Uint64()); p != cur {
			debug.SetGCPercent(p)
			log.Debug("garbage collector headroom", "gogc", p, "liveHeapMiB", samples[0].Value.Uint64()>>20)
			cur = p
		}
	}
}
