package bus

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// WorkLimiter bounds how many requests do CPU work at the same time:
// parsing a body, validating, mapping, parsing a reply, serialising the
// answer. A request holds one of its slots while it computes and gives it
// back while it waits on the network (its outbound call, writing to the
// caller), so that 200 requests in flight on 2 cores do not hold 200
// parsed documents at once for no gain in throughput: the others wait
// with only their bytes.
//
// Slots are handed out first come, first served (a waiting request is
// never overtaken), and a wait ends when the request's context does.
// A nil *WorkLimiter limits nothing.
type WorkLimiter struct {
	sem   *semaphore.Weighted // FIFO and context-aware, as the waits need
	slots int
	busy  atomic.Int64 // slots held now
	peak  atomic.Int64 // most slots ever held at once
	wait  atomic.Int64 // requests waiting for a slot now
}

// NewWorkLimiter returns a limiter of n slots; n < 1 means no limit (nil).
func NewWorkLimiter(n int) *WorkLimiter {
	if n < 1 {
		return nil
	}
	return &WorkLimiter{sem: semaphore.NewWeighted(int64(n)), slots: n}
}

// WorkStats are a limiter's counters.
type WorkStats struct {
	Slots   int   // the limit
	Busy    int64 // slots held now
	Peak    int64 // most slots held at once since the limiter was made
	Waiting int64 // requests waiting for a slot now
}

// Stats returns the limiter's counters (zero for a nil limiter).
func (l *WorkLimiter) Stats() WorkStats {
	if l == nil {
		return WorkStats{}
	}
	return WorkStats{Slots: l.slots, Busy: l.busy.Load(), Peak: l.peak.Load(), Waiting: l.wait.Load()}
}

func (l *WorkLimiter) acquire(ctx context.Context) error {
	if !l.sem.TryAcquire(1) { // the uncontended case takes no wait bookkeeping
		l.wait.Add(1)
		err := l.sem.Acquire(ctx, 1)
		l.wait.Add(-1)
		if err != nil {
			return waitFault(ctx)
		}
	}
	n := l.busy.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return nil
}

func (l *WorkLimiter) release() {
	l.busy.Add(-1)
	l.sem.Release(1)
}

// waitFault is the answer to a request whose context ended while it
// waited for a slot: the route's time limit (504), or the caller went away
// or the server is shutting down (503).
func waitFault(ctx context.Context) *Fault {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		f := ServerFault(http.StatusGatewayTimeout, "Timeout", "the route's time limit was reached while the request waited for a work slot (busbar serve --work-slots)")
		f.Cause = ctx.Err()
		return f
	}
	f := ServerFault(http.StatusServiceUnavailable, "Request cancelled", "the request was cancelled while it waited for a work slot")
	f.Cause = context.Cause(ctx)
	return f
}

// Work is one request's claim on a limiter: it holds at most one slot at a
// time, whatever the request does, so no request can wait for a slot while
// holding another (no deadlock). A nil *Work does nothing.
type Work struct {
	l    *WorkLimiter
	mu   sync.Mutex // a route may one day call connectors in parallel
	held bool
}

type workKey struct{}

// Begin waits for a slot for a request and returns the context that
// carries its Work (see PauseWork). The caller must call End when the
// request's CPU work is done, on every path: a deferred End also gives the
// slot back when the request panics. A nil limiter returns ctx unchanged
// and a nil Work. A wait ended by ctx returns a *Fault (503 or 504).
func (l *WorkLimiter) Begin(ctx context.Context) (context.Context, *Work, error) {
	if l == nil {
		return ctx, nil, nil
	}
	if err := l.acquire(ctx); err != nil {
		return ctx, nil, err
	}
	w := &Work{l: l, held: true}
	return context.WithValue(ctx, workKey{}, w), w, nil
}

// End gives the slot back if the request holds it. Safe to call more than
// once; after End, PauseWork does nothing for this request.
func (w *Work) End() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held {
		w.held = false
		w.l.release()
	}
	w.l = nil
}

// PauseWork gives back the slot of the request ctx belongs to while it
// waits on the network, and returns the function that waits for a slot
// again before the request goes on computing. That resume must be called
// on every path (its error, a *Fault, means ctx ended while waiting: the
// request must stop). Without a Work in ctx, or when the request holds no
// slot, both do nothing.
func PauseWork(ctx context.Context) (resume func() error) {
	w, _ := ctx.Value(workKey{}).(*Work)
	if w == nil {
		return noResume
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.held || w.l == nil {
		return noResume
	}
	w.held = false
	w.l.release()
	return func() error { return w.resume(ctx) }
}

func noResume() error { return nil }

func (w *Work) resume(ctx context.Context) error {
	w.mu.Lock()
	l := w.l
	w.mu.Unlock()
	if l == nil { // ended meanwhile
		return nil
	}
	if err := l.acquire(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held || w.l == nil { // another call resumed first, or End ran: keep one slot at most
		l.release()
		return nil
	}
	w.held = true
	return nil
}
