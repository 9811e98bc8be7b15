package connectors

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// Content types of the two SOAP versions.
const (
	ContentTypeSOAP11 = "text/xml"
	ContentTypeSOAP12 = "application/soap+xml"
)

// Envelope is a parsed SOAP envelope.
type Envelope struct {
	Version bus.SOAPVersion
	Action  string         // SOAPAction header (1.1) or action parameter (1.2), unquoted
	Header  *etree.Element // soap:Header, nil when absent
	Fault   *bus.Fault     // set when the body holds a soap:Fault (a backend's reply)

	// payload is the first element child of soap:Body, nil for an empty
	// body: an element of the parsed Doc, read in place by mappings.
	payload *transforms.DocPayload
	// parts counts soap:Body's child elements: a facade reads one, and
	// refuses a request with more rather than drop the rest (WS-I BP R2201).
	parts int
	doc   *transforms.Doc // the parsed envelope
}

// HasPayload reports whether the Body holds an element (other than a Fault).
func (e *Envelope) HasPayload() bool { return e.payload != nil }

// PayloadTag is the payload element's local name, "" when there is none.
func (e *Envelope) PayloadTag() string {
	if e.payload == nil {
		return ""
	}
	return e.payload.Tag()
}

// PayloadNamespace is the payload element's namespace URI, "" when there
// is none (or no payload).
func (e *Envelope) PayloadNamespace() string {
	if e.payload == nil {
		return ""
	}
	return e.payload.NamespaceURI()
}

// Payload is the payload as an etree element (built on the first call),
// nil when there is none.
func (e *Envelope) Payload() *etree.Element {
	if e.payload == nil {
		return nil
	}
	return e.payload.Element()
}

// SetPayloadOn makes the payload m's XML payload, as it was parsed: a
// mapping reads it without building a tree.
func (e *Envelope) SetPayloadOn(m *bus.Message) {
	if e.payload != nil {
		m.SetXMLSource(e.payload)
	}
}

// soapVersionOf tells the SOAP version a Content-Type announces, and the
// charset and action parameters it carries.
func soapVersionOf(h http.Header) (v bus.SOAPVersion, charset, action string) {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return 0, "", ""
	}
	switch mt {
	case ContentTypeSOAP12:
		return bus.SOAP12, params["charset"], params["action"]
	case ContentTypeSOAP11, "application/xml":
		return bus.SOAP11, params["charset"], unquoteAction(h.Get("SOAPAction"))
	}
	return 0, params["charset"], ""
}

func unquoteAction(a string) string {
	a = strings.TrimSpace(a)
	if len(a) >= 2 && a[0] == '"' && a[len(a)-1] == '"' {
		return a[1 : len(a)-1]
	}
	return a
}

// ParseEnvelope parses a SOAP envelope as received over HTTP. The version
// comes from the envelope's namespace; want (when not zero) is the version
// the Content-Type announced, and a mismatch is a VersionMismatch fault as
// SOAP 1.2 part 2 §7.5.1 asks. Errors are client faults that say what is
// wrong with the envelope.
func ParseEnvelope(body []byte, charset string, want bus.SOAPVersion) (*Envelope, error) {
	d, err := transforms.ParseDoc(body, charset)
	if err != nil {
		return nil, envelopeFault("Malformed SOAP envelope", err.Error())
	}
	return envelopeOf(d, want)
}

// isEnvelope tells whether a document's element is a SOAP envelope.
func isEnvelope(root *transforms.DocPayload) bool {
	if root.Tag() != "Envelope" {
		return false
	}
	ns := root.NamespaceURI()
	return ns == bus.NSSOAP11 || ns == bus.NSSOAP12
}

// envelopeOf reads a parsed document as a SOAP envelope (see ParseEnvelope).
func envelopeOf(d *transforms.Doc, want bus.SOAPVersion) (*Envelope, error) {
	root := &transforms.DocPayload{Doc: d, Node: d.Root()}
	env := &Envelope{doc: d}
	ns := root.NamespaceURI()
	switch ns {
	case bus.NSSOAP11:
		env.Version = bus.SOAP11
	case bus.NSSOAP12:
		env.Version = bus.SOAP12
	default:
		if root.Tag() != "Envelope" {
			return nil, envelopeFault("Not a SOAP envelope",
				fmt.Sprintf("the document element is <%s>, not a SOAP Envelope", root.FullTag()))
		}
		f := envelopeFault("VersionMismatch", fmt.Sprintf("unknown envelope namespace %q", ns))
		f.Code = "VersionMismatch"
		return nil, f
	}
	if root.Tag() != "Envelope" {
		return nil, envelopeFault("Not a SOAP envelope",
			fmt.Sprintf("the document element is <%s>, not a SOAP Envelope", root.FullTag()))
	}
	if want != 0 && want != env.Version {
		f := envelopeFault("VersionMismatch", fmt.Sprintf(
			"a SOAP %s envelope was sent with the Content-Type of SOAP %s", env.Version, want))
		f.Code = "VersionMismatch"
		return nil, f
	}
	if pi := d.ProcInst(); pi != "" {
		return nil, procInstFault(pi)
	}
	if dir := d.Directive(); dir != "" {
		return nil, directiveFault(dir)
	}
	header, body, err := envelopeParts(root, ns)
	if err != nil {
		return nil, err
	}
	if header != nil {
		// Small, and read by the facade's mustUnderstand check and header
		// conditions as a tree.
		env.Header = header.Element()
	}
	for range body.ChildElements() {
		env.parts++
	}
	switch c := body.FirstChildElement(); {
	case c == nil:
	case c.Tag() == "Fault" && c.NamespaceURI() == ns:
		env.Fault = faultFromXML(env.Version, c.Element())
	default:
		env.payload = c
	}
	return env, nil
}

// envelopeParts finds the Header (nil when there is none) and the Body of
// an envelope whose namespace is ns. The Envelope holds an optional Header
// and then the Body, nothing else: SOAP 1.2 (part 1 §5) says so, and for
// SOAP 1.1 WS-I Basic Profile R1011 forbids the elements its §4.1 let
// follow the Body. Anything more is refused rather than read one way here
// and another by the backend: with two Bodies the route saw one and a
// pass-through forwarded both, and a second, empty Header hid the first's
// mustUnderstand blocks.
func envelopeParts(root *transforms.DocPayload, ns string) (header, body *transforms.DocPayload, err error) {
	for c := range root.ChildElements() {
		soap := c.NamespaceURI() == ns
		switch {
		case body != nil && soap && c.Tag() == "Body":
			return nil, nil, secondPart(c.FullTag(), "Body")
		case body != nil && soap && c.Tag() == "Header":
			return nil, nil, envelopeFault("Malformed SOAP envelope", fmt.Sprintf("<%s> follows the Body: the Header must come first", c.FullTag()))
		case body != nil:
			return nil, nil, envelopeFault("Malformed SOAP envelope", fmt.Sprintf("<%s> follows the Body: nothing may follow the Body of an envelope", c.FullTag()))
		case soap && c.Tag() == "Header" && header != nil:
			return nil, nil, secondPart(c.FullTag(), "Header")
		case soap && c.Tag() == "Header":
			header = c
		case soap && c.Tag() == "Body":
			body = c
		default:
			return nil, nil, envelopeFault("Malformed SOAP envelope", fmt.Sprintf("<%s> comes before the Body: only a Header may", c.FullTag()))
		}
	}
	if body == nil {
		return nil, nil, envelopeFault("Malformed SOAP envelope", "the envelope has no Body")
	}
	for _, part := range [...]*transforms.DocPayload{root, body} {
		if text, ok := part.StrayText(); ok {
			return nil, nil, envelopeFault("Malformed SOAP envelope", fmt.Sprintf(
				"text %q stands directly inside <%s>, which holds elements only", clip(strings.TrimSpace(text), 40), part.FullTag()))
		}
	}
	return header, body, nil
}

// procInstFault refuses a processing instruction (by its target): SOAP 1.1
// §3 and SOAP 1.2 part 1 §5 forbid them in a SOAP message.
func procInstFault(target string) *bus.Fault {
	return envelopeFault("Malformed SOAP envelope",
		fmt.Sprintf("the message holds a processing instruction <?%s?>, which SOAP does not allow", target))
}

// directiveFault refuses a DTD (<!DOCTYPE …>, by its keyword): SOAP forbids
// one, and what it declares (entities, defaults) would make the envelope
// read differently by whoever honours it.
func directiveFault(keyword string) *bus.Fault {
	return envelopeFault("Malformed SOAP envelope",
		fmt.Sprintf("the message holds a document type declaration (<!%s>), which SOAP does not allow", keyword))
}

// secondPart is the fault for an envelope's second Header or Body (tag as
// written).
func secondPart(tag, part string) *bus.Fault {
	return envelopeFault("Malformed SOAP envelope", fmt.Sprintf("the envelope has a second <%s>: it may have one %s", tag, part))
}

func envelopeFault(title, detail string) *bus.Fault {
	return bus.ClientFault(http.StatusBadRequest, title, detail)
}

// faultFromXML reads a backend's soap:Fault into a Fault for the caller:
// HTTP 502, with the backend's code, reason and detail carried over.
func faultFromXML(v bus.SOAPVersion, f *etree.Element) *bus.Fault {
	out := &bus.Fault{Status: http.StatusBadGateway, Blame: bus.BlameServer, Title: "Backend SOAP fault"}
	var detail *etree.Element
	if v == bus.SOAP12 {
		code := childNS(f, "Code", bus.NSSOAP12)
		out.FaultCode = strings.TrimSpace(childText(code, "Value", bus.NSSOAP12))
		if sub := childNS(code, "Subcode", bus.NSSOAP12); sub != nil {
			if sv := strings.TrimSpace(childText(sub, "Value", bus.NSSOAP12)); sv != "" {
				out.FaultCode += " " + sv
			}
		}
		if reason := childNS(f, "Reason", bus.NSSOAP12); reason != nil {
			out.FaultString = strings.TrimSpace(childText(reason, "Text", bus.NSSOAP12))
		}
		detail = childNS(f, "Detail", bus.NSSOAP12)
	} else {
		// SOAP 1.1 fault children are unqualified.
		out.FaultCode = strings.TrimSpace(childText(f, "faultcode", ""))
		out.FaultString = strings.TrimSpace(childText(f, "faultstring", ""))
		detail = childNS(f, "detail", "")
	}
	if local := localName(out.FaultCode); strings.HasPrefix(local, "Client") || strings.HasPrefix(local, "Sender") {
		out.Blame = bus.BlameClient
	}
	if detail != nil {
		var b bytes.Buffer
		for _, c := range detail.Child {
			c.WriteTo(&b, &bus.XMLWriteSettings)
		}
		out.FaultDetail = strings.TrimSpace(b.String())
	}
	out.Detail = out.FaultString
	return out
}

func localName(qname string) string {
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

// childNS finds a child by local name and namespace ("" = unqualified).
func childNS(e *etree.Element, local, ns string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

func childText(e *etree.Element, local, ns string) string {
	if c := childNS(e, local, ns); c != nil {
		return c.Text()
	}
	return ""
}

// utf8Declaration starts every UTF-8 document Busbar writes.
const utf8Declaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

var xmlDeclaration = []byte(utf8Declaration)

// WriteEnvelope writes a SOAP envelope around payload (nil for an empty
// body). The payload keeps its namespace declarations: an element cut out of
// a bigger document gets the declarations it inherited copied onto it, so
// the envelope stays namespace-well-formed.
func WriteEnvelope(w *bytes.Buffer, v bus.SOAPVersion, header, payload *etree.Element) {
	startEnvelope(w, v, header)
	if payload != nil {
		standalone(payload).WriteTo(w, &bus.XMLWriteSettings)
	}
	w.WriteString(envelopeEnd)
}

// WriteEnvelopeBytes is WriteEnvelope for a payload held as bytes: one
// element that declares every prefix it uses (bus.Message.SetXMLBytes), put
// inside soap:Body as it is, without parsing it.
func WriteEnvelopeBytes(w *bytes.Buffer, v bus.SOAPVersion, header *etree.Element, payload []byte) {
	startEnvelope(w, v, header)
	w.Write(payload)
	w.WriteString(envelopeEnd)
}

// writeMessageEnvelope wraps m's XML payload in an envelope: bytes a
// mapping wrote are spliced in, a tree is serialised.
func writeMessageEnvelope(w *bytes.Buffer, v bus.SOAPVersion, m *bus.Message) error {
	if b := m.XMLBytes(); b != nil {
		WriteEnvelopeBytes(w, v, nil, b)
		return nil
	}
	root, err := m.XML()
	if err != nil {
		return err
	}
	WriteEnvelope(w, v, nil, root)
	return nil
}

const envelopeEnd = `</soap:Body></soap:Envelope>`

// startEnvelope writes everything up to and including <soap:Body>.
func startEnvelope(w *bytes.Buffer, v bus.SOAPVersion, header *etree.Element) {
	ns := bus.NSSOAP11
	if v == bus.SOAP12 {
		ns = bus.NSSOAP12
	}
	w.WriteString(utf8Declaration)
	w.WriteString(`<soap:Envelope xmlns:soap="` + ns + `">`)
	if header != nil && len(header.ChildElements()) > 0 {
		w.WriteString(`<soap:Header>`)
		for _, h := range header.ChildElements() {
			standalone(h).WriteTo(w, &bus.XMLWriteSettings)
		}
		w.WriteString(`</soap:Header>`)
	}
	w.WriteString(`<soap:Body>`)
}

// standalone returns e itself when it declares every prefix it uses, or a
// shallow-rooted copy carrying the in-scope declarations it inherited.
func standalone(e *etree.Element) *etree.Element {
	if e.Parent() == nil {
		return e
	}
	var inherited []etree.Attr
	seen := map[string]bool{}
	for _, a := range e.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			seen[a.Key+"|"+a.Space] = true
		}
	}
	for p := e.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			isDecl := a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
			if !isDecl || seen[a.Key+"|"+a.Space] {
				continue
			}
			seen[a.Key+"|"+a.Space] = true
			inherited = append(inherited, a)
		}
	}
	if len(inherited) == 0 {
		return e
	}
	c := e.Copy()
	c.Attr = append(inherited, c.Attr...)
	return c
}

// clip shortens s to n runes for a fault's text, marking the cut.
func clip(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}

// StandaloneXML is an XML payload as the bytes a facade puts inside its
// envelope: one element declaring every prefix it uses, also those it
// inherited from the envelope of a backend's reply. Bytes kept to answer
// later (an idempotency record, a delivered message's reply) must be
// these: the element's own bytes may lack those declarations.
func StandaloneXML(m *bus.Message) ([]byte, error) {
	if b := m.XMLBytes(); b != nil {
		return b, nil
	}
	root, err := m.XML()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	standalone(root).WriteTo(&buf, &bus.XMLWriteSettings)
	return buf.Bytes(), nil
}
