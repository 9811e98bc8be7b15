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
type xmlNav struct {
	root *etree.Element // the payload element
	cur  etree.Token    // nil: the virtual root
	attr int            // index into cur's attributes, -1 when not on one
	// frag makes root itself the document node: its children are the
	// top-level nodes (a SOAP Header's blocks, see Expr.BoolIn).
	frag bool
}

var _ xpath.NodeNavigator = (*xmlNav)(nil)

func newXMLNav(root *etree.Element) *xmlNav { return &xmlNav{root: root, attr: -1} }

func (n *xmlNav) NodeType() xpath.NodeType {
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

func (n *xmlNav) MoveToRoot() { n.cur, n.attr = nil, -1 }

func (n *xmlNav) MoveToParent() bool {
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
	e, ok := n.cur.(*etree.Element)
	if !ok {
		return false
	}
	for i := n.attr + 1; i < len(e.Attr); i++ {
		if isNSDecl(e.Attr[i]) {
			continue
		}
		n.attr = i
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

func (n *xmlNav) MoveToFirst() bool {
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
	if !ok || o.root != n.root {
		return false
	}
	*n = *o
	return true
}
