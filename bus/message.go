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
//
// An XML message may also hold bytes only (SetXMLBytes: a mapping that wrote
// its output straight to bytes): Root is nil and Body is one element, as
// Busbar writes XML, declaring every prefix it uses. Read the payload with
// XML(), which parses such bytes once, never with Root directly.
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

	// rootFromBody records that XML() parsed Root from bytes SetXMLBytes
	// set, so Body is still the payload as it can be sent.
	rootFromBody bool

	// src is a payload parsed into another form than a tree (SetXMLSource);
	// XML() builds Root from it once, and from then on Root is the payload.
	src XMLSource
}

// XMLSource is an XML payload held in another form than an etree tree:
// package transforms' flat Doc, which mappings read as it is. Element is the
// payload as a tree, built on the first call, the same element afterwards.
type XMLSource interface {
	Element() *etree.Element
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
	m.Format, m.Root, m.Body, m.JSONChecked, m.rootFromBody, m.src = FormatXML, root, nil, false, false, nil
}

// SetXMLSource replaces the payload with an XML payload parsed into
// another form than a tree (see XMLSource).
func (m *Message) SetXMLSource(s XMLSource) {
	m.Format, m.Root, m.Body, m.JSONChecked, m.rootFromBody, m.src = FormatXML, nil, nil, false, false, s
}

// SetRawView gives a raw message (FormatRaw, Body as received) its parsed
// view without a tree: what Root is for a raw message, XML() builds from it.
func (m *Message) SetRawView(s XMLSource) { m.Root, m.src = nil, s }

// XMLSource is the payload SetXMLSource set (or a raw message's view,
// SetRawView), nil when there is none or when XML() has made the tree the
// payload since (a step may have changed it).
func (m *Message) XMLSource() XMLSource {
	if (m.Format != FormatXML && m.Format != FormatRaw) || m.Root != nil {
		return nil
	}
	return m.src
}

// CopyPayload gives m the payload of from as it is (a tree, bytes or a
// parsed source, and what is known of it), shared: neither message may
// change it in place.
func (m *Message) CopyPayload(from *Message) {
	m.Format, m.Body, m.Root, m.src = from.Format, from.Body, from.Root, from.src
	m.JSONChecked, m.rootFromBody = from.JSONChecked, from.rootFromBody
}

// SetXMLBytes replaces the payload with one serialised XML element: no XML
// declaration, written with XMLWriteSettings, declaring every namespace
// prefix it uses (so it can go inside an envelope as it is). b is not copied.
func (m *Message) SetXMLBytes(b []byte) {
	m.Format, m.Root, m.Body, m.JSONChecked, m.rootFromBody, m.src = FormatXML, nil, b, false, false, nil
}

// HasXML reports whether m holds an XML payload, as a tree or as bytes.
func (m *Message) HasXML() bool {
	return m.Format == FormatXML && (m.Root != nil || len(m.Body) > 0 || m.src != nil)
}

// XML returns the XML payload as a tree: Root, or else (for an XML message
// holding bytes only) Body parsed once and kept in Root. Body stays what it
// was, so treat the tree as read-only: a step that changes the payload sets
// a new one with SetXML. It returns nil, nil when there is no XML payload
// (a raw message's Root is its parsed view, set by whoever parsed it).
func (m *Message) XML() (*etree.Element, error) {
	if s := m.XMLSource(); s != nil {
		m.Root = s.Element()
		return m.Root, nil
	}
	if m.Root != nil || m.Format != FormatXML || len(m.Body) == 0 {
		return m.Root, nil
	}
	root, err := xmlParser(m.Body)
	if err != nil {
		return nil, fmt.Errorf("XML payload: %w", err)
	}
	m.Root, m.rootFromBody = root, true
	return root, nil
}

// XMLBytes returns the payload as bytes that can go inside an envelope as
// they are (see SetXMLBytes), or nil when the payload is a tree that must
// be serialised (its bytes, if any, may lack inherited namespace
// declarations).
func (m *Message) XMLBytes() []byte {
	if m.Format == FormatXML && len(m.Body) > 0 && (m.Root == nil || m.rootFromBody) {
		return m.Body
	}
	return nil
}

// xmlParser parses the bytes of an XML payload into its document element.
// Package transforms installs its faster scanner (SetXMLParser); etree's
// reader is the fallback, so bus works on its own.
var xmlParser = func(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, err
	}
	if doc.Root() == nil {
		return nil, fmt.Errorf("no document element")
	}
	return doc.Root(), nil
}

// SetXMLParser sets how XML() parses a payload held as bytes. It is meant
// for one package's init (transforms), not for switching at run time.
func SetXMLParser(parse func([]byte) (*etree.Element, error)) { xmlParser = parse }

// SetJSON replaces the payload with JSON bytes.
func (m *Message) SetJSON(b []byte) {
	m.Format, m.Root, m.Body, m.JSONChecked, m.rootFromBody, m.src = FormatJSON, nil, b, false, false, nil
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
	if m.Format != FormatXML || m.Body != nil {
		return m.Body
	}
	if root, _ := m.XML(); root != nil { // a tree, or one built from a parsed source
		var buf bytes.Buffer
		root.WriteTo(&buf, &XMLWriteSettings)
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
