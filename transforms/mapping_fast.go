package transforms

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/beevik/etree"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Fast paths for the commonest expressions. Most leaves of a real mapping
// are one path (`./GL_ACCOUNT`, `.costCenter`, `/*/DOCUMENTHEADER/COMP_CODE`);
// running each through the expr VM and, for XML, antchfx's query iterators
// costs several allocations and most of the evaluation time. Both shortcuts
// are decided at load and give exactly what the general path gives
// (TestFastPathsMatchGeneral runs every golden case and docs example both
// ways):
//
//   - an expression that is a single path skips the expr VM (compiled.single);
//   - an XPath made only of child steps (`/`, `./`, names, `p:name`, `*`)
//     and an optional final attribute step (`@x`, `@p:x`, `@*`) is walked
//     directly over the etree (fastXPath) instead of through antchfx/xpath.

// fastPaths turns the shortcuts on; the differential test compiles with it
// off to compare.
var fastPaths = true

// fastStep is one step of a simple XPath.
type fastStep struct {
	attr  bool   // attribute::, else child:: element
	any   bool   // * : any name
	local string // the local name tested
	hasNS bool   // a prefixed name test: compare the namespace URI too
	ns    string
}

// fastXPath is an XPath of child steps and an optional final attribute step.
type fastXPath struct {
	absolute bool
	steps    []fastStep
}

// compileFastXPath recognises a simple XPath; nil means the general engine
// evaluates it. src has already compiled with antchfx, so only the shape is
// checked here. A prefixed name test needs its prefix in ns, as antchfx
// requires.
func compileFastXPath(src string, ns map[string]string) *fastXPath {
	f := &fastXPath{}
	s := src
	switch {
	case strings.HasPrefix(s, "./"):
		s = s[2:]
	case strings.HasPrefix(s, "/"):
		f.absolute = true
		s = s[1:]
	case strings.HasPrefix(s, "@"):
	default:
		return nil
	}
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "/")
	for i, p := range parts {
		var st fastStep
		if strings.HasPrefix(p, "@") {
			if i != len(parts)-1 {
				return nil
			}
			st.attr = true
			p = p[1:]
		}
		switch {
		case p == "*":
			st.any = true
		default:
			prefix, local, found := strings.Cut(p, ":")
			if !found {
				prefix, local = "", p
			}
			if !isSimpleName(local) || (found && !isSimpleName(prefix)) {
				return nil
			}
			if found {
				uri, ok := ns[prefix]
				if !ok {
					return nil
				}
				st.hasNS, st.ns = true, uri
			}
			st.local = local
		}
		f.steps = append(f.steps, st)
	}
	return f
}

// isSimpleName accepts the NCNames the shortcut handles: a letter or '_'
// first, then letters, digits, '_', '-' and '.'.
func isSimpleName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case r >= utf8.RuneSelf && unicode.IsLetter(r):
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func (s *fastStep) matchElement(e *etree.Element) bool {
	if s.any {
		return true
	}
	if e.Tag != s.local {
		return false
	}
	return !s.hasNS || e.NamespaceURI() == s.ns
}

// nsMemo resolves namespace prefixes for the children of one element: a
// child that does not declare its prefix itself has its parent's binding,
// looked up once for all the children instead of once per child (each
// lookup climbs to the declaring ancestor).
type nsMemo struct {
	parent *etree.Element
	space  string
	uri    string
	done   bool
}

// matchChild is matchElement for c, a child of m.parent.
func (s *fastStep) matchChild(c *etree.Element, m *nsMemo) bool {
	if s.any {
		return true
	}
	if c.Tag != s.local {
		return false
	}
	if !s.hasNS {
		return true
	}
	if uri, ok := declaredNamespace(c, c.Space); ok {
		return uri == s.ns
	}
	if !m.done || m.space != c.Space {
		m.space, m.done = c.Space, true
		m.uri = lookupNamespace(m.parent, c.Space)
	}
	return m.uri == s.ns
}

// declaredNamespace is e's own declaration of prefix ("" the default
// namespace), as etree's NamespaceURI looks for it.
func declaredNamespace(e *etree.Element, prefix string) (string, bool) {
	for _, a := range e.Attr {
		if prefix == "" && a.Space == "" && a.Key == "xmlns" || prefix != "" && a.Space == "xmlns" && a.Key == prefix {
			return a.Value, true
		}
	}
	return "", false
}

// lookupNamespace is the binding of prefix in scope at e, as etree's
// NamespaceURI finds it.
func lookupNamespace(e *etree.Element, prefix string) string {
	for ; e != nil; e = e.Parent() {
		if uri, ok := declaredNamespace(e, prefix); ok {
			return uri
		}
	}
	return ""
}

func (s *fastStep) matchAttr(a *etree.Attr) bool {
	if isNSDecl(*a) {
		return false
	}
	if s.any {
		return true
	}
	if a.Key != s.local {
		return false
	}
	if !s.hasNS {
		return true
	}
	uri := ""
	if a.Space != "" {
		uri = a.NamespaceURI()
	}
	return uri == s.ns
}

// start is the element the walk starts from and the index of the first
// step to apply below it; ok is false when the context is not one the
// shortcut handles (an attribute or text node: the general engine decides).
func (f *fastXPath) start(at *xmlNav) (from *etree.Element, step int, ok bool) {
	if at.attr >= 0 || at.frag {
		// A fragment (BoolIn: a SOAP Header as the document) has a document
		// node of its own, which the general engine models.
		return nil, 0, false
	}
	if f.absolute || at.cur == nil {
		// The virtual root's only child is the payload element.
		if f.steps[0].attr || !f.steps[0].matchElement(at.root) {
			return nil, -1, true
		}
		return at.root, 1, true
	}
	e, isEl := at.cur.(*etree.Element)
	if !isEl {
		return nil, 0, false
	}
	return e, 0, true
}

// nodes evaluates the path from at into a node-set (nil when empty), as
// evalXPath would. handled is false when the general engine must run.
func (f *fastXPath) nodes(at *xmlNav) (res any, handled bool) {
	found, handled := f.selected(at, nil)
	if len(found) == 0 {
		return nil, handled
	}
	out := make(xmlNodes, len(found))
	for i := range found {
		out[i] = &found[i]
	}
	return out, true
}

// selected is the nodes the path selects from at (none when it selects
// nothing); handled is false when the general engine must run. c, when
// not nil, provides the slice (navBuf).
func (f *fastXPath) selected(at *xmlNav, c *evalCtx) (found []xmlNav, handled bool) {
	if at.d != nil {
		return f.docSelected(at, c)
	}
	from, step, ok := f.start(at)
	if !ok {
		return nil, false
	}
	if step < 0 {
		return nil, true
	}
	return f.all(from, step, at.root, c), true
}

// all is the nodes steps[step:] select below from, in a slice of exactly
// their number: a for-each over hundreds of items would otherwise grow it
// step by step, copying nodes that hold pointers.
func (f *fastXPath) all(from *etree.Element, step int, root *etree.Element, c *evalCtx) []xmlNav {
	if step == len(f.steps) {
		return append(c.navBuf(1), xmlNav{root: root, cur: from, attr: -1})
	}
	if c != nil {
		return c.navCollect(func(out []xmlNav) []xmlNav { return f.collect(from, step, root, out) })
	}
	n := f.count(from, step)
	if n == 0 {
		return nil
	}
	return f.collect(from, step, root, make([]xmlNav, 0, n))
}

// count is the number of nodes steps[i:] select below e.
func (f *fastXPath) count(e *etree.Element, i int) int {
	s := &f.steps[i]
	n := 0
	if s.attr {
		for k := range e.Attr {
			if s.matchAttr(&e.Attr[k]) {
				n++
			}
		}
		return n
	}
	last := i == len(f.steps)-1
	m := nsMemo{parent: e}
	for _, t := range e.Child {
		c, ok := t.(*etree.Element)
		if !ok || !s.matchChild(c, &m) {
			continue
		}
		if last {
			n++
		} else {
			n += f.count(c, i+1)
		}
	}
	return n
}

// items is the for-each items of the path from at, as items makes them of
// the node-set nodes gives, without the node-set. The items' nodes are cut
// from c's nav chunk (navBuf).
func (f *fastXPath) items(c *evalCtx, at *xmlNav) (out []item, handled bool) {
	found, handled := f.selected(at, c)
	if len(found) == 0 {
		return nil, handled
	}
	out = c.itemBuf(len(found))
	for i := range found {
		// Field by field: the slice is zeroed, and assigning a whole item
		// would also store its zero pointers, each a write barrier while
		// the collector runs.
		it := &out[i]
		it.has, it.nav, it.idx = true, &found[i], i
	}
	return out, true
}

// maxItemBuf is the largest item slice an evalCtx keeps between loops.
const maxItemBuf = 4096

// itemBuf is n zeroed items for the for-each about to run at the current
// loop depth, in a slice kept for that depth. A loop's item slice is read
// only until its loop ends (its items are copied into c.item, a group's
// members, a template call's context) and every loop nested in it runs one
// depth deeper, so the next loop at the same depth may take it over.
func (c *evalCtx) itemBuf(n int) []item {
	d := len(c.loops)
	for len(c.itemBufs) <= d {
		c.itemBufs = append(c.itemBufs, nil)
	}
	b := c.itemBufs[d]
	if cap(b) < n {
		b = make([]item, n)
		if n <= maxItemBuf {
			c.itemBufs[d] = b
		}
		return b
	}
	b = b[:n]
	clear(b)
	return b
}

// maxNavChunk is the largest nav chunk an evalCtx keeps between Applies.
const maxNavChunk = 4096

// navBuf is an empty slice with room for n navs, for the nodes a walk
// selects; with c nil (no evaluation to tie them to), newly allocated.
// Otherwise it is cut from a chunk that serves the whole Apply: a for-each
// over hundreds of nodes would else allocate (and the collector scan) a
// slice of navs per loop per message. No two calls in one Apply share
// memory, as the navs are pointed to by items, group members, variables
// and template contexts until the Apply ends; reset clears the chunk and
// takes it over for the next message, when nothing can point into it any
// more (the output holds no navs).
func (c *evalCtx) navBuf(n int) []xmlNav {
	if c == nil {
		return make([]xmlNav, 0, n)
	}
	c.navUsed += n
	k := len(c.navChunk)
	if cap(c.navChunk)-k < n {
		// A new chunk; the old one stays with the items using it.
		c.navChunk, k = make([]xmlNav, 0, max(n, 2*cap(c.navChunk), 64)), 0
	}
	c.navChunk = c.navChunk[:k+n]
	return c.navChunk[k : k : k+n]
}

// navCollect is the navs collect appends to the empty slice it is given:
// the free part of the chunk navBuf cuts from, so that a walk need not
// count its nodes first to size their slice. A walk that outgrows the
// free part goes on in an array append makes, which its items keep; reset
// then sizes the next message's chunk for all the navs this one took.
func (c *evalCtx) navCollect(collect func([]xmlNav) []xmlNav) []xmlNav {
	k := len(c.navChunk)
	free := c.navChunk[k:]
	out := collect(free)
	c.navUsed += len(out)
	if len(out) > 0 && len(out) <= cap(free) && unsafe.SliceData(out) == unsafe.SliceData(free) {
		c.navChunk = c.navChunk[:k+len(out)]
	}
	return out[:len(out):len(out)]
}

// collect appends the nodes steps[i:] select below e, in document order.
func (f *fastXPath) collect(e *etree.Element, i int, root *etree.Element, out []xmlNav) []xmlNav {
	s := &f.steps[i]
	if s.attr {
		for k := range e.Attr {
			if s.matchAttr(&e.Attr[k]) {
				out = append(out, xmlNav{root: root, cur: e, attr: int32(k)})
			}
		}
		return out
	}
	last := i == len(f.steps)-1
	m := nsMemo{parent: e}
	for _, t := range e.Child {
		c, ok := t.(*etree.Element)
		if !ok || !s.matchChild(c, &m) {
			continue
		}
		if last {
			out = append(out, xmlNav{root: root, cur: c, attr: -1})
		} else {
			out = f.collect(c, i+1, root, out)
		}
	}
	return out
}

// firstNode is the first node the path selects from at; found is false
// when it selects nothing, handled is false when the general engine must
// run.
func (f *fastXPath) firstNode(at *xmlNav) (n xmlNav, found, handled bool) {
	if at.d != nil {
		return f.docFirstNode(at)
	}
	from, step, ok := f.start(at)
	if !ok {
		return xmlNav{}, false, false
	}
	if step < 0 {
		return xmlNav{}, false, true
	}
	if step == len(f.steps) {
		return xmlNav{root: at.root, cur: from, attr: -1}, true, true
	}
	n, found = f.first(from, step, at.root)
	return n, found, true
}

// text is the string value of the first node the path selects, what
// toString gives for the node-set; found is false when it selects nothing.
func (f *fastXPath) text(at *xmlNav) (s string, found, handled bool) {
	if at.d != nil {
		return f.docText(at)
	}
	n, found, handled := f.firstNode(at)
	if !found {
		return "", false, handled
	}
	return n.Value(), true, true
}

func (f *fastXPath) first(e *etree.Element, i int, root *etree.Element) (xmlNav, bool) {
	s := &f.steps[i]
	if s.attr {
		for k := range e.Attr {
			if s.matchAttr(&e.Attr[k]) {
				return xmlNav{root: root, cur: e, attr: int32(k)}, true
			}
		}
		return xmlNav{}, false
	}
	last := i == len(f.steps)-1
	m := nsMemo{parent: e}
	for _, t := range e.Child {
		c, ok := t.(*etree.Element)
		if !ok || !s.matchChild(c, &m) {
			continue
		}
		if last {
			return xmlNav{root: root, cur: c, attr: -1}, true
		}
		if n, ok := f.first(c, i+1, root); ok {
			return n, true
		}
	}
	return xmlNav{}, false
}

// direct is an expression tree the evaluator runs without the expr VM: a
// call of library functions over paths, variables and literals, such as
// pad(position(), 10) or decimal(./AMT_DOCCUR, 2). It is built from the
// program expr compiled (after the mapping's own AST patches), so it calls
// exactly the functions the VM would, in the same order, with the same
// arguments.
type direct struct {
	kind byte // 'l' literal, 'p' path, 'v' variable, 'f' function call
	// scalar: a path argument the function reads only as one value (see
	// scalarArgs), so its first node's string value stands for the node-set.
	scalar bool
	val    any // literal
	idx    int // path or variable slot
	name   string
	fn     func(*evalCtx, []any) (any, error)
	args   []*direct
}

// libraryByExprName maps the names functions have inside expr back to the
// library.
func libraryByExprName(name string) (string, funcSpec, bool) {
	for lib, f := range functions {
		if exprName(lib) == name {
			return lib, f, true
		}
	}
	return "", funcSpec{}, false
}

// compileDirect converts an expr AST into a direct tree; nil when the
// expression uses anything else (operators, member access, group(expr),
// conditionals…), which the VM then runs.
func compileDirect(n ast.Node) *direct {
	switch x := n.(type) {
	case *ast.StringNode:
		return &direct{kind: 'l', val: x.Value}
	case *ast.IntegerNode:
		return &direct{kind: 'l', val: x.Value}
	case *ast.FloatNode:
		return &direct{kind: 'l', val: x.Value}
	case *ast.BoolNode:
		return &direct{kind: 'l', val: x.Value}
	case *ast.NilNode:
		return &direct{kind: 'l'}
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || len(x.Arguments) == 0 {
			return nil
		}
		if c, ok := x.Arguments[0].(*ast.IdentifierNode); !ok || c.Value != "_c" {
			return nil
		}
		args := x.Arguments[1:]
		switch id.Value {
		case "_p", "_v":
			i, ok := args[0].(*ast.IntegerNode)
			if len(args) != 1 || !ok {
				return nil
			}
			return &direct{kind: id.Value[1], idx: i.Value}
		}
		name, f, ok := libraryByExprName(id.Value)
		if !ok {
			return nil
		}
		d := &direct{kind: 'f', name: name, fn: f.fn}
		for _, a := range args {
			da := compileDirect(a)
			if da == nil {
				return nil
			}
			da.scalar = da.kind == 'p' && len(d.args) < len(scalarArgs[name]) && scalarArgs[name][len(d.args)]
			d.args = append(d.args, da)
		}
		return d
	}
	return nil
}

// scalarArgs marks, per library function, the arguments it reads only as
// one value: it tests them against nil, then takes scalar, toString or
// toDecimal of them, so a node-set and its first node's string value give
// the same result and the same error text. An argument read with toInt is
// not one of them: its error describes a node-set as such.
var scalarArgs = map[string][]bool{
	"number":       {true},
	"decimal":      {true, false},
	"round":        {true, false, true},
	"formatNumber": {true, true, true},
	"pad":          {true, false, true},
	"padRight":     {true, false, true},
	"string":       {true},
	"upper":        {true},
	"lower":        {true},
	"trim":         {true},
	"normalize":    {true},
}

// pathScalar is path(i) for an argument in scalarArgs: the first node's
// string value instead of a node-set (nil when there is none), found
// without building the set. The node is kept for naming the input in a
// run-time error, as path keeps the set.
func (c *evalCtx) pathScalar(i int) (any, error) {
	n, found, handled := c.scalarNode(c.paths[i])
	if !handled {
		return c.path(i)
	}
	c.lastPath, c.lastRes, c.lastNav, c.lastNavOK = i, nil, n, found
	if !found {
		return nil, nil
	}
	return n.Value(), nil
}

// scalarNode is the first node path p selects in the current context, for
// "." and the paths fastXPath walks over XML; handled is false otherwise.
func (c *evalCtx) scalarNode(p *pathRef) (n xmlNav, found, handled bool) {
	at, ok := c.scalarAt(p)
	switch {
	case !ok:
		return xmlNav{}, false, false
	case p.current:
		return *at, true, true
	}
	return p.fast.firstNode(at)
}

// scalarText is the string value of the node scalarNode finds, without
// making a nav of it: the argument text a leafCall reads.
func (c *evalCtx) scalarText(p *pathRef) (s string, found, handled bool) {
	at, ok := c.scalarAt(p)
	switch {
	case !ok:
		return "", false, false
	case p.current:
		return at.Value(), true, true
	}
	return p.fast.text(at)
}

// scalarAt is the context node for scalarNode; ok is false when p is not
// one it reads.
func (c *evalCtx) scalarAt(p *pathRef) (at *xmlNav, ok bool) {
	if c.mode != inputXML || c.xmlRoot == nil {
		return nil, false
	}
	if p.current {
		return c.contextNav(), !c.item.has || c.item.nav != nil
	}
	return c.contextNav(), p.fast != nil
}

// leafCall is a leaf that is one call of number, decimal, pad or padRight
// on a path, with literal further arguments: the commonest computed
// leaves (`number(./ITEMNO_ACC)`, `decimal(./AMT_DOCCUR, 2)`,
// `pad(@seq, 10)`). Its text is made straight from the input text, with
// no boxed values and no apd decimals; whatever is not plain (a number
// fastDec cannot hold, a context the shortcut does not walk) goes to the
// general evaluation, which also makes every error.
type leafCall struct {
	fn   leafFn
	path int
	n    int // decimal's scale, pad's width
}

// leafFn is the function a leafCall calls.
type leafFn uint8

const (
	leafNumber leafFn = iota
	leafDecimal
	leafPad
	leafPadRight
)

func compileLeafCall(d *direct) *leafCall {
	if d == nil || d.kind != 'f' || len(d.args) == 0 || d.args[0].kind != 'p' {
		return nil
	}
	l := &leafCall{path: d.args[0].idx}
	if len(d.args) == 1 && (d.name == "number" || d.name == "decimal") {
		// decimal(x) is number(x) for a blank (nil) and for text fastDec
		// reads (the same decimal, the same text); where they differ, text
		// that is not a number, fastDec cannot read it and the general
		// evaluation decides.
		return l
	}
	switch d.name {
	case "decimal":
		l.fn = leafDecimal
	case "pad":
		l.fn = leafPad
	case "padRight":
		l.fn = leafPadRight
	default:
		return nil
	}
	if len(d.args) != 2 || d.args[1].kind != 'l' {
		return nil
	}
	n, ok := d.args[1].val.(int)
	if !ok || l.fn == leafDecimal && (n < -30 || n > 30) {
		return nil // roundTo's range error is the general path's to make
	}
	l.n = n
	return l
}

// numeric: the call gives a decimal (written as a JSON number), not text.
func (l *leafCall) numeric() bool { return l.fn == leafNumber || l.fn == leafDecimal }

// appendText appends the call's text to buf; found is false for nil (the
// argument selected nothing or was blank), handled false when the general
// evaluation must run.
func (l *leafCall) appendText(c *evalCtx, e *compiled, buf []byte) (out []byte, found, handled bool) {
	s, found, handled := c.scalarText(e.paths[l.path])
	if !handled || !found {
		return buf, false, handled
	}
	switch l.fn {
	case leafPad:
		for k := l.n - utf8.RuneCountInString(s); k > 0; k-- {
			buf = append(buf, '0')
		}
		return append(buf, s...), true, true
	case leafPadRight:
		buf = append(buf, s...)
		for k := l.n - utf8.RuneCountInString(s); k > 0; k-- {
			buf = append(buf, ' ')
		}
		return buf, true, true
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return buf, false, true
	}
	d, ok := parseFastDec(s)
	if ok && l.fn == leafDecimal {
		d, ok = d.quantize(int32(-l.n), decHalfUp.Rounding)
	}
	if !ok {
		return buf, false, false
	}
	return d.appendText(buf), true, true
}

// run evaluates the tree. Arguments live on c.args while a call runs, so a
// call allocates no argument slice.
func (d *direct) run(c *evalCtx) (any, error) {
	switch d.kind {
	case 'l':
		return d.val, nil
	case 'p':
		if d.scalar {
			return c.pathScalar(d.idx)
		}
		return c.path(d.idx)
	case 'v':
		return c.vars[d.idx], nil
	}
	base := len(c.args)
	for _, a := range d.args {
		v, err := a.run(c)
		if err != nil {
			c.popArgs(base)
			return nil, err
		}
		c.args = append(c.args, v)
	}
	v, err := d.fn(c, c.args[base:len(c.args):len(c.args)])
	c.popArgs(base)
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", d.name, err)
	}
	return v, nil
}

func (c *evalCtx) popArgs(base int) {
	clear(c.args[base:])
	c.args = c.args[:base]
}

// evalDirect is eval for an expression with a direct tree: the same error
// wrapping, and a panic becomes the error the VM would have made of it.
func (c *evalCtx) evalDirect(e *compiled) (v any, err error) {
	outer := c.cur
	c.cur, c.paths, c.lastPath = e, e.paths, -1
	func() {
		defer func() {
			if r := recover(); r != nil {
				f := &file.Error{Message: fmt.Sprintf("%v", r)}
				if re, ok := r.(error); ok {
					f.Wrap(re)
				}
				v, err = nil, f
			}
		}()
		v, err = e.direct.run(c)
	}()
	if err != nil {
		var inner *runError
		if errors.As(err, &inner) {
			err = inner
		} else {
			err = &runError{c.trailString(), e, err, c.inputPath()}
		}
	}
	c.cur = outer
	if outer != nil {
		c.paths = outer.paths
	}
	return v, err
}
