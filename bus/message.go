// Package bus is Busbar's core: the message that flows through a route, the
// small interfaces every extension point implements (Step, Connector), the
// pipeline that runs them, the one error model (Fault) and the registries
// where components register by name.
//
// bus knows no YAML, no HTTP server and no HTTP client: inbound listeners and
// outbound connectors live in package connectors, route files in package routes.
package bus

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"

	"github.com/beevik/etree"
)

// Format is the shape of a message body.
type Format int

const (
	FormatNone Format = iota // no body, or bytes nobody needs to look into
	FormatJSON
	FormatXML
	// FormatRaw is a body passed through as received: Body holds the bytes
	// and ContentType says what they are. Connectors send them unchanged and
	// answer with the reply's bytes, status and content type, uninterpreted.
	// Root may hold a parsed view of the same bytes (when a route had to
	// look inside); the bytes stay authoritative until a step replaces them.
	FormatRaw
)

func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatXML:
		return "xml"
	case FormatRaw:
		return "raw"
	}
	return "none"
}

// SOAPVersion tells which SOAP envelope a message came in or must go out in.
// The zero value means "not SOAP".
type SOAPVersion int

const (
	SOAP11 SOAPVersion = 11
	SOAP12 SOAPVersion = 12
)

func (v SOAPVersion) String() string {
	switch v {
	case SOAP11:
		return "1.1"
	case SOAP12:
		return "1.2"
	}
	return "none"
}

// Message is what flows through a route: the inbound request first, then the
// outbound call's request, its reply, and finally the response to the caller.
//
// For XML the payload is the element that matters to mappings: for SOAP that
// is the first child of soap:Body, never the envelope, so a mapping reads the
// same paths whether the XML came bare or wrapped. Root is authoritative when
// set; Body holds the raw bytes as received (and is cleared when a step
// replaces Root, so nobody reads stale bytes).
type Message struct {
	ID            string // unique per message, assigned at the inbound side
	CorrelationID string // carried across every hop of one exchange

	Format Format
	Body   []byte
	Root   *etree.Element // parsed XML payload (SOAP body content or document element)
	// ContentType is the media type of a raw body, as received (with its
	// parameters). A raw body received by the inbound side may live in a
	// pooled buffer: it is valid while the route runs; keep a copy to use it later.
	ContentType string

	SOAP       SOAPVersion    // set when the payload came in or goes out in a SOAP envelope
	SOAPAction string         // SOAP 1.1 SOAPAction header or SOAP 1.2 action parameter
	SOAPHeader *etree.Element // soap:Header of an inbound envelope, when present

	// HTTP facts of the inbound request (or the reply of an outbound call).
	// Query and Header may be nil (none); they are read, never written:
	// an inbound message's Header is the request's own.
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Status int // reply status; 0 means "not decided yet" (the renderer picks 200)

	// Vars holds route variables: path parameters and values steps set.
	// It may be nil (no variables); write it with SetVar. Messages of one
	// exchange may share it: a call's request carries the route's Vars.
	Vars map[string]string

	// JSONChecked records that Body is known to be one well-formed JSON
	// document (a listener or connector validated it, or Busbar wrote it),
	// so a mapping need not validate it again. SetJSON clears it.
	JSONChecked bool
}

// NewMessage returns an empty message. Its maps are nil until something is
// put in them (SetVar): a route makes four messages per exchange, most of
// them with no variables, and three empty maps each were a measurable part
// of a small request's cost.
func NewMessage() *Message { return &Message{} }

// SetVar sets a route variable, making the map on first use.
func (m *Message) SetVar(name, value string) {
	if m.Vars == nil {
		m.Vars = make(map[string]string, 4)
	}
	m.Vars[name] = value
}

// SetXML replaces the payload with an XML element.
func (m *Message) SetXML(root *etree.Element) {
	m.Format, m.Root, m.Body, m.JSONChecked = FormatXML, root, nil, false
}

// SetJSON replaces the payload with JSON bytes.
func (m *Message) SetJSON(b []byte) {
	m.Format, m.Root, m.Body, m.JSONChecked = FormatJSON, nil, b, false
}

// SetCheckedJSON is SetJSON for bytes already known to be well-formed JSON.
func (m *Message) SetCheckedJSON(b []byte) {
	m.SetJSON(b)
	m.JSONChecked = true
}

// XMLWriteSettings is how Busbar writes XML everywhere: explicit end tags
// (some SAP and OA parsers choke on <a/>) and text escaped only where XML
// requires it (&, <, >), so a quote in a message reads as a quote, not &#34;.
var XMLWriteSettings = etree.WriteSettings{CanonicalEndTags: true, CanonicalText: true}

// Bytes returns the payload as bytes, serialising the XML tree when that is
// what the message holds. The result is the payload only (no XML
// declaration, no envelope).
func (m *Message) Bytes() []byte {
	if m.Format == FormatXML && m.Root != nil && m.Body == nil {
		var buf bytes.Buffer
		m.Root.WriteTo(&buf, &XMLWriteSettings)
		m.Body = buf.Bytes()
	}
	return m.Body
}

// Reply starts the message that answers m: same ids, SOAP version and
// variables (a copy: setting one on the reply leaves m's alone), no payload.
func (m *Message) Reply() *Message {
	r := &Message{ID: m.ID, CorrelationID: m.CorrelationID, SOAP: m.SOAP}
	if len(m.Vars) > 0 {
		r.Vars = make(map[string]string, len(m.Vars))
		for k, v := range m.Vars {
			r.Vars[k] = v
		}
	}
	return r
}

// String is for logs and test failures.
func (m *Message) String() string {
	return fmt.Sprintf("message %s (%s, %d bytes)", m.ID, m.Format, len(m.Bytes()))
}
