package transforms

import (
	"strings"

	"github.com/antchfx/xpath"
	"github.com/beevik/etree"
)

// xmlNav is an antchfx/xpath navigator over an etree tree. Its document root
// is virtual: the payload element (Message.Root) is the document element, so
// "/*" is the payload even when the element sits inside a SOAP envelope.
//
// Prefix() is always "": an unprefixed name test in an XPath matches an
// element or attribute by its local name whatever its namespace. A prefixed
// name test (declared in the mapping's namespaces) compares the namespace URI
// through NamespaceURL().
//
// The fields are in this order, and attr an int32, to keep a nav in 48
// bytes: every for-each item over XML points to one.
type xmlNav struct {
	root *etree.Element // the payload element
	cur  etree.Token    // nil: the virtual root

	// Doc mode (d != nil): the nav reads a Doc (xml_doc.go) and root and cur
	// are unused. dr is the payload element, dn the current node (-1: the
	// virtual root). attr indexes the element's attributes as in a tree.
	d *Doc

	attr   int32 // index into cur's attributes, -1 when not on one
	dn, dr int32
	// frag makes root itself the document node: its children are the
	// top-level nodes (a SOAP Header's blocks, see Expr.BoolIn).
	frag bool
}

func newDocNav(d *Doc, payload int32) *xmlNav {
	return &xmlNav{attr: -1, d: d, dn: -1, dr: payload}
}

// tree is n as a nav over etree nodes: itself, or for a doc-mode nav the
// same node in the etree copy of its payload (Doc.Element), for the code
// that works on etree (copy-of, identity, templates matching nodes).
func (n *xmlNav) tree() *xmlNav {
	if n.d == nil {
		return n
	}
	t := &xmlNav{root: n.d.Element(n.dr), attr: n.attr}
	if n.dn >= 0 {
		t.cur = n.d.token(n.dr, n.dn)
	}
	return t
}

// docNavigable reports whether a Doc node is one XPath sees (as navigable).
func docNavigable(k docKind) bool {
	return k == docElement || k == docText || k == docComment
}

var _ xpath.NodeNavigator = (*xmlNav)(nil)

func newXMLNav(root *etree.Element) *xmlNav { return &xmlNav{root: root, attr: -1} }

func (n *xmlNav) NodeType() xpath.NodeType {
	if n.d != nil {
		switch {
		case n.dn < 0:
			return xpath.RootNode
		case n.attr >= 0:
			return xpath.AttributeNode
		}
		switch n.d.nodes[n.dn].kind {
		case docElement:
			return xpath.ElementNode
		case docComment:
			return xpath.CommentNode
		}
		return xpath.TextNode
	}
	if n.cur == nil {
		return xpath.RootNode
	}
	if n.attr >= 0 {
		return xpath.AttributeNode
	}
	switch n.cur.(type) {
	case *etree.Element:
		return xpath.ElementNode
	case *etree.CharData:
		return xpath.TextNode
	case *etree.Comment:
		return xpath.CommentNode
	}
	return xpath.TextNode // processing instructions and directives are skipped when moving
}

func (n *xmlNav) LocalName() string {
	if n.d != nil {
		switch {
		case n.dn < 0 || n.d.nodes[n.dn].kind != docElement:
			return ""
		case n.attr >= 0:
			return n.d.str(n.d.attrs[n.d.nodes[n.dn].attr+n.attr].key)
		}
		return n.d.local(n.dn)
	}
	e, ok := n.cur.(*etree.Element)
	if !ok {
		return ""
	}
	if n.attr >= 0 {
		return e.Attr[n.attr].Key
	}
	return e.Tag
}

func (n *xmlNav) Prefix() string { return "" }

// NamespaceURL is used by antchfx/xpath for prefixed name tests.
func (n *xmlNav) NamespaceURL() string {
	if n.d != nil {
		switch {
		case n.dn < 0 || n.d.nodes[n.dn].kind != docElement:
			return ""
		case n.attr >= 0:
			return n.d.uris[n.d.attrs[n.d.nodes[n.dn].attr+n.attr].ns]
		}
		return n.d.uri(n.dn)
	}
	e, ok := n.cur.(*etree.Element)
	if !ok {
		return ""
	}
	if n.attr >= 0 {
		a := e.Attr[n.attr]
		if a.Space == "" {
			return "" // unprefixed attributes are in no namespace
		}
		return a.NamespaceURI()
	}
	return e.NamespaceURI()
}

func (n *xmlNav) Value() string {
	if n.d != nil {
		switch {
		case n.dn < 0:
			return n.d.text(n.dr)
		case n.attr >= 0:
			return n.d.str(n.d.attrs[n.d.nodes[n.dn].attr+n.attr].value)
		}
		return n.d.text(n.dn)
	}
	switch t := n.cur.(type) {
	case nil:
		return elementText(n.root)
	case *etree.Element:
		if n.attr >= 0 {
			return t.Attr[n.attr].Value
		}
		return elementText(t)
	case *etree.CharData:
		return t.Data
	case *etree.Comment:
		return t.Data
	}
	return ""
}

// elementText is the XPath string value of an element: all descendant text.
func elementText(e *etree.Element) string {
	// Fast path: a leaf with one text child.
	if len(e.Child) == 1 {
		if c, ok := e.Child[0].(*etree.CharData); ok {
			return c.Data
		}
	}
	var b strings.Builder
	appendText(&b, e)
	return b.String()
}

func appendText(b *strings.Builder, e *etree.Element) {
	for _, c := range e.Child {
		switch c := c.(type) {
		case *etree.CharData:
			b.WriteString(c.Data)
		case *etree.Element:
			appendText(b, c)
		}
	}
}

func (n *xmlNav) Copy() xpath.NodeNavigator { c := *n; return &c }

func (n *xmlNav) MoveToRoot() { n.cur, n.attr, n.dn = nil, -1, -1 }

func (n *xmlNav) MoveToParent() bool {
	if n.d != nil {
		switch {
		case n.attr >= 0:
			n.attr = -1
		case n.dn < 0:
			return false
		case n.dn == n.dr:
			n.dn = -1
		default:
			n.dn = n.d.nodes[n.dn].parent
		}
		return true
	}
	switch {
	case n.attr >= 0:
		n.attr = -1
		return true
	case n.cur == nil:
		return false
	case n.cur == etree.Token(n.root):
		n.cur = nil
		return true
	}
	p := n.cur.Parent()
	if p == nil {
		return false
	}
	if n.frag && p == n.root {
		n.cur = nil
		return true
	}
	n.cur = p
	return true
}

func (n *xmlNav) MoveToNextAttribute() bool {
	if n.d != nil {
		if n.dn < 0 {
			return false
		}
		e := &n.d.nodes[n.dn]
		if e.kind != docElement {
			return false
		}
		for i := n.attr + 1; i < e.nattr; i++ {
			if !n.d.nsDecl(e.attr + i) {
				n.attr = i
				return true
			}
		}
		return false
	}
	e, ok := n.cur.(*etree.Element)
	if !ok {
		return false
	}
	for i := int(n.attr) + 1; i < len(e.Attr); i++ {
		if isNSDecl(e.Attr[i]) {
			continue
		}
		n.attr = int32(i)
		return true
	}
	return false
}

func isNSDecl(a etree.Attr) bool {
	return a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")
}

// navigable reports whether a child token is a node XPath sees.
func navigable(t etree.Token) bool {
	switch t.(type) {
	case *etree.Element, *etree.CharData, *etree.Comment:
		return true
	}
	return false
}

func (n *xmlNav) MoveToChild() bool {
	if n.attr >= 0 {
		return false
	}
	if n.d != nil {
		if n.dn < 0 {
			n.dn = n.dr
			return true
		}
		for c := n.dn + 1; c < n.d.nodes[n.dn].end; c = n.d.nodes[c].end {
			if docNavigable(n.d.nodes[c].kind) {
				n.dn = c
				return true
			}
		}
		return false
	}
	if n.cur == nil && !n.frag {
		n.cur = n.root
		return true
	}
	e, ok := n.cur.(*etree.Element)
	if n.cur == nil {
		e, ok = n.root, true
	}
	if !ok {
		return false
	}
	for _, c := range e.Child {
		if navigable(c) {
			n.cur = c
			return true
		}
	}
	return false
}

func (n *xmlNav) siblings() []etree.Token {
	if n.cur == nil || n.attr >= 0 || n.cur == etree.Token(n.root) {
		return nil
	}
	p := n.cur.Parent()
	if p == nil {
		return nil
	}
	return p.Child
}

// docSiblings is the range of the doc-mode node's parent's children,
// empty at the virtual root, on an attribute and on the payload element.
func (n *xmlNav) docSiblings() (from, end int32) {
	if n.dn < 0 || n.attr >= 0 || n.dn == n.dr {
		return 0, 0
	}
	p := n.d.nodes[n.dn].parent
	return p + 1, n.d.nodes[p].end
}

func (n *xmlNav) MoveToFirst() bool {
	if n.d != nil {
		from, end := n.docSiblings()
		for c := from; c < end; c = n.d.nodes[c].end {
			if docNavigable(n.d.nodes[c].kind) {
				n.dn = c
				return true
			}
		}
		return false
	}
	sib := n.siblings()
	for _, c := range sib {
		if navigable(c) {
			n.cur = c
			return true
		}
	}
	return false
}

func (n *xmlNav) MoveToNext() bool {
	if n.d != nil {
		_, end := n.docSiblings()
		if end == 0 {
			return false
		}
		for c := n.d.nodes[n.dn].end; c < end; c = n.d.nodes[c].end {
			if docNavigable(n.d.nodes[c].kind) {
				n.dn = c
				return true
			}
		}
		return false
	}
	sib := n.siblings()
	for i := n.cur.Index() + 1; i < len(sib) && i > 0; i++ {
		if navigable(sib[i]) {
			n.cur = sib[i]
			return true
		}
	}
	return false
}

func (n *xmlNav) MoveToPrevious() bool {
	if n.d != nil {
		from, end := n.docSiblings()
		prev := int32(-1)
		for c := from; c < end && c != n.dn; c = n.d.nodes[c].end {
			if docNavigable(n.d.nodes[c].kind) {
				prev = c
			}
		}
		if prev < 0 {
			return false
		}
		n.dn = prev
		return true
	}
	sib := n.siblings()
	if sib == nil {
		return false
	}
	for i := n.cur.Index() - 1; i >= 0 && i < len(sib); i-- {
		if navigable(sib[i]) {
			n.cur = sib[i]
			return true
		}
	}
	return false
}

func (n *xmlNav) MoveTo(other xpath.NodeNavigator) bool {
	o, ok := other.(*xmlNav)
	if !ok || o.root != n.root || o.d != n.d || o.dr != n.dr {
		return false
	}
	*n = *o
	return true
}
