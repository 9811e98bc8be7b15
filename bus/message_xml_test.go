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
