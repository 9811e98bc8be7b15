package transforms

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/beevik/etree"
)

// parseXMLFast reads an XML document into the same etree tree that etree's
// own reader builds over encoding/xml (ParseXML's ReadSettings: CDATA read as
// plain text, whitespace-only text kept), in one pass over the bytes and with
// a few allocations per document instead of several per token. It accepts and
// rejects what ParseXML does, with these deliberate differences:
//
//   - A UTF-8 byte-order mark at the start is skipped (encoding/xml reads it as
//     text outside the document element and fails).
//   - Stricter, as the XML specification requires: a duplicate attribute is an
//     error (etree silently kept the last value); a character reference to a
//     surrogate (&#xD800;) is an error (encoding/xml made it U+FFFD); invalid
//     UTF-8 and control characters are errors inside comments, processing
//     instructions and DOCTYPE too, not only in text and attribute values.
//   - Stricter, as XML and Namespaces in XML require: the XML declaration only
//     at the very start (encoding/xml reads one anywhere, and switches
//     charset there), no processing instruction named XML in another case, no
//     prefix used without a declaration in scope, no prefix declared empty
//     (xmlns:p=""), no two attributes of one expanded name (p:a and q:a,
//     p and q bound to one URI). A name with an unbound prefix was read as
//     in no namespace, which is not what its sender meant; of two attributes
//     that are one, Busbar would read one and a backend the other.
//   - Line ends (\r\n and a lone \r) become \n in comments, processing
//     instructions and DOCTYPE as well, not only in text and attribute values.
//   - Bytes with no character in the document's charset are an error (x/text's
//     decoders made them U+FFFD), and the charset is chosen as RFC 7303 says
//     (utf8Input): a BOM, then the transport's charset even when it is utf-8,
//     then the declaration.
//
// Like encoding/xml it does not normalise whitespace inside attribute values
// (a tab or a newline stays as written), does not require whitespace between
// attributes, and never expands an entity declared in a DOCTYPE: only the five
// predefined entities and character references are known, anything else is
// an error, so neither external entities nor entity expansion bombs can occur.
//
// Errors carry the line and the column (in characters) of the offending
// markup.
//
// ParseDoc (xml_doc_parse.go) is the same scanner building a flat Doc
// instead of the tree (xmlParser.flat).
//
// Names, and text that needed no decoding, are substrings of one copy of the
// input, and nodes are carved from a few shared arrays: a subtree kept after
// the document is dropped keeps that copy and those arrays alive.
//
// Why a hand-written scanner rather than a tokenizer library: the tree and the
// accepted language must match encoding/xml exactly (the differential tests
// hold it to that), and the lexer that was considered, tdewolff/parse/v2/xml,
// is a tolerant minifier's lexer: it takes NUL as end of input, accepts
// unquoted attributes, unterminated comments and CDATA, only "-quoted DOCTYPE
// strings, rewrites tabs in attribute values inside the caller's buffer, and
// neither decodes entities nor checks names, characters or nesting. Every one
// of those rules would have to be re-checked over its tokens, which is the
// scanner below, so the library would add a dependency and a second pass
// without removing any code.
func parseXMLFast(body []byte, charsetLabel string) (*etree.Document, error) {
	body, labelled, err := utf8Input(body, charsetLabel)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = xmlCharsetReader
	if labelled {
		// The declaration may still say encoding="GBK"; the text is UTF-8 now.
		doc.ReadSettings.CharsetReader = passThrough
	}
	scratch := xmlScratchPool.Get().(*xmlScratch)
	defer scratch.release()
	p := xmlParser{doc: doc, honourDecl: !labelled, xmlScratch: scratch, lastOther: -1}
	// One copy of the input: every name, and every text or attribute value
	// that needs no decoding, is a substring of it.
	p.src = string(body)
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotXML, err)
	}
	return doc, nil
}

// CheckXMLHead checks the start of a document by ParseXML's rules, as far
// as the first token that ends at or after stop: a reader that stops there
// (the SOAP header scan stops at </Header>) accepts what ParseXML would,
// and its errors say what ParseXML's say. text and settled are what
// XMLToUTF8 returned; elements left open at stop are no error, and
// nothing is checked when stop is 0.
func CheckXMLHead(text []byte, settled bool, stop int) error {
	if stop <= 0 {
		return nil
	}
	scratch := xmlScratchPool.Get().(*xmlScratch)
	defer scratch.release()
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = xmlCharsetReader
	p := xmlParser{doc: doc, honourDecl: !settled, xmlScratch: scratch, lastOther: -1, stop: stop}
	// No copy: the tree built is dropped, and errors copy what they quote.
	p.src = unsafe.String(unsafe.SliceData(text), len(text))
	if err := p.parse(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotXML, err)
	}
	return nil
}

// xmlSyntaxError is a well-formedness error at a place in the document.
type xmlSyntaxError struct {
	Line, Column int // 1-based; Column counts characters
	Msg          string
	// stricter marks errors that etree over encoding/xml did not report (see
	// parseXMLFast); the differential tests accept only these as differences.
	stricter bool
}

func (e *xmlSyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// maxXMLDepth is etree's default ReadSettings.MaxDepth: deeper documents are
// refused rather than risking the stack of whoever walks the tree.
const maxXMLDepth = 1024

// Tree nodes are carved out of slabs, so a document costs a handful of
// allocations rather than a few per node. A slab holds what the rest of the
// document seems to need, at most slabBytes: an allocation of 32 KiB or more
// goes to the heap's locked large-object path, and an absurd input must not
// cause one huge allocation up front.
const slabBytes = 24 << 10

// smallXML is the size up to which a document's nodes are counted before it
// is read (estimate); a larger one's slabs are sized as it is read.
const smallXML = 8 << 10

// slabItems returns how many items of size bytes the next slab gets: what is
// left of the count est (small documents), or as many as the rest of the
// document needs if it goes on as it went (made items so far), or, before the
// first, one per perBytes of it. Extrapolating rather than counting '<' up
// front saves a pass over a large input, and a slab cut short costs only one
// more allocation.
func (p *xmlParser) slabItems(est, made, size, atLeast, perBytes int) int {
	rest := len(p.src) - p.pos
	want := rest / perBytes
	switch {
	case est > 0:
		want = est - made
	case made > 0 && p.pos > 0:
		want = int(int64(made)*int64(rest)/int64(p.pos)) + 8
	}
	return max(min(max(want, 16), slabBytes/size), atLeast)
}

type xmlParser struct {
	src        string
	pos        int
	honourDecl bool // switch charset on <?xml encoding="…"?> as encoding/xml does
	// stop, when not 0, ends the parse at the first token boundary at or
	// after it, the document read so far accepted (CheckXMLHead).
	stop int
	doc  *etree.Document
	// flat, when set, is what the parser builds instead of doc: the build
	// points below (startTag, addText, closing an element, comment,
	// procInst, directive, the end of parse) each have a branch for it, and
	// xml_doc_parse.go holds the rest.
	flat *Doc
	// reused: flat's node array came from the pool (docNew zeroes each node).
	reused bool
	// nsLast is the Doc's last namespace lookup (docNS).
	nsLast struct {
		scope  int // len(ns) then, -1 once a declaration is added
		prefix string
		uri    int32
	}

	*xmlScratch
	roots int
	// lastOther is the index in kids of the last comment, processing
	// instruction or directive added: children before it are all elements
	// and text.
	lastOther int

	elems  []etree.Element
	texts  []etree.CharData
	attrs  []etree.Attr
	tokens []etree.Token
	// items counted (small documents) and made so far, for the slab sizes
	elemsEst, textsEst, tokensEst    int
	elemsMade, textsMade, tokensMade int
	attrsNext                        int // the next attribute slab's size
}

// xmlScratch is a parser's working memory, kept between documents.
type xmlScratch struct {
	open []openElement
	kids []etree.Token // children read so far of the open elements, innermost last
	tag  []rawAttr     // attributes of the start tag being read
	// dec holds text that had to be rewritten (entities, line ends); it
	// becomes one string at the end and fixes point into it.
	dec   []byte
	fixes []textFix
	// For a Doc: the namespace declarations in scope, innermost last, and
	// the namespace URIs met so far (Doc.uris[1:]).
	ns   []nsBinding
	uris []docSpan
	// For a tree: the prefixes declared by the open elements, innermost
	// last, which checkNamespaces looks in.
	prefixes []nsPrefix
}

// nsPrefix is a prefix a tree's open element declares. The URI is kept for
// the rare tag that needs it (checkExpandedNames), as read: a URI with a
// reference in it is decoded text in dec, which is not a string yet.
type nsPrefix struct {
	prefix string
	uri    textRef
}

var xmlScratchPool = sync.Pool{New: func() any { return new(xmlScratch) }}

// release returns the scratch to the pool, holding no pointer into the tree
// just built; what a huge document made huge is left to the collector.
func (s *xmlScratch) release() {
	if cap(s.kids) > 1<<14 || cap(s.dec) > 1<<20 || cap(s.fixes) > 1<<14 || cap(s.open) > maxXMLDepth || cap(s.tag) > 1<<10 ||
		cap(s.ns) > 1<<10 || cap(s.uris) > 1<<10 || cap(s.prefixes) > 1<<10 {
		return
	}
	clear(s.open[:cap(s.open)])
	clear(s.kids[:cap(s.kids)])
	clear(s.tag[:cap(s.tag)])
	clear(s.fixes[:cap(s.fixes)])
	s.open, s.kids, s.tag, s.dec, s.fixes = s.open[:0], s.kids[:0], s.tag[:0], s.dec[:0], s.fixes[:0]
	clear(s.prefixes[:cap(s.prefixes)]) // they point into the input
	s.ns, s.uris, s.prefixes = s.ns[:0], s.uris[:0], s.prefixes[:0]
	xmlScratchPool.Put(s)
}

type openElement struct {
	e    *etree.Element
	name string // qualified, as written
	kids int    // index in kids of its first child
	at   int    // offset of its start tag
	// For a Doc: the element's node. ns is len(ns) (a Doc) or len(prefixes)
	// (a tree) before its declarations.
	node, ns int32
}

type rawAttr struct {
	name  string
	colon int // in name, or -1
	at    int
	val   textRef
}

// textRef is character data: a piece of src, or when it had to be rewritten,
// dec[off:end] (never empty: a reference or a line end was written there).
// Three words, so the compiler keeps it in registers rather than copying it
// through the stack, which stalled the store forwarding of every text read.
type textRef struct {
	s        string
	off, end int
}

func (t textRef) decoded() bool { return t.end > t.off }

type textFix struct {
	cd       *etree.CharData // SetData, which also sets the whitespace flag
	dst      *string         // otherwise
	off, end int
}

func (p *xmlParser) parse() error {
	if strings.HasPrefix(p.src, "\uFEFF") {
		p.pos = len("\uFEFF")
	}
	if len(p.src) <= smallXML && p.flat == nil {
		p.estimate()
	}
	for p.pos < len(p.src) {
		if p.stop != 0 && p.pos >= p.stop {
			return nil
		}
		var err error
		if p.src[p.pos] != '<' {
			err = p.charData()
		} else {
			err = p.markup()
		}
		if err != nil {
			return err
		}
	}
	if p.stop != 0 {
		return nil // the input ended before stop: a head needs no end
	}
	if n := len(p.open); n > 0 {
		o := p.open[n-1]
		line, col := position(p.src, o.at)
		return p.errAt(len(p.src), "unexpected EOF: element <%s> (line %d, column %d) is not closed", o.name, line, col)
	}
	if p.roots == 0 {
		return fmt.Errorf("no element found")
	}
	if p.flat != nil {
		p.docFinish()
		return nil
	}
	dec := string(p.dec)
	for _, f := range p.fixes {
		if f.cd != nil {
			f.cd.SetData(dec[f.off:f.end])
		} else {
			*f.dst = dec[f.off:f.end]
		}
	}
	p.adopt(&p.doc.Element, 0)
	return nil
}

// estimate counts what the slabs of a small document will need, so that it
// gets one exact slab of each: each '<' not followed by '/' may start an
// element, and a '<' after anything but '>' ends some text.
func (p *xmlParser) estimate() {
	s := p.src
	elems, texts := 0, 1
	for i := strings.IndexByte(s, '<'); i >= 0; {
		if i+1 < len(s) && s[i+1] != '/' {
			elems++
		}
		if i > 0 && s[i-1] != '>' {
			texts++
		}
		j := strings.IndexByte(s[i+1:], '<')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	p.elemsEst, p.textsEst, p.tokensEst = elems, texts, elems+texts
}

func (p *xmlParser) errAt(off int, format string, args ...any) *xmlSyntaxError {
	line, col := position(p.src, off)
	return &xmlSyntaxError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// eof reports input that ends inside the construct that started at from.
func (p *xmlParser) eof(what string, from int) error {
	line, col := position(p.src, from)
	return p.errAt(len(p.src), "unexpected EOF: %s (line %d, column %d) is not closed", what, line, col)
}

// position turns an offset into a line and a column in characters.
func position(s string, off int) (line, col int) {
	off = min(off, len(s))
	line = 1 + strings.Count(s[:off], "\n")
	lineStart := strings.LastIndexByte(s[:off], '\n') + 1
	return line, 1 + utf8.RuneCountInString(s[lineStart:off])
}

func (p *xmlParser) markup() error {
	s, at := p.src, p.pos
	if at+1 >= len(s) {
		return p.eof("markup", at)
	}
	switch s[at+1] {
	case '/':
		return p.endTag()
	case '?':
		return p.procInst()
	case '!':
		if at+2 >= len(s) {
			return p.eof("markup", at)
		}
		switch s[at+2] {
		case '-':
			return p.comment()
		case '[':
			return p.cdata()
		}
		return p.directive()
	}
	return p.startTag()
}

func (p *xmlParser) startTag() error {
	s, at := p.src, p.pos
	p.pos++
	name, colon, err := p.qname("expected element name after <", "")
	if err != nil {
		return err
	}
	p.tag = p.tag[:0]
	selfClosing := false
	prefixed := colon > 0 // a prefix in the tag: checkNamespaces has work
	for {
		p.skipSpace()
		if p.pos >= len(s) {
			return p.eof("start tag <"+name+">", at)
		}
		c := s[p.pos]
		if c == '>' {
			p.pos++
			break
		}
		if c == '/' {
			if p.pos+1 >= len(s) {
				return p.eof("start tag <"+name+">", at)
			}
			if s[p.pos+1] != '>' {
				return p.errAt(p.pos, "expected /> in element <%s>", name)
			}
			p.pos += 2
			selfClosing = true
			break
		}
		aAt := p.pos
		aName, aColon, err := p.qname("expected attribute name in element", name)
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(s) {
			return p.eof("start tag <"+name+">", at)
		}
		if s[p.pos] != '=' {
			return p.errAt(p.pos, "attribute %s in element <%s> has no value (= expected)", aName, name)
		}
		p.pos++
		p.skipSpace()
		if p.pos >= len(s) {
			return p.eof("start tag <"+name+">", at)
		}
		if q := s[p.pos]; q != '"' && q != '\'' {
			return p.errAt(p.pos, "value of attribute %s in element <%s> is not quoted", aName, name)
		}
		p.pos++
		v, err := p.chars(s[p.pos-1], aAt)
		if err != nil {
			return err
		}
		p.tag = append(p.tag, rawAttr{name: aName, colon: aColon, at: aAt, val: v})
		prefixed = prefixed || aColon > 0
	}
	if len(p.tag) > 1 {
		if err := p.checkDuplicates(name); err != nil {
			return err
		}
	}
	if len(p.open) == 0 {
		if p.roots > 0 {
			return p.errAt(at, "more than one document element: <%s> follows the end of the first", name)
		}
		p.roots++
	}
	if len(p.open) >= maxXMLDepth {
		return p.errAt(at, "elements nested deeper than %d levels", maxXMLDepth)
	}

	var e *etree.Element
	var node, nsTop int32
	// checkNamespaces once the tag's declarations are in scope, and only
	// for a tag that has a prefix: most have none.
	if p.flat != nil {
		node, nsTop = p.docElement(name, colon)
		if prefixed {
			if err := p.checkNamespaces(name, colon, at); err != nil {
				return err
			}
			if err := p.checkExpandedNames(name); err != nil {
				return err
			}
		}
		if selfClosing {
			p.docClose(node, nsTop)
			return nil
		}
	} else {
		nsTop = int32(len(p.prefixes))
		if prefixed {
			p.declare()
			if err := p.checkNamespaces(name, colon, at); err != nil {
				return err
			}
			if err := p.checkExpandedNames(name); err != nil {
				return err
			}
		}
		e = p.element(name, colon)
		p.kids = append(p.kids, e)
		if selfClosing {
			e.Child = []etree.Token{}
			p.prefixes = p.prefixes[:nsTop]
			return nil
		}
	}
	// Field by field: a composite literal is built on the stack and copied
	// with wide loads that stall on its narrow stores.
	n := len(p.open)
	if n == cap(p.open) {
		p.open = append(p.open, openElement{})
	}
	p.open = p.open[:n+1]
	o := &p.open[n]
	o.e, o.name, o.kids, o.at, o.node, o.ns = e, name, len(p.kids), at, node, nsTop
	// Most elements are <name>text</name>: their text and end tag are read
	// here, as the main loop would read them, without its dispatch.
	if p.pos < len(s) && s[p.pos] != '<' {
		textAt := p.pos
		t, err := p.chars('<', textAt)
		if err != nil {
			return err
		}
		i := p.pos
		end := i + 2 + len(name)
		closed := end < len(s) && s[i+1] == '/' && s[end] == '>' && s[i+2:end] == name
		if closed && p.flat != nil {
			p.docLeaf(docText, p.docText(t), docSpan{})
			p.pos = end + 1
			p.open = p.open[:n]
			p.docClose(node, nsTop)
			return nil
		}
		if closed && etreeMirrored {
			// What addText and adopt would do, knowing the element has
			// exactly this child.
			cd := p.text(t)
			m := (*etreeCharData)(unsafe.Pointer(cd))
			m.parent, m.index = e, 0
			if len(p.tokens) == 0 {
				p.tokens = make([]etree.Token, p.slabItems(p.tokensEst, p.tokensMade, int(unsafe.Sizeof(etree.Token(nil))), 1, 16))
			}
			p.tokensMade++
			e.Child = p.tokens[:1:1]
			e.Child[0] = cd
			p.tokens = p.tokens[1:]
			p.pos = end + 1
			p.open = p.open[:n]
			p.prefixes = p.prefixes[:nsTop]
			return nil
		}
		if err := p.addText(t, textAt); err != nil {
			return err
		}
		if closed {
			p.pos = end + 1
			p.open = p.open[:n]
			p.close(o)
		}
	}
	return nil
}

// element makes the element for the start tag just read, with its
// attributes in a slice carved from the attribute slab.
func (p *xmlParser) element(name string, colon int) *etree.Element {
	if len(p.elems) == 0 {
		p.elems = make([]etree.Element, p.slabItems(p.elemsEst, p.elemsMade, int(unsafe.Sizeof(etree.Element{})), 1, 32))
	}
	p.elemsMade++
	e := &p.elems[0]
	p.elems = p.elems[1:]
	if etreeMirrored {
		m := (*etreeElement)(unsafe.Pointer(e))
		m.parent, m.index = p.place()
	}
	e.Space, e.Tag = splitQName(name, colon)
	n := len(p.tag)
	if n == 0 {
		e.Attr = []etree.Attr{}
		return e
	}
	if len(p.attrs) < n {
		// Most elements have no attributes: start small, then double.
		size := max(min(max(p.attrsNext, 16), slabBytes/int(unsafe.Sizeof(etree.Attr{}))), n)
		p.attrs = make([]etree.Attr, size)
		p.attrsNext = 2 * size
	}
	all := p.attrs[:n:n]
	p.attrs = p.attrs[n:]
	if etreeMirrored {
		for i, ra := range p.tag {
			a := &all[i]
			space, key := splitQName(ra.name, ra.colon)
			fillAttr(a, e, space, key, ra.val.s)
			if ra.val.decoded() {
				p.fixes = append(p.fixes, textFix{dst: &a.Value, off: ra.val.off, end: ra.val.end})
			}
		}
		e.Attr = all
		return e
	}
	for i, ra := range p.tag {
		// CreateAttr is the only way to set an attribute's (unexported)
		// element, which Attr.NamespaceURI needs. Handing it an empty slice
		// that has room makes its append fill all[i] in place, so it neither
		// allocates nor rescans the attributes before it.
		e.Attr = all[i:i]
		a := e.CreateAttr("", "")
		a.Space, a.Key = splitQName(ra.name, ra.colon)
		if ra.val.decoded() {
			p.fixes = append(p.fixes, textFix{dst: &a.Value, off: ra.val.off, end: ra.val.end})
		} else {
			a.Value = ra.val.s
		}
	}
	e.Attr = all
	return e
}

// checkDuplicates refuses a start tag that names an attribute twice.
func (p *xmlParser) checkDuplicates(elem string) error {
	n := len(p.tag)
	if n < 2 {
		return nil
	}
	dup := func(a rawAttr) error {
		err := p.errAt(a.at, "duplicate attribute %s in element <%s>", a.name, elem)
		err.stricter = true
		return err
	}
	if n <= 16 {
		for i := 1; i < n; i++ {
			for j := 0; j < i; j++ {
				if p.tag[i].name == p.tag[j].name {
					return dup(p.tag[i])
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, n)
	for _, a := range p.tag {
		if _, ok := seen[a.name]; ok {
			return dup(a)
		}
		seen[a.name] = struct{}{}
	}
	return nil
}

// declare puts the prefixes the start tag just read declares in scope, for
// a tree (a Doc keeps its own scope, docElement).
func (p *xmlParser) declare() {
	for _, ra := range p.tag {
		if ra.colon == len("xmlns") && ra.name[:ra.colon] == "xmlns" {
			p.prefixes = append(p.prefixes, nsPrefix{prefix: ra.name[ra.colon+1:], uri: ra.val})
		}
	}
}

// checkNamespaces refuses, in the start tag just read (its declarations in
// scope), what Namespaces in XML 1.0 makes malformed: a prefix no
// declaration binds, and a prefix declared empty (xmlns:p=""). encoding/xml
// lets both through, and etree then finds no namespace for the name: an
// element that named one namespace was read as in none. The xml prefix is
// bound without a declaration.
func (p *xmlParser) checkNamespaces(name string, colon, at int) error {
	for _, ra := range p.tag {
		if ra.colon == len("xmlns") && ra.name[:ra.colon] == "xmlns" && !ra.val.decoded() && ra.val.s == "" {
			err := p.errAt(ra.at, "namespace prefix %s in element <%s> is declared empty (xmlns:%[1]s=\"\"), which XML 1.0 does not allow", ra.name[ra.colon+1:], name)
			err.stricter = true
			return err
		}
	}
	if space, _ := splitQName(name, colon); space != "" && !p.bound(space) {
		err := p.errAt(at+1, "element <%s>: namespace prefix %s is not declared", name, space)
		err.stricter = true
		return err
	}
	for _, ra := range p.tag {
		if space, _ := splitQName(ra.name, ra.colon); space != "" && space != "xmlns" && !p.bound(space) {
			err := p.errAt(ra.at, "attribute %s in element <%s>: namespace prefix %s is not declared", ra.name, name, space)
			err.stricter = true
			return err
		}
	}
	return nil
}

// bound reports whether a namespace prefix is declared in scope.
func (p *xmlParser) bound(prefix string) bool {
	if prefix == "xml" {
		return true
	}
	if p.flat != nil {
		// Declarations of an empty URI were refused: index 0 is "none".
		return p.docNS(prefix) != 0
	}
	for i := len(p.prefixes) - 1; i >= 0; i-- {
		if p.prefixes[i].prefix == prefix {
			return true
		}
	}
	return false
}

// xmlNamespace is what the xml prefix is bound to without a declaration.
const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// checkExpandedNames refuses, in the start tag just read (its prefixes
// checked bound), two attributes whose prefixes differ but are bound to one
// namespace URI: Namespaces in XML 1.0 §6.3 makes that the same attribute
// twice, as libxml2 says, and encoding/xml and etree keep both, so that
// Busbar could read one and a backend the other. URIs are only looked up
// for a pair of prefixed attributes of one local name, which few tags have.
func (p *xmlParser) checkExpandedNames(elem string) error {
	for i := 1; i < len(p.tag); i++ {
		a := &p.tag[i]
		aSpace, aLocal := splitQName(a.name, a.colon)
		if aSpace == "" || aSpace == "xmlns" {
			continue
		}
		for j := 0; j < i; j++ {
			b := &p.tag[j]
			bSpace, bLocal := splitQName(b.name, b.colon)
			if bSpace == "" || bSpace == "xmlns" || bLocal != aLocal {
				continue
			}
			// Distinct names (checkDuplicates): the prefixes differ.
			if uri := p.nsURI(bSpace); uri == p.nsURI(aSpace) {
				err := p.errAt(a.at, "attributes %s and %s in element <%s> have the same expanded name: %s and %s are both bound to namespace %s (Namespaces in XML 1.0, 6.3)", b.name, a.name, elem, bSpace, aSpace, uri)
				err.stricter = true
				return err
			}
		}
	}
	return nil
}

// nsURI is the namespace URI a bound prefix (checkNamespaces) has in the
// start tag just read, its declarations in scope.
func (p *xmlParser) nsURI(prefix string) string {
	if prefix == "xml" {
		return xmlNamespace
	}
	if p.flat != nil {
		return p.docStr(p.uris[p.docNS(prefix)-1])
	}
	for i := len(p.prefixes) - 1; i >= 0; i-- {
		if d := p.prefixes[i]; d.prefix == prefix {
			if d.uri.decoded() {
				return string(p.dec[d.uri.off:d.uri.end])
			}
			return d.uri.s
		}
	}
	return ""
}

func (p *xmlParser) endTag() error {
	s, at := p.src, p.pos
	p.pos += 2
	// The common case, </name> closing the open <name>, is taken on sight:
	// the name was checked at the start tag, and '>' ends a name.
	if n := len(p.open); n > 0 {
		o := &p.open[n-1]
		if end := p.pos + len(o.name); end < len(s) && s[end] == '>' && s[p.pos:end] == o.name {
			p.pos = end + 1
			p.open = p.open[:n-1]
			p.close(o)
			return nil
		}
	}
	name, _, err := p.qname("expected element name after </", "")
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos >= len(s) {
		return p.eof("end tag </"+name+">", at)
	}
	if s[p.pos] != '>' {
		return p.errAt(p.pos, "invalid characters between </%s and >", name)
	}
	p.pos++
	n := len(p.open)
	if n == 0 {
		return p.errAt(at, "unexpected end element </%s>", name)
	}
	o := p.open[n-1]
	if o.name != name {
		line, col := position(s, o.at)
		return p.errAt(at, "element <%s> closed by </%s> (<%s> opened at line %d, column %d)", o.name, name, o.name, line, col)
	}
	p.open = p.open[:n-1]
	p.close(&o)
	return nil
}

// close finishes the element that o opened, its end tag just read.
func (p *xmlParser) close(o *openElement) {
	if p.flat != nil {
		p.docClose(o.node, o.ns)
		return
	}
	p.prefixes = p.prefixes[:o.ns]
	p.adopt(o.e, o.kids)
}

// adopt gives e the children waiting in kids[from:], in a slice of exactly
// that length carved from the token slab.
func (p *xmlParser) adopt(e *etree.Element, from int) {
	kids := p.kids[from:]
	n := len(kids)
	if n == 0 {
		e.Child = []etree.Token{}
	} else {
		if len(p.tokens) < n {
			p.tokens = make([]etree.Token, p.slabItems(p.tokensEst, p.tokensMade, int(unsafe.Sizeof(etree.Token(nil))), n, 16))
		}
		p.tokensMade += n
		if etreeMirrored {
			// Elements and text already point to e (see place).
			e.Child = p.tokens[:n:n]
			copy(e.Child, kids)
			if p.lastOther >= from {
				adoptOthers(e)
			}
		} else {
			e.Child = p.tokens[:0:n]
			for _, k := range kids {
				e.AddChild(k) // sets the parent and the index; appends in place
			}
		}
		p.tokens = p.tokens[n:]
	}
	// The adopted tokens stay behind in kids' spare capacity until appends
	// overwrite them or release clears the scratch: clearing them here too
	// cost a pass per element.
	p.kids = p.kids[:from]
}

// place returns the parent and the index in it of the next child read: the
// innermost open element, or the document.
func (p *xmlParser) place() (*etree.Element, int) {
	if n := len(p.open); n > 0 {
		o := &p.open[n-1]
		return o.e, len(p.kids) - o.kids
	}
	return &p.doc.Element, len(p.kids)
}

// addOther adds a comment, processing instruction or directive, whose parent
// adopt sets.
func (p *xmlParser) addOther(t etree.Token) {
	p.lastOther = len(p.kids)
	p.kids = append(p.kids, t)
}

func (p *xmlParser) charData() error {
	at := p.pos
	t, err := p.chars('<', at)
	if err != nil {
		return err
	}
	return p.addText(t, at)
}

// addText adds character data (text or a CDATA section) to the open element,
// or checks that text between top-level markup is only whitespace.
func (p *xmlParser) addText(t textRef, at int) error {
	if len(p.open) == 0 && !(isXMLSpace(t.s) && isXMLSpace(p.dec[t.off:t.end])) {
		if !t.decoded() {
			at += len(t.s) - len(strings.TrimLeft(t.s, " \t\r\n"))
		}
		return p.errAt(at, "text outside the document element")
	}
	if p.flat != nil {
		p.docLeaf(docText, p.docText(t), docSpan{})
		return nil
	}
	cd := p.text(t)
	if etreeMirrored {
		m := (*etreeCharData)(unsafe.Pointer(cd))
		m.parent, m.index = p.place()
	}
	p.kids = append(p.kids, cd)
	return nil
}

// text makes the node for character data, carved from the text slab.
func (p *xmlParser) text(t textRef) *etree.CharData {
	if len(p.texts) == 0 {
		p.texts = make([]etree.CharData, p.slabItems(p.textsEst, p.textsMade, int(unsafe.Sizeof(etree.CharData{})), 1, 32))
	}
	p.textsMade++
	cd := &p.texts[0]
	p.texts = p.texts[1:]
	if t.decoded() {
		p.fixes = append(p.fixes, textFix{cd: cd, off: t.off, end: t.end})
	} else {
		cd.SetData(t.s)
	}
	return cd
}

// isXMLSpace is etree's idea of whitespace-only text.
func isXMLSpace[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// textByte marks the bytes chars must look at; the others are copied as they
// are.
var textByte = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = c != '\t' && c != '\n'
	}
	for _, c := range "<&]\r\"'" {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// chars reads character data up to delim: '<' for text (which may also end
// the input), a quote for an attribute value (the closing quote is consumed).
// Entities and character references are decoded and line ends become \n;
// only then is the text copied, into dec. from is where the construct began,
// for errors.
func (p *xmlParser) chars(delim byte, from int) (textRef, error) {
	s := p.src
	start, i := p.pos, p.pos
	decoded, lit := false, start // lit: start of the run not yet copied into dec
	var off int
	for {
		for i < len(s) && !textByte[s[i]] {
			i++
		}
		if i >= len(s) {
			if delim != '<' {
				return textRef{}, p.eof("attribute value", from)
			}
			break
		}
		c := s[i]
		if c == delim {
			break
		}
		switch {
		case c == '"' || c == '\'':
			i++
		case c == ']':
			if delim == '<' && strings.HasPrefix(s[i:], "]]>") {
				return textRef{}, p.errAt(i, "unescaped ]]> not in CDATA section")
			}
			i++
		case c == '<':
			return textRef{}, p.errAt(i, "unescaped < inside an attribute value")
		case c == '&', c == '\r':
			if !decoded {
				decoded, off = true, len(p.dec)
			}
			p.dec = append(p.dec, s[lit:i]...)
			if c == '\r' {
				p.dec = append(p.dec, '\n')
				i++
				if i < len(s) && s[i] == '\n' {
					i++
				}
			} else {
				next, err := p.entity(i)
				if err != nil {
					return textRef{}, err
				}
				i = next
			}
			lit = i
		case c < utf8.RuneSelf:
			return textRef{}, p.errAt(i, "illegal character code %U", rune(c))
		default:
			size, err := p.checkRune(i)
			if err != nil {
				return textRef{}, err
			}
			i += size
		}
	}
	p.pos = i
	if delim != '<' {
		p.pos++ // the closing quote
	}
	if !decoded {
		return textRef{s: s[start:i]}, nil
	}
	p.dec = append(p.dec, s[lit:i]...)
	return textRef{off: off, end: len(p.dec)}, nil
}

// checkRune checks the non-ASCII character at src[i] and returns its size.
func (p *xmlParser) checkRune(i int) (int, error) {
	r, size := utf8.DecodeRuneInString(p.src[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, p.errAt(i, "invalid UTF-8: byte %d is 0x%02X", i, p.src[i])
	}
	if !isInCharacterRange(r) {
		return 0, p.errAt(i, "illegal character code %U", r)
	}
	return size, nil
}

// isInCharacterRange is XML 1.0's Char production.
func isInCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

var predefinedEntities = [...]struct {
	ref string // without the &
	r   byte
}{{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"apos;", '\''}, {"quot;", '"'}}

// entity decodes the reference at src[i] ('&') into dec and returns the
// offset after it. Only the predefined entities and character references of
// XML characters exist here: entities declared in a DOCTYPE are not expanded.
func (p *xmlParser) entity(i int) (int, error) {
	s := p.src
	j := i + 1
	if j < len(s) && s[j] == '#' {
		j++
		base := uint32(10)
		if j < len(s) && s[j] == 'x' {
			base = 16
			j++
		}
		digits := j
		var n uint32
		for ; j < len(s); j++ {
			d := digitValue(s[j])
			if d >= base {
				break
			}
			n = min(n*base+d, utf8.MaxRune+1) // saturate: big is big
		}
		if j >= len(s) {
			return 0, p.eof("character reference", i)
		}
		if s[j] != ';' || j == digits || n > utf8.MaxRune {
			return 0, p.errAt(i, "invalid character reference %s", refText(s[i:j+1]))
		}
		r := rune(n)
		if !isInCharacterRange(r) {
			err := p.errAt(i, "character reference %s names illegal character code %U", s[i:j+1], r)
			err.stricter = r >= 0xD800 && r <= 0xDFFF // encoding/xml made these U+FFFD
			return 0, err
		}
		p.dec = utf8.AppendRune(p.dec, r)
		return j + 1, nil
	}
	for _, e := range predefinedEntities {
		if strings.HasPrefix(s[j:], e.ref) {
			p.dec = append(p.dec, e.r)
			return j + len(e.ref), nil
		}
	}
	k := j
	for k < len(s) && (s[k] >= utf8.RuneSelf || nameByte[s[k]]) {
		k++
	}
	if k >= len(s) {
		return 0, p.eof("entity reference", i)
	}
	if k == j && s[k] != ';' {
		return 0, p.errAt(i, "unescaped & (a literal & is written &amp;)")
	}
	if s[k] == ';' {
		k++
	}
	return 0, p.errAt(i, "invalid character entity %s (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)", refText(s[i:k]))
}

func refText(ref string) string {
	if !strings.HasSuffix(ref, ";") {
		return ref + " (no semicolon)"
	}
	return ref
}

func digitValue(c byte) uint32 {
	switch {
	case '0' <= c && c <= '9':
		return uint32(c - '0')
	case 'a' <= c && c <= 'f':
		return uint32(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return uint32(c-'A') + 10
	}
	return 99
}

// plain checks src[start:end] (a comment, CDATA section, processing
// instruction) for characters XML does not allow, and rewrites line ends.
func (p *xmlParser) plain(start, end int) (textRef, error) {
	s := p.src
	decoded, lit, off := false, start, 0
	for i := start; i < end; {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			size, err := p.checkRune(i)
			if err != nil {
				return textRef{}, err
			}
			i += size
		case c == '\r':
			if !decoded {
				decoded, off = true, len(p.dec)
			}
			p.dec = append(p.dec, s[lit:i]...)
			p.dec = append(p.dec, '\n')
			i++
			if i < end && s[i] == '\n' {
				i++
			}
			lit = i
		case c < 0x20 && c != '\t' && c != '\n':
			return textRef{}, p.errAt(i, "illegal character code %U", rune(c))
		default:
			i++
		}
	}
	if !decoded {
		return textRef{s: s[start:end]}, nil
	}
	p.dec = append(p.dec, s[lit:end]...)
	return textRef{off: off, end: len(p.dec)}, nil
}

// markStricter flags an error from plain as one encoding/xml would not have
// reported (it does not check comments, PIs or DOCTYPE).
func markStricter(err error) error {
	if e, ok := err.(*xmlSyntaxError); ok {
		e.stricter = true
	}
	return err
}

// set stores t into *dst now or, if it was rewritten, once dec is a string.
func (p *xmlParser) set(dst *string, t textRef) {
	if t.decoded() {
		p.fixes = append(p.fixes, textFix{dst: dst, off: t.off, end: t.end})
	} else {
		*dst = t.s
	}
}

func (p *xmlParser) cdata() error {
	s, at := p.src, p.pos
	const open = "<![CDATA["
	if !strings.HasPrefix(s[at:], open) {
		if strings.HasPrefix(open, s[at:]) {
			return p.eof("CDATA section", at)
		}
		return p.errAt(at, "invalid <![ sequence (only <![CDATA[ is allowed)")
	}
	start := at + len(open)
	n := strings.Index(s[start:], "]]>")
	if n < 0 {
		return p.eof("CDATA section", at)
	}
	t, err := p.plain(start, start+n)
	if err != nil {
		return err
	}
	p.pos = start + n + len("]]>")
	return p.addText(t, start)
}

func (p *xmlParser) comment() error {
	s, at := p.src, p.pos
	if at+3 >= len(s) {
		return p.eof("comment", at)
	}
	if s[at+3] != '-' {
		return p.errAt(at, "invalid sequence <!- not part of <!--")
	}
	start := at + 4
	n := strings.Index(s[start:], "--")
	if n < 0 || start+n+2 >= len(s) {
		return p.eof("comment", at)
	}
	end := start + n
	if s[end+2] != '>' {
		return p.errAt(end, `invalid sequence "--" not allowed in comments`)
	}
	t, err := p.plain(start, end)
	if err != nil {
		return markStricter(err)
	}
	p.pos = end + 3
	if p.flat != nil {
		p.docLeaf(docComment, p.docText(t), docSpan{})
		return nil
	}
	c := etree.NewComment("")
	p.set(&c.Data, t)
	p.addOther(c)
	return nil
}

func (p *xmlParser) procInst() error {
	s, at := p.src, p.pos
	p.pos += 2
	target, _, err := p.name()
	if err != nil {
		return err
	}
	if target == "" {
		return p.errAt(p.pos, "expected target name after <?")
	}
	if strings.EqualFold(target, "xml") {
		if err := p.declarationAt(target, at); err != nil {
			return err
		}
	}
	p.skipSpace()
	start := p.pos
	n := strings.Index(s[start:], "?>")
	if n < 0 {
		return p.eof("processing instruction <?"+target, at)
	}
	end := start + n
	t, err := p.plain(start, end)
	if err != nil {
		return markStricter(err)
	}
	p.pos = end + 2
	if target == "xml" {
		if err := p.declaration(s[start:end], at); err != nil {
			return err
		}
		if p.flat != nil {
			// Again over the input as it is after a charset switch (the
			// checks passed): t must be a piece of p.src as it is now.
			t, _ = p.plain(start, end)
		}
	}
	if p.flat != nil {
		if target != "xml" && p.flat.procInst == 0 {
			p.flat.procInst = int32(len(p.flat.nodes))
		}
		// By offset: target is in the input as it was before a switch.
		p.docLeaf(docProcInst, docSpan{uint32(at + 2), uint32(at + 2 + len(target))}, p.docText(t))
		return nil
	}
	pi := etree.NewProcInst(target, "")
	p.set(&pi.Inst, t)
	p.addOther(pi)
	return nil
}

// declarationAt refuses an XML declaration anywhere but at the very start
// of the document (after a byte-order mark), and the other spellings of its
// reserved target: encoding/xml reads <?xml …?> anywhere, even after the
// document element, where a charset switch would re-read what follows.
func (p *xmlParser) declarationAt(target string, at int) error {
	var err *xmlSyntaxError
	switch {
	case target != "xml":
		err = p.errAt(at, "processing instruction target %s is reserved by XML", target)
	case at != 0 && (at != len("\uFEFF") || !strings.HasPrefix(p.src, "\uFEFF")):
		err = p.errAt(at, "the XML declaration <?xml …?> must be at the very start of the document, before any whitespace, comment or element")
	default:
		return nil
	}
	err.stricter = true
	return err
}

// declaration applies the XML declaration (at the start: declarationAt) as
// encoding/xml does: only version 1.0, and without a charset from the
// transport, the rest of the input is decoded from the declared encoding.
func (p *xmlParser) declaration(content string, at int) error {
	if v := procInstParam("version", content); v != "" && v != "1.0" {
		return p.errAt(at, "unsupported XML version %q; only version 1.0 is supported", v)
	}
	enc := procInstParam("encoding", content)
	if !p.honourDecl || enc == "" || strings.EqualFold(enc, "utf-8") || isUTF8(enc) {
		return nil
	}
	// Offsets up to here are the input's: nothing before the declaration
	// was decoded.
	rest, err := decodeCharsetAt([]byte(p.src[p.pos:]), enc, p.pos)
	if errors.Is(err, errUnknownCharset) {
		return p.errAt(at, "unsupported encoding %q in the XML declaration", enc)
	}
	if err != nil {
		return err
	}
	if p.flat != nil {
		return p.docSwitch(rest)
	}
	p.src = p.src[:p.pos] + string(rest)
	return nil
}

// procInstParam returns the quoted value of param= in a processing
// instruction, matching encoding/xml's reading (the first param= followed by
// a quote, up to the same quote), so both accept the same declarations.
func procInstParam(param, s string) string {
	// indexEq is strings.Index(sub, param+"="), without building that.
	indexEq := func(sub string) int {
		for from := 0; ; {
			k := strings.Index(sub[from:], param)
			if k < 0 {
				return -1
			}
			k += from
			if e := k + len(param); e < len(sub) && sub[e] == '=' {
				return k
			}
			from = k + 1
		}
	}
	n := len(param) + 1 // param=
	i := 0
	var quote byte
	for i < len(s) {
		sub := s[i:]
		k := indexEq(sub)
		if k < 0 || k+n >= len(sub) {
			return ""
		}
		i += k + n + 1
		if c := sub[k+n]; c == '\'' || c == '"' {
			quote = c
			break
		}
	}
	if quote == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], quote)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}

// directive reads <!DOCTYPE …> (or any other <!…>) into an etree Directive
// exactly as encoding/xml does: quoted text and nested <…> do not end it,
// comments inside become a space. Nothing in it is acted on.
func (p *xmlParser) directive() error {
	s, at := p.src, p.pos
	i := at + 2
	var buf []byte
	buf = append(buf, s[i])
	i++
	var quote byte
	depth := 0
	next := func() (byte, bool) {
		if i >= len(s) {
			return 0, false
		}
		c := s[i]
		i++
		return c, true
	}
	for {
		c, ok := next()
		if !ok {
			return p.eof("<!"+directiveName(s[at+2:]), at)
		}
		if quote == 0 && c == '>' && depth == 0 {
			break
		}
	handle:
		buf = append(buf, c)
		switch {
		case c == quote:
			quote = 0
		case quote != 0:
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			depth--
		case c == '<':
			const comment = "!--"
			for k := 0; k < len(comment); k++ {
				if c, ok = next(); !ok {
					return p.eof("<!"+directiveName(s[at+2:]), at)
				}
				if c != comment[k] {
					buf = append(buf, comment[:k]...)
					depth++
					goto handle
				}
			}
			buf = buf[:len(buf)-1] // the <
			n := strings.Index(s[i:], "-->")
			if n < 0 {
				return p.eof("comment", i-4)
			}
			i += n + 3
			buf = append(buf, ' ')
		}
	}
	// The checks encoding/xml leaves out, over what was read.
	if t, err := p.plain(at, i); err != nil {
		return markStricter(err)
	} else if t.decoded() {
		buf = bytes.ReplaceAll(bytes.ReplaceAll(buf, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	}
	p.pos = i
	if p.flat != nil {
		if p.flat.directive == 0 {
			p.flat.directive = int32(len(p.flat.nodes))
		}
		p.docLeaf(docDirective, p.docBytes(buf, s[at+2:i-1]), docSpan{})
		return nil
	}
	p.addOther(etree.NewDirective(string(buf)))
	return nil
}

func directiveName(s string) string {
	n := 0
	for n < len(s) && n < 20 && nameByte[s[n]] {
		n++
	}
	return s[:n]
}

func (p *xmlParser) skipSpace() {
	s := p.src
	for p.pos < len(s) {
		switch s[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

// nameByte: the ASCII bytes that may appear in a name; nameStart: those that
// may begin one. Non-ASCII characters are looked up in nameRuneOK.
var nameByte, nameStart = func() (b, s [256]bool) {
	for c := 0; c < 256; c++ {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		s[c] = letter || c == '_' || c == ':'
		b[c] = s[c] || '0' <= c && c <= '9' || c == '.' || c == '-'
	}
	return
}()

// nameClass sorts the bytes of a name for name's scan: nameASCII marks the
// ASCII name bytes, nameHigh every byte of a non-ASCII character (checked
// afterwards), nameColon the colon (also a name byte).
const (
	nameASCII = 1 << iota
	nameHigh
	nameColon
)

var nameClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= utf8.RuneSelf:
			t[c] = nameHigh
		case c == ':':
			t[c] = nameASCII | nameColon
		case nameByte[c]:
			t[c] = nameASCII
		}
	}
	return
}()

// name reads an XML name at p.pos: the run of ASCII name bytes and non-ASCII
// characters, then checked as encoding/xml checks it. "" with no error means
// no name starts here; the caller says what was expected. colon is where the
// first colon is in the name, or -1.
func (p *xmlParser) name() (name string, colon int, err error) {
	s, start := p.src, p.pos
	i := start
	var seen uint8
	for i < len(s) {
		c := nameClass[s[i]]
		if c == 0 {
			break
		}
		seen |= c
		i++
	}
	if i >= len(s) {
		return "", -1, p.errAt(i, "unexpected EOF after %q", s[start:])
	}
	if i == start {
		return "", -1, nil
	}
	name, colon = s[start:i], -1
	if seen&nameColon != 0 {
		colon = strings.IndexByte(name, ':')
	}
	if seen&nameHigh == 0 && nameStart[name[0]] {
		// All ASCII name bytes with a good first one: what isXMLName checks.
		p.pos = i
		return name, colon, nil
	}
	if !isXMLName(name) {
		return "", -1, p.errAt(start, "invalid XML name: %q", name)
	}
	p.pos = i
	return name, colon, nil
}

// qname reads an element or attribute name, which may hold one colon, and
// returns where that is (or -1). Without a name it reports expected, followed
// by <in> if in is set.
func (p *xmlParser) qname(expected, in string) (string, int, error) {
	at := p.pos
	name, colon, err := p.name()
	if err != nil {
		return "", -1, err
	}
	if name == "" {
		if in != "" {
			expected += " <" + in + ">"
		}
		return "", -1, p.errAt(at, "%s", expected)
	}
	if colon >= 0 && strings.IndexByte(name[colon+1:], ':') >= 0 {
		return "", -1, p.errAt(at, "invalid name %q: more than one colon", name)
	}
	return name, colon, nil
}

// splitQName splits prefix:local, its colon at i (-1: none), as encoding/xml
// does: a leading or trailing colon is part of the local name.
func splitQName(name string, i int) (space, local string) {
	if i > 0 && i < len(name)-1 {
		return name[:i], name[i+1:]
	}
	return "", name
}

func isXMLName(s string) bool {
	i := 0
	if c := s[0]; c < utf8.RuneSelf {
		if !nameStart[c] {
			return false
		}
		i = 1
	} else {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 || !nameRuneOK(r, true) {
			return false
		}
		i = size
	}
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++ // every ASCII byte of the run is a name byte
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !nameRuneOK(r, false) {
			return false
		}
		i += size
	}
	return true
}

// nameRunes caches encoding/xml's verdict on non-ASCII name characters, four
// bits per BMP character: known, may start a name, may follow in a name.
// encoding/xml's tables (XML 1.0 fourth edition letters) are unexported, and
// asking it once per character keeps both parsers in exact agreement without
// copying them. Characters above the BMP are never name characters there.
var nameRunes [0x10000 / 8]atomic.Uint32

func nameRuneOK(r rune, first bool) bool {
	if r > 0xFFFF {
		return false
	}
	w, shift := &nameRunes[r/8], uint(r%8)*4
	v := w.Load() >> shift & 0xF
	if v&1 == 0 {
		v = 1
		if encodingXMLAcceptsName(string(r)) {
			v |= 2
		}
		if encodingXMLAcceptsName("a" + string(r)) {
			v |= 4
		}
		w.Or(v << shift)
	}
	if first {
		return v&2 != 0
	}
	return v&4 != 0
}

func encodingXMLAcceptsName(name string) bool {
	_, err := xml.NewDecoder(strings.NewReader("<" + name + "/>")).RawToken()
	return err == nil
}
