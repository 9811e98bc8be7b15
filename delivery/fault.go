package delivery

import (
	"errors"
	"net/http"

	"github.com/busbar/busbar/bus"
)

// AsFault maps an error of this package to the fault the caller (or the
// admin API's client) gets, in the caller's format like every other fault:
//
//	ErrInFlight        409 Conflict (retry later)
//	ErrKeyReused       422 Unprocessable Content
//	ErrNotFound        404 Not Found
//	ErrNotReplayable,
//	ErrNotDiscardable  409 Conflict
//	ErrClosed          503 Service Unavailable
//	anything else      500 (the store failed: nothing was accepted)
//
// A *DuplicateError is not a fault: the route answers the first outcome
// (for an async route, 200 or 202 with the first message's id and
// Location; for a sync route, the recorded reply); AsFault returns nil
// for it, and for a nil error.
func AsFault(err error) *bus.Fault {
	var f *bus.Fault
	switch {
	case err == nil, errors.Is(err, ErrDuplicate):
		return nil
	case errors.Is(err, ErrInFlight):
		f = bus.ClientFault(http.StatusConflict, "Idempotency key in use", err.Error())
		f.Header = http.Header{"Retry-After": {"1"}}
	case errors.Is(err, ErrKeyReused):
		f = bus.ClientFault(http.StatusUnprocessableEntity, "Idempotency key reused", err.Error())
	case errors.Is(err, ErrNotFound):
		f = bus.ClientFault(http.StatusNotFound, "No such message", err.Error())
	case errors.Is(err, ErrNotReplayable), errors.Is(err, ErrNotDiscardable):
		f = bus.ClientFault(http.StatusConflict, "Not possible in the message's state", err.Error())
	case errors.Is(err, ErrClosed):
		f = bus.ServerFault(http.StatusServiceUnavailable, "Shutting down", err.Error())
	default:
		f = bus.ServerFault(http.StatusInternalServerError, "Message store failed", err.Error())
	}
	f.Cause = err
	return f
}
