package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Generic XML ⇄ JSON conversion, used when a route has no mapping for a
// direction (docs/mapping.md, "Generic conversion"). The conventions:
//
//   - XML → JSON: the document element is the envelope of the data (a SOAP
//     operation's wrapper), so its content becomes the JSON object. Child
//     elements become keys by local name (namespaces are dropped); siblings
//     with the same name become an array; an element with only text becomes
//     a string — always a string, so "0010010000" keeps its zeros; an empty
//     element becomes "", one with xsi:nil="true" null; attributes become
//     "@name" keys, and text beside attributes or children "#text".
//   - JSON → XML: the root element is given (the operation's response
//     element) and its namespace becomes the default namespace, so every
//     child is qualified (document/literal, elementFormDefault="qualified").
//     Keys become child elements in the order written; an array repeats its
//     key's element; null becomes xsi:nil="true"; numbers are written exactly
//     as they were sent; "@name" keys become attributes and "#text" text.
//
// Schema-aware conversion (arrays of one, typed numbers) is the mapping
// language's job; this one knows no schema.

const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// XMLToJSON converts an element's content to a JSON object.
func XMLToJSON(root *etree.Element) ([]byte, error) {
	if root == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	writeElementJSON(&b, root)
	return b.Bytes(), nil
}

func writeElementJSON(b *bytes.Buffer, e *etree.Element) {
	kids := e.ChildElements()
	var attrs []etree.Attr
	for _, a := range e.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		if a.NamespaceURI() == nsXSI {
			continue // xsi:nil, xsi:type describe the element, they are not data
		}
		attrs = append(attrs, a)
	}
	text := strings.TrimSpace(e.Text())
	if len(kids) == 0 && len(attrs) == 0 {
		if isNil(e) {
			b.WriteString("null")
			return
		}
		writeJSONString(b, e.Text())
		return
	}
	b.WriteByte('{')
	n := 0
	sep := func() {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
	}
	for _, a := range attrs {
		sep()
		writeJSONString(b, "@"+a.Key)
		b.WriteByte(':')
		writeJSONString(b, a.Value)
	}
	if text != "" {
		sep()
		b.WriteString(`"#text":`)
		writeJSONString(b, text)
	}
	// Group repeated names, keeping the first appearance's order.
	done := map[string]bool{}
	for _, k := range kids {
		if done[k.Tag] {
			continue
		}
		done[k.Tag] = true
		var same []*etree.Element
		for _, o := range kids {
			if o.Tag == k.Tag {
				same = append(same, o)
			}
		}
		sep()
		writeJSONString(b, k.Tag)
		b.WriteByte(':')
		if len(same) == 1 {
			writeElementJSON(b, k)
			continue
		}
		b.WriteByte('[')
		for i, o := range same {
			if i > 0 {
				b.WriteByte(',')
			}
			writeElementJSON(b, o)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

func isNil(e *etree.Element) bool {
	for _, a := range e.Attr {
		if a.Key == "nil" && a.NamespaceURI() == nsXSI {
			return a.Value == "true" || a.Value == "1"
		}
	}
	return false
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1)
}

// JSONToXML converts a JSON document to an element named rootName in
// namespace ns ("" for none).
func JSONToXML(body []byte, rootName, ns string) (*etree.Element, error) {
	if !isXMLName(rootName) {
		return nil, fmt.Errorf("json to xml: %q is not a valid XML element name", rootName)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	root := etree.NewElement(rootName)
	if ns != "" {
		root.CreateAttr("xmlns", ns)
	}
	if err := fillElement(dec, root, rootName); err != nil {
		return nil, fmt.Errorf("json to xml: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("json to xml: data after the JSON document")
	}
	return root, nil
}

// fillElement reads one JSON value into e.
func fillElement(dec *json.Decoder, e *etree.Element, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key := kt.(string)
				if err := fillMember(dec, e, key, path+"/"+key); err != nil {
					return err
				}
			}
			_, err = dec.Token() // }
			return err
		case '[':
			for dec.More() {
				if err := fillElement(dec, e.CreateElement("item"), path+"/item"); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
	case nil:
		setNil(e)
	default:
		e.SetText(jsonScalarText(t))
	}
	return nil
}

func fillMember(dec *json.Decoder, parent *etree.Element, key, path string) error {
	switch {
	case key == "#text":
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if _, isDelim := tok.(json.Delim); isDelim {
			return fmt.Errorf("%s: \"#text\" must be a string or number", path)
		}
		if tok != nil {
			parent.SetText(jsonScalarText(tok))
		}
		return nil
	case strings.HasPrefix(key, "@"):
		name := key[1:]
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if _, isDelim := tok.(json.Delim); isDelim || !isXMLName(name) {
			return fmt.Errorf("%s: an attribute needs a valid name and a scalar value", path)
		}
		if tok != nil {
			parent.CreateAttr(name, jsonScalarText(tok))
		}
		return nil
	}
	if !isXMLName(key) {
		return fmt.Errorf("%s: JSON key %q is not a valid XML element name", path, key)
	}
	// An array repeats the element; anything else is one element.
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	sub := json.NewDecoder(bytes.NewReader(raw))
	sub.UseNumber()
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		sub.Token() // [
		for sub.More() {
			if err := fillElement(sub, parent.CreateElement(key), path); err != nil {
				return err
			}
		}
		return nil
	}
	return fillElement(sub, parent.CreateElement(key), path)
}

func setNil(e *etree.Element) {
	e.CreateAttr("xmlns:xsi", nsXSI)
	e.CreateAttr("xsi:nil", "true")
}

func jsonScalarText(tok json.Token) string {
	switch v := tok.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(tok)
}

// isXMLName reports whether s is a valid XML element name (NCName, or
// prefix:local).
func isXMLName(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) > 2 {
		return false
	}
	for _, part := range parts {
		if part == "" {
			return false
		}
		for j, r := range part {
			if r == utf8.RuneError {
				return false
			}
			if !(r == '_' || unicode.IsLetter(r) || (j > 0 && (unicode.IsDigit(r) || r == '-' || r == '.' || unicode.Is(unicode.Mn, r)))) {
				return false
			}
		}
	}
	return true
}
