package storage

import (
	"context"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// watcherBuffer is how many events a watcher may fall behind before it is
// ended (its client then resumes from the history). On 2 cores a busy
// client can lag a few seconds of events; 40 bytes an event.
const watcherBuffer = 4096

// Watcher is one watch. Next returns its events in order; Stop ends it.
type Watcher struct {
	r         *Resource
	filter    filter
	bookmarks bool
	pending   []Event    // initial or replayed events, delivered first
	ch        chan Event // live events, closed when the watch ends
}

// Watch starts a watch. resourceVersion "" or "0" starts with synthetic
// Added events for the current objects (unless SendInitialEvents is false);
// any other value replays the changes after it, or fails with 410 Gone when
// they are no longer remembered.
func (r *Resource) Watch(ctx context.Context, opts ListOptions) (*Watcher, error) {
	initial := opts.ResourceVersion == "" || opts.ResourceVersion == "0"
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
		if initial && opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			return nil, apierrors.NewBadRequest("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
		}
	} else if opts.ResourceVersionMatch != "" {
		return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
	}

	var from int64
	switch opts.ResourceVersion {
	case "":
		if initial {
			rev, err := r.s.currentRevision(ctx)
			if err != nil {
				return nil, err
			}
			from = rev
		}
	case "0":
	default:
		rv, err := parseRV(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		from = rv
	}
	if err := r.s.waitFor(ctx, from); err != nil {
		return nil, err
	}

	f := opts.filter()
	w := &Watcher{r: r, filter: f, bookmarks: opts.AllowBookmarks, ch: make(chan Event, watcherBuffer)}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case initial:
		for _, it := range r.sortedItems(r.nsPrefix(opts.Namespace), f) {
			w.pending = append(w.pending, Event{Type: watch.Added, Item: it, RV: it.RV})
		}
		if opts.SendInitialEvents != nil && opts.AllowBookmarks {
			w.pending = append(w.pending, Event{Type: watch.Bookmark, RV: r.snapshotRV(), InitialEventsEnd: true})
		}
	case opts.ResourceVersion != "":
		if from < r.startRV {
			return nil, tooOld(from)
		}
		for _, c := range r.changesAfter(from) {
			if ev, ok := f.translate(c); ok {
				w.pending = append(w.pending, ev)
			}
		}
	}
	r.watchers[w] = struct{}{}
	return w, nil
}

// Next returns the next event. It returns io.EOF when the watch was ended
// by the server (the client should resume from the last resourceVersion),
// or the context's error.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	if len(w.pending) > 0 {
		ev := w.pending[0]
		w.pending[0] = Event{}
		w.pending = w.pending[1:]
		return ev, nil
	}
	select {
	case ev, ok := <-w.ch:
		if !ok {
			return Event{}, io.EOF
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Stop ends the watch and releases its resources.
func (w *Watcher) Stop() {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if _, ok := w.r.watchers[w]; ok {
		delete(w.r.watchers, w)
		close(w.ch)
	}
}
