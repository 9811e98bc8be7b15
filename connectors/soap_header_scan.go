package connectors

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// scanSOAPHeader reads a SOAP envelope only as far as the end of its Header
// and returns the Header element (nil when the body is not a SOAP envelope
// or has no Header). Routing on a header field must not pay for parsing a
// Body of 200 line items, so this is an encoding/xml token loop that stops
// at </Header> (or at the start of Body) instead of a DOM parse: nothing
// after the Header is read, not even to check that it is well-formed.
//
// The element is detached from the envelope; the namespace declarations it
// inherited from the Envelope are copied onto it, so its prefixes resolve.
// An error means the XML is broken before the end of the Header, by the
// rules of the parsers that a backend or a facade reads it with, or (a
// *bus.Fault) that what was read is no SOAP message: a processing
// instruction or a DOCTYPE, or a second Header after the first, by which
// the route would be chosen and then read, or forward to a backend that
// reads, another.
func scanSOAPHeader(body []byte, charsetLabel string) (*etree.Element, error) {
	if charsetLabel == "" || isUTF8Label(charsetLabel) {
		if h, sure := scanSOAPHeaderFast(body); sure {
			return h, nil
		}
	}
	return decodeSOAPHeader(body, charsetLabel)
}

// decodeSOAPHeader is scanSOAPHeader with encoding/xml's decoder: every
// charset, entities, CDATA, and the decoder's error messages. The decoder
// checks less than the parsers do (duplicate attributes, bound prefixes,
// attributes of one expanded name, where an invalid byte is), so what it
// read is then checked by the parsers' own rules (transforms.CheckXMLHead):
// a route is chosen only on a Header the backend's parser, and a facade's,
// would read the same, and the error says what theirs say.
func decodeSOAPHeader(body []byte, charsetLabel string) (*etree.Element, error) {
	// The charset is chosen as the parsers choose it, so that a route
	// matches on the header the route then reads.
	text, settled, err := transforms.XMLToUTF8(body, charsetLabel)
	if err != nil {
		return nil, err
	}
	rest := bytes.TrimPrefix(text, []byte("\uFEFF"))
	bom := len(text) - len(rest) // the parsers skip it; the decoder does not get it
	dec := &headerDecoder{Decoder: xml.NewDecoder(bytes.NewReader(rest))}
	dec.CharsetReader = xmlCharsetReader
	if settled {
		// The declaration may still say encoding="GBK"; the bytes are UTF-8 now.
		dec.CharsetReader = keepReader
	}
	header, err := dec.header()
	if herr := transforms.CheckXMLHead(text, settled, bom+int(dec.checked)); herr != nil {
		return nil, herr
	}
	return header, err
}

// headerDecoder reads the Header and says how far (checked) what it read
// is to be checked by the parsers' rules: all it read, but not a forbidden
// token nor the start tag of a Body without a Header before it, which it
// read only to see what they are, and nothing of a document that is no
// SOAP envelope.
type headerDecoder struct {
	*xml.Decoder
	last, checked int64 // where the last token began; see above
}

func (dec *headerDecoder) token() (xml.Token, error) {
	dec.last = dec.InputOffset()
	tok, err := dec.RawToken()
	dec.checked = dec.InputOffset()
	if err == nil && forbiddenToken(tok) != nil {
		dec.checked = dec.last
	}
	return tok, err
}

func (dec *headerDecoder) header() (*etree.Element, error) {
	var envelope *xml.StartElement
	envNS := ""
	for {
		tok, err := dec.token()
		if err == io.EOF {
			if envelope == nil {
				dec.checked = 0 // no XML: no SOAP header, not for routing to refuse
			}
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if f := forbiddenToken(tok); f != nil {
			return nil, f
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				return nil, nil // the envelope ended without a Header
			}
			continue // the declaration, comments, whitespace
		}
		if envelope == nil {
			envNS = nsOf(start.Name.Space, start.Attr, nil)
			if start.Name.Local != "Envelope" || (envNS != bus.NSSOAP11 && envNS != bus.NSSOAP12) {
				dec.checked = 0 // another document: what the route reads checks it
				return nil, nil
			}
			e := start.Copy()
			envelope = &e
			continue
		}
		// The Envelope's first child: Header if there is one.
		if start.Name.Local != "Header" || nsOf(start.Name.Space, start.Attr, envelope.Attr) != envNS {
			dec.checked = dec.last
			return nil, nil
		}
		header := etree.NewElement(start.Name.Local)
		header.Space = start.Name.Space
		for _, a := range envelope.Attr { // inherited declarations first, so the Header's own win
			if isNSDeclName(a.Name) && !declares(start.Attr, a.Name) {
				addAttr(header, a)
			}
		}
		for _, a := range start.Attr {
			addAttr(header, a)
		}
		if err := dec.readChildren(header); err != nil {
			return nil, err
		}
		end := dec.checked
		second := dec.nextHeader(envelope.Attr, envNS)
		dec.checked = end // what follows the Header is not the route's to check
		if second != nil {
			return nil, secondPart(qname(second.Name), "Header")
		}
		return header, nil
	}
}

// forbiddenToken is the fault for what a SOAP message must not hold (as
// envelopeOf refuses it), nil for any other token. The fast path never
// reads these: it leaves them to this one.
func forbiddenToken(tok xml.Token) *bus.Fault {
	switch t := tok.(type) {
	case xml.ProcInst:
		if t.Target != "xml" {
			return procInstFault(t.Target)
		}
	case xml.Directive:
		keyword, _, _ := strings.Cut(string(t), " ")
		return directiveFault(keyword)
	}
	return nil
}

// nextHeader reads on to the start tag of the Envelope's next child and
// returns it when it is a second Header. Nothing more is checked: a broken
// token there is left to whoever reads the rest.
func (dec *headerDecoder) nextHeader(envAttrs []xml.Attr, envNS string) *xml.StartElement {
	for {
		tok, err := dec.token()
		if err != nil {
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "Header" && nsOf(t.Name.Space, t.Attr, envAttrs) == envNS {
				return &t
			}
			return nil
		case xml.EndElement:
			return nil
		}
	}
}

// readChildren builds the children of e from the token stream up to e's end tag.
func (dec *headerDecoder) readChildren(e *etree.Element) error {
	for {
		tok, err := dec.token()
		if err == io.EOF {
			line, _ := dec.InputPos()
			return fmt.Errorf("line %d: the document ends inside <%s>", line, e.FullTag())
		}
		if err != nil {
			return err
		}
		if f := forbiddenToken(tok); f != nil {
			return f
		}
		switch t := tok.(type) {
		case xml.StartElement:
			c := e.CreateElement(t.Name.Local)
			c.Space = t.Name.Space
			for _, a := range t.Attr {
				addAttr(c, a)
			}
			if err := dec.readChildren(c); err != nil {
				return err
			}
		case xml.EndElement:
			if t.Name.Local != e.Tag || t.Name.Space != e.Space {
				line, _ := dec.InputPos()
				return fmt.Errorf("line %d: element <%s> closed by </%s>", line, e.FullTag(), qname(t.Name))
			}
			return nil
		case xml.CharData:
			e.CreateText(string(t))
		}
	}
}

// addAttr adds a raw attribute. Unprefixed names go in without building
// a "prefix:name" string for etree to split again.
func addAttr(e *etree.Element, a xml.Attr) {
	if a.Name.Space == "" {
		e.CreateAttr(a.Name.Local, a.Value)
		return
	}
	e.CreateAttr(qname(a.Name), a.Value)
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func isNSDeclName(n xml.Name) bool {
	return n.Space == "xmlns" || (n.Space == "" && n.Local == "xmlns")
}

func declares(attrs []xml.Attr, n xml.Name) bool {
	for _, a := range attrs {
		if a.Name == n {
			return true
		}
	}
	return false
}

// nsOf resolves a raw prefix against an element's own declarations, then
// its parent's.
func nsOf(prefix string, own, parent []xml.Attr) string {
	for _, attrs := range [][]xml.Attr{own, parent} {
		for _, a := range attrs {
			if (prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns") ||
				(prefix != "" && a.Name.Space == "xmlns" && a.Name.Local == prefix) {
				return a.Value
			}
		}
	}
	return ""
}

// xmlCharsetReader decodes what an XML declaration's encoding names (GBK,
// GB18030, Big5…) to UTF-8 for encoding/xml.
func xmlCharsetReader(label string, r io.Reader) (io.Reader, error) {
	if isUTF8Label(label) {
		return r, nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	text, err := transforms.DecodeCharset(b, label)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(text), nil
}

func keepReader(_ string, r io.Reader) (io.Reader, error) { return r, nil }

func isUTF8Label(label string) bool {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}
