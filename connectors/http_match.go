package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// Match is a compiled `from.match`: the conditions that pick one of several
// routes sharing a method and path. Every condition that is set must hold.
// They are tried from the cheapest to the dearest: headers and SOAPAction
// read no body, SOAPHeader reads the envelope only up to the end of its
// Header, Body parses the payload (once per request, and the route reuses it).
type Match struct {
	// Headers must be present with these exact values (any of the header's
	// values); names are canonical (http.CanonicalHeaderKey).
	Headers []HeaderMatch
	// SOAPAction, when not empty, must equal the request's SOAPAction header
	// (SOAP 1.1, without its quotes) or action parameter (SOAP 1.2).
	SOAPAction string
	// SOAPHeader is a condition over the envelope's soap:Header element.
	SOAPHeader func(header *etree.Element, m *bus.Message) (bool, error)
	// SOAPHeaderField, when not nil, is SOAPHeader in the shape the
	// envelope's bytes answer without building the Header (see
	// ParseHeaderField); SOAPHeader answers whatever it cannot.
	SOAPHeaderField *HeaderField
	// Body is a condition over the parsed payload.
	Body func(m *bus.Message) (bool, error)
}

// HeaderMatch is one `match.headers` entry.
type HeaderMatch struct{ Name, Value string }

// Conditions counts the conditions, for ordering: routes with more
// conditions are tried first.
func (mt *Match) Conditions() int {
	if mt == nil {
		return 0
	}
	n := len(mt.Headers)
	for _, set := range []bool{mt.SOAPAction != "", mt.SOAPHeader != nil, mt.Body != nil} {
		if set {
			n++
		}
	}
	return n
}

// candidate is one route of a dispatch group.
type candidate struct {
	route  string
	match  *Match // nil: the fallback
	limits Limits
	handle Handler
}

// admit applies the route's rate limit; a nil candidate (the route is not
// known yet) admits.
func (c *candidate) admit(r *http.Request) error {
	if c == nil {
		return nil
	}
	return c.limits.Rate.admit(r)
}

// dispatchGroup is every route served at one method and path. Routes with a
// match are tried in the order they were given; the one without is the
// fallback, tried last.
type dispatchGroup struct {
	method, path string
	raw          bool // from.http routes; otherwise from.rest
	cands        []candidate
	maxBody      int64         // the largest limit: the body is read before the route is known
	timeout      time.Duration // the longest route timeout, which bounds the body's read
}

func (g *dispatchGroup) add(c candidate) error {
	if len(g.cands) > 0 && g.cands[len(g.cands)-1].match == nil {
		if c.match == nil {
			return fmt.Errorf("%s %s is served twice without a match (routes %s and %s)",
				g.method, g.path, g.cands[len(g.cands)-1].route, c.route)
		}
		fallback := g.cands[len(g.cands)-1]
		g.cands = append(g.cands[:len(g.cands)-1], c, fallback)
	} else {
		g.cands = append(g.cands, c)
	}
	g.maxBody = max(g.maxBody, c.limits.maxBody())
	g.timeout = max(g.timeout, c.limits.timeout())
	return nil
}

// single is the route when the group has nothing to choose.
func (g *dispatchGroup) single() *candidate {
	if len(g.cands) == 1 && g.cands[0].match == nil {
		return &g.cands[0]
	}
	return nil
}

// choose finds the route for a request: the first whose match holds, else
// the fallback; nil when none.
func (g *dispatchGroup) choose(in *inbound) (*candidate, error) {
	for i := range g.cands {
		c := &g.cands[i]
		ok, err := in.matches(c.match)
		if err != nil {
			return nil, err
		}
		if ok {
			return c, nil
		}
	}
	return nil, nil
}

func (in *inbound) matches(mt *Match) (bool, error) {
	if mt == nil {
		return true, nil
	}
	for _, h := range mt.Headers {
		if !hasHeaderValue(in.r.Header, h.Name, h.Value) {
			return false, nil
		}
	}
	if mt.SOAPAction != "" && in.soapAction() != mt.SOAPAction {
		return false, nil
	}
	if mt.SOAPHeader != nil {
		if ok, err := in.soapHeaderHolds(mt); !ok || err != nil {
			return false, err
		}
	}
	if mt.Body != nil {
		if err := in.parse(); err != nil {
			return false, err
		}
		return mt.Body(in.m)
	}
	return true, nil
}

func hasHeaderValue(h http.Header, name, value string) bool {
	for _, v := range h[name] {
		if v == value {
			return true
		}
	}
	return false
}

// soapAction is the request's SOAPAction (1.1) or action parameter (1.2).
func (in *inbound) soapAction() string {
	if !in.actionDone {
		in.action, in.actionDone = requestAction(in.r.Header), true
	}
	return in.action
}

func requestAction(h http.Header) string {
	if a, ok := h["Soapaction"]; ok && len(a) > 0 {
		return unquoteAction(a[0])
	}
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, ContentTypeSOAP12) {
		return mediaParam(ct, "action")
	}
	return ""
}

// soapHeaderHolds evaluates a match's soap-header condition: from the
// bytes when it has the simple shape and the scanner can read them, else
// over the Header's tree.
func (in *inbound) soapHeaderHolds(mt *Match) (bool, error) {
	if f := mt.SOAPHeaderField; f != nil && !in.headerDone {
		if value, found, sure := in.headerField(f.Path); sure {
			return found && string(value) == f.Value, nil
		}
	}
	hdr, err := in.soapHeader()
	if err != nil || hdr == nil {
		return false, err
	}
	return mt.SOAPHeader(hdr, in.m)
}

// headerField scans for the value at path (see scanHeaderField), once for
// the routes of a path that test the same field.
func (in *inbound) headerField(path []FieldStep) (value []byte, found, sure bool) {
	if in.field.done && slices.Equal(in.field.path, path) {
		return in.field.value, in.field.found, in.field.sure
	}
	body, err := in.readBody()
	if err != nil {
		return nil, false, false // the tree path reports it
	}
	if cs := mediaParam(in.r.Header.Get("Content-Type"), "charset"); cs != "" && !isUTF8Label(cs) {
		return nil, false, false
	}
	value, found, sure = scanHeaderField(body, path)
	in.field = scannedField{path: path, value: value, found: found, sure: sure, done: true}
	return value, found, sure
}

// soapHeader scans the envelope up to the end of its Header, once.
func (in *inbound) soapHeader() (*etree.Element, error) {
	if in.headerDone {
		return in.header, nil
	}
	in.headerDone = true
	body, err := in.readBody()
	if err != nil {
		return nil, err
	}
	hdr, err := scanSOAPHeader(body, mediaParam(in.r.Header.Get("Content-Type"), "charset"))
	if f := (*bus.Fault)(nil); errors.As(err, &f) {
		return nil, f
	}
	if err != nil {
		return nil, bus.ClientFault(http.StatusBadRequest, "Malformed SOAP envelope",
			"the route is chosen by a SOAP header field and the envelope is broken before the end of its Header: "+err.Error())
	}
	in.header = hdr
	return hdr, nil
}

// mediaParam returns a parameter of a media type ("charset", "action")
// without allocating in the common case; mime.ParseMediaType builds a map
// for every call, and this runs for every request routed on content.
func mediaParam(ct, name string) string {
	for {
		i := strings.IndexByte(ct, ';')
		if i < 0 {
			return ""
		}
		ct = strings.TrimLeft(ct[i+1:], " \t")
		eq := strings.IndexByte(ct, '=')
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(ct[:eq])
		rest := strings.TrimLeft(ct[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return ""
			}
			val, ct = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			val, ct = strings.TrimSpace(rest[:end]), rest[end:]
		}
		if strings.EqualFold(key, name) {
			return val
		}
	}
}

// requestSOAPVersion tells from the headers alone whether a request is SOAP,
// so errors can be answered as SOAP faults without reading the body:
// application/soap+xml is SOAP 1.2; text/xml with a SOAPAction header SOAP 1.1.
func requestSOAPVersion(h http.Header) bus.SOAPVersion {
	ct := h.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, ContentTypeSOAP12):
		return bus.SOAP12
	case strings.HasPrefix(ct, ContentTypeSOAP11) && len(h["Soapaction"]) > 0:
		return bus.SOAP11
	}
	return 0
}

// noRoute is the fault when a request matches no route of its path.
func noRoute(r *http.Request) *bus.Fault {
	return bus.ClientFault(http.StatusNotFound, "Not found",
		fmt.Sprintf("no route serves %s %s for this request (no route's match holds and there is no fallback)", r.Method, r.URL.Path))
}

// looksLikeXML sniffs a body whose Content-Type says nothing useful.
func looksLikeXML(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n\xef\xbb\xbf")
	return len(b) > 0 && b[0] == '<'
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n\xef\xbb\xbf")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
