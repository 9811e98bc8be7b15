package transforms

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"
	"golang.org/x/net/html/charset"
)

// ErrNotXML is returned (wrapped) for a body that holds no XML document.
var ErrNotXML = errors.New("not an XML document")

// ParseXML parses an XML document. charsetLabel is the charset the transport
// declared (an HTTP Content-Type parameter), "" when none; it wins over the
// encoding in the XML declaration, as RFC 7303 says. GBK, GB18030, Big5 and
// every other WHATWG-labelled charset decode to UTF-8.
//
// The error names the line and what is wrong, so a caller can be told.
func ParseXML(body []byte, charsetLabel string) (*etree.Document, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = xmlCharsetReader
	var src io.Reader = bytes.NewReader(body)
	if charsetLabel != "" && !isUTF8(charsetLabel) {
		r, err := charset.NewReaderLabel(charsetLabel, src)
		if err != nil {
			return nil, fmt.Errorf("%w: unsupported charset %q", ErrNotXML, charsetLabel)
		}
		src = r
		// The declaration may still say encoding="GBK"; the bytes are UTF-8 now.
		doc.ReadSettings.CharsetReader = passThrough
	}
	if _, err := doc.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotXML, explainXMLError(body, charsetLabel, err))
	}
	var roots int
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			roots++
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, fmt.Errorf("%w: text outside the document element", ErrNotXML)
			}
		}
	}
	switch {
	case roots == 0:
		return nil, fmt.Errorf("%w: no element found", ErrNotXML)
	case roots > 1:
		return nil, fmt.Errorf("%w: more than one document element", ErrNotXML)
	}
	return doc, nil
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

// explainXMLError re-reads a document that failed with encoding/xml's strict
// decoder, which names the line; etree's own messages do not. Only the error
// path pays for the second read.
func explainXMLError(body []byte, charsetLabel string, first error) string {
	var src io.Reader = bytes.NewReader(body)
	if charsetLabel != "" && !isUTF8(charsetLabel) {
		if r, err := charset.NewReaderLabel(charsetLabel, src); err == nil {
			src = r
		}
	}
	dec := xml.NewDecoder(src)
	dec.CharsetReader = xmlCharsetReader
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return first.Error()
		}
		if err != nil {
			return strings.TrimPrefix(err.Error(), "XML syntax error on ")
		}
	}
}
