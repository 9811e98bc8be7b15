package transforms

import (
	"fmt"
	"strings"
	"unsafe"
)

// ParseDoc parses an XML document into a Doc. It is ParseXML's scanner (the
// same checks, errors and charset handling: a UTF-8 byte-order mark wins
// over charsetLabel, which wins over the XML declaration) building flat arrays
// instead of a tree: Doc.Tree() is exactly the tree ParseXML returns.
//
// The Doc holds one copy of the input, so body may be reused once ParseDoc
// returns.
func ParseDoc(body []byte, charsetLabel string) (*Doc, error) {
	body, labelled, err := utf8Input(body, charsetLabel)
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than a document may hold (%d)", ErrNotXML, len(body), maxDocBytes)
	}
	scratch := xmlScratchPool.Get().(*xmlScratch)
	// The parser's dec is the Doc's src (below): the scratch gets its own
	// back before it is pooled, or the next document would write over this
	// one.
	dec := scratch.dec
	defer func() {
		scratch.dec = dec
		scratch.release()
	}()
	d := new(Doc)
	p := xmlParser{flat: d, honourDecl: !labelled, xmlScratch: scratch, lastOther: -1}
	p.docSource(body, nil)
	// A node per '<' (start tags, comments, …) is what a document of
	// elements holding text or elements has: the end tags' '<' make up for
	// the text nodes. Documents with more text than that grow the slice
	// once (docNew).
	d.nodes, p.reused = getNodes(1 + strings.Count(p.src, "<") + 16)
	d.nodes = append(d.nodes, docNode{parent: -1, kind: docDocument})
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotXML, err)
	}
	return d, nil
}

// maxDocBytes bounds a Doc's input so that every offset into its src fits a
// uint32: src is the input and the text decoded from it, and no input byte
// is decoded into more than two (a DOCTYPE with line ends is checked, then
// copied).
const maxDocBytes = 1 << 30

// nsBinding is a namespace declaration in scope while a Doc is read: the
// prefix it binds ("" for xmlns="…") and the index of its URI in Doc.uris.
type nsBinding struct {
	prefix docSpan
	uri    int32
}

// docSource makes the parser read head followed by tail (the input, or what
// precedes and follows a charset switch) from a buffer that is the Doc's
// src in the making: decoded text is appended to it (it is the parser's dec)
// after the input, so that every name and value is an offset into it, and
// src is one allocation unless decoding outgrows the room left here.
// Appending never moves what the input's offsets point to: a bigger buffer
// holds the input at the same offsets.
func (p *xmlParser) docSource(head []byte, tail []byte) {
	n := len(head) + len(tail)
	// The room is for what most documents decode (a few entities); one
	// with many, or with CRLF line ends in its text, grows it by appending.
	// (Appending the input to a smaller slice would spare zeroing it, but
	// over-allocate by append's growth rule.)
	buf := make([]byte, n, n+n/32+256)
	copy(buf[copy(buf, head):], tail)
	p.src = unsafe.String(unsafe.SliceData(buf), n)
	p.dec = buf
}

// docSwitch is declaration's charset switch for a Doc: the input from p.pos
// on is replaced by rest, decoded. What was decoded so far moves to after the
// new input, and the spans pointing to it with it.
func (p *xmlParser) docSwitch(rest []byte) error {
	oldLen := len(p.src)
	decoded := p.dec[oldLen:]
	if p.pos+len(rest) > maxDocBytes {
		return fmt.Errorf("%d bytes, more than a document may hold (%d)", p.pos+len(rest), maxDocBytes)
	}
	p.docSource(p.dec[:p.pos], rest)
	p.dec = append(p.dec, decoded...)
	delta := uint32(len(p.src) - oldLen) // modulo 2^32: it may be negative
	shift := func(s *docSpan) {
		if int(s.off) >= oldLen {
			s.off += delta
			s.end += delta
		}
	}
	d := p.flat
	for i := range d.nodes {
		shift(&d.nodes[i].name)
		shift(&d.nodes[i].space)
	}
	for i := range d.attrs {
		shift(&d.attrs[i].space)
		shift(&d.attrs[i].key)
		shift(&d.attrs[i].value)
	}
	for i := range p.uris {
		shift(&p.uris[i])
	}
	return nil
}

// docSpan is where s, a piece of src (or ""), is.
func (p *xmlParser) docSpan(s string) docSpan {
	if len(s) == 0 {
		return docSpan{}
	}
	off := uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(p.src))))
	return docSpan{off, off + uint32(len(s))}
}

// docText is where character data is: in the input, or decoded into dec,
// which for a Doc is src from len(input) on.
func (p *xmlParser) docText(t textRef) docSpan {
	if t.decoded() {
		return docSpan{uint32(t.off), uint32(t.end)}
	}
	return p.docSpan(t.s)
}

// docBytes is where b is: raw, the piece of the input it equals, or else a
// copy of it appended after the input.
func (p *xmlParser) docBytes(b []byte, raw string) docSpan {
	if string(b) == raw {
		return p.docSpan(raw)
	}
	off := len(p.dec)
	p.dec = append(p.dec, b...)
	return docSpan{uint32(off), uint32(len(p.dec))}
}

// docStr is the text of a span while the Doc is read (src is not made yet).
func (p *xmlParser) docStr(s docSpan) string {
	return unsafe.String(unsafe.SliceData(p.dec[s.off:s.end]), s.end-s.off)
}

// docNew appends a node, child of the innermost open element (or the
// document), and returns it and its index.
func (p *xmlParser) docNew(kind docKind) (*docNode, int32) {
	d := p.flat
	i := len(d.nodes)
	if i == cap(d.nodes) {
		// Room for the rest of the document if it goes on as it went.
		rest := int64(i) * int64(len(p.src)-p.pos) / int64(max(p.pos, 1))
		grown, reused := getNodes(i + int(min(rest, int64(len(p.src)))) + i/8 + 16)
		grown = append(grown, d.nodes...)
		putNodes(d.nodes)
		d.nodes, p.reused = grown, reused
	}
	d.nodes = d.nodes[:i+1]
	n := &d.nodes[i]
	if p.reused {
		*n = docNode{} // a pooled array holds the last document's nodes
	}
	// Field by field, as startTag fills openElement (see there).
	n.kind = kind
	n.end = int32(i) + 1
	if k := len(p.open); k > 0 {
		n.parent = p.open[k-1].node
	}
	return n, int32(i)
}

// docLeaf appends a node other than an element.
func (p *xmlParser) docLeaf(kind docKind, name, space docSpan) {
	n, _ := p.docNew(kind)
	n.name, n.space = name, space
}

// docElement appends the element of the start tag just read, with its
// attributes, its namespace declarations put in scope, and returns its index
// and the scope's size before them (for docClose).
func (p *xmlParser) docElement(name string, colon int) (node, nsTop int32) {
	d := p.flat
	nsTop = int32(len(p.ns))
	first := int32(len(d.attrs))
	if len(p.tag) > 0 {
		if d.attrs == nil {
			// Each attribute has a '=', so this is enough for the rest of
			// the document (an append grows it after a charset switch).
			d.attrs = getAttrs(max(len(p.tag), strings.Count(p.src[p.pos:], "=")+len(p.tag)))
		}
		for _, ra := range p.tag {
			space, key := splitQName(ra.name, ra.colon)
			a := docAttr{space: p.docSpan(space), key: p.docSpan(key), value: p.docText(ra.val)}
			// The declarations etree's NamespaceURI looks for.
			if space == "xmlns" {
				p.ns = append(p.ns, nsBinding{prefix: a.key, uri: p.docURI(a.value)})
				p.nsLast.scope = -1
			} else if space == "" && key == "xmlns" {
				p.ns = append(p.ns, nsBinding{uri: p.docURI(a.value)})
				p.nsLast.scope = -1
			}
			d.attrs = append(d.attrs, a)
		}
		// Only now: a prefix may be declared after the attribute using it.
		for i := first; i < int32(len(d.attrs)); i++ {
			if a := &d.attrs[i]; a.space.end > a.space.off {
				a.ns = p.docNS(p.docStr(a.space))
			}
		}
	}
	space, local := splitQName(name, colon)
	n, node := p.docNew(docElement)
	n.name, n.space = p.docSpan(local), p.docSpan(space)
	n.attr, n.nattr = first, int32(len(p.tag))
	n.ns = p.docNS(space)
	return node, nsTop
}

// docNS resolves a namespace prefix ("": the default namespace) as etree's
// NamespaceURI does, innermost declaration first, "" when none: the xml
// prefix is not special there either.
func (p *xmlParser) docNS(prefix string) int32 {
	// Runs of elements share a prefix and a scope: the last answer holds
	// while no declaration was added (which sets scope to -1) and none
	// taken away (which shortens ns).
	if last := &p.nsLast; last.scope == len(p.ns) && last.prefix == prefix {
		return last.uri
	}
	uri := int32(0)
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.docStr(p.ns[i].prefix) == prefix {
			uri = p.ns[i].uri
			break
		}
	}
	p.nsLast.scope, p.nsLast.prefix, p.nsLast.uri = len(p.ns), prefix, uri
	return uri
}

// docURI is the index in Doc.uris of the URI at s, added if new. Documents
// declare few namespaces, so a linear search is fastest.
func (p *xmlParser) docURI(s docSpan) int32 {
	uri := p.docStr(s)
	if uri == "" {
		return 0
	}
	for i, u := range p.uris {
		if p.docStr(u) == uri {
			return int32(i) + 1
		}
	}
	p.uris = append(p.uris, s)
	return int32(len(p.uris))
}

// docClose ends element node after its last descendant and takes its
// namespace declarations out of scope.
func (p *xmlParser) docClose(node, nsTop int32) {
	d := p.flat
	d.nodes[node].end = int32(len(d.nodes))
	p.ns = p.ns[:nsTop]
}

// noURIs is the uris of every Doc that declares no namespace (read only).
var noURIs = []string{""}

// docFinish completes the Doc once the input is read.
func (p *xmlParser) docFinish() {
	d := p.flat
	d.nodes[0].end = int32(len(d.nodes))
	d.src = unsafe.String(unsafe.SliceData(p.dec), len(p.dec))
	d.uris = noURIs
	if len(p.uris) > 0 {
		d.uris = make([]string, 1+len(p.uris))
		for i, u := range p.uris {
			d.uris[i+1] = d.str(u)
		}
	}
}
