package transforms

import (
	"strings"
	"sync"

	"github.com/beevik/etree"
)

// Doc is a parsed XML document held in flat arrays: nodes in document order,
// names and values as offsets into one string. Nothing in it but src and the
// slice headers is a pointer, so the collector never walks a document, and
// parsing one is a few allocations however large it is.
//
// Why not etree everywhere: an etree tree of a 60 KB SAP document is ~400 KB
// of pointer-linked nodes (an Element, a CharData and an interface slot per
// field), built with a write barrier per link and scanned by every GC cycle
// it lives through. Mappings only read their input, so they read a Doc
// (xmlNav's doc mode); a step that needs a tree (copy-of, identity, a
// validation, a step that edits the message) gets one from Element, built
// once per element asked for.
type Doc struct {
	// src holds every name and value: the input (as UTF-8) followed by the
	// text that had to be decoded (entities, line ends).
	src   string
	nodes []docNode // nodes[0] is the document node
	attrs []docAttr
	uris  []string // namespace URIs, uris[0] == ""
	// The first processing instruction other than the XML declaration, and
	// the first <!…> declaration (DOCTYPE), 0 when there is none: SOAP
	// forbids both, and its reader asks here instead of walking every node.
	procInst, directive int32

	mu    sync.Mutex
	trees map[int32]*docTree // what Element built, by element
}

type docKind uint8

const (
	docDocument docKind = iota
	docElement
	docText // character data and CDATA sections
	docComment
	docProcInst
	docDirective
)

// docSpan is src[off:end].
type docSpan struct{ off, end uint32 }

type docNode struct {
	// name is an element's local name, a processing instruction's target,
	// the data of text, a comment or a directive.
	name docSpan
	// space is an element's namespace prefix as written ("" none), a
	// processing instruction's instruction.
	space  docSpan
	parent int32 // -1 for the document node
	end    int32 // one past the last node of the subtree: children are i+1, nodes[i+1].end, …
	attr   int32 // an element's attributes are attrs[attr:attr+nattr]
	nattr  int32
	ns     int32 // an element's namespace URI, uris[ns] (as etree's NamespaceURI finds it)
	kind   docKind
}

// docAttr is an attribute as written, namespace declarations included (as in
// etree's Element.Attr, in the same order).
type docAttr struct {
	space, key, value docSpan
	ns                int32 // uris[ns] is the URI of a prefixed attribute's prefix, 0 when unprefixed
}

func (d *Doc) str(s docSpan) string { return d.src[s.off:s.end] }

// Root is the document element.
func (d *Doc) Root() int32 {
	for c := int32(1); c < d.nodes[0].end; c = d.nodes[c].end {
		if d.nodes[c].kind == docElement {
			return c
		}
	}
	return -1
}

// ProcInst is the target of the document's first processing instruction
// other than its XML declaration, "" when it has none.
func (d *Doc) ProcInst() string {
	if d.procInst == 0 {
		return ""
	}
	return d.local(d.procInst)
}

// Directive is the keyword of the document's first <!…> declaration
// ("DOCTYPE"), or its first characters when it has no keyword; "" when the
// document has none.
func (d *Doc) Directive() string {
	if d.directive == 0 {
		return ""
	}
	text := d.local(d.directive) // never empty: at least the byte after <!
	if name := directiveName(text); name != "" {
		return name
	}
	return strings.ToValidUTF8(text[:min(len(text), 8)], "")
}

func (d *Doc) local(i int32) string { return d.str(d.nodes[i].name) }

func (d *Doc) prefix(i int32) string { return d.str(d.nodes[i].space) }

func (d *Doc) uri(i int32) string { return d.uris[d.nodes[i].ns] }

// nsDecl reports whether attribute a declares a namespace (xmlns, xmlns:p).
func (d *Doc) nsDecl(a int32) bool {
	at := &d.attrs[a]
	if at.space.end > at.space.off {
		return d.str(at.space) == "xmlns"
	}
	return d.str(at.key) == "xmlns"
}

// text is the XPath string value of node i: an element's descendant text,
// the data of any other node.
func (d *Doc) text(i int32) string {
	n := &d.nodes[i]
	if n.kind != docElement && n.kind != docDocument {
		return d.str(n.name)
	}
	// The common leaf, <a>text</a>: a substring, no copy.
	if i+2 == n.end && d.nodes[i+1].kind == docText {
		return d.str(d.nodes[i+1].name)
	}
	var b strings.Builder
	for c := i + 1; c < n.end; c++ {
		if d.nodes[c].kind == docText {
			b.WriteString(d.str(d.nodes[c].name))
		}
	}
	return b.String()
}

// docTree is an etree copy of one element's subtree, under shallow copies of
// its ancestors (their attributes, so namespace prefixes resolve as in the
// document, and no other children).
type docTree struct {
	from int32
	toks []etree.Token // toks[j] is node from+j
}

// Element is an etree copy of element i, built on the first call and the
// same *etree.Element on every later one. Its ancestors are there (parents
// without their other children) so that NamespaceURI finds the prefixes the
// document declared above it.
func (d *Doc) Element(i int32) *etree.Element {
	return d.tree(i).toks[0].(*etree.Element)
}

// token is node j inside the tree built for element from.
func (d *Doc) token(from, j int32) etree.Token {
	return d.tree(from).toks[j-from]
}

func (d *Doc) tree(i int32) *docTree {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.trees[i]; t != nil {
		return t
	}
	var parent *etree.Element
	if p := d.nodes[i].parent; p > 0 {
		parent = d.shallowAncestors(p)
	}
	t := &docTree{from: i, toks: make([]etree.Token, d.nodes[i].end-i)}
	d.build(i, parent, t)
	if d.trees == nil {
		d.trees = make(map[int32]*docTree)
	}
	d.trees[i] = t
	return t
}

// shallowAncestors copies element p and its element ancestors without their
// children, and returns the copy of p.
func (d *Doc) shallowAncestors(p int32) *etree.Element {
	var parent *etree.Element
	if pp := d.nodes[p].parent; pp > 0 {
		parent = d.shallowAncestors(pp)
	}
	e := d.newElement(p)
	if parent != nil {
		parent.AddChild(e)
	}
	return e
}

func (d *Doc) newElement(i int32) *etree.Element {
	n := &d.nodes[i]
	e := etree.NewElement("")
	// Not through NewElement, which would split a local name with an edge
	// colon (<:a>) again.
	e.Space, e.Tag = d.str(n.space), d.str(n.name)
	e.Attr = make([]etree.Attr, 0, n.nattr)
	for a := n.attr; a < n.attr+n.nattr; a++ {
		at := &d.attrs[a]
		e.CreateAttr("", "") // the only way to set the attribute's element
		last := &e.Attr[len(e.Attr)-1]
		last.Space, last.Key, last.Value = d.str(at.space), d.str(at.key), d.str(at.value)
	}
	return e
}

// build copies node i's subtree into t under parent (nil: none).
func (d *Doc) build(i int32, parent *etree.Element, t *docTree) {
	n := &d.nodes[i]
	var tok etree.Token
	switch n.kind {
	case docElement:
		e := d.newElement(i)
		e.Child = make([]etree.Token, 0, d.childCount(i))
		if parent != nil {
			parent.AddChild(e)
		}
		t.toks[i-t.from] = e
		for c := i + 1; c < n.end; c = d.nodes[c].end {
			d.build(c, e, t)
		}
		return
	case docText:
		cd := etree.NewText("")
		cd.SetData(d.str(n.name)) // NewText leaves IsWhitespace false
		tok = cd
	case docComment:
		tok = etree.NewComment(d.str(n.name))
	case docProcInst:
		tok = etree.NewProcInst(d.str(n.name), d.str(n.space))
	case docDirective:
		tok = etree.NewDirective(d.str(n.name))
	}
	if parent != nil {
		parent.AddChild(tok)
	}
	t.toks[i-t.from] = tok
}

func (d *Doc) childCount(i int32) int {
	k := 0
	for c := i + 1; c < d.nodes[i].end; c = d.nodes[c].end {
		k++
	}
	return k
}

// Tree is the whole document as an etree document (built on every call).
func (d *Doc) Tree() *etree.Document {
	doc := etree.NewDocument()
	t := &docTree{from: 0, toks: make([]etree.Token, len(d.nodes))}
	for c := int32(1); c < d.nodes[0].end; c = d.nodes[c].end {
		d.build(c, &doc.Element, t)
	}
	return doc
}
