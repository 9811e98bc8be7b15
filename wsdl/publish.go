package wsdl

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// ErrNoAddress is returned (wrapped) by Publish when the WSDL has no
// soap:address, soap12:address or http:address inside a wsdl:port.
var ErrNoAddress = errors.New("no port address to replace")

// Publish returns the WSDL bytes with the location of every soap:address,
// soap12:address and http:address of a wsdl:port replaced by address (the
// URL at which Busbar serves the facade). Every other byte stays as it was:
// the XML declaration and encoding, comments, whitespace, attribute order
// and quoting, entity references.
//
// src must be well-formed. Encodings that keep ASCII bytes for markup
// (UTF-8, GBK, GB18030, Big5, ISO-8859-x, …) are supported; UTF-16 is not.
// Characters of address that the document encoding may not hold are written
// as character references.
func Publish(src []byte, address string) ([]byte, error) {
	return PublishFunc(src, func(string, string, bus.SOAPVersion) string { return address })
}

// PublishFunc is Publish with a different address per port: address is
// called with the service name, port name and the version of the address
// element (bus.SOAP11, bus.SOAP12, or 0 for http:address) and returns the
// new location, or "" to keep the port's location as it is.
func PublishFunc(src []byte, address func(service, port string, soap bus.SOAPVersion) string) ([]byte, error) {
	if bytes.HasPrefix(src, []byte{0xFE, 0xFF}) || bytes.HasPrefix(src, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(src, []byte{0, '<'}) || bytes.HasPrefix(src, []byte{'<', 0}) {
		return nil, errors.New("wsdl: publish: UTF-16 documents are not supported")
	}
	if _, err := transforms.ParseXML(src, ""); err != nil {
		return nil, fmt.Errorf("wsdl: publish: %w", err)
	}
	utf8Doc := isUTF8Label(declaredEncoding(src))
	edits, err := scanAddresses(src)
	if err != nil {
		return nil, fmt.Errorf("wsdl: publish: %w", err)
	}
	if len(edits) == 0 {
		return nil, fmt.Errorf("wsdl: publish: %w", ErrNoAddress)
	}
	var out bytes.Buffer
	out.Grow(len(src) + 256)
	last := 0
	for _, e := range edits {
		loc := address(e.service, e.port, e.soap)
		if loc == "" {
			continue
		}
		out.Write(src[last:e.start])
		escapeAttr(&out, loc, e.quote, utf8Doc)
		last = e.end
	}
	out.Write(src[last:])
	res := out.Bytes()
	if _, err := transforms.ParseXML(res, ""); err != nil {
		// Cannot happen for a well-formed src; a guard, not a path.
		return nil, fmt.Errorf("wsdl: publish: result is not well-formed: %w", err)
	}
	return res, nil
}

var encodingDecl = regexp.MustCompile(`^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']`)

func declaredEncoding(src []byte) string {
	head := src
	if len(head) > 200 {
		head = head[:200]
	}
	head = bytes.TrimPrefix(head, []byte("\xEF\xBB\xBF"))
	if m := encodingDecl.FindSubmatch(head); m != nil {
		return string(m[1])
	}
	return "utf-8"
}

func isUTF8Label(l string) bool {
	l = strings.ToLower(l)
	return l == "utf-8" || l == "utf8"
}

func escapeAttr(b *bytes.Buffer, s string, quote byte, utf8Doc bool) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '"' && quote == '"':
			b.WriteString("&quot;")
		case r == '\'' && quote == '\'':
			b.WriteString("&apos;")
		case r < 0x20 || r == utf8.RuneError || (r >= 0x80 && !utf8Doc):
			fmt.Fprintf(b, "&#x%X;", r)
		default:
			b.WriteRune(r)
		}
	}
}

// addrEdit is one location attribute value to replace: src[start:end] is
// the value between its quotes.
type addrEdit struct {
	start, end    int
	quote         byte
	service, port string
	soap          bus.SOAPVersion
}

type lexAttr struct {
	space, local string
	vstart, vend int
	quote        byte
}

type lexFrame struct {
	ns          map[string]string // declarations made on this element
	space, name string            // resolved element name
	nameAttr    string            // its name="…" (for wsdl:service and wsdl:port)
}

// scanAddresses walks the markup of a well-formed document and finds the
// location attributes of address elements in wsdl:port elements. It is a
// lexer for exactly what it needs: start and end tags with their attributes
// and namespace declarations; comments, CDATA, processing instructions and
// the DOCTYPE are skipped.
func scanAddresses(src []byte) ([]addrEdit, error) {
	var stack []lexFrame
	var edits []addrEdit
	lookup := func(prefix string, own map[string]string) string {
		if prefix == "xml" {
			return "http://www.w3.org/XML/1998/namespace"
		}
		if v, ok := own[prefix]; ok {
			return v
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if v, ok := stack[i].ns[prefix]; ok {
				return v
			}
		}
		return ""
	}
	n := len(src)
	i := 0
	for {
		j := bytes.IndexByte(src[i:], '<')
		if j < 0 {
			break
		}
		i += j
		rest := src[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			k := bytes.Index(rest[4:], []byte("-->"))
			if k < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += 4 + k + 3
			continue
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k := bytes.Index(rest, []byte("]]>"))
			if k < 0 {
				return nil, errors.New("unterminated CDATA section")
			}
			i += k + 3
			continue
		case bytes.HasPrefix(rest, []byte("<?")):
			k := bytes.Index(rest, []byte("?>"))
			if k < 0 {
				return nil, errors.New("unterminated processing instruction")
			}
			i += k + 2
			continue
		case bytes.HasPrefix(rest, []byte("<!")):
			k, err := skipDecl(rest)
			if err != nil {
				return nil, err
			}
			i += k
			continue
		case bytes.HasPrefix(rest, []byte("</")):
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return nil, errors.New("unterminated end tag")
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			i += k + 1
			continue
		}
		// A start tag.
		p := i + 1
		ns := p
		for p < n && !isSpace(src[p]) && src[p] != '>' && src[p] != '/' {
			p++
		}
		tag := string(src[ns:p])
		var attrs []lexAttr
		selfClose := false
		for {
			for p < n && isSpace(src[p]) {
				p++
			}
			if p >= n {
				return nil, errors.New("unterminated start tag")
			}
			if src[p] == '>' {
				p++
				break
			}
			if src[p] == '/' {
				if p+1 < n && src[p+1] == '>' {
					selfClose = true
					p += 2
					break
				}
				return nil, errors.New("bad start tag")
			}
			as := p
			for p < n && !isSpace(src[p]) && src[p] != '=' && src[p] != '>' && src[p] != '/' {
				p++
			}
			aname := string(src[as:p])
			for p < n && isSpace(src[p]) {
				p++
			}
			if p >= n || src[p] != '=' {
				return nil, fmt.Errorf("attribute %q without a value", aname)
			}
			p++
			for p < n && isSpace(src[p]) {
				p++
			}
			if p >= n || (src[p] != '"' && src[p] != '\'') {
				return nil, fmt.Errorf("attribute %q without quotes", aname)
			}
			q := src[p]
			p++
			k := bytes.IndexByte(src[p:], q)
			if k < 0 {
				return nil, fmt.Errorf("attribute %q not terminated", aname)
			}
			a := lexAttr{vstart: p, vend: p + k, quote: q}
			a.space, a.local, _ = cutPrefix(aname)
			attrs = append(attrs, a)
			p += k + 1
		}
		i = p
		fr := lexFrame{}
		for _, a := range attrs {
			switch {
			case a.space == "" && a.local == "xmlns":
				if fr.ns == nil {
					fr.ns = map[string]string{}
				}
				fr.ns[""] = unescapeAttr(src[a.vstart:a.vend])
			case a.space == "xmlns":
				if fr.ns == nil {
					fr.ns = map[string]string{}
				}
				fr.ns[a.local] = unescapeAttr(src[a.vstart:a.vend])
			case a.space == "" && a.local == "name":
				fr.nameAttr = unescapeAttr(src[a.vstart:a.vend])
			}
		}
		prefix, local, _ := cutPrefix(tag)
		fr.space, fr.name = lookup(prefix, fr.ns), local
		if local == "address" && len(stack) >= 2 {
			parent, grand := stack[len(stack)-1], stack[len(stack)-2]
			var v bus.SOAPVersion
			ok := true
			switch fr.space {
			case NSSOAP11:
				v = bus.SOAP11
			case NSSOAP12:
				v = bus.SOAP12
			case NSHTTP:
			default:
				ok = false
			}
			if ok && parent.space == NSWSDL && parent.name == "port" {
				for _, a := range attrs {
					if a.space == "" && a.local == "location" {
						edits = append(edits, addrEdit{start: a.vstart, end: a.vend, quote: a.quote,
							service: grand.nameAttr, port: parent.nameAttr, soap: v})
					}
				}
			}
		}
		if !selfClose {
			stack = append(stack, fr)
		}
	}
	return edits, nil
}

// skipDecl skips <!DOCTYPE …> (with an internal subset) or another <!…>
// declaration and returns its length.
func skipDecl(b []byte) (int, error) {
	depth := 0
	var quote byte
	for k := 2; k < len(b); k++ {
		c := b[k]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '>' && depth <= 0:
			return k + 1, nil
		}
	}
	return 0, errors.New("unterminated declaration")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func cutPrefix(s string) (prefix, local string, ok bool) {
	if k := strings.IndexByte(s, ':'); k >= 0 {
		return s[:k], s[k+1:], true
	}
	return "", s, false
}

var attrEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'")

// unescapeAttr decodes the predefined entities; enough for namespace URIs
// and names.
func unescapeAttr(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	return attrEntities.Replace(string(b))
}
