package connectors

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// RESTEndpoint is a route reached by REST callers: JSON (or plain XML) in,
// JSON out, errors as RFC 9457 problem+json.
type RESTEndpoint struct {
	Route  string
	Method string
	Path   string // gorilla/mux template: /api/v1/vouchers/{id}
	Match  *Match // nil: the route serves every request of its method and path
	Limits Limits
	Handle Handler
}

func (s *Server) serveREST(g *dispatchGroup, w http.ResponseWriter, r *http.Request) {
	m := newMessage(r)
	w.Header().Set("X-Correlation-ID", m.CorrelationID)
	// A route known before the body is read refuses a request over its
	// rate before reading it.
	c := g.single()
	err := c.admit(r)
	res := bodyReservation{budget: s.budget}
	defer res.release() // at return: the reply is written by then
	var body []byte
	if err == nil {
		body, err = s.readRequestBody(nil, w, r, g.maxBody, g.timeout, &res)
	}
	// From here to the serialised reply the request computes: it holds a
	// work slot, except while its connector waits on the network.
	ctx := r.Context()
	var work *bus.Work
	if err == nil {
		ctx, work, err = s.cfg.Work.Begin(ctx)
		defer work.End()
	}
	ctx, docs := withDocScope(ctx)
	defer docs.release() // at return: the reply is written by then
	if err == nil {
		// The request's own document is not kept in docs (see soapHandler).
		err = decodeREST(body, r.Header.Get("Content-Type"), m)
	}
	if err == nil && c == nil {
		// The body is decoded before matching: a body condition reads the
		// decoded message, which the route then uses as it is.
		in := newInbound(s, w, r, false, g)
		in.m, in.body, in.bodyRead, in.parsed = m, body, true, true
		c, err = g.choose(in)
		in.release()
		if err == nil && c == nil {
			err = noRoute(r)
		}
		if err == nil {
			err = c.admit(r)
		}
	}
	if err == nil && int64(len(body)) > c.limits.maxBody() {
		err = tooLarge(c.limits.maxBody())
	}
	if err != nil {
		f := bus.AsFault(err)
		if c != nil {
			f.Route = c.route
		}
		writeProblem(w, f)
		return
	}
	reply, err := s.run(c.limits.handlerContext(ctx, body), c.route, c.limits, c.handle, m)
	if err != nil {
		work.End()
		writeProblem(w, bus.AsFault(err))
		return
	}
	if c.limits.KeepBody {
		// An async route says where the message's status is. Only its
		// own: a backend's Location must not reach callers.
		copyHeader(w.Header(), reply.Header, "Location")
	}
	if c.limits.Replays {
		copyHeader(w.Header(), reply.Header, "Idempotent-Replayed")
	}
	out := restReply(w.Header(), reply)
	work.End() // writing to the caller is network I/O
	out.write(w)
}

// decodeREST checks the body is what its Content-Type says and puts it in m.
func decodeREST(body []byte, contentType string, m *bus.Message) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if bodyRequired(m.Method) {
			return bus.ClientFault(http.StatusBadRequest, "Empty body",
				fmt.Sprintf("the request body is empty: a %s to this route must carry a JSON or XML document", m.Method))
		}
		return nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = ""
	}
	switch {
	case mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if err := checkJSON(body); err != nil {
			return bus.ClientFault(http.StatusBadRequest, "Malformed JSON", err.Error())
		}
		m.SetCheckedJSON(body)
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		payload, err := transforms.ParseXMLPayload(body, params["charset"])
		if err != nil {
			return bus.ClientFault(http.StatusBadRequest, "Malformed XML", err.Error())
		}
		m.SetXMLSource(payload)
	default:
		return bus.ClientFault(http.StatusUnsupportedMediaType, "Unsupported media type",
			fmt.Sprintf("Content-Type %q: send application/json or application/xml", mt))
	}
	return nil
}

// bodyRequired tells the methods whose REST routes need a body: an empty
// POST went through every step with nothing to read and posted an empty
// document to the backend. A route that takes no body is a GET or DELETE
// route, or a raw from.http route.
func bodyRequired(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// checkJSON is the one check of every JSON body Busbar parses, requests and
// replies: well-formed, no duplicate keys, valid UTF-8, no character XML
// cannot hold (see transforms.CheckJSON); the error says where.
func checkJSON(b []byte) error { return transforms.CheckJSON(b) }

func writeRESTReply(w http.ResponseWriter, m *bus.Message) {
	r := restReply(w.Header(), m)
	r.write(w)
}

// serialisedReply is a REST reply ready to go: its status, and its body in
// two parts so that an XML declaration goes ahead of a mapping's output
// bytes without joining them into a copy.
type serialisedReply struct {
	status int
	prefix []byte
	body   []byte
}

func (r serialisedReply) write(w http.ResponseWriter) { writeWhole(w, r.status, r.prefix, r.body) }

// restReply serialises a REST reply, its Content-Type set in h.
func restReply(h http.Header, m *bus.Message) serialisedReply {
	status := m.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := m.Bytes()
	switch m.Format {
	case bus.FormatJSON:
		h.Set("Content-Type", "application/json")
	case bus.FormatXML:
		h.Set("Content-Type", "application/xml; charset=utf-8")
		return serialisedReply{status: status, prefix: xmlDeclaration, body: body}
	default:
		if len(body) == 0 && status == http.StatusOK {
			status = http.StatusNoContent
		}
	}
	return serialisedReply{status: status, body: body}
}

// copyHeader copies the named header from src to dst, if src has it.
func copyHeader(dst, src http.Header, name string) {
	if v := src.Values(name); len(v) > 0 {
		dst[http.CanonicalHeaderKey(name)] = v
	}
}
