package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func popName(t *testing.T, q *Queue) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	qp := q.Pop(ctx)
	if qp == nil {
		return "<none>"
	}
	return qp.Pod.Name
}

func TestQueueOrdersByPriorityThenTime(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	for _, p := range []*v1.Pod{pod("low1").prio(1).obj(), pod("high").prio(100).obj(), pod("low2").prio(1).obj(), pod("none").obj()} {
		q.Add(p)
		clk.step(time.Second)
	}
	var got []string
	for i := 0; i < 5; i++ {
		got = append(got, popName(t, q))
	}
	mustEqual(t, "order", strings.Join(got, ","), "high,low1,low2,none,<none>")
}

func TestQueueBackoffDoublesToTenSeconds(t *testing.T) {
	for _, tt := range []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {12, 10 * time.Second}} {
		mustEqual(t, "backoff", backoffFor(tt.attempts), tt.want)
	}
}

func TestQueueUnschedulableWaitsForEvent(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	q.Add(pod("p").obj())
	qp := q.Pop(context.Background())
	q.AddUnschedulable(qp)
	clk.step(time.Minute)
	q.Flush()
	mustEqual(t, "without an event", popName(t, q), "<none>")

	// A cluster event moves it; its 1s backoff has long passed.
	q.MoveAllToActiveOrBackoff(nil)
	qp = q.Pop(context.Background())
	mustEqual(t, "after a node event", qp.Pod.Name, "p")
	mustEqual(t, "attempts", qp.Attempts, 2)

	// Second failure: an event at once puts it in backoff for 2s.
	q.AddUnschedulable(qp)
	q.MoveAllToActiveOrBackoff(nil)
	mustEqual(t, "during backoff", popName(t, q), "<none>")
	clk.step(2 * time.Second)
	q.Flush()
	mustEqual(t, "after backoff", popName(t, q), "p")
}

func TestQueueUnschedulableRetriedAfterFiveMinutes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	q.Add(pod("p").obj())
	q.AddUnschedulable(q.Pop(context.Background()))
	clk.step(4 * time.Minute)
	q.Flush()
	mustEqual(t, "at 4 minutes", popName(t, q), "<none>")
	clk.step(time.Minute + time.Second)
	q.Flush()
	mustEqual(t, "after 5 minutes", popName(t, q), "p")
}

func TestQueueMoveDuringAttemptBacksOff(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	q.Add(pod("p").obj())
	qp := q.Pop(context.Background())
	q.MoveAllToActiveOrBackoff(nil) // a node appeared while p was being scheduled
	q.AddUnschedulable(qp)
	_, backoff, unsched := q.Len()
	mustEqual(t, "backoff", backoff, 1)
	mustEqual(t, "unschedulable", unsched, 0)
}

func TestQueueStatusOnlyUpdateDoesNotRetry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	p := pod("p").obj()
	q.Add(p)
	q.AddUnschedulable(q.Pop(context.Background()))
	clk.step(time.Minute)

	st := p.DeepCopy()
	st.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse}}
	q.Update(st)
	mustEqual(t, "after a status update", popName(t, q), "<none>")

	relabeled := st.DeepCopy()
	relabeled.Labels["x"] = "y"
	q.Update(relabeled)
	mustEqual(t, "after a label change", popName(t, q), "p")
}

func TestQueueDelete(t *testing.T) {
	q := NewQueue(time.Now)
	p := pod("p").obj()
	q.Add(p)
	q.Delete(p)
	mustEqual(t, "after delete", popName(t, q), "<none>")
}

func TestQueueUnschedulableCount(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clk.now)
	a, b := pod("a").obj(), pod("b").label("x", "y").affinity(podAffinity("zone", map[string]string{"x": "y"})).obj()
	q.Add(a)
	q.Add(b)
	q.AddUnschedulable(q.Pop(context.Background()))
	q.AddUnschedulable(q.Pop(context.Background()))
	_, _, u := q.Len()
	mustEqual(t, "unschedulable", u, 2)
	clk.step(time.Minute)
	q.MoveAllToActiveOrBackoff(hasRequiredPodAffinity)
	_, _, u = q.Len()
	mustEqual(t, "after an affinity-only move", u, 1)
	mustEqual(t, "moved", popName(t, q), "b")
	q.Delete(a)
	_, _, u = q.Len()
	mustEqual(t, "after delete", u, 0)
}
