package connectors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/busbar/busbar/bus"
)

// HeaderNames lists the headers the connector sets on every call (its
// `headers`), canonical. A pass-through route does not forward a caller's
// header of the same name: the connector's configured value wins.
func (c *HTTPConfig) HeaderNames() []string {
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, http.CanonicalHeaderKey(k))
	}
	return names
}

// callRaw is a pass-through call: the raw body goes out byte for byte with
// its Content-Type and the end-to-end headers the route passed on, and the
// reply comes back raw whatever its status — a backend's 500 with a SOAP
// Fault reaches the caller as the same 500 with the same bytes.
func (c *HTTPConnector) callRaw(ctx context.Context, req *bus.Message) (*bus.Message, error) {
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	target := req.Path
	if len(req.Query) > 0 {
		target += "?" + req.Query.Encode()
	}
	// A fresh map: exchange adds to it, and req.Header may be the inbound
	// request's own.
	header := make(http.Header, len(req.Header)+3)
	copyEndToEnd(header, req.Header, nil)
	if _, ok := header["Content-Type"]; !ok && req.ContentType != "" {
		header["Content-Type"] = []string{req.ContentType}
	}
	resp, data, err := c.exchange(ctx, method, target, header, lend(req.Body), req.CorrelationID)
	if err != nil {
		return nil, err
	}
	return &bus.Message{ID: req.ID, CorrelationID: req.CorrelationID, SOAP: req.SOAP, Vars: req.Vars,
		Format: bus.FormatRaw, Body: data, ContentType: resp.Header.Get("Content-Type"),
		Status: resp.StatusCode, Header: resp.Header}, nil
}

// lentBody lends a request body to the transport for one call. The body may
// live in a pooled buffer that goes back to the pool once the inbound reply
// is written, and the transport may still be reading a request body after
// the reply came (a backend that answers before reading everything). When
// Call returns it revokes the loan: a later read fails instead of sending
// bytes that by then may belong to another request.
//
// A body the garbage collector owns (see own), and a small borrowed one,
// which lend copies, need no revoking: the transport then gets a
// bytes.Reader, which net/http knows to be in memory and sends with the
// headers in one write; for any other reader it flushes the headers first,
// a TCP packet and a system call more per call (golang/go#22088). Past
// smallBody bytes the body takes several writes anyway, and copying it
// would cost more than that packet.
type lentBody struct {
	mu      sync.Mutex
	data    []byte
	size    int // len(data) when lent
	revoked bool
	owned   bool       // data is not borrowed: readers are bytes.Readers, revoke is a no-op
	first   lentReader // the first reader, allocated with the loan
	mem     bytes.Reader
	lent    bool
}

// smallBody is the size up to which lend copies a borrowed body (net/http's
// default write buffer).
const smallBody = 4 << 10

// lend starts the loan of a borrowed request body (one in a pooled buffer);
// nil when there is no body.
func lend(data []byte) *lentBody {
	if len(data) == 0 {
		return nil
	}
	if len(data) <= smallBody {
		return own(bytes.Clone(data))
	}
	return &lentBody{data: data, size: len(data)}
}

// own is lend for a body nothing else will reuse (the garbage collector's).
func own(data []byte) *lentBody {
	if len(data) == 0 {
		return nil
	}
	return &lentBody{data: data, size: len(data), owned: true}
}

var errBodyRevoked = errors.New("request body read after the call ended")

// reader starts a reader at the beginning (a retry asks for another).
func (b *lentBody) reader() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owned {
		if !b.lent {
			b.lent = true
			b.mem.Reset(b.data)
			return io.NopCloser(&b.mem)
		}
		return io.NopCloser(bytes.NewReader(b.data))
	}
	if !b.lent {
		b.lent, b.first.b = true, b
		return &b.first
	}
	return &lentReader{b: b}
}

// getBody is reader as http.Request.GetBody.
func (b *lentBody) getBody() (io.ReadCloser, error) { return b.reader(), nil }

func (b *lentBody) revoke() {
	if b.owned {
		return
	}
	b.mu.Lock()
	b.data, b.revoked = nil, true
	b.mu.Unlock()
}

type lentReader struct {
	b   *lentBody
	off int
}

func (r *lentReader) Read(p []byte) (int, error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if r.b.revoked {
		return 0, errBodyRevoked
	}
	if r.off >= len(r.b.data) {
		return 0, io.EOF
	}
	n := copy(p, r.b.data[r.off:])
	r.off += n
	return n, nil
}

func (r *lentReader) Close() error { return nil }

func replyBufferFor(resp *http.Response) *bytes.Buffer {
	if resp.Request == nil {
		return nil
	}
	return replyBuffer(resp.Request.Context())
}
