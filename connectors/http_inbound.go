package connectors

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// HTTPEndpoint is a raw inbound route (`from.http`): any content type, the
// body passed on as bytes (bus.FormatRaw) and parsed only when a match or
// a step needs to look inside. Replies that are raw go back as they came:
// status, Content-Type, end-to-end headers and bytes.
type HTTPEndpoint struct {
	Route  string
	Method string
	Path   string // gorilla/mux template
	Match  *Match // nil: the route serves every request of its method and path
	Limits Limits
	Handle Handler
}

// inbound is the state of one request while it is being served: what has
// been read and parsed so far, so that nothing is read or parsed twice, and
// the pooled buffers to give back when the reply has been written.
type inbound struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	m       *bus.Message
	raw     bool
	limit   int64         // body bytes read at most
	timeout time.Duration // the longest route timeout of the group, which bounds the body's read

	body     []byte
	bodyRead bool
	bodyErr  error
	buf      *bytes.Buffer   // the raw body's pooled buffer
	res      bodyReservation // the body's bytes in the server's budget
	parsed   bool

	mu      sync.Mutex      // guards replies: a route may one day call connectors in parallel
	replies []*bytes.Buffer // pooled buffers lent to connectors for replies (see replyBuffer)

	header     *etree.Element
	headerDone bool
	action     string
	actionDone bool
	field      scannedField // the last soap-header field scanned for
}

// scannedField is a scanHeaderField result kept for the next route of the
// same path.
type scannedField struct {
	path              []FieldStep
	value             []byte
	found, sure, done bool
}

var (
	inboundPool = sync.Pool{New: func() any { return new(inbound) }}
	// bufferPool holds request and reply bodies of raw routes. A buffer
	// lives as long as one request; big ones are dropped rather than kept.
	bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

const maxPooledBuffer = 1 << 20

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

func newInbound(s *Server, w http.ResponseWriter, r *http.Request, raw bool, g *dispatchGroup) *inbound {
	in := inboundPool.Get().(*inbound)
	in.s, in.w, in.r, in.raw, in.limit, in.timeout = s, w, r, raw, g.maxBody, g.timeout
	if s != nil {
		in.res.budget = s.budget
	}
	return in
}

// release gives the buffers back, and their bytes to the body budget.
// Every connector call of the request has returned by now, and an outbound
// body never outlives its call (see lentBody), so nothing reads these
// bytes any more.
func (in *inbound) release() {
	in.res.release()
	if in.buf != nil {
		putBuffer(in.buf)
	}
	for _, b := range in.replies {
		putBuffer(b)
	}
	clear(in.replies)
	replies := in.replies[:0]
	*in = inbound{}
	in.replies = replies
	inboundPool.Put(in)
}

type inboundKey struct{}

// replyBuffer lends a pooled buffer for a connector's reply when the call
// serves a raw inbound request (ctx says so); nil otherwise. The reply's
// bytes then live until the inbound reply has been written.
func replyBuffer(ctx context.Context) *bytes.Buffer {
	in, ok := ctx.Value(inboundKey{}).(*inbound)
	if !ok {
		return nil
	}
	b := getBuffer()
	in.mu.Lock()
	in.replies = append(in.replies, b)
	in.mu.Unlock()
	return b
}

// readBody reads the request body once, bounded by the limit.
func (in *inbound) readBody() ([]byte, error) {
	if in.bodyRead {
		return in.body, in.bodyErr
	}
	in.bodyRead = true
	if r := in.r; r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		in.buf = getBuffer()
	}
	in.body, in.bodyErr = in.s.readRequestBody(in.buf, in.w, in.r, in.limit, in.timeout, &in.res)
	if in.m != nil && in.bodyErr == nil {
		in.m.Body = in.body
	}
	return in.body, in.bodyErr
}

// parse gives the message a parsed view of its body, once.
func (in *inbound) parse() error {
	if in.parsed {
		return nil
	}
	in.parsed = true
	if _, err := in.readBody(); err != nil {
		return err
	}
	return ParseRawRequest(in.m)
}

// soapVersion is the SOAP version of the request: the parsed envelope's, or
// what its headers announce.
func (in *inbound) soapVersion() bus.SOAPVersion {
	if in.m != nil && in.m.SOAP != 0 {
		return in.m.SOAP
	}
	return requestSOAPVersion(in.r.Header)
}

// fail answers with a fault in the caller's format: a SOAP fault to a SOAP
// request, problem+json otherwise (REST routes always get problem+json).
func (in *inbound) fail(err error) {
	f := bus.AsFault(err)
	if in.raw {
		if v := in.soapVersion(); v != 0 {
			writeSOAPFault(in.w, v, f, "utf-8")
			return
		}
	}
	writeProblem(in.w, f)
}

// newRawMessage starts the message of a raw request. Its Header is the
// request's own (not a copy: a pass-through only reads it).
func newRawMessage(r *http.Request) *bus.Message {
	m := &bus.Message{Format: bus.FormatRaw, ContentType: r.Header.Get("Content-Type"), Header: r.Header}
	initMessage(m, r)
	m.SOAPAction = requestAction(r.Header)
	return m
}

func (s *Server) serveRaw(g *dispatchGroup, w http.ResponseWriter, r *http.Request) {
	in := newInbound(s, w, r, true, g)
	defer in.release()
	m := newRawMessage(r)
	in.m = m
	w.Header()["X-Correlation-Id"] = []string{m.CorrelationID}
	c := g.single()
	if c == nil {
		var err error
		if c, err = g.choose(in); err != nil {
			in.fail(err)
			return
		}
		if c == nil {
			in.fail(noRoute(r))
			return
		}
	}
	// Unless a match had to read it, the body is still unread: a request
	// over the route's rate costs no more than its headers.
	err := c.admit(r)
	var body []byte
	if err == nil {
		body, err = in.readBody()
	}
	if err == nil && int64(len(body)) > c.limits.maxBody() {
		err = tooLarge(c.limits.maxBody())
	}
	if err != nil {
		f := bus.AsFault(err)
		f.Route = c.route
		in.fail(f)
		return
	}
	ctx := context.WithValue(r.Context(), inboundKey{}, in)
	reply, err := s.run(ctx, c.route, c.limits, c.handle, m)
	if err != nil {
		in.fail(err)
		return
	}
	in.writeReply(reply)
}

// writeReply answers a raw request. A raw reply goes back as it came; a
// parsed or mapped one is written like a REST reply, or in an envelope of
// the caller's SOAP version when the caller spoke SOAP.
func (in *inbound) writeReply(reply *bus.Message) {
	w := in.w
	switch reply.Format {
	case bus.FormatRaw:
		h := w.Header()
		copyEndToEnd(h, reply.Header, nil)
		if _, ok := h["Content-Type"]; !ok && reply.ContentType != "" {
			h["Content-Type"] = []string{reply.ContentType}
		}
		h["Content-Length"] = []string{strconv.Itoa(len(reply.Body))}
		status := reply.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(reply.Body)
	case bus.FormatXML:
		v := reply.SOAP
		if v == 0 {
			v = in.soapVersion()
		}
		if v == 0 || !reply.HasXML() {
			writeRESTReply(w, reply)
			return
		}
		out := getBuffer()
		defer putBuffer(out)
		if err := writeMessageEnvelope(out, v, reply); err != nil {
			writeSOAPFault(w, v, bus.ServerFault(0, "Cannot write reply", err.Error()), "")
			return
		}
		w.Header().Set("Content-Type", soapContentType(v, "utf-8"))
		writeWhole(w, http.StatusOK, out.Bytes()) // 200 as the facade: errors travel as faults
	default:
		writeRESTReply(w, reply)
	}
}

// hopByHop are the headers that concern one connection, not the message
// (RFC 9110 §7.6.1); a pass-through never forwards them.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// copyEndToEnd copies the end-to-end headers of src into dst: not the
// hop-by-hop ones nor those the Connection header names, not
// Content-Length (the writer sets it) and not X-Correlation-ID (Busbar
// sets its own), nor any name in skip (may be nil). Value slices are
// shared, not copied.
func copyEndToEnd(dst, src http.Header, skip map[string]bool) {
	conn := src["Connection"]
	for k, vv := range src {
		if hopByHop[k] || skip[k] || k == "Content-Length" || k == "X-Correlation-Id" || k == "Host" {
			continue
		}
		if len(conn) > 0 && namedIn(conn, k) {
			continue
		}
		dst[k] = vv
	}
}

// namedIn reports whether a Connection header lists name.
func namedIn(conn []string, name string) bool {
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// PassThroughHeaders returns the headers a pass-through call forwards: the
// inbound request's end-to-end headers (hop-by-hop ones, Host,
// Content-Length and X-Correlation-ID left out, and every name in skip —
// the ones the route or the connector sets itself), then the route's own.
// The result is a new map the caller owns.
func PassThroughHeaders(inbound http.Header, route http.Header, skip map[string]bool) http.Header {
	h := make(http.Header, len(inbound)+len(route))
	copyEndToEnd(h, inbound, skip)
	for k, v := range route {
		h[k] = v
	}
	return h
}

// ParseRawRequest gives a raw request a parsed view of its bytes, for a
// route that must look inside (a body match, a mapping): XML is parsed (a
// SOAP envelope to its payload, header and version, as a facade would),
// JSON is checked. Body and Format stay as they are, so an unmapped
// request still goes on byte for byte. It does nothing when there is
// nothing to do or it was done.
func ParseRawRequest(m *bus.Message) error { return parseRaw(m, false) }

// ParseRawReply is ParseRawRequest for a connector's raw reply, before the
// route's response steps: broken content is the backend's fault (502), and
// a SOAP Fault in the reply is returned as the error.
func ParseRawReply(m *bus.Message) error { return parseRaw(m, true) }

func parseRaw(m *bus.Message, reply bool) error {
	if m.Format != bus.FormatRaw || m.Root != nil || m.XMLSource() != nil || len(bytes.TrimSpace(m.Body)) == 0 {
		return nil
	}
	bad := func(title, detail string) error {
		if reply {
			return bus.ServerFault(http.StatusBadGateway, "Backend sent "+strings.ToLower(title[:1])+title[1:], detail)
		}
		return bus.ClientFault(http.StatusBadRequest, title, detail)
	}
	mt, params, err := mime.ParseMediaType(m.ContentType)
	if err != nil {
		mt = ""
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"), !strings.Contains(mt, "xml") && looksLikeJSON(m.Body):
		if err := checkJSON(m.Body); err != nil {
			return bad("Malformed JSON", err.Error())
		}
		return nil
	case strings.Contains(mt, "xml") || looksLikeXML(m.Body):
		d, err := transforms.ParseDoc(m.Body, params["charset"])
		if err != nil {
			return bad("Malformed XML", err.Error())
		}
		if root := (&transforms.DocPayload{Doc: d, Node: d.Root()}); !isEnvelope(root) {
			m.SetRawView(root)
			return nil
		}
		env, err := envelopeOf(d, 0)
		if err != nil {
			if reply {
				return bad("Malformed SOAP", bus.AsFault(err).Detail)
			}
			return err
		}
		if reply && env.Fault != nil {
			env.Fault.Extra = map[string]any{"backendStatus": m.Status}
			return env.Fault
		}
		m.SOAP, m.SOAPHeader = env.Version, env.Header
		if env.payload != nil {
			m.SetRawView(env.payload)
		}
		return nil
	}
	if reply {
		return bus.ServerFault(http.StatusBadGateway, "Backend reply cannot be read",
			fmt.Sprintf("the route must look into a %q reply; only XML and JSON can be", m.ContentType))
	}
	return bus.ClientFault(http.StatusUnsupportedMediaType, "Unsupported media type",
		fmt.Sprintf("the route must look into the body, and a %q body is neither XML nor JSON", m.ContentType))
}
