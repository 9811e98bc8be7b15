package transforms

import (
	"errors"
	"io"
	"strings"

	"github.com/beevik/etree"
	"golang.org/x/net/html/charset"

	"github.com/busbar/busbar/bus"
)

// ErrNotXML is returned (wrapped) for a body that holds no XML document.
var ErrNotXML = errors.New("not an XML document")

// ParseXML parses an XML document. charsetLabel is the charset the transport
// declared (an HTTP Content-Type parameter), "" when none; it wins over the
// encoding in the XML declaration, and a byte-order mark over both, as RFC
// 7303 says (utf8Input). GBK, GB18030, Big5 and every other WHATWG-labelled
// charset decode to UTF-8; a byte with no character in it is an error.
//
// It is Busbar's own scanner (xml_fast.go), which builds the same etree tree
// as etree's reader at several times its speed. It is as strict as the XML
// specification: a duplicate attribute or an unpaired surrogate reference is
// an error; a UTF-8 byte-order mark is skipped; nothing in a DOCTYPE is
// expanded. The error names the line and column and what is wrong.
func ParseXML(body []byte, charsetLabel string) (*etree.Document, error) {
	return parseXMLFast(body, charsetLabel)
}

// A message holding XML as bytes (a mapping's streamed output) is parsed,
// when a later step needs the tree, by the same scanner as everything else.
func init() {
	bus.SetXMLParser(func(b []byte) (*etree.Element, error) {
		doc, err := parseXMLFast(b, "")
		if err != nil {
			return nil, err
		}
		if doc.Root() == nil {
			return nil, ErrNotXML
		}
		return doc.Root(), nil
	})
}

func passThrough(_ string, r io.Reader) (io.Reader, error) { return r, nil }

func xmlCharsetReader(label string, r io.Reader) (io.Reader, error) {
	if isUTF8(label) {
		return r, nil
	}
	return charset.NewReaderLabel(label, r)
}

func isUTF8(label string) bool {
	l := strings.ToLower(strings.TrimSpace(label))
	return l == "utf-8" || l == "utf8" || l == "us-ascii" || l == "ascii"
}
