package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/busbar/busbar/bus"
)

// A body's buffer starts small and doubles as bytes arrive: a declared
// Content-Length is a promise nobody has kept yet, and reserving it up
// front let connections that announce 10 MiB and send one byte each hold
// gigabytes.
const (
	firstWindow        = 64 << 10 // a body of declared length: its first read, at most
	firstChunkedWindow = 16 << 10 // a body of unknown length (chunked)
)

// readRequestBody reads r's body, at most limit bytes, within the server's
// read timeout and the route's own (routeTimeout, the longer of the routes
// the request may go to), reserving its bytes from the server's body
// budget in res as its buffer grows. The caller releases res once the
// request is answered.
//
// With buf, the body is read into buf's spare capacity first and buf keeps
// whatever buffer the body ended in, so that a pooled buffer goes back to
// its pool with it; without, the body is the garbage collector's.
//
// It is the one body reader of REST, SOAP and raw requests. The deadline it
// sets needs no clearing: once the body is read (or when there is none)
// net/http clears it itself to watch the connection for the caller hanging
// up, where a deadline passing would cancel the route.
func (s *Server) readRequestBody(buf *bytes.Buffer, w http.ResponseWriter, r *http.Request, limit int64, routeTimeout time.Duration, res *bodyReservation) ([]byte, error) {
	declared := r.ContentLength
	if declared == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if declared > limit {
		refuseBody(w)
		return nil, tooLarge(limit)
	}
	if s.budget != nil && declared > s.budget.max {
		// 503 would tell the caller to come back, and it never fits.
		refuseBody(w)
		return nil, bus.ClientFault(http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("the server accepts at most %d bytes of request bodies at once", s.budget.max))
	}
	bound := min(s.cfg.ReadTimeout, routeTimeout)
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(bound)) // not supported by a test's recorder: then there is none
	var body io.Reader = r.Body
	if declared < 0 {
		// Only a body of unknown length can pass the limit: net/http ends
		// a declared one at its length.
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	var start []byte
	if buf != nil {
		start = buf.AvailableBuffer()
	}
	b, err := fill(start, body, declared, limit, res)
	if buf != nil {
		*buf = *bytes.NewBuffer(b)
	}
	if err != nil {
		refuseBody(w)
		return nil, bodyError(err, limit, bound)
	}
	return b, nil
}

// refuseBody closes the connection after the answer to a request whose body
// was not read to its end. Otherwise net/http reads what is left before it
// answers, to reuse the connection: a caller that sends no more would get
// its refusal only when the read deadline passed.
func refuseBody(w http.ResponseWriter) {
	w.Header()["Connection"] = []string{"close"}
}

// fill reads body into dst's spare capacity, then into buffers twice as
// large as the last, never past the declared length (declared < 0: unknown)
// nor past limit+1 bytes, which is enough to see a body of unknown length
// pass its limit. Every byte of the window it reads into is reserved in res
// first, so the budget counts what is held, not what was announced.
func fill(dst []byte, body io.Reader, declared, limit int64, res *bodyReservation) ([]byte, error) {
	b := dst[:0]
	var window int64 // bytes reserved: b is never read past them
	for {
		if int64(len(b)) == window {
			if window == declared {
				return b, nil
			}
			next := nextWindow(window, declared, limit)
			if err := res.grow(next - window); err != nil {
				return b, err
			}
			window = next
			if int64(cap(b)) < window {
				nb := make([]byte, len(b), window)
				copy(nb, b)
				b = nb
			}
		}
		n, err := body.Read(b[len(b):window])
		b = b[:len(b)+n]
		if err == io.EOF {
			if int64(len(b)) < declared { // net/http says so itself; another reader may not
				return b, io.ErrUnexpectedEOF
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func nextWindow(cur, declared, limit int64) int64 {
	if declared >= 0 {
		return min(max(2*cur, firstWindow), declared)
	}
	return min(max(2*cur, firstChunkedWindow), limit+1)
}

func tooLarge(limit int64) *bus.Fault {
	return bus.ClientFault(http.StatusRequestEntityTooLarge, "Request body too large",
		fmt.Sprintf("the route accepts at most %d bytes", limit))
}

// bodyError is the fault for a body that could not be read. Its text never
// quotes a network error: those name the server's and the caller's socket
// addresses, which are no business of the caller's; the log has the cause.
func bodyError(err error, limit int64, bound time.Duration) error {
	var f *bus.Fault
	var big *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &f):
		return f
	case errors.As(err, &big):
		return tooLarge(limit)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		f = bus.ClientFault(http.StatusRequestTimeout, "Request timeout",
			fmt.Sprintf("the request body did not arrive within %s", bound))
	case errors.Is(err, io.ErrUnexpectedEOF):
		f = bus.ClientFault(http.StatusBadRequest, "Cannot read request body",
			"the body ended before its Content-Length")
	case errors.As(err, &ne):
		f = bus.ClientFault(http.StatusBadRequest, "Cannot read request body", "the connection failed while the body was read")
	default: // a protocol error, e.g. broken chunked encoding: its text helps the caller
		f = bus.ClientFault(http.StatusBadRequest, "Cannot read request body", err.Error())
	}
	f.Cause = err
	if f.Detail != err.Error() {
		// The log line gets the cause, socket addresses and all.
		f.Internal = f.Detail + ": " + err.Error()
	}
	return f
}
