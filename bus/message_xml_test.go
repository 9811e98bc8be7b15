package bus

import (
	"bytes"
	"testing"

	"github.com/beevik/etree"
)

func TestMessageXMLBytes(t *testing.T) {
	payload := []byte(`<p:a xmlns:p="urn:x"><b>1 &amp; 2</b></p:a>`)
	m := NewMessage()
	m.SetXMLBytes(payload)
	if !m.HasXML() || m.Root != nil {
		t.Fatalf("HasXML %v, Root %v", m.HasXML(), m.Root)
	}
	if !bytes.Equal(m.XMLBytes(), payload) || !bytes.Equal(m.Bytes(), payload) {
		t.Fatalf("XMLBytes %q, Bytes %q", m.XMLBytes(), m.Bytes())
	}
	root, err := m.XML()
	if err != nil {
		t.Fatal(err)
	}
	if root.Tag != "a" || root.NamespaceURI() != "urn:x" || root.FindElement("b").Text() != "1 & 2" {
		t.Fatalf("parsed %s", root.FullTag())
	}
	if again, _ := m.XML(); again != root {
		t.Error("XML parsed the bytes twice")
	}
	if !bytes.Equal(m.XMLBytes(), payload) {
		t.Errorf("after XML(), XMLBytes = %q; the bytes are still the payload", m.XMLBytes())
	}

	// A tree set later wins, and its bytes are the tree's.
	m.SetXML(etree.NewElement("c"))
	if m.XMLBytes() != nil || string(m.Bytes()) != "<c></c>" {
		t.Errorf("after SetXML: XMLBytes %q, Bytes %q", m.XMLBytes(), m.Bytes())
	}
	// A tree whose Bytes() were written is not offered as splicable bytes:
	// a tree cut out of a document may lack inherited declarations.
	if m.XMLBytes() != nil {
		t.Error("serialised tree offered as payload bytes")
	}

	m.SetXMLBytes([]byte(`<a><b></a>`))
	if _, err := m.XML(); err == nil {
		t.Error("malformed payload bytes parsed without error")
	}
	m.SetJSON([]byte(`{}`))
	if root, err := m.XML(); root != nil || err != nil || m.HasXML() || m.XMLBytes() != nil {
		t.Errorf("JSON message: XML() = %v, %v; HasXML %v", root, err, m.HasXML())
	}
}

// treeSource is an XMLSource over a ready tree, counting the builds.
type treeSource struct {
	e     *etree.Element
	built int
}

func (s *treeSource) Element() *etree.Element { s.built++; return s.e }

// A payload held as a parsed source becomes the tree once, on demand; a
// copy of the message (CopyPayload) carries the source, not a tree, and
// writes the same bytes.
func TestMessageXMLSource(t *testing.T) {
	root := etree.NewElement("a")
	root.CreateElement("b").SetText("1 & 2")
	src := &treeSource{e: root}
	m := NewMessage()
	m.SetXMLSource(src)
	cp := NewMessage()
	cp.CopyPayload(m)
	if !m.HasXML() || m.XMLSource() != src || cp.XMLSource() != src || src.built != 0 {
		t.Fatalf("HasXML %v, source kept %v, copied %v, built %d", m.HasXML(), m.XMLSource() == src, cp.XMLSource() == src, src.built)
	}
	const want = "<a><b>1 &amp; 2</b></a>"
	if got := string(m.Bytes()); got != want {
		t.Errorf("Bytes %q, want %q", got, want)
	}
	if got := string(cp.Bytes()); got != want {
		t.Errorf("the copy's Bytes %q, want %q", got, want)
	}
	if m.XMLSource() != nil {
		t.Error("after XML() the tree is the payload, yet the source is still offered")
	}
	m.XML()
	if m.Root != root || src.built != 2 { // once per message
		t.Errorf("Root %v, built %d times", m.Root, src.built)
	}
	m.SetJSON([]byte(`{}`))
	if m.XMLSource() != nil || m.HasXML() {
		t.Error("SetJSON left the XML source in place")
	}
}
