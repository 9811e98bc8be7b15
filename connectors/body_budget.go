package connectors

import (
	"net/http"
	"sync/atomic"

	"github.com/busbar/busbar/bus"
)

// bodyBudget bounds the bytes of request bodies the server holds at once,
// whatever the routes' max-body allow each: sixty connections that each
// announce 10 MiB must not make the process hold 600 MiB. A request
// reserves its bytes as its body buffer grows (see readRequestBody) and
// gives them back when it has been answered; a request that would pass the
// budget is refused (503) rather than made to wait, since waiting would
// hold its connection and its bytes read so far.
//
// A nil *bodyBudget bounds nothing.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// newBodyBudget returns a budget of max bytes; max < 1 means none (nil).
func newBodyBudget(max int64) *bodyBudget {
	if max < 1 {
		return nil
	}
	return &bodyBudget{max: max}
}

// take reserves n more bytes, or none and false when they do not fit.
func (b *bodyBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *bodyBudget) give(n int64) {
	if b != nil && n != 0 {
		b.used.Add(-n)
	}
}

// inUse is the bytes reserved now (0 for no budget).
func (b *bodyBudget) inUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// bodyReservation is one request's share of the budget. It lives in the
// request's handler frame (or its pooled inbound state), so reserving
// costs no allocation.
type bodyReservation struct {
	budget *bodyBudget
	n      int64
}

// grow reserves n more bytes for the request, or answers 503.
func (r *bodyReservation) grow(n int64) error {
	if !r.budget.take(n) {
		return errBodyBudget()
	}
	r.n += n
	return nil
}

// release gives the request's bytes back; safe to call more than once.
func (r *bodyReservation) release() {
	r.budget.give(r.n)
	r.n = 0
}

// errBodyBudget is the answer when the server holds as many request body
// bytes as its budget allows: a moment later others will have been answered.
func errBodyBudget() *bus.Fault {
	f := bus.ServerFault(http.StatusServiceUnavailable, "Server busy",
		"too many request bodies are being received at once; try again shortly")
	f.Header = http.Header{"Retry-After": {"1"}}
	return f
}
