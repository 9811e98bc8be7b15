package transforms

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/antchfx/xpath"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// inputMode is the kind of input a mapping's paths read.
type inputMode int

const (
	inputAny  inputMode = iota // decided by the message at run time (CompileExpr)
	inputJSON                  // $.a.b and .a.b paths (gjson)
	inputXML                   // XPath 1.0 paths (antchfx/xpath)
)

func (m inputMode) String() string {
	switch m {
	case inputJSON:
		return "json"
	case inputXML:
		return "xml"
	}
	return "any"
}

// pathRef is one path written in an expression, compiled at load.
type pathRef struct {
	src      string     // as written
	current  bool       // "." alone: the current item
	gjson    string     // JSON: the gjson path ("" with absolute: the root itself)
	absolute bool       // JSON: starts at the message root ($)
	isJSON   bool       // usable on JSON input
	xp       *xpathPool // usable on XML input when not nil
	fast     *fastXPath // xp's shortcut when it is a simple child path
}

// xpathPool hands out compiled copies of one XPath: an antchfx Expr keeps
// evaluation state, so one copy serves one goroutine at a time.
type xpathPool struct {
	src  string
	ns   map[string]string
	pool sync.Pool
}

func newXPathPool(src string, ns map[string]string) (*xpathPool, error) {
	src, err := rewritePrefixWildcards(src, ns)
	if err != nil {
		return nil, err
	}
	e, err := xpath.CompileWithNS(src, ns)
	if err != nil {
		return nil, err
	}
	p := &xpathPool{src: src, ns: ns}
	p.pool.New = func() any {
		e, _ := xpath.CompileWithNS(src, ns) // compiled once already: cannot fail
		return e
	}
	p.pool.Put(e)
	return p, nil
}

// rewritePrefixWildcards turns the name test p:* into
// *[namespace-uri()='URI']: antchfx/xpath compares "*" with the local name
// there, so p:* would compile and silently match nothing.
func rewritePrefixWildcards(src string, ns map[string]string) (string, error) {
	if !strings.Contains(src, ":*") {
		return src, nil
	}
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\'' || c == '"' {
			k := strings.IndexByte(src[i+1:], c)
			if k < 0 {
				b.WriteString(src[i:])
				break
			}
			b.WriteString(src[i : i+k+2])
			i += k + 1
			continue
		}
		if c == ':' && i+1 < len(src) && src[i+1] == '*' && (i == 0 || src[i-1] != ':') {
			// the prefix is the name written just before
			j := i
			for j > 0 && (isIdentChar(src[j-1]) || src[j-1] == '-' || src[j-1] == '.' || src[j-1] >= 0x80) {
				j--
			}
			p := src[j:i]
			if p != "" {
				uri, ok := ns[p]
				if !ok {
					return "", fmt.Errorf("prefix %q is not declared under namespaces", p)
				}
				s := b.String()
				b.Reset()
				b.WriteString(s[:len(s)-len(p)])
				b.WriteString("*[namespace-uri()='" + uri + "']")
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// compiled is one expression of a mapping (or a route condition).
type compiled struct {
	src       string // as written
	file      string
	line, col int // position of the expression's first character
	prog      *vm.Program
	paths     []*pathRef
	subs      []*compiled // group(expr): expr, evaluated per group member
	single    bool        // the expression is paths[0] alone: no VM needed
	direct    *direct     // else, when not nil: a call tree run without the VM
	leaf      *leafCall   // and when not nil, a leaf whose text needs no values
}

func (c *compiled) where() string { return fmt.Sprintf("%s:%d:%d", c.file, c.line, c.col) }

// compileEnv is what one mapping's expressions are compiled against.
type compileEnv struct {
	file       string
	mode       inputMode
	namespaces map[string]string
	tables     map[string]*table
	templates  map[string]*template
	vars       map[string]int // let-bound names in scope -> slot
	inGroup    bool           // inside a for-each with group-by: group() and groupKey() work
	detect     bool           // only classifying paths: accept any $name
}

// loadError is an error at a position of a mapping file.
type loadError struct {
	file      string
	line, col int
	msg       string
}

func (e *loadError) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.file, e.line, e.col, e.msg) }

// ---- the path-token scanner ----

// scanned is an expression rewritten for expr: every path token replaced by
// _p(_c, N), every $name by _v(_c, N), every function call given the
// evaluation context as first argument.
type scanned struct {
	text  string
	paths []rawPath
	subs  []rawPath // group(expr) arguments, compiled as expressions of their own
	// segments map offsets in text back to the source: text[seg.out:] came
	// from src[seg.in:].
	segs []segment
}

type segment struct{ out, in int }

type rawPath struct {
	src    string
	offset int  // byte offset in the source
	fn     bool // given as xpath("…") or json("…")
	kind   byte // 'x' xpath only, 'j' json only, '.' both
}

var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "nil": true, "true": true, "false": true,
	"contains": true, "startsWith": true, "endsWith": true,
}

// scanError carries a byte offset into the expression source.
type scanError struct {
	offset int
	msg    string
}

func (e *scanError) Error() string { return e.msg }

func scanExpr(src string, env *compileEnv) (*scanned, error) {
	var out strings.Builder
	sc := &scanned{}
	mark := func(in int) { sc.segs = append(sc.segs, segment{out.Len(), in}) }
	prevOperand := false
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			out.WriteByte(c)
			i++
			continue
		case c == '\'' || c == '"' || c == '`':
			j, err := skipString(src, i)
			if err != nil {
				return nil, err
			}
			out.WriteString(src[i:j])
			i = j
			prevOperand = true
			continue
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isDigit(src[j]) || src[j] == '_' || (src[j] == '.' && j+1 < len(src) && isDigit(src[j+1])) ||
				src[j] == 'e' || src[j] == 'E' || ((src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E'))) {
				j++
			}
			out.WriteString(src[i:j])
			i = j
			prevOperand = true
			continue
		case c == '$':
			if i+1 < len(src) && isIdentStart(src[i+1]) {
				j := i + 1
				for j < len(src) && isIdentChar(src[j]) {
					j++
				}
				name := src[i+1 : j]
				slot, ok := env.vars[name]
				if !ok && !env.detect {
					return nil, &scanError{i, fmt.Sprintf("unknown variable $%s (declare it with let:)", name)}
				}
				mark(i)
				fmt.Fprintf(&out, "_v(_c, %d)", slot)
				mark(j)
				i = j
				prevOperand = true
				continue
			}
			j := scanPathEnd(src, i+1, true)
			if err := addPath(sc, &out, mark, src[i:j], i, j, false, 'j', env); err != nil {
				return nil, err
			}
			i = j
			prevOperand = true
			continue
		case !prevOperand && (c == '/' || c == '@' || c == '.'):
			json := c == '.' && !(strings.HasPrefix(src[i:], "./") || strings.HasPrefix(src[i:], ".."))
			j := scanPathEnd(src, i+1, json)
			tok := src[i:j]
			kind := byte('x')
			switch {
			case tok == ".":
				kind = '.'
			case json:
				kind = 'j'
			}
			if err := addPath(sc, &out, mark, tok, i, j, false, kind, env); err != nil {
				return nil, err
			}
			i = j
			prevOperand = true
			continue
		case isIdentStart(c) || c >= utf8.RuneSelf:
			j := i
			for j < len(src) {
				r, n := utf8.DecodeRuneInString(src[j:])
				if !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
					break
				}
				j += n
			}
			if j == i { // a symbol outside ASCII: leave it to expr to complain
				_, n := utf8.DecodeRuneInString(src[i:])
				out.WriteString(src[i : i+n])
				i += n
				prevOperand = false
				continue
			}
			name := src[i:j]
			k := skipSpace(src, j)
			isCall := k < len(src) && src[k] == '(' && !keywords[name]
			switch {
			case isCall && (name == "xpath" || name == "json"):
				lit, end, err := literalArg(src, k)
				if err != nil {
					return nil, err
				}
				kind := byte('x')
				if name == "json" {
					kind = 'j'
				}
				if err := addPath(sc, &out, mark, lit, i, end, true, kind, env); err != nil {
					return nil, err
				}
				i = end
				prevOperand = true
				continue
			case isCall && name == "group":
				if !env.inGroup && !env.detect {
					return nil, &scanError{i, "group() works inside a for-each with group-by"}
				}
				end := matchParen(src, k)
				if end < 0 {
					return nil, &scanError{k, "unbalanced parentheses"}
				}
				inner := src[k+1 : end-1]
				mark(i)
				if strings.TrimSpace(inner) == "" {
					out.WriteString("_group(_c, 0)")
				} else {
					if env.detect { // classify the paths inside too
						if isc, err := scanExpr(inner, env); err == nil {
							sc.paths = append(sc.paths, isc.paths...)
						}
					}
					sc.subs = append(sc.subs, rawPath{src: inner, offset: k + 1})
					fmt.Fprintf(&out, "_group(_c, %d)", len(sc.subs)) // 1-based: 0 is group()
				}
				mark(end)
				i = end
				prevOperand = true
				continue
			case isCall:
				if _, ok := functions[name]; !ok {
					return nil, &scanError{i, fmt.Sprintf("unknown function %q", name)}
				}
				if name == "groupKey" && !env.inGroup && !env.detect {
					return nil, &scanError{i, "groupKey() works inside a for-each with group-by"}
				}
				mark(i)
				out.WriteString(exprName(name))
				out.WriteString("(_c")
				k2 := skipSpace(src, k+1)
				if k2 >= len(src) || src[k2] != ')' {
					out.WriteString(", ")
				}
				mark(k + 1)
				i = k + 1
				prevOperand = false
				continue
			case keywords[name]:
				out.WriteString(name)
				i = j
				prevOperand = name == "nil" || name == "true" || name == "false"
				continue
			default:
				return nil, &scanError{i, fmt.Sprintf("unknown name %q (paths start with %s; text literals are quoted: '%s')",
					name, pathStartHint(env.mode), name)}
			}
		case c == ')' || c == ']' || c == '}':
			out.WriteByte(c)
			i++
			prevOperand = true
			continue
		}
		out.WriteByte(c)
		i++
		prevOperand = false
	}
	sc.text = out.String()
	return sc, nil
}

func pathStartHint(m inputMode) string {
	switch m {
	case inputJSON:
		return "$. or ."
	case inputXML:
		return "/ // ./ ../ or @"
	}
	return "$. . / ./ or @"
}

func addPath(sc *scanned, out *strings.Builder, mark func(int), tok string, offset, end int, fn bool, kind byte, env *compileEnv) error {
	switch {
	case kind == 'x' && env.mode == inputJSON:
		return &scanError{offset, fmt.Sprintf("XPath %q in a mapping over JSON input (JSON paths read $.a.b or .a.b)", tok)}
	case kind == 'j' && env.mode == inputXML:
		return &scanError{offset, fmt.Sprintf("JSON path %q in a mapping over XML input (XPath reads /a/b, ./b or @x)", tok)}
	}
	sc.paths = append(sc.paths, rawPath{src: tok, offset: offset, fn: fn, kind: kind})
	mark(offset)
	fmt.Fprintf(out, "_p(_c, %d)", len(sc.paths)-1)
	mark(end)
	return nil
}

// scanPathEnd returns the end of a path token that continues at i.
func scanPathEnd(s string, i int, json bool) int {
	j := i
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		switch {
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.':
			j += n
		case r == '-':
			// a dash inside a name (cost-center); "a - b" needs the spaces
			if j+1 < len(s) && (isIdentChar(s[j+1]) || s[j+1] >= utf8.RuneSelf) {
				j++
			} else {
				return j
			}
		case !json && (r == ':' || r == '*' || r == '/' || r == '@'):
			j++
		case r == '[':
			k := skipBrackets(s, j)
			if k < 0 {
				return len(s) // unbalanced: the path compiler reports it
			}
			j = k
		case r == '(' && !json && nodeTestBefore(s[i:j]):
			k := strings.IndexByte(s[j:], ')')
			if k < 0 {
				return len(s)
			}
			j += k + 1
		default:
			return j
		}
	}
	return j
}

func nodeTestBefore(s string) bool {
	for _, t := range []string{"text", "node", "comment", "processing-instruction"} {
		if strings.HasSuffix(s, t) {
			return true
		}
	}
	return false
}

// matchParen returns the index after the ')' matching s[i] == '(', or -1.
func matchParen(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j + 1
			}
		case '\'', '"', '`':
			k, err := skipString(s, j)
			if err != nil {
				return -1
			}
			j = k - 1
		}
	}
	return -1
}

// skipBrackets returns the index after the ']' matching s[i] == '['.
func skipBrackets(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		case '\'', '"':
			k := strings.IndexByte(s[j+1:], s[j])
			if k < 0 {
				return -1
			}
			j += k + 1
		}
	}
	return -1
}

func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1, nil
		}
	}
	return 0, &scanError{i, "unterminated string literal"}
}

// literalArg reads `("text")` starting at the '(' at i.
func literalArg(s string, i int) (string, int, error) {
	k := skipSpace(s, i+1)
	if k >= len(s) || (s[k] != '\'' && s[k] != '"' && s[k] != '`') {
		return "", 0, &scanError{i, "xpath()/json() take one quoted path"}
	}
	end, err := skipString(s, k)
	if err != nil {
		return "", 0, err
	}
	lit, err := unquote(s[k:end])
	if err != nil {
		return "", 0, &scanError{k, "bad string literal: " + err.Error()}
	}
	e := skipSpace(s, end)
	if e >= len(s) || s[e] != ')' {
		return "", 0, &scanError{e, "xpath()/json() take one quoted path"}
	}
	return lit, e + 1, nil
}

func unquote(s string) (string, error) {
	if s[0] == '\'' {
		body := strings.ReplaceAll(s[1:len(s)-1], `\'`, `'`)
		return strconv.Unquote(`"` + strings.ReplaceAll(body, `"`, `\"`) + `"`)
	}
	return strconv.Unquote(s)
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// toGJSON translates a JSON path as written ($.a.b[0].c, .a[*].b, $['a b'])
// to a gjson path. tok starts with '$' or '.'.
func toGJSON(tok string) (string, error) {
	s := strings.TrimPrefix(tok, "$")
	var parts []string
	i := 0
	for i < len(s) {
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if j == i+1 {
				return "", fmt.Errorf("empty name after '.' at %d", i)
			}
			parts = append(parts, escapeGJSON(s[i+1:j]))
			i = j
		case '[':
			j := skipBrackets(s, i)
			if j < 0 {
				return "", errors.New("unbalanced '['")
			}
			in := strings.TrimSpace(s[i+1 : j-1])
			switch {
			case in == "*":
				parts = append(parts, "#")
			case in != "" && (in[0] == '\'' || in[0] == '"'):
				k, err := unquote(in)
				if err != nil {
					return "", fmt.Errorf("bad key %s", in)
				}
				parts = append(parts, escapeGJSON(k))
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return "", fmt.Errorf("bad index [%s] (use [0], [*] or ['key'])", in)
				}
				parts = append(parts, strconv.Itoa(n))
			}
			i = j
		default:
			return "", fmt.Errorf("unexpected %q", s[i:])
		}
	}
	return strings.Join(parts, "."), nil
}

func escapeGJSON(name string) string {
	if !strings.ContainsAny(name, `.*?|#@\!=<>%`) {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`.*?|#@\!=<>%`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ---- compiling ----

var (
	exprOptionsOnce sync.Once
	exprOptions     []expr.Option
)

// baseOptions are the expr options every expression shares: the function
// library, the overloaded operators and the environment (_c, the
// evaluation context, a fast map variable).
func baseOptions() []expr.Option {
	exprOptionsOnce.Do(func() {
		opts := []expr.Option{
			expr.Env(map[string]any{"_c": (*evalCtx)(nil)}),
			expr.DisableAllBuiltins(),
		}
		anyT := reflect.TypeOf((*any)(nil)).Elem()
		sig := func(n int, variadic bool, out reflect.Type) any {
			in := make([]reflect.Type, n)
			for i := range in {
				in[i] = anyT
			}
			if variadic {
				in[n-1] = reflect.SliceOf(anyT)
			}
			return reflect.Zero(reflect.FuncOf(in, []reflect.Type{out}, variadic)).Interface()
		}
		for name, f := range functions {
			var types []any
			if f.max < 0 {
				types = append(types, sig(1+f.min+1, true, anyT))
			} else {
				for n := f.min; n <= f.max; n++ {
					types = append(types, sig(1+n, false, anyT))
				}
			}
			fn := f.fn
			fname := name
			opts = append(opts, expr.Function(exprName(fname), func(params ...any) (any, error) {
				v, err := fn(params[0].(*evalCtx), params[1:])
				if err != nil {
					return nil, fmt.Errorf("%s(): %w", fname, err)
				}
				return v, nil
			}, types...))
		}
		opts = append(opts,
			expr.Function("_p", func(params ...any) (any, error) {
				c := params[0].(*evalCtx)
				return c.path(params[1].(int))
			}, sig(2, false, anyT)),
			expr.Function("_group", func(params ...any) (any, error) {
				c := params[0].(*evalCtx)
				v, err := c.groupValues(params[1].(int))
				if err != nil {
					return nil, fmt.Errorf("group(): %w", err)
				}
				return v, nil
			}, sig(2, false, anyT)),
			expr.Function("_v", func(params ...any) (any, error) {
				c := params[0].(*evalCtx)
				return c.vars[params[1].(int)], nil
			}, sig(2, false, anyT)))
		boolT := reflect.TypeOf(true)
		opts = append(opts,
			expr.Function("_not", func(p ...any) (any, error) { return !truthy(p[0]), nil }, sig(1, false, boolT)),
			expr.Function("_truth", func(p ...any) (any, error) { return truthy(p[0]), nil }, sig(1, false, boolT)),
			expr.Function("_neg", func(p ...any) (any, error) { return arith('-', 0, p[0]) }, sig(1, false, anyT)),
			expr.Function("_nilor", func(p ...any) (any, error) {
				if p[0] != nil {
					return p[0], nil
				}
				return p[1], nil
			}, sig(2, false, anyT)))
		for _, op := range opFuncs {
			fn := op.fn
			out := anyT
			if op.boolean {
				out = boolT
			}
			opts = append(opts, expr.Function(op.name, func(params ...any) (any, error) {
				return fn(params[0], params[1])
			}, sig(2, false, out)), expr.Operator(op.op, op.name))
		}
		exprOptions = opts
	})
	return exprOptions
}

func callNode(name string, loc file.Location, args ...ast.Node) *ast.CallNode {
	id := &ast.IdentifierNode{Value: name}
	id.SetLocation(loc)
	c := &ast.CallNode{Callee: id, Arguments: args}
	c.SetLocation(loc)
	return c
}

// exprName is the name a function has inside expr: "matches" is one of
// expr's operators, so it is renamed.
func exprName(name string) string {
	if name == "matches" {
		return "_matches"
	}
	return name
}

// literalChecker validates literal arguments at load: table names,
// regular expressions, time zones.
type literalChecker struct {
	env *compileEnv
	err *scanError
	sc  *scanned
}

func (v *literalChecker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.UnaryNode:
		// ! and - work on every value of the language, not only on Go bools and ints.
		switch n.Operator {
		case "!", "not":
			ast.Patch(node, callNode("_not", n.Location(), n.Node))
		case "-":
			ast.Patch(node, callNode("_neg", n.Location(), n.Node))
		}
		return
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "||", "and", "or": // operands by truthiness; short-circuit kept
			n.Left = callNode("_truth", n.Left.Location(), n.Left)
			n.Right = callNode("_truth", n.Right.Location(), n.Right)
		case "??":
			ast.Patch(node, callNode("_nilor", n.Location(), n.Left, n.Right))
		}
		return
	case *ast.ConditionalNode:
		n.Cond = callNode("_truth", n.Cond.Location(), n.Cond)
		return
	}
	call, ok := (*node).(*ast.CallNode)
	if !ok || v.err != nil {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	lit := func(i int) (string, bool) {
		if i >= len(call.Arguments) {
			return "", false
		}
		s, ok := call.Arguments[i].(*ast.StringNode)
		if !ok {
			return "", false
		}
		return s.Value, true
	}
	fail := func(msg string) {
		v.err = &scanError{v.sc.sourceOffset(call.Location().From), msg}
	}
	switch id.Value {
	case "lookup":
		if name, ok := lit(1); ok {
			if _, found := v.env.tables[name]; !found {
				fail(fmt.Sprintf("unknown table %q", name))
			}
		}
	case "_matches", "regexReplace", "extract":
		if re, ok := lit(2); ok {
			if _, err := cachedRegexp(re); err != nil {
				fail(fmt.Sprintf("bad regular expression %q: %v", re, err))
			}
		}
	case "date", "now":
		at := 4
		if id.Value == "now" {
			at = 2
		}
		if tz, ok := lit(at); ok {
			if _, err := cachedLocation(tz); err != nil {
				fail(fmt.Sprintf("unknown time zone %q", tz))
			}
		}
	case "formatNumber":
		if p, ok := lit(2); ok {
			if _, err := parseNumberPattern(p); err != nil {
				fail(fmt.Sprintf("number pattern %q: %v", p, err))
			}
		}
	case "env":
		// env() is read at run time: the variable may be set after load.
	}
}

// sourceOffset maps a rune offset in the rewritten text back to a byte
// offset in the source.
func (sc *scanned) sourceOffset(runeOff int) int {
	out := 0
	for i := range sc.text {
		if runeOff == 0 {
			break
		}
		runeOff--
		out = i + 1
	}
	// out is a byte offset in text; the last segment starting at or before
	// it says where that part of text came from.
	in, base := 0, 0
	for _, s := range sc.segs {
		if s.out > out {
			break
		}
		base, in = s.out, s.in
	}
	return in + (out - base)
}

// compileExpression compiles src (an expression written at file:line:col).
func compileExpression(src string, env *compileEnv, line, col int) (*compiled, error) {
	c := &compiled{src: src, file: env.file, line: line, col: col}
	posAt := func(off int) (int, int) {
		l, cc := line, col
		for _, r := range src[:min(off, len(src))] {
			if r == '\n' {
				l, cc = l+1, 1
			} else {
				cc++
			}
		}
		return l, cc
	}
	errAt := func(off int, msg string) error {
		l, cc := posAt(off)
		return &loadError{env.file, l, cc, fmt.Sprintf("expression %q: %s", src, msg)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, errAt(0, "empty expression")
	}
	sc, err := scanExpr(src, env)
	if err != nil {
		var se *scanError
		if errors.As(err, &se) {
			return nil, errAt(se.offset, se.msg)
		}
		return nil, errAt(0, err.Error())
	}
	for _, p := range sc.paths {
		ref, err := compilePath(p, env)
		if err != nil {
			return nil, errAt(p.offset, err.Error())
		}
		c.paths = append(c.paths, ref)
	}
	for _, sub := range sc.subs {
		l, cc := posAt(sub.offset)
		sc, err := compileExpression(sub.src, env, l, cc)
		if err != nil {
			return nil, err
		}
		c.subs = append(c.subs, sc)
	}
	checker := &literalChecker{env: env, sc: sc}
	opts := append(append([]expr.Option{}, baseOptions()...), expr.Patch(checker))
	prog, err := expr.Compile(sc.text, opts...)
	if checker.err != nil {
		return nil, errAt(checker.err.offset, checker.err.msg)
	}
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, errAt(sc.sourceOffset(fe.From), cleanExprMessage(fe.Message))
		}
		return nil, errAt(0, err.Error())
	}
	c.prog = prog
	c.single = fastPaths && len(c.paths) == 1 && len(c.subs) == 0 && strings.TrimSpace(sc.text) == "_p(_c, 0)"
	if fastPaths && !c.single && len(c.subs) == 0 {
		c.direct = compileDirect(prog.Node())
		c.leaf = compileLeafCall(c.direct)
	}
	return c, nil
}

// cleanExprMessage hides the rewritten names from expr's messages.
func cleanExprMessage(m string) string {
	m = strings.ReplaceAll(m, "(_c, ", "(")
	m = strings.ReplaceAll(m, "(_c)", "()")
	return m
}

func compilePath(p rawPath, env *compileEnv) (*pathRef, error) {
	ref := &pathRef{src: p.src}
	if p.kind == '.' {
		ref.current = true
		ref.isJSON = true
		return ref, nil
	}
	if p.kind == 'j' && p.fn { // json("gjson path"): as is, from the message root
		ref.gjson, ref.absolute, ref.isJSON = p.src, true, true
		return ref, nil
	}
	if p.kind == 'j' {
		g, err := toGJSON(p.src)
		if err != nil {
			return nil, fmt.Errorf("JSON path %q: %v", p.src, err)
		}
		ref.gjson, ref.absolute, ref.isJSON = g, strings.HasPrefix(p.src, "$"), true
		return ref, nil
	}
	xp, err := newXPathPool(p.src, env.namespaces)
	if err != nil {
		return nil, fmt.Errorf("XPath %q: %v", p.src, err)
	}
	ref.xp = xp
	if fastPaths {
		ref.fast = compileFastXPath(p.src, env.namespaces)
	}
	return ref, nil
}

// ---- regexp and time zone caches (filled at load, read at run time) ----

var (
	regexpCache   sync.Map // pattern -> *regexp.Regexp
	regexpCount   int
	regexpCountMu sync.Mutex
	locationCache sync.Map // name -> *time.Location
)

func cachedRegexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := regexpCache.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	regexpCountMu.Lock()
	defer regexpCountMu.Unlock()
	if regexpCount < 1000 { // patterns built from input must not grow the cache without bound
		regexpCount++
		regexpCache.Store(pattern, re)
	}
	return re, nil
}

func cachedLocation(name string) (*time.Location, error) {
	if l, ok := locationCache.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locationCache.Store(name, l)
	return l, nil
}
