package connectors

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// SOAPEndpoint is a SOAP facade: one path, one WSDL, one or more operations,
// each served by a route. Callers may use SOAP 1.1 or SOAP 1.2; the reply
// and any fault come back in the version of the request.
type SOAPEndpoint struct {
	Path string
	// WSDL returns the facade's WSDL with its soap:address set to address;
	// nil when the facade publishes none (GET ?wsdl is then a 404).
	WSDL     func(address string) ([]byte, error)
	Versions []bus.SOAPVersion // accepted versions; empty means both
	// Charset is what the facade answers in (replies and faults): "" or
	// UTF-8, GBK, GB18030, Big5, for callers that read only their own.
	Charset    string
	Operations []SOAPOperation
}

// SOAPOperation binds one operation of a facade to its route. A request is
// dispatched on its body element's qualified name (namespace and local
// name), which is what WS-I Basic Profile callers rely on, and on its
// SOAPAction when that names an operation (see dispatch).
type SOAPOperation struct {
	Route  string
	Name   string // operation name, for errors
	Action string // SOAPAction / action parameter; "" matches on Element only
	// Element and Namespace name the body element: its local name ("":
	// any element, when the facade has this one operation) and its
	// namespace URI ("": no namespace).
	Element   string
	Namespace string
	Limits    Limits
	Handle    Handler
}

// accepts reports whether the operation takes a body element.
func (op *SOAPOperation) accepts(ns, local string) bool {
	return op.Element == "" || op.Element == local && op.Namespace == ns
}

// label names the operation in a fault: its name, else (a route without a
// WSDL or operation) its element. An operation with neither accepts every
// element, so dispatch never names it.
func (op *SOAPOperation) label() string {
	if op.Name != "" {
		return op.Name
	}
	return elementName(op.Namespace, op.Element)
}

// elementName writes a qualified name as a caller would have to write the
// element, so that its namespace cannot be missed.
func elementName(ns, local string) string {
	if ns == "" {
		return "<" + local + ">"
	}
	return fmt.Sprintf("<%s xmlns=%q>", local, ns)
}

func (ep *SOAPEndpoint) accepts(v bus.SOAPVersion) bool {
	if len(ep.Versions) == 0 {
		return true
	}
	for _, a := range ep.Versions {
		if a == v {
			return true
		}
	}
	return false
}

// dispatch finds the operation for a request whose body element is
// {ns}local. The element decides, by namespace and local name: an element
// of the right name in another namespace is another element. A SOAPAction
// that names operations must name the element's: one that names another is
// a Client fault naming both, as CXF answers, rather than a choice between
// what the header says and what the body holds. An empty SOAPAction, or
// one no operation has, leaves the element to decide alone.
func (ep *SOAPEndpoint) dispatch(action, ns, local string) (*SOAPOperation, *bus.Fault) {
	var byElement, byAction *SOAPOperation
	for i := range ep.Operations {
		op := &ep.Operations[i]
		if action != "" && op.Action == action {
			if op.accepts(ns, local) {
				return op, nil
			}
			if byAction == nil {
				byAction = op
			}
		}
		if byElement == nil && op.Element == local && op.Namespace == ns {
			byElement = op
		}
	}
	if byElement == nil && len(ep.Operations) == 1 && ep.Operations[0].Element == "" {
		byElement = &ep.Operations[0]
	}
	switch {
	case byAction == nil && byElement != nil && action != "" && byElement.Action != "":
		// An action no operation declares, on a facade whose operations
		// declare theirs: the caller meant something this service does not
		// offer, whatever its body says.
		return nil, bus.ClientFault(0, "SOAPAction does not match the body", fmt.Sprintf(
			"SOAPAction %q names no operation of %s; the body holds %s, the element of operation %s (SOAPAction %q)",
			action, ep.Path, elementName(ns, local), byElement.label(), byElement.Action))
	case byAction != nil:
		detail := fmt.Sprintf("SOAPAction %q is operation %s, whose body element is %s; the body holds %s",
			action, byAction.label(), elementName(byAction.Namespace, byAction.Element), elementName(ns, local))
		if byElement != nil {
			detail += ", the element of operation " + byElement.label()
		}
		return nil, bus.ClientFault(0, "SOAPAction does not match the body", detail)
	case byElement == nil:
		return nil, bus.ClientFault(0, "Unknown operation", fmt.Sprintf(
			"no operation of %s accepts %s (SOAPAction %q)", ep.Path, elementName(ns, local), action))
	}
	return byElement, nil
}

// limits is the largest limits of the facade's operations: the body must
// be read before the operation is known.
func (ep *SOAPEndpoint) limits() Limits {
	var l Limits
	for _, op := range ep.Operations {
		l.MaxBody = max(l.MaxBody, op.Limits.maxBody())
		l.Timeout = max(l.Timeout, op.Limits.timeout())
	}
	return l
}

func (s *Server) soapHandler(ep *SOAPEndpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			serveWSDL(w, r, ep)
			return
		}
		m := newMessage(r)
		w.Header().Set("X-Correlation-ID", m.CorrelationID)
		version, charset, action := soapVersionOf(r.Header)
		fail := func(v bus.SOAPVersion, f *bus.Fault) { writeSOAPFault(w, v, f, ep.Charset) }
		if version == 0 {
			f := bus.ClientFault(http.StatusUnsupportedMediaType, "Unsupported media type",
				fmt.Sprintf("Content-Type %q: SOAP 1.1 uses text/xml, SOAP 1.2 application/soap+xml", r.Header.Get("Content-Type")))
			w.Header().Set("Content-Type", ContentTypeSOAP11+"; charset=utf-8")
			_, body := forCaller(w, f).SOAPFault(bus.SOAP11)
			w.WriteHeader(http.StatusUnsupportedMediaType)
			w.Write(body)
			return
		}
		// The envelope is parsed into a tree of its own (strings copied
		// out of the bytes), so the bytes can go back to the pool.
		in := getBuffer()
		defer putBuffer(in)
		res := bodyReservation{budget: s.budget}
		defer res.release() // at return: the reply is written by then
		lim := ep.limits()
		body, err := s.readRequestBody(in, w, r, lim.maxBody(), lim.timeout(), &res)
		if err != nil {
			fail(version, bus.AsFault(err))
			return
		}
		// From here to the encoded reply the request computes: it holds a
		// work slot, except while its connector waits on the network.
		ctx, work, err := s.cfg.Work.Begin(r.Context())
		if err != nil {
			fail(version, bus.AsFault(err))
			return
		}
		defer work.End()
		ctx, docs := withDocScope(ctx)
		defer docs.release() // at return: the reply is written by then
		env, err := ParseEnvelope(body, charset, version)
		if err != nil {
			fail(version, bus.AsFault(err))
			return
		}
		// The request's own document is left to the collector, not kept
		// in docs: it must not stay reachable while the route waits on its
		// backend (at c=200 that held ~40 MiB more, and with GOGC 300 the
		// heap grew four times that).
		if !ep.accepts(env.Version) {
			f := bus.ClientFault(0, "VersionMismatch", fmt.Sprintf("this service does not accept SOAP %s", env.Version))
			f.Code = "VersionMismatch"
			fail(env.Version, f)
			return
		}
		if f := mustUnderstand(env); f != nil {
			fail(env.Version, f)
			return
		}
		if !env.HasPayload() {
			fail(env.Version, bus.ClientFault(0, "Malformed SOAP envelope", "the SOAP Body is empty"))
			return
		}
		if env.parts > 1 {
			fail(env.Version, bus.ClientFault(0, "Malformed SOAP envelope", fmt.Sprintf(
				"the SOAP Body holds %d elements; an operation takes one (<%s>)", env.parts, env.PayloadTag())))
			return
		}
		op, f := ep.dispatch(action, env.PayloadNamespace(), env.PayloadTag())
		if f != nil {
			fail(env.Version, f)
			return
		}
		// The body was read under the largest max-body of the facade's
		// operations; this one's may be smaller.
		if int64(len(body)) > op.Limits.maxBody() {
			err = tooLarge(op.Limits.maxBody())
		} else {
			err = op.Limits.Rate.admit(r)
		}
		if err != nil {
			f := bus.AsFault(err)
			f.Route = op.Route
			fail(env.Version, f)
			return
		}
		env.SetPayloadOn(m)
		m.SOAP, m.SOAPAction, m.SOAPHeader = env.Version, action, env.Header
		// Only the version is needed later: env (and with it the request's
		// tree) must not stay reachable while the route waits on its backend.
		version = env.Version
		reply, err := s.run(op.Limits.handlerContext(ctx, body), op.Route, op.Limits, op.Handle, m)
		if err != nil {
			work.End()
			fail(version, bus.AsFault(err))
			return
		}
		if reply.Status == http.StatusAccepted && reply.Format == bus.FormatNone {
			// A one-way exchange (an async route stored the request): WS-I
			// Basic Profile 1.1 (R2750) lets it be answered 202 with no
			// envelope; Location says where to read the message's status.
			work.End()
			copyHeader(w.Header(), reply.Header, "Location")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if !reply.HasXML() {
			work.End()
			f := bus.ServerFault(0, "Route produced no XML", fmt.Sprintf("route %q answered %s to a SOAP caller", op.Route, reply.Format))
			fail(version, f)
			return
		}
		out := getBuffer()
		defer putBuffer(out)
		if err := writeMessageEnvelope(out, version, reply); err != nil {
			work.End()
			fail(version, bus.ServerFault(0, "Cannot write reply", fmt.Sprintf("route %q: %v", op.Route, err)))
			return
		}
		body, cs, err := encodeSOAP(out.Bytes(), ep.Charset)
		work.End() // writing to the caller is network I/O
		if err != nil {
			fail(version, bus.ServerFault(0, "Cannot encode reply", fmt.Sprintf("route %q: %v", op.Route, err)))
			return
		}
		// A SOAP response is always 200: the backend's 201 or 202 means
		// nothing to a SOAP caller, and errors travel as faults.
		w.Header().Set("Content-Type", soapContentType(version, cs))
		if op.Limits.KeepBody { // an async route's repeated submission; never a backend's Location
			copyHeader(w.Header(), reply.Header, "Location")
		}
		if op.Limits.Replays { // a sync route's repeat, answered from its record
			copyHeader(w.Header(), reply.Header, "Idempotent-Replayed")
		}
		writeWhole(w, http.StatusOK, body)
	})
}

// encodeSOAP writes a UTF-8 envelope in the facade's charset and returns
// the charset name for the Content-Type.
func encodeSOAP(doc []byte, charset string) ([]byte, string, error) {
	name, err := transforms.CharsetName(charset)
	if err != nil || name == "UTF-8" {
		return doc, "utf-8", err
	}
	out, err := transforms.EncodeXML(doc, name)
	return out, name, err
}

func soapContentType(v bus.SOAPVersion, charset string) string {
	if v == bus.SOAP12 {
		return ContentTypeSOAP12 + "; charset=" + charset
	}
	return ContentTypeSOAP11 + "; charset=" + charset
}

// writeSOAPFault sends a fault in the facade's charset; a fault that cannot
// be written in it (its text quotes a character the charset lacks) goes in
// UTF-8, which says so in its declaration and Content-Type.
func writeSOAPFault(w http.ResponseWriter, v bus.SOAPVersion, f *bus.Fault, charset string) {
	status, body := forCaller(w, f).SOAPFault(v)
	if f.Status == http.StatusTooManyRequests {
		status = f.Status // HTTP clients and proxies back off on it without reading the envelope
	}
	out, cs, err := encodeSOAP(body, charset)
	if err != nil {
		out, cs = body, "utf-8"
	}
	for k, vs := range f.Header { // e.g. Retry-After from an open circuit breaker
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", soapContentType(v, cs))
	writeWhole(w, status, out)
}

// mustUnderstand refuses a header block marked mustUnderstand: Busbar's
// facades process no header blocks yet, and SOAP forbids ignoring one that
// the sender marked as mandatory.
func mustUnderstand(env *Envelope) *bus.Fault {
	if env.Header == nil {
		return nil
	}
	ns := bus.NSSOAP11
	if env.Version == bus.SOAP12 {
		ns = bus.NSSOAP12
	}
	for _, h := range env.Header.ChildElements() {
		for _, a := range h.Attr {
			if a.Key != "mustUnderstand" || a.NamespaceURI() != ns {
				continue
			}
			if v := strings.TrimSpace(a.Value); v == "1" || v == "true" {
				f := bus.ClientFault(0, "MustUnderstand",
					fmt.Sprintf("header block <%s> (namespace %q) is not understood", h.Tag, h.NamespaceURI()))
				f.Code = "MustUnderstand"
				return f
			}
		}
	}
	return nil
}

// serveWSDL answers GET ?wsdl with the facade's WSDL, its address pointing
// at the URL the caller used to reach Busbar.
func serveWSDL(w http.ResponseWriter, r *http.Request, ep *SOAPEndpoint) {
	q := r.URL.Query()
	_, lower := q["wsdl"]
	_, upper := q["WSDL"]
	if !lower && !upper || ep.WSDL == nil {
		writeProblem(w, bus.ClientFault(http.StatusNotFound, "Not found",
			"this SOAP endpoint publishes no such document; try ?wsdl"))
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	b, err := ep.WSDL(scheme + "://" + r.Host + ep.Path)
	if err != nil {
		writeProblem(w, bus.ServerFault(0, "Cannot publish WSDL", err.Error()))
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}
