package transforms

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"
	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/bus"
)

// maxCallDepth bounds template calls nested in one another, so that a
// template that calls itself without end fails with a message instead of
// exhausting the stack.
const maxCallDepth = 64

type spliceKind int

const (
	spliceChoose spliceKind = iota // choose: the first branch whose when: is true
	spliceCall                     // call: a named template
	spliceCopy                     // copy-of: input nodes copied as they are
)

// splice is a choose:, call: or copy-of: inside an object: content that is
// decided at run time and lands in the object at the key's place.
type splice struct {
	kind     spliceKind
	branches []branch // choose
	tmpl     *template
	context  *compiled // call: the context item (nil: the caller's)
	args     []callArg
	copyOf   *compiled
}

type branch struct {
	cond *compiled // nil for otherwise:
	body *node
}

type callArg struct {
	param int // index into the template's params
	expr  *compiled
}

// template is a named sub-mapping (templates:), like an XSLT named template.
type template struct {
	name      string
	file      string
	line, col int
	ast       ast.Node // its body, compiled once every template is known
	params    []param
	paramIdx  map[string]int
	body      *node
	lo, hi    int // the variable slots of its parameters and lets
}

type param struct {
	name string
	slot int
	def  *compiled // default when the caller does not pass it; nil: nil
	defN ast.Node
}

// collectTemplates reads templates: (name: {params:, body:}) without
// compiling the bodies, so that templates may call each other in any order.
func (l *loader) collectTemplates(file string, val ast.Node) error {
	mn, ok := val.(*ast.MappingNode)
	if !ok {
		return errAtNode(file, val, "templates: want a map of name: {params: …, body: …}")
	}
	for _, tv := range mn.Values {
		name := keyText(tv.Key)
		line, col := nodePos(tv.Key)
		if !isTemplateName(name) {
			return errAtNode(file, tv.Key, fmt.Sprintf("template name %q: want letters, digits, _ and -", name))
		}
		if old, ok := l.m.templates[name]; ok {
			return errAtNode(file, tv.Key, fmt.Sprintf("template %q is already defined at %s:%d:%d", name, old.file, old.line, old.col))
		}
		def, ok := unwrap(tv.Value).(*ast.MappingNode)
		if !ok {
			return errAtNode(file, tv.Value, fmt.Sprintf("template %q: want params: and body:", name))
		}
		t := &template{name: name, file: file, line: line, col: col, paramIdx: map[string]int{}}
		for _, kv := range def.Values {
			switch k := keyText(kv.Key); k {
			case "body":
				t.ast = unwrap(kv.Value)
			case "params":
				if err := t.readParams(file, unwrap(kv.Value)); err != nil {
					return err
				}
			case "description":
			default:
				return errAtNode(file, kv.Key, fmt.Sprintf("template %q: unknown key %q (want params, body)", name, k))
			}
		}
		if t.ast == nil {
			return errAtNode(file, tv.Key, fmt.Sprintf("template %q: missing body:", name))
		}
		l.m.templates[name] = t
		l.order = append(l.order, t)
	}
	return nil
}

// readParams takes a list of names, or a map of name: default expression.
func (t *template) readParams(file string, v ast.Node) error {
	add := func(at ast.Node, name string, def ast.Node) error {
		if !isIdent(name) {
			return errAtNode(file, at, fmt.Sprintf("parameter name %q: want letters, digits and _", name))
		}
		if _, dup := t.paramIdx[name]; dup {
			return errAtNode(file, at, fmt.Sprintf("duplicate parameter %q", name))
		}
		t.paramIdx[name] = len(t.params)
		t.params = append(t.params, param{name: name, defN: def})
		return nil
	}
	switch p := v.(type) {
	case *ast.SequenceNode:
		for _, x := range p.Values {
			if err := add(x, scalarOf(x), nil); err != nil {
				return err
			}
		}
	case *ast.MappingNode:
		for _, kv := range p.Values {
			def := kv.Value
			if _, isNull := unwrap(def).(*ast.NullNode); isNull {
				def = nil
			}
			if err := add(kv.Key, keyText(kv.Key), def); err != nil {
				return err
			}
		}
	default:
		return errAtNode(file, v, "params: want a list of names or a map of name: default")
	}
	return nil
}

func isTemplateName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIdentChar(s[i]) && s[i] != '-' {
			return false
		}
	}
	return s != "" && isIdentStart(s[0])
}

// compileTemplates compiles every template body. Parameters and lets of one
// template take consecutive variable slots, so a call can save and restore
// them (templates may call themselves).
func (l *loader) compileTemplates() error {
	m := l.m
	for _, t := range l.order {
		t.lo = m.nvars
		env := &compileEnv{file: t.file, mode: m.input, namespaces: m.namespaces, tables: m.tables,
			templates: m.templates, vars: map[string]int{}, inGroup: true}
		for i := range t.params {
			p := &t.params[i]
			p.slot = m.nvars
			m.nvars++
			if p.defN != nil {
				c, err := compileExprAt(p.defN, env)
				if err != nil {
					return err
				}
				p.def = c
			}
			env.vars[p.name] = p.slot // defaults see the parameters before them
		}
		body, err := m.compileNode("", t.ast, env)
		if err != nil {
			return err
		}
		if body.forEach != nil {
			return errAtNode(t.file, t.ast, fmt.Sprintf("template %q: put for-each: on the calling node, not on the template's body", t.name))
		}
		if err := m.checkSplices(body, t.file); err != nil {
			return err
		}
		t.body = body
		t.hi = m.nvars
		m.tidyNS = true
	}
	return nil
}

func (m *Mapping) compileSplice(kind string, mv *ast.MappingValueNode, callCtx, callParams ast.Node, env *compileEnv) (*splice, error) {
	val := unwrap(mv.Value)
	switch kind {
	case "copy-of":
		if m.output != bus.FormatXML {
			return nil, errAtNode(env.file, mv.Key, "copy-of: builds XML output; in JSON output a path to an object or array copies it as is (field: $.obj)")
		}
		c, err := compileExprAt(val, env)
		if err != nil {
			return nil, err
		}
		m.tidyNS = true
		return &splice{kind: spliceCopy, copyOf: c}, nil
	case "call":
		s, ok := val.(*ast.StringNode)
		if !ok {
			return nil, errAtNode(env.file, mv.Value, "call: want a template name")
		}
		t, ok := env.templates[s.Value]
		if !ok {
			return nil, errAtNode(env.file, mv.Value, fmt.Sprintf("unknown template %q", s.Value))
		}
		sp := &splice{kind: spliceCall, tmpl: t}
		if callCtx != nil {
			c, err := compileExprAt(callCtx, env)
			if err != nil {
				return nil, err
			}
			sp.context = c
		}
		if callParams != nil {
			pm, ok := unwrap(callParams).(*ast.MappingNode)
			if !ok {
				return nil, errAtNode(env.file, callParams, "params: want a map of name: expression")
			}
			for _, kv := range pm.Values {
				name := keyText(kv.Key)
				i, ok := t.paramIdx[name]
				if !ok {
					return nil, errAtNode(env.file, kv.Key, fmt.Sprintf("template %q has no parameter %q", t.name, name))
				}
				c, err := compileExprAt(kv.Value, env)
				if err != nil {
					return nil, err
				}
				sp.args = append(sp.args, callArg{param: i, expr: c})
			}
		}
		return sp, nil
	}
	seq, ok := val.(*ast.SequenceNode)
	if !ok || len(seq.Values) == 0 {
		return nil, errAtNode(env.file, mv.Value, "choose: want a list of {when: …, then: …} and a last {otherwise: …}")
	}
	sp := &splice{kind: spliceChoose}
	for i, bv := range seq.Values {
		bm, ok := unwrap(bv).(*ast.MappingNode)
		if !ok {
			return nil, errAtNode(env.file, bv, "choose: each branch is {when: …, then: …} or {otherwise: …}")
		}
		var when, then, otherwise ast.Node
		for _, kv := range bm.Values {
			switch k := keyText(kv.Key); k {
			case "when":
				when = kv.Value
			case "then":
				then = kv.Value
			case "otherwise":
				otherwise = kv.Value
			default:
				return nil, errAtNode(env.file, kv.Key, fmt.Sprintf("choose: unknown key %q (want when, then, otherwise)", k))
			}
		}
		var b branch
		switch {
		case otherwise != nil && (when != nil || then != nil):
			return nil, errAtNode(env.file, bv, "choose: otherwise: stands alone in its branch")
		case otherwise != nil:
			if i != len(seq.Values)-1 {
				return nil, errAtNode(env.file, bv, "choose: otherwise: must be the last branch")
			}
			then = otherwise
		case when == nil || then == nil:
			return nil, errAtNode(env.file, bv, "choose: a branch needs when: and then:")
		default:
			c, err := compileExprAt(when, env)
			if err != nil {
				return nil, err
			}
			b.cond = c
		}
		body, err := m.compileNode("", then, env)
		if err != nil {
			return nil, err
		}
		if body.forEach != nil {
			return nil, errAtNode(env.file, then, "choose: put for-each: on the node that holds the choose:, not in a branch")
		}
		b.body = body
		sp.branches = append(sp.branches, b)
	}
	return sp, nil
}

// checkSplices checks what a chosen or called body may be where it lands:
// among other fields it must itself be fields; in XML it cannot be a list.
func (m *Mapping) checkSplices(n *node, file string) error {
	for _, ch := range n.children {
		if ch.splice == nil {
			if err := m.checkSplices(ch, file); err != nil {
				return err
			}
			continue
		}
		var bodies []*node
		switch ch.splice.kind {
		case spliceChoose:
			for _, b := range ch.splice.branches {
				bodies = append(bodies, b.body)
			}
		case spliceCall:
			bodies = append(bodies, ch.splice.tmpl.body) // nil while templates compile: checked at their call sites below
		}
		for _, b := range bodies {
			if b == nil {
				continue
			}
			switch {
			case b.seq && m.output == bus.FormatXML:
				return &loadError{file, ch.line, ch.col, "a list cannot be the content of an element (name the elements)"}
			case !n.spliceOnly && m.output == bus.FormatJSON && !(b.object && b.value == nil && !b.isLiteral):
				return &loadError{file, ch.line, ch.col, "among other fields, choose: and call: must produce fields (a map), not a single value"}
			}
			if ch.splice.kind == spliceChoose {
				if err := m.checkSplices(b, file); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ---- evaluation ----

// spliceMark is what entering a splice changed, for leaveSplice.
type spliceMark struct {
	called *template
	stack  int // len(c.stack) before the call
	nargs  int
	saved  savedItem
}

// enterSplice picks the content a choose: or call: produces (nil for none)
// and, for a call, switches to the template's context.
func (c *evalCtx) enterSplice(s *splice) (*node, spliceMark, error) {
	if s.kind == spliceChoose {
		for i := range s.branches {
			b := &s.branches[i]
			if b.cond == nil {
				return b.body, spliceMark{}, nil
			}
			v, err := c.eval(b.cond)
			if err != nil {
				return nil, spliceMark{}, err
			}
			if truthy(v) {
				return b.body, spliceMark{}, nil
			}
		}
		return nil, spliceMark{}, nil
	}
	t := s.tmpl
	if c.depth >= maxCallDepth {
		trail := strings.Split(c.trailString(), "/")
		if len(trail) > 6 {
			trail = append(append(trail[:3:3], "…"), trail[len(trail)-2:]...)
		}
		return nil, spliceMark{}, fmt.Errorf("%s: template %q (%s:%d:%d): calls nested more than %d deep (a template that calls itself without end?)",
			strings.Join(trail, "/"), t.name, t.file, t.line, t.col, maxCallDepth)
	}
	mark := spliceMark{called: t, stack: len(c.stack), nargs: len(s.args), saved: c.saveItem()}
	for _, a := range s.args { // in the caller's context
		v, err := c.eval(a.expr)
		if err != nil {
			c.stack = c.stack[:mark.stack]
			return nil, spliceMark{}, err
		}
		c.stack = append(c.stack, v)
	}
	if s.context != nil {
		items, err := c.items(s.context)
		if err != nil || len(items) == 0 {
			c.stack = c.stack[:mark.stack]
			return nil, spliceMark{}, err
		}
		c.at(items[0], 1, 1)
	}
	c.stack = append(c.stack, c.vars[t.lo:t.hi]...)
	clear(c.vars[t.lo:t.hi])
	for j, a := range s.args {
		c.vars[t.params[a.param].slot] = c.stack[mark.stack+j]
	}
	c.depth++
	for i := range t.params {
		p := &t.params[i]
		if p.def == nil || passed(s.args, i) {
			continue
		}
		v, err := c.eval(p.def)
		if err != nil {
			c.leaveSplice(mark)
			return nil, spliceMark{}, err
		}
		c.vars[p.slot] = v
	}
	return t.body, mark, nil
}

func passed(args []callArg, i int) bool {
	for _, a := range args {
		if a.param == i {
			return true
		}
	}
	return false
}

// leaveSplice undoes what enterSplice changed for a template call.
func (c *evalCtx) leaveSplice(mark spliceMark) {
	t := mark.called
	if t == nil {
		return
	}
	copy(c.vars[t.lo:t.hi], c.stack[mark.stack+mark.nargs:])
	clear(c.stack[mark.stack:])
	c.stack = c.stack[:mark.stack]
	c.restoreItem(mark.saved)
	c.depth--
}

// ---- sort and group-by ----

// sortKey is one key of sort:.
type sortKey struct {
	expr *compiled
	desc bool
	as   byte // 'a' auto (numbers when every value is one), 'n' number, 't' text
}

// compileSort reads sort: EXPR, or a list of EXPR / {by:, order:, as:}.
func compileSort(v ast.Node, env *compileEnv) ([]sortKey, error) {
	one := func(x ast.Node) (sortKey, error) {
		k := sortKey{as: 'a'}
		mn, ok := unwrap(x).(*ast.MappingNode)
		if !ok {
			c, err := compileExprAt(x, env)
			k.expr = c
			return k, err
		}
		for _, kv := range mn.Values {
			switch key := keyText(kv.Key); key {
			case "by":
				c, err := compileExprAt(kv.Value, env)
				if err != nil {
					return k, err
				}
				k.expr = c
			case "order":
				switch scalarOf(kv.Value) {
				case "ascending":
				case "descending":
					k.desc = true
				default:
					return k, errAtNode(env.file, kv.Value, "order: want ascending or descending")
				}
			case "as":
				switch scalarOf(kv.Value) {
				case "number":
					k.as = 'n'
				case "text":
					k.as = 't'
				case "auto":
				default:
					return k, errAtNode(env.file, kv.Value, "as: want number, text or auto")
				}
			default:
				return k, errAtNode(env.file, kv.Key, fmt.Sprintf("sort: unknown key %q (want by, order, as)", key))
			}
		}
		if k.expr == nil {
			return k, errAtNode(env.file, x, "sort: a key needs by:")
		}
		return k, nil
	}
	var keys []sortKey
	list, ok := unwrap(v).(*ast.SequenceNode)
	if !ok {
		k, err := one(v)
		if err != nil {
			return nil, err
		}
		return []sortKey{k}, nil
	}
	for _, x := range list.Values {
		k, err := one(x)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errAtNode(env.file, v, "sort: want at least one key")
	}
	return keys, nil
}

// group is one group of a for-each with group-by.
type group struct {
	key     any
	members []item
}

// loopItems evaluates a for-each's items, then groups and sorts them.
func (c *evalCtx) loopItems(n *node) ([]item, error) {
	items, err := c.items(n.forEach)
	if err != nil || (n.groupBy == nil && n.sorts == nil) || len(items) == 0 {
		return items, err
	}
	saved := c.saveItem()
	defer c.restoreItem(saved)
	if n.groupBy != nil {
		if items, err = c.groupItems(n.groupBy, items); err != nil {
			return nil, err
		}
	}
	if len(n.sorts) > 0 {
		if err := c.sortItems(n.sorts, items); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// groupItems puts items with equal keys together, groups in the order of
// their first member (as XSLT's for-each-group). Decimal keys that are equal
// in value (1.0 and 1.00) fall in one group; a nil key has a group of its own.
func (c *evalCtx) groupItems(key *compiled, items []item) ([]item, error) {
	index := make(map[string]int, len(items))
	var groups []*group
	nilGroup := -1
	for i, it := range items {
		c.at(it, i+1, len(items))
		v, err := c.eval(key)
		if err != nil {
			return nil, err
		}
		gi := nilGroup
		if v == nil {
			if nilGroup < 0 {
				nilGroup = len(groups)
				gi = nilGroup
				groups = append(groups, &group{})
			}
		} else {
			ks := groupKeyText(v)
			var ok bool
			if gi, ok = index[ks]; !ok {
				gi = len(groups)
				index[ks] = gi
				groups = append(groups, &group{key: v})
			}
		}
		groups[gi].members = append(groups[gi].members, it)
	}
	out := make([]item, len(groups))
	for i, g := range groups {
		out[i] = g.members[0]
		out[i].grp = g
	}
	return out, nil
}

func groupKeyText(v any) string {
	if d, ok := scalar(v).(*apd.Decimal); ok {
		var r apd.Decimal
		r.Reduce(d)
		return "n" + r.Text('f')
	}
	if isNumeric(v) {
		if d, ok := parseDecimalQuiet(v); ok {
			return groupKeyText(d)
		}
	}
	return "s" + toString(v)
}

// sortItems sorts items (stable) by the sort keys evaluated once per item.
func (c *evalCtx) sortItems(keys []sortKey, items []item) error {
	k := len(keys)
	vals := make([]any, len(items)*k)
	for i, it := range items {
		c.at(it, i+1, len(items))
		for j, s := range keys {
			v, err := c.eval(s.expr)
			if err != nil {
				return err
			}
			vals[i*k+j] = scalar(v)
		}
	}
	for j, s := range keys {
		numeric := s.as == 'n'
		if s.as == 'a' {
			numeric = true
			for i := range items {
				if v := vals[i*k+j]; v != nil {
					if _, ok := parseDecimalQuiet(v); !ok {
						numeric = false
						break
					}
				}
			}
		}
		for i := range items {
			v := vals[i*k+j]
			if v == nil {
				continue
			}
			if !numeric {
				vals[i*k+j] = toString(v)
				continue
			}
			d, ok, err := toDecimal(v)
			if err != nil {
				return &runError{c.trailString(), s.expr, fmt.Errorf("sort key: %w", err), ""}
			}
			if !ok {
				vals[i*k+j] = nil
				continue
			}
			vals[i*k+j] = d
		}
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		for j, s := range keys {
			r := cmpSortValues(vals[a*k+j], vals[b*k+j])
			if s.desc {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return 0
	})
	sorted := make([]item, len(items))
	for i, o := range order {
		sorted[i] = items[o]
	}
	copy(items, sorted)
	return nil
}

// cmpSortValues orders nil first, then decimals by value or text by code point.
func cmpSortValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if x, ok := a.(*apd.Decimal); ok {
		if y, ok := b.(*apd.Decimal); ok {
			return x.Cmp(y)
		}
	}
	return strings.Compare(toString(a), toString(b))
}

// ---- group() and groupKey() ----

func fnGroupKey(c *evalCtx, a []any) (any, error) {
	if c.grp == nil {
		return nil, errNoGroup
	}
	return c.grp.key, nil
}

var errNoGroup = fmt.Errorf("there is no current group (group() and groupKey() work inside a for-each with group-by)")

// groupValues is group() (sub 0: the members) or group(expr) (sub n: the
// n-th group(expr) of the expression being evaluated): expr
// evaluated with each member as the current item, nil results left out.
func (c *evalCtx) groupValues(sub int) (any, error) {
	g := c.grp
	if g == nil {
		return nil, errNoGroup
	}
	if sub == 0 {
		if len(g.members) > 0 && g.members[0].nav != nil {
			nodes := make(xmlNodes, len(g.members))
			for i, m := range g.members {
				nodes[i] = m.nav
			}
			return nodes, nil
		}
		out := make([]any, 0, len(g.members))
		for _, m := range g.members {
			out = append(out, m.value())
		}
		return out, nil
	}
	e := c.cur.subs[sub-1]
	saved := c.saveItem()
	defer c.restoreItem(saved)
	out := make([]any, 0, len(g.members))
	for i, m := range g.members {
		c.at(m, i+1, len(g.members))
		v, err := c.eval(e)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case nil:
		case xmlNodes:
			for _, n := range x {
				out = append(out, xmlNodes{n})
			}
		default:
			out = append(out, v)
		}
	}
	return out, nil
}
