package transforms

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/antchfx/xpath"
	"github.com/beevik/etree"
	"github.com/cockroachdb/apd/v3"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"

	"github.com/busbar/busbar/bus"
)

type gjsonResult = gjson.Result

// item is the current for-each item.
type item struct {
	has  bool
	json gjson.Result // JSON input
	nav  *xmlNav      // XML input
	val  any          // an item that is a computed value, not an input node
	idx  int          // 0-based position among the for-each's input items
	grp  *group       // the group this item stands for (group-by)
}

// value is the item as a value of the language.
func (it item) value() any {
	switch {
	case it.nav != nil:
		return xmlNodes{it.nav}
	case it.val != nil:
		return it.val
	}
	return fromJSON(it.json)
}

type trailStep struct {
	name  string
	index int // 1-based item number, 0 when not repeated
}

// evalCtx is the state of one evaluation. Mappings pool them; one serves
// one Apply at a time.
type evalCtx struct {
	m      *Mapping
	tables map[string]*table
	msg    *bus.Message
	mode   inputMode

	jsonRoot gjson.Result
	xmlRoot  *xmlNav // the context node outside any for-each: the payload element

	item      item
	pos, last int
	grp       *group // the current group of a for-each with group-by
	vars      []any
	stack     []any // template calls: arguments and the saved variables of the callee
	args      []any // arguments of the direct calls in progress (mapping_fast.go)
	depth     int   // template calls in progress
	loops     []loopStep

	paths    []*pathRef // the paths of the expression being evaluated
	cur      *compiled  // the expression being evaluated
	lastPath int        // index of the path read last (for error messages), -1 none
	lastRes  any
	// lastNav is the node pathScalar read last (lastNavOK), standing in for
	// lastRes's node-set.
	lastNav   xmlNav
	lastNavOK bool
	env       map[string]any
	vm        vm.VM
	nested    int // evaluations in progress (group(expr) evaluates inside an evaluation)
	vm2       vm.VM

	matched   map[matchKey]*idRule // identity: the rule for each input node
	movedFrom map[string]bool      // identity: namespaces rules moved nodes out of
	buf       []byte               // output: JSON, or XML when the mapping streams it
	trail     []trailStep
	attrs     [][2]string // streamed XML: the start tag being collected
	// streamed XML: the texts leafCall shortcuts made for the element being
	// written (its text and attribute values), viewed in place until the
	// start tag and the text are written (streamLeafString)
	text []byte
	// item slices of for-each loops by loop depth (itemBuf)
	itemBufs [][]item
	// the nodes of for-each items, for the whole Apply (navBuf), and how
	// many this Apply took
	navChunk   []xmlNav
	navUsed    int
	nsScope    [][2]string     // streamed XML: namespace declarations of the open elements
	nsMarks    []int           // streamed XML: where each open element's declarations start in nsScope
	elems      []etree.Element // output elements not handed out yet (newElement)
	elemChunks int
	nowT       time.Time // now(), fixed for one Apply
}

func newEvalCtx(m *Mapping) *evalCtx {
	c := &evalCtx{m: m}
	c.env = map[string]any{"_c": c}
	if m != nil {
		c.tables = m.tables
		c.vars = make([]any, m.nvars)
		c.mode = m.input
	}
	return c
}

func (c *evalCtx) now() time.Time {
	if c.nowT.IsZero() {
		c.nowT = time.Now()
	}
	return c.nowT
}

// start binds the context to an input message.
func (c *evalCtx) start(in *bus.Message) error {
	c.msg = in
	c.pos, c.last = 1, 1
	mode := c.mode
	if mode == inputAny {
		mode = inputJSON
		if in.Format == bus.FormatXML || ((in.Root != nil || in.XMLSource() != nil) && in.Format != bus.FormatJSON) {
			mode = inputXML
		}
		c.mode = mode
	}
	switch mode {
	case inputJSON:
		if in.Format == bus.FormatXML {
			return c.startFault("the mapping reads JSON but the message holds XML")
		}
		body := in.Body
		if len(body) > 0 && !in.JSONChecked && !gjson.ValidBytes(body) {
			return bus.ClientFault(422, "Mapping failed", c.name()+": the message body is not valid JSON").
				Hide("the message body is not valid JSON")
		}
		c.jsonRoot = gjson.ParseBytes(body)
	case inputXML:
		if p, ok := in.XMLSource().(*DocPayload); ok {
			c.xmlRoot = newDocNav(p.Doc, p.Node)
			c.xmlRoot.MoveToChild()
			return nil
		}
		root, err := in.XML()
		if err != nil {
			return bus.ServerFault(500, "Mapping failed", c.name()+": "+err.Error()).Hide(notTheRequest)
		}
		if root == nil {
			if in.Format == bus.FormatJSON {
				return c.startFault("the mapping reads XML but the message holds JSON")
			}
			c.xmlRoot = nil
			return c.startFault("the message holds no parsed XML payload")
		}
		c.xmlRoot = newXMLNav(root)
		c.xmlRoot.MoveToChild() // from the virtual document root to the payload element
	}
	return nil
}

func (c *evalCtx) name() string {
	if c.m != nil {
		return c.m.name
	}
	return "expression"
}

func (c *evalCtx) startFault(msg string) error {
	return bus.ServerFault(500, "Mapping failed", c.name()+": "+msg).Hide(notTheRequest)
}

func (c *evalCtx) reset() {
	c.msg, c.xmlRoot, c.jsonRoot = nil, nil, gjson.Result{}
	c.item, c.paths, c.cur, c.grp, c.lastRes = item{}, nil, nil, nil, nil
	c.lastNav, c.lastNavOK = xmlNav{}, false
	for _, b := range c.itemBufs {
		clear(b[:cap(b)]) // they point into this message's tree
	}
	clear(c.navChunk)
	switch {
	case c.navUsed > maxNavChunk || cap(c.navChunk) > maxNavChunk:
		c.navChunk = nil
	case c.navUsed > cap(c.navChunk): // some navs did not fit: room for all next time
		c.navChunk = make([]xmlNav, 0, c.navUsed)
	default:
		c.navChunk = c.navChunk[:0]
	}
	c.navUsed = 0
	c.depth, c.nested = 0, 0
	clear(c.stack)
	c.stack = c.stack[:0]
	c.loops = c.loops[:0]
	clear(c.vars)
	clear(c.matched)
	clear(c.movedFrom)
	c.trail = c.trail[:0]
	clear(c.attrs)
	c.attrs = c.attrs[:0]
	c.elems, c.elemChunks = nil, 0
	c.nowT = time.Time{}
	if c.m != nil {
		c.mode = c.m.input
	} else {
		c.mode = inputAny
	}
	if cap(c.buf) > 1<<20 { // do not keep huge buffers in the pool
		c.buf = nil
	}
}

// savedItem is the iteration state a for-each or a call replaces.
type savedItem struct {
	item      item
	pos, last int
	grp       *group
}

func (c *evalCtx) saveItem() savedItem { return savedItem{c.item, c.pos, c.last, c.grp} }
func (c *evalCtx) restoreItem(s savedItem) {
	c.item, c.pos, c.last, c.grp = s.item, s.pos, s.last, s.grp
}

// contextNav is the context node of an XPath on XML input: the current
// item's node, else the payload element.
func (c *evalCtx) contextNav() *xmlNav {
	if c.item.has && c.item.nav != nil {
		return c.item.nav
	}
	return c.xmlRoot
}

// at makes it the current item.
func (c *evalCtx) at(it item, pos, last int) {
	c.item, c.pos, c.last = it, pos, last
	if it.grp != nil {
		c.grp = it.grp
	}
}

// loopStep is one for-each being iterated, for naming the input in errors.
type loopStep struct {
	expr *compiled
	idx  int
}

func (c *evalCtx) push(name string, index int) {
	c.trail = append(c.trail, trailStep{name, index})
}
func (c *evalCtx) pop() { c.trail = c.trail[:len(c.trail)-1] }
func (c *evalCtx) setTrailIndex(i int) {
	if len(c.trail) > 0 {
		c.trail[len(c.trail)-1].index = i
	}
}

// trailString is the output path being built: a/b/item[2]/c.
func (c *evalCtx) trailString() string {
	var b strings.Builder
	for _, s := range c.trail {
		if s.name == "" && s.index == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(s.name)
		if s.index > 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// eval runs one compiled expression in the current context.
func (c *evalCtx) eval(e *compiled) (v any, err error) {
	if e.single {
		return c.evalSingle(e, false)
	}
	if e.direct != nil {
		return c.evalDirect(e)
	}
	outer := c.cur
	c.cur, c.paths, c.lastPath = e, e.paths, -1
	switch c.nested {
	case 0:
		c.nested++
		v, err = c.vm.Run(e.prog, c.env)
	case 1: // group(expr) runs inside another evaluation: a VM is not reentrant
		c.nested++
		v, err = c.vm2.Run(e.prog, c.env)
	default:
		c.nested++
		v, err = vm.Run(e.prog, c.env)
	}
	c.nested--
	if err != nil {
		var inner *runError
		if errors.As(err, &inner) { // from group(expr): the inner expression's own message
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

// evalSingle evaluates an expression that is one path without the VM.
// text asks for the string value of a node-set rather than the nodes (an
// output leaf needs no more); the VM's errors would carry the same message.
func (c *evalCtx) evalSingle(e *compiled, text bool) (v any, err error) {
	outer := c.cur
	c.cur, c.paths, c.lastPath = e, e.paths, -1
	if text {
		v, err = c.pathText(0)
	} else {
		v, err = c.path(0)
	}
	if err != nil {
		err = &runError{c.trailString(), e, err, c.inputPath()}
	}
	c.cur = outer
	if outer != nil {
		c.paths = outer.paths
	}
	return v, err
}

// pathText is path(i) reduced to what toString would make of a node-set,
// without building the node-set, when the path has a shortcut.
func (c *evalCtx) pathText(i int) (any, error) {
	p := c.paths[i]
	if p.fast == nil || c.mode != inputXML || c.xmlRoot == nil {
		return c.path(i)
	}
	ctxNav := c.contextNav()
	s, found, handled := p.fast.text(ctxNav)
	if !handled {
		return c.path(i)
	}
	c.lastPath, c.lastRes, c.lastNavOK = i, nil, false
	if !found {
		return nil, nil
	}
	return s, nil
}

// exprMessage is the message of an evaluation error without expr's
// snippet of the rewritten source.
func exprMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return cleanExprMessage(fe.Message)
	}
	return err.Error()
}

// path evaluates the i-th path of the current expression.
func (c *evalCtx) path(i int) (v any, err error) {
	v, err = c.path1(i)
	c.lastPath, c.lastRes, c.lastNavOK = i, v, false
	return v, err
}

func (c *evalCtx) path1(i int) (any, error) {
	p := c.paths[i]
	switch c.mode {
	case inputXML:
		if c.xmlRoot == nil {
			return nil, nil
		}
		ctxNav := c.contextNav()
		if p.current {
			if c.item.has && c.item.nav == nil {
				return c.item.val, nil
			}
			return xmlNodes{ctxNav.Copy()}, nil
		}
		if p.xp == nil {
			return nil, fmt.Errorf("%s is a JSON path; the message holds XML", p.src)
		}
		if p.fast != nil {
			if v, ok := p.fast.nodes(ctxNav); ok {
				return v, nil
			}
		}
		return evalXPath(p.xp, ctxNav)
	default:
		if p.current {
			if !c.item.has {
				return fromJSON(c.jsonRoot), nil
			}
			if c.item.val != nil {
				return c.item.val, nil
			}
			return fromJSON(c.item.json), nil
		}
		if !p.isJSON {
			return nil, fmt.Errorf("%s is an XPath; the message holds JSON", p.src)
		}
		base := c.jsonRoot
		if !p.absolute && c.item.has {
			if c.item.val != nil {
				return nil, nil // a computed item has no fields
			}
			base = c.item.json
		}
		if p.gjson == "" {
			return fromJSON(base), nil
		}
		return fromJSON(base.Get(p.gjson)), nil
	}
}

func evalXPath(p *xpathPool, at *xmlNav) (res any, err error) {
	e := p.pool.Get().(*xpath.Expr)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("XPath %s failed: %v", p.src, r)
		}
		p.pool.Put(e)
	}()
	switch v := e.Evaluate(at.Copy()).(type) {
	case *xpath.NodeIterator:
		var nodes xmlNodes
		for v.MoveNext() {
			nodes = append(nodes, v.Current().Copy())
		}
		if len(nodes) == 0 {
			return nil, nil
		}
		return nodes, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil
		}
		d, _, err := apd.NewFromString(strconv.FormatFloat(v, 'f', -1, 64))
		if err != nil {
			return nil, nil
		}
		return d, nil
	case string:
		return v, nil
	case bool:
		return v, nil
	case nil:
		return nil, nil
	default:
		return fmt.Sprint(v), nil
	}
}

// items evaluates a for-each expression into its items.
func (c *evalCtx) items(e *compiled) ([]item, error) {
	if e.single && c.mode == inputXML && c.xmlRoot != nil && e.paths[0].fast != nil {
		at := c.contextNav()
		if out, ok := e.paths[0].fast.items(c, at); ok {
			return out, nil
		}
	}
	v, err := c.eval(e)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case xmlNodes:
		out := make([]item, len(x))
		for i, n := range x {
			nav, ok := n.(*xmlNav)
			if !ok {
				out[i] = item{has: true, val: n.Value(), idx: i}
				continue
			}
			out[i] = item{has: true, nav: nav, idx: i}
		}
		return out, nil
	case jsonVal:
		if !x.r.IsArray() {
			return []item{{has: true, json: x.r}}, nil
		}
		var out []item
		x.r.ForEach(func(_, r gjson.Result) bool {
			out = append(out, item{has: true, json: r, idx: len(out)})
			return true
		})
		return out, nil
	case []any:
		out := make([]item, 0, len(x))
		for i, v := range x {
			switch y := v.(type) {
			case xmlNodes:
				if nav, ok := y[0].(*xmlNav); ok {
					out = append(out, item{has: true, nav: nav, idx: i})
					continue
				}
			case jsonVal:
				out = append(out, item{has: true, json: y.r, idx: i})
				continue
			}
			out = append(out, item{has: true, val: v, idx: i})
		}
		return out, nil
	default: // a single value: one item, readable as "."
		return []item{{has: true, val: v}}, nil
	}
}

// ---- JSON writing ----

func appendJSONValue(buf *[]byte, v any) error {
	switch x := v.(type) {
	case string:
		*buf = appendJSONString(*buf, x)
	case *apd.Decimal:
		if x.Form != apd.Finite {
			return fmt.Errorf("%s is not a JSON number", x.Text('f'))
		}
		*buf = append(*buf, x.Text('f')...)
	case int:
		*buf = strconv.AppendInt(*buf, int64(x), 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%v is not a JSON number", x)
		}
		*buf = strconv.AppendFloat(*buf, x, 'f', -1, 64)
	case bool:
		*buf = strconv.AppendBool(*buf, x)
	case xmlNodes:
		*buf = appendJSONString(*buf, x[0].Value())
	case jsonVal:
		*buf = append(*buf, strings.TrimSpace(x.r.Raw)...)
	case []any:
		*buf = append(*buf, '[')
		for i, v := range x {
			if i > 0 {
				*buf = append(*buf, ',')
			}
			if err := appendJSONValue(buf, v); err != nil {
				return err
			}
		}
		*buf = append(*buf, ']')
	case nil:
		*buf = append(*buf, "null"...)
	default:
		*buf = appendJSONString(*buf, toString(v))
	}
	return nil
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func isLetterRune(r rune) bool { return unicode.IsLetter(r) }

// ---- standalone expressions (route conditions) ----

// Expr is a standalone compiled expression, such as a route's when:
// condition. It reads JSON paths on JSON messages and XPath on XML ones.
type Expr struct {
	c    *compiled
	pool chan *evalCtx
}

// CompileExpr compiles one standalone expression (route when: conditions);
// file/line/col locate it for errors. namespaces are the prefixes its
// XPaths may use. Paths written in either syntax compile; the message
// decides at run time which applies.
func CompileExpr(src, file string, line, col int, namespaces map[string]string) (e *Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, &loadError{file, line, col, fmt.Sprintf("expression %q: internal error: %v", src, r)}
		}
	}()
	env := &compileEnv{file: file, mode: inputAny, namespaces: namespaces, vars: map[string]int{}}
	c, err := compileExpression(src, env, line, col)
	if err != nil {
		return nil, err
	}
	return &Expr{c: c, pool: make(chan *evalCtx, 8)}, nil
}

func (e *Expr) eval(in *bus.Message, frag *etree.Element) (v any, err error) {
	var c *evalCtx
	select {
	case c = <-e.pool:
	default:
		c = newEvalCtx(nil)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, bus.ServerFault(500, "Expression failed", fmt.Sprintf("%s: %s: internal error: %v", e.c.where(), e.c.src, r)).
				Hide(notTheRequest)
			return
		}
		c.reset()
		select {
		case e.pool <- c:
		default:
		}
	}()
	if frag != nil {
		c.startFragment(in, frag)
	} else if err := c.start(in); err != nil {
		return nil, err
	}
	v, err = c.eval(e.c)
	if err != nil {
		return nil, runFault("Expression failed", fmt.Sprintf("%s: %s: %s", e.c.where(), e.c.src, exprMessage(err)), err)
	}
	return v, nil
}

// Bool evaluates the expression as a condition: nil, false, "", "false",
// zero and an empty node-set are false.
func (e *Expr) Bool(in *bus.Message) (bool, error) {
	v, err := e.eval(in, nil)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

// String evaluates the expression as text ("" for nil).
func (e *Expr) String(in *bus.Message) (string, error) {
	v, err := e.eval(in, nil)
	if err != nil {
		return "", err
	}
	return toString(v), nil
}
