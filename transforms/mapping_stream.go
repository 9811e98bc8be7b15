package transforms

import (
	"strings"
	"unicode/utf8"

	"github.com/busbar/busbar/bus"
)

// Streaming XML output: a mapping whose shape allows it writes its output
// document straight into a byte buffer instead of building an etree tree
// and serialising it (most of the cost of an XML-producing mapping was
// allocating and collecting the tree's elements). The bytes are exactly
// what etree writes for the tree the other path builds, with
// bus.XMLWriteSettings; TestStreamMatchesTree holds the two paths to that.
//
// Whether a mapping streams is decided at load (streamable). What needs the
// tree falls back to it for the whole mapping: identity: and copy-of:
// (their output is tidied looking back at the copied nodes), and a choose:
// or call: among an element's children whose content adds attributes,
// declarations or text to that element (in the tree they land on the
// element after earlier children were written). A mapping with templates
// streams with its namespace declarations tidied as they are written: a
// declaration that repeats the one in scope is left out, as
// tidyNamespaces does to the tree.

// streamXML turns streaming off for tests that compare it with the tree.
var streamXML = true

// streamable reports whether m's XML output can be streamed.
func (m *Mapping) streamable() bool {
	if !streamXML || m.output != bus.FormatXML || m.body == nil || m.identity != nil || len(m.body.children) != 1 {
		return false
	}
	s := streamCheck{seen: map[*template]bool{}, tidy: m.tidyNS}
	return s.element(m.body.children[0])
}

// streamCheck walks a mapping's output nodes, each template's body once
// (templates may call themselves), and gives each element its xmlTags.
type streamCheck struct {
	seen map[*template]bool
	tidy bool
}

// xmlTags are an output element's fixed bytes, made at load.
type xmlTags struct {
	open  string // "<tag", attributes follow
	close string // "</tag>"
	// start is the whole start tag when nothing in it is computed (no
	// attributes, no nil, no choose: or call: as the content, no tidying);
	// decls are its namespace declarations as (prefix, URI), for the scope.
	start string
	decls [][2]string
	// attrs: the attributes may be written one by one as they are
	// computed, straight after open: nothing else lands in the start tag
	// (no declarations, no xsi:nil, no tidying) and no key repeats (which
	// would keep its first place with its last value).
	attrs bool
}

func newXMLTags(n *node, tidy bool) *xmlTags {
	t := &xmlTags{open: "<" + n.key, close: "</" + n.key + ">"}
	if n.nillable || n.spliceOnly || tidy {
		return t
	}
	if len(n.attrs) > 0 {
		t.attrs = len(n.nsDecl) == 0 && plainAttrKeys(n.attrs)
		return t
	}
	var c evalCtx // setAttr's rules for a declaration made twice
	c.collectDecls(n)
	b := []byte(t.open)
	for _, a := range c.attrs {
		p, _ := declPrefix(a[0])
		t.decls = append(t.decls, [2]string{p, a[1]})
		b = appendAttr(b, a[0], a[1])
	}
	t.start = string(append(b, '>'))
	return t
}

// plainAttrKeys: no key repeats and none declares a namespace.
func plainAttrKeys(attrs []*node) bool {
	for i, a := range attrs {
		if _, decl := declPrefix(a.key); decl {
			return false
		}
		for _, b := range attrs[:i] {
			if b.key == a.key {
				return false
			}
		}
	}
	return true
}

// element: n in element position (xmlElement).
func (s *streamCheck) element(n *node) bool {
	if n.seq {
		for _, item := range n.children {
			if !s.element(item) {
				return false
			}
		}
		return true
	}
	n.tags = newXMLTags(n, s.tidy)
	if n.spliceOnly {
		return s.splice(n.children[0].splice, false)
	}
	return s.children(n)
}

// children: the children of an element's content node (xmlFill).
func (s *streamCheck) children(n *node) bool {
	for _, ch := range n.children {
		if ch.splice == nil && !s.element(ch) || ch.splice != nil && !s.splice(ch.splice, true) {
			return false
		}
	}
	return true
}

// splice: the bodies a choose: or call: can produce; among other children
// (inContent) they may only add child elements.
func (s *streamCheck) splice(sp *splice, inContent bool) bool {
	var bodies []*node
	switch sp.kind {
	case spliceChoose:
		for _, b := range sp.branches {
			bodies = append(bodies, b.body)
		}
	case spliceCall:
		bodies = append(bodies, sp.tmpl.body)
	default: // copy-of
		return false
	}
	for _, body := range bodies {
		if body.seq || body.forEach != nil {
			return false
		}
		if inContent && (len(body.attrs) > 0 || len(body.nsDecl) > 0 || body.value != nil || body.isLiteral) {
			return false
		}
		if sp.kind == spliceCall {
			if s.seen[sp.tmpl] {
				continue // its content is checked (or being checked) already
			}
			s.seen[sp.tmpl] = true
		}
		if !s.children(body) {
			return false
		}
	}
	return true
}

// xmlBodyBytes is xmlBody writing into c.buf. ok is false when the body
// produced no element.
func (c *evalCtx) xmlBodyBytes(b *node) (ok bool, err error) {
	c.startOutput()
	c.nsScope, c.nsMarks = c.nsScope[:0], c.nsMarks[:0]
	ok, err = c.enter(b)
	if err != nil || !ok {
		return false, err
	}
	if err := c.streamElement(b.children[0]); err != nil {
		return false, err
	}
	return len(c.buf) > 0, nil // the root cannot repeat (checkXMLBody): one element or none
}

func (c *evalCtx) streamElement(n *node) error {
	c.push(n.key, 0)
	defer c.pop()
	if n.seq {
		for i, item := range n.children {
			c.setTrailIndex(i + 1)
			if err := c.streamElement1(item); err != nil {
				return err
			}
		}
		return nil
	}
	return c.streamElement1(n)
}

func (c *evalCtx) streamElement1(n *node) error {
	if n.forEach == nil {
		ok, err := c.enter(n)
		if err != nil || !ok {
			return err
		}
		return c.streamBuild(n)
	}
	items, err := c.loopItems(n)
	if err != nil {
		return err
	}
	saved := c.saveItem()
	defer c.restoreItem(saved)
	c.loops = append(c.loops, loopStep{expr: n.forEach})
	for i, it := range items {
		c.at(it, i+1, len(items))
		c.loops[len(c.loops)-1].idx = it.idx
		c.setTrailIndex(i + 1)
		ok, err := c.enter(n)
		if err != nil {
			return err
		}
		if ok {
			if err := c.streamBuild(n); err != nil {
				return err
			}
		}
	}
	c.loops = c.loops[:len(c.loops)-1]
	return nil
}

// streamBuild writes the element xmlBuild would create for n, evaluating in
// the same order (text, then attributes, then children) so that the same
// error is reported first.
func (c *evalCtx) streamBuild(n *node) error {
	src, mark, spliced, err := c.contentOf(n)
	if spliced {
		defer c.leaveSplice(mark)
	}
	if err != nil {
		return err
	}
	c.text = c.text[:0] // the previous element's texts are written
	var text leafText
	if src != nil && (src.value != nil || src.isLiteral) {
		var err error
		if text, err = c.streamLeafString(src); err != nil {
			return err
		}
		if !text.ok && len(src.attrs) == 0 && len(src.children) == 0 {
			src = nil
		}
	}
	if src == nil {
		if n.nillable {
			c.collectDecls(n)
			c.setNil()
			c.startTag(n.tags.open)
			c.endTag(n.tags.close)
		}
		return nil
	}
	if n.tags.start != "" {
		c.nsMarks = append(c.nsMarks, len(c.nsScope))
		c.nsScope = append(c.nsScope, n.tags.decls...)
		c.buf = append(c.buf, n.tags.start...)
		return c.streamContent(n, text, n)
	}
	if n.tags.attrs {
		c.nsMarks = append(c.nsMarks, len(c.nsScope))
		c.buf = append(c.buf, n.tags.open...)
		for _, a := range n.attrs {
			v, err := c.attrText(a)
			if err != nil {
				return err
			}
			if v.ok {
				c.buf = appendAttr(c.buf, a.key, v.s)
			}
		}
		c.buf = append(c.buf, '>')
		return c.streamContent(n, text, n)
	}
	c.collectDecls(n)
	if src != n {
		for _, ns := range src.nsDecl {
			c.setAttr(ns[0], ns[1])
		}
	}
	for _, a := range src.attrs {
		v, err := c.attrText(a)
		if err != nil {
			return err
		}
		if v.ok {
			c.setAttr(a.key, v.s)
		}
	}
	if !text.ok && n.nillable && (src.value != nil || src.isLiteral) {
		c.setNil()
	}
	c.startTag(n.tags.open)
	return c.streamContent(src, text, n)
}

// attrText is an attribute's value; the attribute is named in the trail
// only when the general evaluation, which may fail, runs.
func (c *evalCtx) attrText(a *node) (leafText, error) {
	if v, ok := c.streamLeafFast(a); ok {
		return v, nil
	}
	c.push(a.attrStep, 0)
	defer c.pop()
	return c.leafValueString(a)
}

// streamContent writes what follows the start tag: src's text and children,
// then the end tag of n (whose cdata: applies).
func (c *evalCtx) streamContent(src *node, text leafText, n *node) error {
	if text.ok {
		c.writeText(text.s, n.cdata)
	}
	if err := c.streamChildren(src); err != nil {
		return err
	}
	c.endTag(n.tags.close)
	return nil
}

// streamChildren writes the child elements of n; a choose: or call: among
// them writes those of the content it picks (streamable made sure that
// content adds nothing else to the element).
func (c *evalCtx) streamChildren(n *node) error {
	for _, ch := range n.children {
		if ch.plain && ch.tags.start != "" && c.streamPlain(ch) {
			continue
		}
		var err error
		if ch.splice == nil {
			err = c.streamElement(ch)
		} else {
			err = c.streamSplice(ch.splice)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// streamPlain writes a plain element (node.plain) with a fixed start tag.
// Most elements of a real mapping are one, and none of what streamElement
// does around the text applies to them: no let:, if: or for-each:, no
// attributes, no children to scope namespaces for, and the shortcuts
// cannot fail, so the output node need not be named for an error (push).
// ok is false when the shortcut declines: the general route then writes
// the element, running it again on the same input.
func (c *evalCtx) streamPlain(n *node) (ok bool) {
	c.text = c.text[:0] // as streamBuild: the parent's texts are written
	t, ok := c.streamLeafFast(n)
	switch {
	case !ok:
		return false
	case !t.ok:
		return true // nil: no element (a plain leaf is not nillable:)
	}
	c.buf = append(c.buf, n.tags.start...)
	c.writeText(t.s, n.cdata)
	c.buf = append(c.buf, n.tags.close...)
	return true
}

// writeText writes an element's text, escaped or as CDATA; an empty text
// writes nothing (etree writes no empty CDATA section).
func (c *evalCtx) writeText(s string, cdata bool) {
	switch {
	case s == "":
	case cdata:
		c.buf = appendCData(c.buf, s)
	default:
		c.buf = appendEscaped(c.buf, s, &textEscapes)
	}
}

func (c *evalCtx) streamSplice(s *splice) error {
	body, mark, err := c.enterSplice(s)
	if err != nil || body == nil {
		return err
	}
	defer c.leaveSplice(mark)
	ok, err := c.enter(body)
	if err != nil || !ok {
		return err
	}
	return c.streamChildren(body)
}

// collectDecls starts collecting a start tag with n's declarations.
func (c *evalCtx) collectDecls(n *node) {
	c.attrs = c.attrs[:0]
	for _, ns := range n.nsDecl {
		c.setAttr(ns[0], ns[1])
	}
}

// setAttr is etree's CreateAttr on the start tag being collected: a key
// set twice keeps its first place and takes the last value.
func (c *evalCtx) setAttr(key, value string) {
	for i := range c.attrs {
		if c.attrs[i][0] == key {
			c.attrs[i][1] = value
			return
		}
	}
	c.attrs = append(c.attrs, [2]string{key, value})
}

// setNil is setNil (mapping_copy.go) on the start tag being collected: the
// xsi declaration in scope is the element's own or else its ancestors'.
func (c *evalCtx) setNil() {
	uri, found := "", false
	for _, a := range c.attrs {
		if a[0] == "xmlns:xsi" {
			uri, found = a[1], true
		}
	}
	if !found {
		uri, _ = c.inScope("xsi")
	}
	if uri != xsiNS {
		c.setAttr("xmlns:xsi", xsiNS)
	}
	c.setAttr("xsi:nil", "true")
}

// inScope is the namespace prefix p is bound to by the open elements.
func (c *evalCtx) inScope(p string) (string, bool) {
	for i := len(c.nsScope) - 1; i >= 0; i-- {
		if c.nsScope[i][0] == p {
			return c.nsScope[i][1], true
		}
	}
	return "", false
}

// startTag writes the start tag (open is "<tag") with the attributes
// collected and opens the element's namespace scope. In a mapping with
// templates a declaration that repeats the one in scope is left out
// (tidyNamespaces).
func (c *evalCtx) startTag(open string) {
	c.nsMarks = append(c.nsMarks, len(c.nsScope))
	b := append(c.buf, open...)
	for _, a := range c.attrs {
		if p, decl := declPrefix(a[0]); decl {
			uri, found := c.inScope(p)
			if c.m.tidyNS && ((found && uri == a[1]) || (!found && p == "" && a[1] == "")) {
				continue
			}
			c.nsScope = append(c.nsScope, [2]string{p, a[1]})
		}
		b = appendAttr(b, a[0], a[1])
	}
	c.buf = append(b, '>')
}

func appendAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value, &attrEscapes)
	return append(b, '"')
}

// endTag writes the end tag ("</tag>") and closes the element's namespace scope.
func (c *evalCtx) endTag(tag string) {
	c.buf = append(c.buf, tag...)
	c.nsScope = c.nsScope[:c.nsMarks[len(c.nsMarks)-1]]
	c.nsMarks = c.nsMarks[:len(c.nsMarks)-1]
}

// declPrefix tells whether an attribute name is a namespace declaration,
// and of which prefix ("" for the default namespace).
func declPrefix(name string) (string, bool) {
	if name == "xmlns" {
		return "", true
	}
	if p, ok := strings.CutPrefix(name, "xmlns:"); ok {
		return p, true
	}
	return "", false
}

// escapes is what an escaping mode writes for each ASCII byte ("" for the
// byte itself); bytes from 0x80 are checked as runes. plain flags the bytes
// written as they are (ASCII with no escape), for a quick first scan.
type escapes struct {
	with  [utf8.RuneSelf]string
	plain [256]bool
}

// textEscapes and attrEscapes are etree's escapeString for text with
// CanonicalText (&, <, > and \r) and for attribute values without
// CanonicalAttrVal (&, <, >, ' and "), as bus.XMLWriteSettings asks.
// Characters XML cannot hold become U+FFFD, as etree writes them.
var textEscapes, attrEscapes = func() (t, a escapes) {
	for b := range utf8.RuneSelf {
		if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
			t.with[b], a.with[b] = "\uFFFD", "\uFFFD"
		}
	}
	t.with['&'], t.with['<'], t.with['>'], t.with['\r'] = "&amp;", "&lt;", "&gt;", "&#xD;"
	a.with['&'], a.with['<'], a.with['>'], a.with['\''], a.with['"'] = "&amp;", "&lt;", "&gt;", "&apos;", "&quot;"
	for b := range utf8.RuneSelf {
		t.plain[b], a.plain[b] = t.with[b] == "", a.with[b] == ""
	}
	return t, a
}()

// appendEscaped appends s escaped by esc; a string with nothing to escape
// (the usual case) is copied in one piece.
func appendEscaped(dst []byte, s string, esc *escapes) []byte {
	// Most values are plain ASCII with nothing to escape: find the first
	// byte that may need work with a table of flags before the general loop.
	i := 0
	for i < len(s) && esc.plain[s[i]] {
		i++
	}
	if i == len(s) {
		return append(dst, s...)
	}
	last := 0
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if e := esc.with[b]; e != "" {
				dst = append(dst, s[last:i]...)
				dst = append(dst, e...)
				last = i + 1
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || !isXMLChar(r) {
			dst = append(dst, s[last:i]...)
			dst = append(dst, "\uFFFD"...)
			last = i + w
		}
		i += w
	}
	return append(dst, s[last:]...)
}

// isXMLChar is etree's isInCharacterRange for runes from 0x80.
func isXMLChar(r rune) bool {
	return r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// appendCData is etree's CDATA section: "]]>" inside the text is split
// across two sections.
func appendCData(dst []byte, s string) []byte {
	dst = append(dst, "<![CDATA["...)
	for {
		i := strings.Index(s, "]]>")
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+2]...)
		dst = append(dst, "]]><![CDATA["...)
		s = s[i+2:]
	}
	dst = append(dst, s...)
	return append(dst, "]]>"...)
}
