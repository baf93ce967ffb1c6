package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// summary describes a set of latency samples. Percentiles use the
// nearest-rank method over every sample, so p99 of 100 samples is the 99th
// smallest, never an interpolation between two.
type summary struct {
	n             int
	p50, p99, max time.Duration
}

// summarize computes a summary; samples are left as they were (a phase
// keeps them paired with their start times).
func summarize(samples []time.Duration) summary {
	if len(samples) == 0 {
		return summary{}
	}
	samples = slices.Clone(samples)
	slices.Sort(samples)
	return summary{
		n:   len(samples),
		p50: percentile(samples, 50),
		p99: percentile(samples, 99),
		max: samples[len(samples)-1],
	}
}

// percentile returns the nearest-rank q-th percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	rank = max(rank, 1)
	rank = min(rank, len(sorted))
	return sorted[rank-1]
}

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// mib formats a byte count in MiB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
