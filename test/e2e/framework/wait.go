package framework

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const (
	firstPollInterval = 100 * time.Millisecond
	maxPollInterval   = 2 * time.Second
)

// Poll calls cond until it reports done, timeout passes or ctx ends. cond
// returns whether the condition holds and, when it does not, what it saw
// instead; the last such observation goes into the error, so a timeout says
// what the world looked like rather than only that it was wrong. The interval
// between calls starts at 100 ms and grows to 2 s.
func Poll(ctx context.Context, timeout time.Duration, cond func() (done bool, observed string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := firstPollInterval
	for {
		done, observed := cond()
		if done {
			return nil
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("condition not met within %v (%v); last observation:\n%s", timeout, ctx.Err(), observed)
		case <-timer.C:
		}
		interval = min(interval*3/2, maxPollInterval)
	}
}

// WaitFor is Poll for a test: it fails the test with the last observation
// when the condition does not hold within timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (done bool, observed string)) {
	t.Helper()
	if err := Poll(t.Context(), timeout, cond); err != nil {
		t.Fatal(err)
	}
}
