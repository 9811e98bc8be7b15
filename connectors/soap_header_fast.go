package connectors

import (
	"bytes"
	"encoding/xml"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// scanSOAPHeaderFast is the fast path of scanSOAPHeader, written by hand
// because encoding/xml's decoder costs ~10 µs for the few hundred bytes
// before </Header> (a decoder per request, an allocation per name and
// attribute, a byte at a time through an interface), which is more than
// issue 4 allows a route chosen by a SOAP header field over a pass-through
// (10 %). It reads only the common shape of a SOAP envelope's start — UTF-8,
// an XML declaration, comments, processing instructions, elements,
// attributes and text without entity or character references — and builds
// the same tree as the decoder path. On anything else (an entity, CDATA, a
// DOCTYPE, a CR, another encoding, a malformed tag) it returns sure=false
// and the caller asks encoding/xml, which also produces the error message:
// this path never decides that a document is broken. FuzzScanSOAPHeader
// checks that both paths agree.
func scanSOAPHeaderFast(b []byte) (header *etree.Element, sure bool) {
	s := &fastScan{b: b}
	env, h, found, sure := s.headerStart()
	if !found {
		return nil, sure
	}
	header = etree.NewElement(h.name.Local)
	header.Space = h.name.Space
	for _, a := range env.attrs { // as decodeSOAPHeader: inherited declarations first
		if isNSDeclName(a.Name) && !declares(h.attrs, a.Name) {
			addAttr(header, a)
		}
	}
	for _, a := range h.attrs {
		addAttr(header, a)
	}
	if !h.empty && !s.children(header, h.name, 0) || !s.noSecondHeader(env) {
		return nil, false
	}
	return header, true
}

// noSecondHeader reads on from the end of the Header to the start tag of
// the Envelope's next child, and is true when that is not a second Header
// (see scanSOAPHeader); false too when the scanner cannot tell, for the
// decoder path to decide.
func (s *fastScan) noSecondHeader(env fastTag) bool {
	if !s.misc(false) {
		return false
	}
	if s.at("</") {
		return true
	}
	if !s.at("<") || s.at("<!") || s.at("<?") {
		return false
	}
	s.i++
	t, ok := s.startTag()
	return ok && (t.name.Local != "Header" || nsOf(t.name.Space, t.attrs, env.attrs) != nsOf(env.name.Space, env.attrs, nil))
}

// headerStart reads an envelope up to the end of its Header's start tag.
// found: there is a Header, and env and h are the Envelope's and the
// Header's start tags; sure as for scanSOAPHeaderFast (when !found, sure
// means "well-formed so far, and no Header").
func (s *fastScan) headerStart() (env, h fastTag, found, sure bool) {
	if s.at("\xef\xbb\xbf") {
		s.i = 3
	}
	if !s.misc(true) || !s.at("<") || s.at("</") || s.at("<!") {
		return env, h, false, false
	}
	s.i++
	env, ok := s.startTag()
	if !ok {
		return env, h, false, false
	}
	if !s.declare(env) || !s.namespacesOK(env) {
		return env, h, false, false
	}
	ns := nsOf(env.name.Space, env.attrs, nil)
	if env.name.Local != "Envelope" || (ns != bus.NSSOAP11 && ns != bus.NSSOAP12) {
		return env, h, false, true // well-formed so far and not a SOAP envelope
	}
	if env.empty {
		return env, h, false, true
	}
	if !s.misc(false) {
		return env, h, false, false
	}
	if s.at("</") {
		s.i += 2
		end, ok := s.name()
		s.skipSpace()
		return env, h, false, ok && end == env.name && s.at(">") // an empty envelope
	}
	if !s.at("<") || s.at("<!") {
		return env, h, false, false
	}
	s.i++
	h, ok = s.startTag()
	if !ok {
		return env, h, false, false
	}
	if h.name.Local != "Header" || nsOf(h.name.Space, h.attrs, env.attrs) != ns {
		return env, h, false, true // the first child is the Body: no Header
	}
	if !s.declare(h) || !s.namespacesOK(h) {
		return env, h, false, false
	}
	return env, h, true, true
}

type fastScan struct {
	b []byte
	i int
	// arena, when it has capacity, holds the attributes of the tags read,
	// one after the other, instead of a slice per tag (see scanHeaderField).
	arena []xml.Attr
	// scope[:scoped] holds the attributes of the open elements that declare
	// a namespace, outermost first: few do, so it is short to search. An
	// array, not a slice of one, or the scan would not stay on the stack.
	scope  [8][]xml.Attr
	scoped int
}

type fastTag struct {
	name  xml.Name // Space holds the raw prefix, as RawToken gives it
	attrs []xml.Attr
	empty bool // <x/>
}

func (s *fastScan) at(prefix string) bool {
	return len(s.b)-s.i >= len(prefix) && string(s.b[s.i:s.i+len(prefix)]) == prefix
}

func (s *fastScan) skipSpace() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n') {
		s.i++
	}
}

// skipPast moves past the next occurrence of end.
func (s *fastScan) skipPast(end string) bool {
	j := bytes.Index(s.b[s.i:], []byte(end))
	if j < 0 {
		return false
	}
	s.i += j + len(end)
	return true
}

// misc skips whitespace and comments, and in the prolog an XML
// declaration that names no other encoding than UTF-8.
func (s *fastScan) misc(prolog bool) bool {
	for {
		s.skipSpace()
		switch {
		case s.at("<!--"):
			if !s.comment() {
				return false
			}
		case prolog && s.i == 0 || prolog && s.i == 3 && s.b[0] == 0xef:
			if !s.at("<?xml ") {
				if s.at("<?") {
					return false
				}
				prolog = false
				continue
			}
			start := s.i
			if !s.skipPast("?>") {
				return false
			}
			decl := s.b[start:s.i]
			if !plain(decl, false) || !bytes.Contains(decl, []byte(`version="1.0"`)) && !bytes.Contains(decl, []byte(`version='1.0'`)) ||
				bytes.Contains(decl, []byte("encoding")) && !bytes.Contains(decl, []byte("utf-8")) && !bytes.Contains(decl, []byte("UTF-8")) {
				return false // another encoding: the decoder path converts it
			}
			prolog = false
		case s.at("<?"):
			return false // other processing instructions: the decoder path
		default:
			return true
		}
	}
}

// comment skips a comment; "--" inside one is an error the decoder reports,
// and a character XML does not allow one the parsers report.
func (s *fastScan) comment() bool {
	j := bytes.Index(s.b[s.i+4:], []byte("--"))
	if j < 0 || !s.atOffset(s.i+4+j+2, ">") || !plain(s.b[s.i+4:s.i+4+j], false) {
		return false
	}
	s.i += 4 + j + 3
	return true
}

func (s *fastScan) atOffset(i int, prefix string) bool {
	return len(s.b)-i >= len(prefix) && string(s.b[i:i+len(prefix)]) == prefix
}

// plain reports whether text needs none of what the decoder path does:
// no references, no CR (line-end normalisation), no other control
// characters, valid UTF-8 of XML characters, no "]]>" in text.
func plain(b []byte, text bool) bool {
	ascii := true
	for _, c := range b {
		switch {
		case c == '&' || c == '\r' || c < 0x20 && c != '\t' && c != '\n':
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	if text && bytes.Contains(b, []byte("]]>")) {
		return false
	}
	if ascii {
		return true
	}
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		b = b[n:]
	}
	return true
}

// isNameByte: ASCII names only; others go the decoder's way, which knows
// Unicode's name characters.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':'
}

// name reads a name as prefix and local part.
func (s *fastScan) name() (xml.Name, bool) {
	start := s.i
	for s.i < len(s.b) && isNameByte(s.b[s.i]) {
		s.i++
	}
	raw := s.b[start:s.i]
	if len(raw) == 0 || (raw[0] >= '0' && raw[0] <= '9') || raw[0] == '-' || raw[0] == '.' || raw[0] == ':' {
		return xml.Name{}, false
	}
	colon := bytes.IndexByte(raw, ':')
	if colon < 0 {
		return xml.Name{Local: intern(raw)}, true
	}
	if colon == len(raw)-1 || bytes.IndexByte(raw[colon+1:], ':') >= 0 {
		return xml.Name{}, false
	}
	return xml.Name{Space: intern(raw[:colon]), Local: intern(raw[colon+1:])}, true
}

// names interns element and attribute names and namespace URIs: the same
// few dozen recur in every request, and a string allocated per name per
// request was most of this scanner's garbage. The table is bounded; past
// its size, strings are allocated as usual.
var names = struct {
	sync.Mutex
	m atomic.Pointer[map[string]string]
}{}

const maxInterned, maxInternedLen = 2048, 128

func intern(b []byte) string {
	if m := names.m.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	if len(b) > maxInternedLen {
		return s
	}
	names.Lock()
	defer names.Unlock()
	old := names.m.Load()
	if old != nil && len(*old) >= maxInterned {
		return s
	}
	next := make(map[string]string, 1+len(mapOrEmpty(old)))
	for k, v := range mapOrEmpty(old) {
		next[k] = v
	}
	next[s] = s
	names.m.Store(&next)
	return s
}

func mapOrEmpty(m *map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return *m
}

// startTag reads a start tag after its '<'.
func (s *fastScan) startTag() (t fastTag, ok bool) {
	t.attrs = s.arena[len(s.arena):] // empty, with the arena's room (nil without one)
	defer func() {
		if n := len(t.attrs); n > 0 && n <= cap(s.arena)-len(s.arena) {
			s.arena = s.arena[:len(s.arena)+n] // they fitted: keep them
		}
	}()
	if t.name, ok = s.name(); !ok {
		return t, false
	}
	for {
		spaced := s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n')
		s.skipSpace()
		switch {
		case s.at(">"):
			s.i++
			return t, true
		case s.at("/>"):
			s.i += 2
			t.empty = true
			return t, true
		case !spaced:
			return t, false
		}
		an, ok := s.name()
		if !ok {
			return t, false
		}
		s.skipSpace()
		if !s.at("=") {
			return t, false
		}
		s.i++
		s.skipSpace()
		if s.i >= len(s.b) || (s.b[s.i] != '"' && s.b[s.i] != '\'') {
			return t, false
		}
		quote := s.b[s.i]
		end := bytes.IndexByte(s.b[s.i+1:], quote)
		if end < 0 {
			return t, false
		}
		v := s.b[s.i+1 : s.i+1+end]
		if bytes.ContainsAny(v, "<\n\t") || !plain(v, false) { // attribute values have whitespace normalised
			return t, false
		}
		for _, a := range t.attrs {
			if a.Name == an {
				return t, false // a duplicate attribute: the decoder path says so
			}
		}
		value := ""
		if isNSDeclName(an) {
			value = intern(v) // namespace URIs recur
		} else {
			value = string(v)
		}
		t.attrs = append(t.attrs, xml.Attr{Name: an, Value: value})
		s.i += end + 2
	}
}

// namespacesOK is whether t, its declarations in scope (declare), is
// sure to be what Namespaces in XML allows, as the parsers check it: no
// prefix declared empty, every prefix bound, no two attributes of one
// expanded name. Two prefixed attributes of one local name are left to the
// decoder path, for few tags have them. The parsers' checks are not run
// here, on the hot path, but decide whatever this leaves to the decoder
// path (decodeSOAPHeader), so the errors are theirs.
func (s *fastScan) namespacesOK(t fastTag) bool {
	if t.name.Space != "" && !s.bound(t.name.Space) {
		return false
	}
	for i, a := range t.attrs {
		switch a.Name.Space {
		case "":
			continue
		case "xmlns":
			if a.Value == "" {
				return false
			}
			continue
		}
		if !s.bound(a.Name.Space) {
			return false
		}
		for _, b := range t.attrs[:i] {
			if b.Name.Local == a.Name.Local && b.Name.Space != "" && b.Name.Space != "xmlns" {
				return false
			}
		}
	}
	return true
}

// declare puts t's namespace declarations in scope; false when there is
// no room left (the decoder path then reads the envelope).
func (s *fastScan) declare(t fastTag) bool {
	for _, a := range t.attrs {
		if isNSDeclName(a.Name) {
			if s.scoped == len(s.scope) {
				return false
			}
			s.scope[s.scoped] = t.attrs
			s.scoped++
			return true
		}
	}
	return true
}

// bound reports whether a prefix is declared in scope (to a URI that is not
// empty: namespacesOK refused those).
func (s *fastScan) bound(prefix string) bool {
	if prefix == "xml" {
		return true
	}
	for i := s.scoped - 1; i >= 0; i-- {
		for _, a := range s.scope[i] {
			if a.Name.Space == "xmlns" && a.Name.Local == prefix {
				return true
			}
		}
	}
	return false
}

// children reads e's content up to and including its end tag.
func (s *fastScan) children(e *etree.Element, name xml.Name, depth int) bool {
	return s.content(name, depth,
		func(text []byte) { e.CreateText(string(text)) },
		func(t fastTag) bool {
			c := e.CreateElement(t.name.Local)
			c.Space = t.name.Space
			for _, a := range t.attrs {
				addAttr(c, a)
			}
			return t.empty || s.children(c, t.name, depth+1)
		})
}

// content reads the content of the element called name up to and including
// its end tag, handing each text segment to text and each child's start tag
// to child, which must read that child's own content (when it has any) and
// tells whether it could. false means the scanner cannot be sure of the
// envelope here (too deep, CDATA, a declaration, a mismatch): the decoder
// path decides.
func (s *fastScan) content(name xml.Name, depth int, text func([]byte), child func(fastTag) bool) bool {
	if depth > 64 {
		return false
	}
	for {
		if j := bytes.IndexByte(s.b[s.i:], '<'); j != 0 {
			if j < 0 {
				return false
			}
			seg := s.b[s.i : s.i+j]
			if !plain(seg, true) {
				return false
			}
			text(seg)
			s.i += j
		}
		switch {
		case s.at("<!--"):
			if !s.comment() {
				return false
			}
		case s.at("<!") || s.at("<?"):
			return false // CDATA, a declaration, a processing instruction: the decoder path
		case s.at("</"):
			s.i += 2
			end, ok := s.name()
			s.skipSpace()
			if !ok || end != name || !s.at(">") {
				return false
			}
			s.i++
			return true
		default:
			s.i++
			t, ok := s.startTag()
			if !ok {
				return false
			}
			scoped := s.scoped
			if !s.declare(t) || !s.namespacesOK(t) || !child(t) {
				return false
			}
			s.scoped = scoped
		}
	}
}
