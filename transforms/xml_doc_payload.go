package transforms

import (
	"iter"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// ParseXMLPayload parses an XML document (see ParseDoc) into a payload for
// a message (SetXMLSource): its document element, read in place by mappings.
func ParseXMLPayload(body []byte, charsetLabel string) (*DocPayload, error) {
	d, err := ParseDoc(body, charsetLabel)
	if err != nil {
		return nil, err
	}
	return &DocPayload{Doc: d, Node: d.Root()}, nil
}

// DocPayload is an element of a Doc as a message's payload (bus.XMLSource):
// mappings read it in place, XML() gets its etree copy.
type DocPayload struct {
	Doc  *Doc
	Node int32
}

var _ bus.XMLSource = (*DocPayload)(nil)

func (p *DocPayload) Element() *etree.Element { return p.Doc.Element(p.Node) }

// Tag is the payload element's local name.
func (p *DocPayload) Tag() string { return p.Doc.local(p.Node) }

// NamespaceURI is the payload element's namespace.
func (p *DocPayload) NamespaceURI() string { return p.Doc.uri(p.Node) }

// FullTag is the payload element's name as written, prefix:local.
func (p *DocPayload) FullTag() string {
	if prefix := p.Doc.prefix(p.Node); prefix != "" {
		return prefix + ":" + p.Doc.local(p.Node)
	}
	return p.Doc.local(p.Node)
}

// ChildElements yields the element's child elements in order.
func (p *DocPayload) ChildElements() iter.Seq[*DocPayload] {
	return func(yield func(*DocPayload) bool) {
		d := p.Doc
		for c := p.Node + 1; c < d.nodes[p.Node].end; c = d.nodes[c].end {
			if d.nodes[c].kind == docElement && !yield(&DocPayload{Doc: d, Node: c}) {
				return
			}
		}
	}
}

// StrayText is the first text directly inside the element that is not
// whitespace, for elements whose content is elements only (a SOAP Envelope
// or Body): text there is read by nobody, so it is refused, not dropped.
func (p *DocPayload) StrayText() (string, bool) {
	d := p.Doc
	for c := p.Node + 1; c < d.nodes[p.Node].end; c = d.nodes[c].end {
		if d.nodes[c].kind == docText {
			if s := d.str(d.nodes[c].name); strings.TrimSpace(s) != "" {
				return s, true
			}
		}
	}
	return "", false
}

// FirstChildElement is the element's first child element, nil when it has none.
func (p *DocPayload) FirstChildElement() *DocPayload {
	d := p.Doc
	for c := p.Node + 1; c < d.nodes[p.Node].end; c = d.nodes[c].end {
		if d.nodes[c].kind == docElement {
			return &DocPayload{Doc: d, Node: c}
		}
	}
	return nil
}

// PayloadNamespace is the namespace URI of m's XML payload element, "" when
// it has none; a payload still held as a Doc is not turned into a tree.
func PayloadNamespace(m *bus.Message) string {
	if p, ok := m.XMLSource().(*DocPayload); ok {
		return p.NamespaceURI()
	}
	if root, _ := m.XML(); root != nil {
		return root.NamespaceURI()
	}
	return ""
}
