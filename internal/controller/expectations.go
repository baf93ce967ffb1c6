package controller

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are trusted before a
// controller syncs anyway: a lost watch event must not wedge it forever.
const ExpectationsTimeout = 5 * time.Minute

// Expectations tracks, per controller key, how many creations and deletions
// the controller issued and has not yet observed through its informers.
type Expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	now func() time.Time
}

type expectation struct {
	add, del int
	at       time.Time
}

// NewExpectations returns an empty tracker; now may be nil (time.Now).
func NewExpectations(now func() time.Time) *Expectations {
	if now == nil {
		now = time.Now
	}
	return &Expectations{m: map[string]*expectation{}, now: now}
}

// Satisfied reports whether key has nothing outstanding (or its
// expectations expired, or were never set).
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.add <= 0 && x.del <= 0 {
		return true
	}
	return e.now().Sub(x.at) > ExpectationsTimeout
}

// Expect sets the outstanding creations and deletions for key.
func (e *Expectations) Expect(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: add, del: del, at: e.now()}
}

// ExpectCreations is Expect(key, n, 0).
func (e *Expectations) ExpectCreations(key string, n int) { e.Expect(key, n, 0) }

// ExpectDeletions is Expect(key, 0, n).
func (e *Expectations) ExpectDeletions(key string, n int) { e.Expect(key, 0, n) }

// CreationObserved lowers key's outstanding creations by one; also call it
// when a create request failed.
func (e *Expectations) CreationObserved(key string) { e.lower(key, 1, 0) }

// DeletionObserved lowers key's outstanding deletions by one; also call it
// when a delete request failed.
func (e *Expectations) DeletionObserved(key string) { e.lower(key, 0, 1) }

// LowerCreations lowers outstanding creations by n (creations skipped).
func (e *Expectations) LowerCreations(key string, n int) { e.lower(key, n, 0) }

func (e *Expectations) lower(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

// Delete forgets key (its owner is gone).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// UIDSet tracks the UIDs of objects a controller is waiting to see deleted,
// for controllers that must know which ones (upstream's
// UIDTrackingControllerExpectations, used where a pod may be deleted by
// someone else at the same time).
type UIDSet struct {
	mu sync.Mutex
	m  map[string]map[string]bool
}

// NewUIDSet returns an empty set.
func NewUIDSet() *UIDSet { return &UIDSet{m: map[string]map[string]bool{}} }

// Add records uids as pending for key.
func (u *UIDSet) Add(key string, uids ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m[key] == nil {
		u.m[key] = map[string]bool{}
	}
	for _, id := range uids {
		u.m[key][id] = true
	}
}

// Observed removes uid from key's pending set and reports whether it was there.
func (u *UIDSet) Observed(key, uid string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.m[key][uid] {
		return false
	}
	delete(u.m[key], uid)
	return true
}

// Pending returns how many uids are pending for key.
func (u *UIDSet) Pending(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m[key])
}

// Delete forgets key.
func (u *UIDSet) Delete(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, key)
}
