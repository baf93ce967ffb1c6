package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// Upstream's queue timings.
const (
	initialBackoff       = 1 * time.Second
	maxBackoff           = 10 * time.Second
	maxUnschedulableStay = 5 * time.Minute
	queueFlushInterval   = 1 * time.Second
)

// QueuedPod is a pod waiting to be scheduled.
type QueuedPod struct {
	Pod *v1.Pod
	// Attempts counts scheduling attempts; it sets the backoff.
	Attempts int
	// Timestamp is when the pod last entered the queue; it orders pods of
	// equal priority.
	Timestamp time.Time

	key              string
	backoffUntil     time.Time
	unschedulableAt  time.Time
	cycle            int64
	heapIndex        int
	where            int
	updatedWhileBusy bool
}

const (
	inActive = iota + 1
	inBackoff
	inUnschedulable
	inFlight
)

// Queue is the scheduling queue: an active heap (priority, then time), a
// backoff heap (1s doubling to 10s per pod) and the unschedulable pods,
// which cluster events or a 5-minute timeout move back.
type Queue struct {
	now func() time.Time

	mu      sync.Mutex
	cond    *sync.Cond
	active  podHeap
	backoff podHeap
	pods    map[string]*QueuedPod
	closed  bool
	// cycle counts Pops; moveCycle is the cycle of the last move request,
	// so a pod that failed while a move happened is retried, not parked.
	cycle     int64
	moveCycle int64
	// unschedulable counts pods parked as unschedulable, so the frequent
	// move requests cost nothing when there are none.
	unschedulable int
}

// NewQueue returns an empty queue reading time from now.
func NewQueue(now func() time.Time) *Queue {
	q := &Queue{now: now, pods: map[string]*QueuedPod{}, moveCycle: -1}
	q.cond = sync.NewCond(&q.mu)
	q.active.less = func(a, b *QueuedPod) bool {
		pa, pb := podPriority(a.Pod), podPriority(b.Pod)
		if pa != pb {
			return pa > pb
		}
		return a.Timestamp.Before(b.Timestamp)
	}
	q.backoff.less = func(a, b *QueuedPod) bool { return a.backoffUntil.Before(b.backoffUntil) }
	return q
}

func podKey(p *v1.Pod) string { return p.Namespace + "/" + p.Name }

// Add queues a new pending pod, or updates it when already queued.
func (q *Queue) Add(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addOrUpdate(pod)
}

// Update takes a changed pod. A change only to status or metadata
// bookkeeping updates the stored object; a real change moves an
// unschedulable pod back to be retried.
func (q *Queue) Update(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addOrUpdate(pod)
}

func (q *Queue) addOrUpdate(pod *v1.Pod) {
	key := podKey(pod)
	qp, ok := q.pods[key]
	if !ok {
		qp = &QueuedPod{Pod: pod, key: key, Timestamp: q.now()}
		q.pods[key] = qp
		q.push(qp, inActive)
		return
	}
	changed := specChanged(qp.Pod, pod)
	qp.Pod = pod
	switch qp.where {
	case inActive:
		heap.Fix(&q.active, qp.heapIndex)
	case inBackoff:
		heap.Fix(&q.backoff, qp.heapIndex)
	case inUnschedulable:
		if changed {
			q.unschedulable--
			q.requeue(qp)
		}
	case inFlight:
		if changed {
			qp.updatedWhileBusy = true
		}
	}
}

// specChanged ignores what the scheduler's own status writes change, so
// reporting a failure does not retry the pod at once.
func specChanged(a, b *v1.Pod) bool {
	if a.Generation != b.Generation {
		return true
	}
	return !equality.Semantic.DeepEqual(a.Labels, b.Labels) ||
		!equality.Semantic.DeepEqual(a.Annotations, b.Annotations) ||
		!equality.Semantic.DeepEqual(a.Spec, b.Spec)
}

// Delete forgets a pod (deleted, or bound by someone else).
func (q *Queue) Delete(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remove(podKey(pod))
}

func (q *Queue) remove(key string) {
	qp, ok := q.pods[key]
	if !ok {
		return
	}
	switch qp.where {
	case inActive:
		heap.Remove(&q.active, qp.heapIndex)
	case inBackoff:
		heap.Remove(&q.backoff, qp.heapIndex)
	case inUnschedulable:
		q.unschedulable--
	}
	delete(q.pods, key)
}

// Pop blocks until a pod is active and returns it, or returns nil when ctx
// ends or the queue is closed. The pod stays known to the queue ("in
// flight") until Done or AddUnschedulable.
func (q *Queue) Pop(ctx context.Context) *QueuedPod {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.closed || ctx.Err() != nil {
		return nil
	}
	qp := heap.Pop(&q.active).(*QueuedPod)
	qp.where = inFlight
	q.cycle++
	qp.cycle = q.cycle
	qp.Attempts++
	qp.updatedWhileBusy = false
	return qp
}

// Close wakes Pop for good.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// Done forgets a popped pod that was scheduled (assumed).
func (q *Queue) Done(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur := q.pods[qp.key]; cur == qp && qp.where == inFlight {
		delete(q.pods, qp.key)
	}
}

// AddUnschedulable returns a popped pod that could not be scheduled. It
// waits among the unschedulable pods for a cluster event, or backs off at
// once when an event arrived while it was being scheduled.
func (q *Queue) AddUnschedulable(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur := q.pods[qp.key]; cur != qp || qp.where != inFlight {
		return // deleted meanwhile
	}
	now := q.now()
	qp.Timestamp = now
	qp.backoffUntil = now.Add(backoffFor(qp.Attempts))
	if qp.updatedWhileBusy || q.moveCycle >= qp.cycle {
		q.push(qp, inBackoff)
		return
	}
	qp.where = inUnschedulable
	qp.unschedulableAt = now
	q.unschedulable++
}

// AddBackoff returns a popped pod to be retried after its backoff (an
// error that was not the pod's fault, such as a failed binding).
func (q *Queue) AddBackoff(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.pods[qp.key]; ok && cur != qp {
		return
	}
	now := q.now()
	qp.Timestamp = now
	qp.backoffUntil = now.Add(backoffFor(qp.Attempts))
	q.pods[qp.key] = qp
	if qp.where == inActive || qp.where == inBackoff {
		return
	}
	q.push(qp, inBackoff)
}

func backoffFor(attempts int) time.Duration {
	d := initialBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	return d
}

// MoveAllToActiveOrBackoff retries the unschedulable pods for which match
// is true (nil: all), after a cluster event that may have made them fit.
// Only an unfiltered move also sends pods failing meanwhile to backoff
// rather than back among the unschedulable.
func (q *Queue) MoveAllToActiveOrBackoff(match func(*v1.Pod) bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if match == nil {
		q.moveCycle = q.cycle
	}
	if q.unschedulable == 0 {
		return
	}
	for _, qp := range q.pods {
		if qp.where == inUnschedulable && (match == nil || match(qp.Pod)) {
			q.unschedulable--
			q.requeue(qp)
		}
	}
}

func (q *Queue) requeue(qp *QueuedPod) {
	if q.now().Before(qp.backoffUntil) {
		q.push(qp, inBackoff)
	} else {
		q.push(qp, inActive)
	}
}

func (q *Queue) push(qp *QueuedPod, where int) {
	qp.where = where
	if where == inActive {
		heap.Push(&q.active, qp)
		q.cond.Signal()
	} else {
		heap.Push(&q.backoff, qp)
	}
}

// Flush moves pods whose backoff ended to the active queue, and pods
// unschedulable for over 5 minutes back to be retried. Run calls it
// periodically; tests call it directly.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for q.backoff.Len() > 0 && !now.Before(q.backoff.items[0].backoffUntil) {
		qp := heap.Pop(&q.backoff).(*QueuedPod)
		q.push(qp, inActive)
	}
	if q.unschedulable == 0 {
		return
	}
	for _, qp := range q.pods {
		if qp.where == inUnschedulable && now.Sub(qp.unschedulableAt) > maxUnschedulableStay {
			q.unschedulable--
			q.requeue(qp)
		}
	}
}

// Len returns the number of pods in the active, backoff and unschedulable
// sets (in-flight pods included).
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), q.unschedulable
}

// Run flushes the queue until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(queueFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return
		case <-t.C:
			q.Flush()
		}
	}
}

type podHeap struct {
	items []*QueuedPod
	less  func(a, b *QueuedPod) bool
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].heapIndex = i
	h.items[j].heapIndex = j
}
func (h *podHeap) Push(x any) {
	qp := x.(*QueuedPod)
	qp.heapIndex = len(h.items)
	h.items = append(h.items, qp)
}
func (h *podHeap) Pop() any {
	n := len(h.items)
	qp := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	qp.heapIndex = -1
	return qp
}
