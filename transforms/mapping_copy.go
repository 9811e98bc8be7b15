package transforms

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/antchfx/xpath"
	"github.com/beevik/etree"
	"github.com/goccy/go-yaml/ast"
)

const (
	xsiNS = "http://www.w3.org/2001/XMLSchema-instance"
	xmlNS = "http://www.w3.org/XML/1998/namespace"
)

// setNil marks el as nil, declaring xsi where it is not in scope.
func setNil(el *etree.Element) {
	if uri, _ := lookupNS(el, "xsi"); uri != xsiNS {
		el.CreateAttr("xmlns:xsi", xsiNS)
	}
	el.CreateAttr("xsi:nil", "true")
}

// lookupNS resolves prefix ("" for the default namespace) at el in the
// output tree.
func lookupNS(el *etree.Element, prefix string) (string, bool) {
	if prefix == "xml" {
		return xmlNS, true
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if (prefix == "" && a.Space == "" && a.Key == "xmlns") || (prefix != "" && a.Space == "xmlns" && a.Key == prefix) {
				return a.Value, true
			}
		}
	}
	return "", false
}

func xmlnsKey(prefix string) string {
	if prefix == "" {
		return "xmlns"
	}
	return "xmlns:" + prefix
}

// declare makes prefix mean uri at el, adding a declaration when the
// scope says otherwise.
func declare(el *etree.Element, prefix, uri string) {
	if prefix == "xml" {
		return
	}
	if got, _ := lookupNS(el, prefix); got != uri {
		el.CreateAttr(xmlnsKey(prefix), uri)
	}
}

// copyElement deep-copies an input element for the output, declaring on the
// copy the namespaces it uses that the input declared above it, so the copy
// means the same wherever it lands.
func copyElement(src *etree.Element) *etree.Element {
	cp := src.Copy()
	var used []string
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if !contains(used, e.Space) {
			used = append(used, e.Space)
		}
		for _, a := range e.Attr {
			if a.Space != "" && a.Space != "xmlns" && !contains(used, a.Space) {
				used = append(used, a.Space)
			}
		}
		for _, ch := range e.ChildElements() {
			walk(ch)
		}
	}
	walk(cp)
	for _, p := range used {
		if _, own := lookupNS(cp, p); own || p == "xml" {
			continue
		}
		if uri, ok := lookupNS(src.Parent(), p); ok {
			cp.CreateAttr(xmlnsKey(p), uri)
			// declarations first, as people write them
			n := len(cp.Attr)
			a := cp.Attr[n-1]
			copy(cp.Attr[1:], cp.Attr[:n-1])
			cp.Attr[0] = a
		}
	}
	return cp
}

// copyOf adds the value of e to el: input elements copied as they are
// (deep, with their namespaces), attributes as attributes, JSON objects and
// arrays by the generic conversion, anything else as text.
func (c *evalCtx) copyOf(e *compiled, el *etree.Element) error {
	v, err := c.eval(e)
	if err != nil {
		return err
	}
	if err := copyValue(v, el); err != nil {
		return &runError{c.trailString(), e, err, c.inputPath()}
	}
	return nil
}

func copyValue(v any, el *etree.Element) error {
	switch x := v.(type) {
	case nil:
	case xmlNodes:
		for _, n := range x {
			nav, ok := n.(*xmlNav)
			if !ok {
				el.CreateText(n.Value())
				continue
			}
			nav = nav.tree()
			switch nav.NodeType() {
			case xpath.RootNode:
				appendCopy(el, nav.root)
			case xpath.ElementNode:
				appendCopy(el, nav.cur.(*etree.Element))
			case xpath.AttributeNode:
				a := nav.cur.(*etree.Element).Attr[nav.attr]
				if a.Space != "" {
					declare(el, a.Space, a.NamespaceURI())
				}
				el.CreateAttr(a.FullKey(), a.Value)
			case xpath.CommentNode:
				el.CreateComment(nav.Value())
			default:
				el.CreateText(nav.Value())
			}
		}
	case []any:
		for _, y := range x {
			if err := copyValue(y, el); err != nil {
				return err
			}
		}
	case jsonVal:
		tmp, err := JSONToXML([]byte(x.r.Raw), "copy", "")
		if err != nil {
			return inputErrorf("copy-of: %v", err)
		}
		for _, a := range tmp.Attr {
			el.CreateAttr(a.FullKey(), a.Value)
		}
		for len(tmp.Child) > 0 {
			el.AddChild(tmp.Child[0]) // moves it
		}
	default:
		el.CreateText(toString(v))
	}
	return nil
}

func appendCopy(el, src *etree.Element) {
	cp := copyElement(src)
	el.AddChild(cp)
	if cp.Space == "" {
		if _, own := lookupNS(cp, ""); !own {
			if uri, _ := lookupNS(el, ""); uri != "" { // the input had no default namespace here
				cp.CreateAttr("xmlns", "")
			}
		}
	}
}

// tidyNamespaces removes declarations that repeat what is in scope, and
// declarations of namespaces the identity rules moved nodes out of that
// nothing uses any more.
func tidyNamespaces(root *etree.Element, movedFrom map[string]bool) {
	var scope [][2]string
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		mark := len(scope)
		for i := 0; i < len(e.Attr); i++ {
			a := e.Attr[i]
			var p string
			switch {
			case a.Space == "xmlns":
				p = a.Key
			case a.Space == "" && a.Key == "xmlns":
				p = ""
			default:
				continue
			}
			inScope, found := "", false
			for j := len(scope) - 1; j >= 0; j-- {
				if scope[j][0] == p {
					inScope, found = scope[j][1], true
					break
				}
			}
			redundant := (found && inScope == a.Value) || (!found && p == "" && a.Value == "")
			if redundant || (movedFrom[a.Value] && !usesPrefix(e, p)) {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
				i--
				continue
			}
			scope = append(scope, [2]string{p, a.Value})
		}
		for _, ch := range e.ChildElements() {
			walk(ch)
		}
		scope = scope[:mark]
	}
	walk(root)
}

// usesPrefix reports whether e or its descendants use prefix p in a name
// (or, to be safe, at the start of an attribute value such as xsi:type).
func usesPrefix(e *etree.Element, p string) bool {
	if e.Space == p {
		return true
	}
	for _, a := range e.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		if (p != "" && a.Space == p) || (p != "" && strings.HasPrefix(a.Value, p+":")) {
			return true
		}
	}
	for _, ch := range e.ChildElements() {
		if _, redeclared := ownDecl(ch, p); redeclared {
			continue
		}
		if usesPrefix(ch, p) {
			return true
		}
	}
	return false
}

func ownDecl(e *etree.Element, p string) (string, bool) {
	for _, a := range e.Attr {
		if (p == "" && a.Space == "" && a.Key == "xmlns") || (p != "" && a.Space == "xmlns" && a.Key == p) {
			return a.Value, true
		}
	}
	return "", false
}

// ---- identity copy ----

// identity copies the XML input and changes only what its rules match
// (XSLT's identity-transform idiom).
type identity struct {
	from  *compiled
	rules []*idRule
	moves bool // some rule renames or moves: namespaces are checked while copying
}

// idRule is one rule of identity:, selected by an XPath match pattern.
type idRule struct {
	match     string
	file      string
	line, col int
	sel       *xpathPool
	attr      bool // the pattern matches attributes
	drop      bool
	rename    bool
	space     string // new prefix (rename: p:x, namespace: p)
	local     string // new local name (rename:)
	uri       string // the new namespace
	keepNS    bool   // rename: without a prefix keeps the node's namespace
	setNS     bool
	value     *compiled
	prepend   *node
	append    *node
	replace   *node
}

func (m *Mapping) compileIdentity(v ast.Node, env *compileEnv) (*identity, error) {
	mn, ok := v.(*ast.MappingNode)
	if !ok {
		return nil, errAtNode(env.file, v, "identity: want from: (optional) and rules:")
	}
	id := &identity{}
	var rules ast.Node
	for _, kv := range mn.Values {
		switch k := keyText(kv.Key); k {
		case "from":
			c, err := compileExprAt(kv.Value, env)
			if err != nil {
				return nil, err
			}
			id.from = c
		case "rules":
			rules = unwrap(kv.Value)
		default:
			return nil, errAtNode(env.file, kv.Key, fmt.Sprintf("identity: unknown key %q (want from, rules)", k))
		}
	}
	if rules != nil {
		seq, ok := rules.(*ast.SequenceNode)
		if !ok {
			return nil, errAtNode(env.file, rules, "rules: want a list of {match: …, …}")
		}
		for _, rv := range seq.Values {
			r, err := m.compileRule(rv, env)
			if err != nil {
				return nil, err
			}
			id.moves = id.moves || r.rename || r.setNS
			id.rules = append(id.rules, r)
		}
	}
	m.tidyNS = true
	return id, nil
}

func (m *Mapping) compileRule(rv ast.Node, env *compileEnv) (*idRule, error) {
	rm, ok := unwrap(rv).(*ast.MappingNode)
	if !ok {
		return nil, errAtNode(env.file, rv, "a rule is a map with match: and what to do")
	}
	r := &idRule{file: env.file}
	var keys []string
	for _, kv := range rm.Values {
		k := keyText(kv.Key)
		keys = append(keys, k)
		val := unwrap(kv.Value)
		var err error
		switch k {
		case "match":
			s, ok := val.(*ast.StringNode)
			if !ok || strings.TrimSpace(s.Value) == "" {
				return nil, errAtNode(env.file, kv.Value, "match: want an XPath pattern")
			}
			r.match = s.Value
			r.line, r.col = nodePos(val)
			sel, attr, err := matchSelection(s.Value)
			if err == nil {
				r.attr = attr
				r.sel, err = newXPathPool(sel, env.namespaces)
			}
			if err != nil {
				return nil, errAtNode(env.file, val, fmt.Sprintf("match %q: %v", s.Value, err))
			}
		case "drop":
			b, ok := val.(*ast.BoolNode)
			if !ok {
				return nil, errAtNode(env.file, kv.Value, "drop: want true or false")
			}
			r.drop = b.Value
		case "rename":
			name := scalarOf(val)
			p, local, prefixed := strings.Cut(name, ":")
			if !prefixed {
				p, local = "", name
			}
			if !isNCName(local) || (prefixed && !isNCName(p)) {
				return nil, errAtNode(env.file, kv.Value, fmt.Sprintf("rename: %q is not a valid XML name", name))
			}
			r.rename, r.local = true, local
			if prefixed {
				if r.uri, ok = env.namespaces[p]; !ok {
					return nil, errAtNode(env.file, kv.Value, fmt.Sprintf("prefix %q is not declared under namespaces:", p))
				}
				r.space = p
			} else {
				r.keepNS = true
			}
		case "namespace":
			p := scalarOf(val)
			r.setNS = true
			if p != "" {
				if r.uri, ok = env.namespaces[p]; !ok {
					return nil, errAtNode(env.file, kv.Value, fmt.Sprintf("namespace: prefix %q is not declared under namespaces: (\"\" for no namespace)", p))
				}
				r.space = p
			}
		case "value":
			r.value, err = compileExprAt(val, env)
		case "prepend", "append", "replace":
			var n *node
			n, err = m.compileNode("", val, env)
			if err == nil {
				switch {
				case n.forEach != nil || n.seq:
					err = errAtNode(env.file, val, k+": want elements (a map) or an expression, not a list or for-each")
				case k != "replace" && n.leaf():
					err = errAtNode(env.file, val, k+": want a map of elements and @attributes")
				case k == "replace" && len(n.attrs) > 0:
					err = errAtNode(env.file, val, "replace: produces elements or text, not attributes")
				}
			}
			if err == nil {
				err = m.checkSplices(n, env.file)
			}
			if err == nil {
				err = m.checkXMLNames(n, nil, xmlContent, env.file)
			}
			switch k {
			case "prepend":
				r.prepend = n
			case "append":
				r.append = n
			default:
				r.replace = n
			}
		default:
			return nil, errAtNode(env.file, kv.Key, fmt.Sprintf("rule: unknown key %q (want match, drop, rename, namespace, value, prepend, append, replace)", k))
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case r.sel == nil:
		return nil, errAtNode(env.file, rv, "a rule needs match:")
	case r.drop && len(keys) > 2:
		return nil, errAtNode(env.file, rv, "drop: stands alone with match:")
	case r.replace != nil && len(keys) > 2:
		return nil, errAtNode(env.file, rv, "replace: stands alone with match:")
	case r.rename && r.setNS:
		return nil, errAtNode(env.file, rv, "rename: p:name already sets the namespace; drop namespace:")
	case r.attr && (r.prepend != nil || r.append != nil || r.replace != nil):
		return nil, errAtNode(env.file, rv, "a rule for attributes can drop, rename, namespace or value them")
	}
	return r, nil
}

// matchSelection turns an XSLT-style match pattern into the XPath that
// selects every node it matches: each alternative that does not start at the
// root is searched for at any depth. attr says the pattern matches
// attributes (every alternative's last step is @name or attribute::).
func matchSelection(pattern string) (string, bool, error) {
	alts := splitTopLevel(pattern, '|')
	attrs := 0
	for i, a := range alts {
		a = strings.TrimSpace(a)
		if a == "" {
			return "", false, fmt.Errorf("empty alternative")
		}
		steps := splitTopLevel(a, '/')
		last := strings.TrimSpace(steps[len(steps)-1])
		if strings.HasPrefix(last, "@") || strings.HasPrefix(last, "attribute::") {
			attrs++
		}
		if !strings.HasPrefix(a, "/") {
			a = "//" + a
		}
		alts[i] = a
	}
	if attrs != 0 && attrs != len(alts) {
		return "", false, fmt.Errorf("a pattern matches either elements or attributes, not both")
	}
	return strings.Join(alts, " | "), attrs > 0, nil
}

// splitTopLevel splits s at sep outside brackets, parentheses and quotes.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case '\'', '"':
			if k := strings.IndexByte(s[i+1:], s[i]); k >= 0 {
				i += k + 1
			}
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

type matchKey struct {
	el   *etree.Element
	attr int // -1: the element itself
}

// identityCopy runs identity: over the message.
func (c *evalCtx) identityCopy(id *identity) (*etree.Element, error) {
	if c.xmlRoot == nil {
		return nil, fmt.Errorf("identity: the message holds no XML")
	}
	// The rules match etree nodes (matchKey) and the copy is a tree: the
	// whole evaluation runs over one.
	c.xmlRoot = c.xmlRoot.tree()
	nav := c.xmlRoot
	if c.matched == nil {
		c.matched = map[matchKey]*idRule{}
		c.movedFrom = map[string]bool{}
	}
	for _, r := range id.rules {
		v, err := evalXPath(r.sel, nav)
		if err != nil {
			return nil, fmt.Errorf("%s:%d:%d: match %q: %v", r.file, r.line, r.col, r.match, err)
		}
		nodes, _ := v.(xmlNodes)
		for _, n := range nodes {
			x, ok := n.(*xmlNav)
			if !ok {
				continue
			}
			el, ok := x.cur.(*etree.Element)
			if !ok || (x.attr >= 0) != r.attr {
				continue // the pattern picked a root, text or comment node
			}
			k := matchKey{el, int(x.attr)}
			if _, taken := c.matched[k]; !taken { // the first rule that matches wins
				c.matched[k] = r
			}
		}
	}
	src := nav.root
	if id.from != nil {
		v, err := c.eval(id.from)
		if err != nil {
			return nil, err
		}
		src = nil
		if nodes, ok := v.(xmlNodes); ok {
			if x, ok := nodes[0].(*xmlNav); ok {
				if el, ok := x.cur.(*etree.Element); ok && x.attr < 0 {
					src = el
				} else if x.cur == nil {
					src = x.root
				}
			}
		}
		if src == nil {
			return nil, &runError{c.trailString(), id.from, inputErrorf("from: selects no element"), ""}
		}
	}
	tmp := etree.NewElement("")
	if err := c.copyNode(id, src, tmp); err != nil {
		return nil, err
	}
	els := tmp.ChildElements()
	if len(els) != 1 {
		return nil, fmt.Errorf("identity: the rules leave %d root elements; XML needs exactly one", len(els))
	}
	root := els[0]
	tmp.RemoveChild(root)
	if len(c.movedFrom) > 0 {
		tidyNamespaces(root, c.movedFrom)
	}
	return root, nil
}

// navAt is a navigator on an input element (attr < 0) or one of its attributes.
func (c *evalCtx) navAt(el *etree.Element, attr int) *xmlNav {
	return &xmlNav{root: c.xmlRoot.root, cur: el, attr: int32(attr)}
}

func (c *evalCtx) copyNode(id *identity, src, parent *etree.Element) error {
	r := c.matched[matchKey{src, -1}]
	c.push(src.FullTag(), 0)
	defer c.pop()
	if r != nil {
		saved := c.saveItem()
		defer c.restoreItem(saved)
		c.at(item{has: true, nav: c.navAt(src, -1)}, 1, 1)
		switch {
		case r.drop:
			return nil
		case r.replace != nil:
			return c.replaceWith(r.replace, parent)
		}
	}
	el := parent.CreateElement(src.FullTag())
	want := "" // the namespace the copy must be in, when rules move things
	if id.moves {
		want, _ = lookupNS(src, src.Space)
	}
	if r != nil && (r.rename || r.setNS) {
		old, _ := lookupNS(src, src.Space)
		if r.rename {
			el.Tag = r.local
		}
		if !r.keepNS {
			el.Space = r.space
			want = r.uri
		}
		if want != old {
			c.movedFrom[old] = true
		}
	}
	for i, a := range src.Attr {
		ar := c.matched[matchKey{src, i}]
		if ar == nil {
			el.CreateAttr(a.FullKey(), a.Value)
			continue
		}
		if ar.drop {
			continue
		}
		space, key, val := a.Space, a.Key, a.Value
		if ar.value != nil {
			saved := c.saveItem()
			c.at(item{has: true, nav: c.navAt(src, i)}, 1, 1)
			c.push("@"+a.Key, 0)
			v, err := c.eval(ar.value)
			c.pop()
			c.restoreItem(saved)
			if err != nil {
				return err
			}
			if v == nil {
				continue // a nil value removes the attribute
			}
			val = toString(v)
		}
		if ar.rename || ar.setNS {
			old := a.NamespaceURI()
			if a.Space == "" {
				old = ""
			}
			if ar.rename {
				key = ar.local
			}
			if !ar.keepNS {
				space = ar.space
				if space != "" {
					declare(el, space, ar.uri)
				}
				if ar.uri != old && old != "" {
					c.movedFrom[old] = true
				}
			}
		}
		if space != "" {
			key = space + ":" + key
		}
		el.CreateAttr(key, val)
	}
	if id.moves {
		if got, _ := lookupNS(el, el.Space); got != want {
			el.CreateAttr(xmlnsKey(el.Space), want)
		}
	}
	if r != nil && r.prepend != nil {
		if err := c.fillFrom(r.prepend, el); err != nil {
			return err
		}
	}
	if r != nil && r.value != nil {
		v, err := c.eval(r.value)
		if err != nil {
			return err
		}
		if v != nil {
			el.CreateText(toString(v))
		}
	} else {
		for _, t := range src.Child {
			switch t := t.(type) {
			case *etree.Element:
				if err := c.copyNode(id, t, el); err != nil {
					return err
				}
			case *etree.CharData:
				if t.IsCData() {
					el.CreateCData(t.Data)
				} else {
					el.CreateText(t.Data)
				}
			case *etree.Comment:
				el.CreateComment(t.Data)
			case *etree.ProcInst:
				el.CreateProcInst(t.Target, t.Inst)
			}
		}
	}
	if r != nil && r.append != nil {
		if err := c.fillFrom(r.append, el); err != nil {
			return err
		}
	}
	return nil
}

// fillFrom adds a prepend:/append: map's attributes and elements to el.
func (c *evalCtx) fillFrom(n *node, el *etree.Element) error {
	ok, err := c.enter(n)
	if err != nil || !ok {
		return err
	}
	for _, ns := range n.nsDecl {
		el.CreateAttr(ns[0], ns[1])
	}
	return c.xmlFill(el, n, leafText{}, n)
}

// replaceWith puts what a replace: produces where the matched element was.
func (c *evalCtx) replaceWith(n *node, parent *etree.Element) error {
	ok, err := c.enter(n)
	if err != nil || !ok {
		return err
	}
	if n.leaf() {
		v, err := c.leafValue(n)
		if err != nil {
			return err
		}
		if v != nil {
			parent.CreateText(toString(v))
		}
		return nil
	}
	return c.xmlFill(parent, n, leafText{}, n)
}

// ---- naming the input in run-time errors ----

// inputPath names the input the failing expression read last: the node's
// location for XML, the JSON path (with the for-each positions) for JSON.
func (c *evalCtx) inputPath() string {
	if c.cur == nil || c.lastPath < 0 || c.lastPath >= len(c.paths) {
		return ""
	}
	p := c.paths[c.lastPath]
	if nodes, ok := c.lastRes.(xmlNodes); ok {
		return nodePath(nodes[0])
	}
	if c.lastNavOK {
		return nodePath(&c.lastNav)
	}
	if c.mode == inputXML {
		if c.item.nav != nil && !strings.HasPrefix(p.src, "/") {
			return nodePath(c.item.nav) + " then " + p.src
		}
		return p.src
	}
	if p.absolute || !c.item.has {
		if p.src == "" || (!strings.HasPrefix(p.src, "$") && !strings.HasPrefix(p.src, ".")) {
			return "json(" + strconv.Quote(p.src) + ")"
		}
		return p.src
	}
	var b strings.Builder
	for _, l := range c.loops {
		src := l.expr.src
		switch {
		case strings.HasPrefix(src, "$"):
			b.Reset()
			b.WriteString(src)
		case strings.HasPrefix(src, ".") && src != ".":
			b.WriteString(src)
		case src == ".":
		default:
			b.Reset()
			b.WriteString("(" + src + ")")
		}
		fmt.Fprintf(&b, "[%d]", l.idx)
	}
	if !p.current {
		b.WriteString(p.src)
	}
	return b.String()
}

// nodePath is an XPath that finds n: /R/ACCOUNTGL/item[2]/AMT.
func nodePath(n xpath.NodeNavigator) string {
	x, ok := n.(*xmlNav)
	if !ok {
		return ""
	}
	x = x.tree()
	el, ok := x.cur.(*etree.Element)
	if !ok {
		if x.cur == nil {
			return "/"
		}
		el = x.cur.Parent()
	}
	var parts []string
	for e := el; e != nil; e = e.Parent() {
		step := e.FullTag()
		if p := e.Parent(); p != nil && e != x.root {
			same, at := 0, 0
			for _, s := range p.ChildElements() {
				if s.Tag == e.Tag && s.Space == e.Space {
					same++
					if s == e {
						at = same
					}
				}
			}
			if same > 1 {
				step += "[" + strconv.Itoa(at) + "]"
			}
		}
		parts = append(parts, step)
		if e == x.root {
			break
		}
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	if x.attr >= 0 {
		b.WriteString("/@" + el.Attr[x.attr].FullKey())
	}
	return b.String()
}
