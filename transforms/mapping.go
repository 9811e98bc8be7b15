package transforms

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/beevik/etree"
	"github.com/cockroachdb/apd/v3"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/tidwall/gjson"

	"github.com/busbar/busbar/bus"
)

// Mapping is a compiled mapping file (docs/mapping.md): YAML written as the
// shape it produces, every string leaf an expression. A Mapping is
// immutable once compiled and safe for concurrent use.
type Mapping struct {
	name       string
	output     bus.Format
	input      inputMode
	namespaces map[string]string
	tables     map[string]*table
	templates  map[string]*template
	body       *node
	identity   *identity // identity: instead of body:
	nvars      int
	outSize    atomic.Int64 // length of the last output written to bytes: the next one's buffer size
	tidyNS     bool         // output may hold redundant namespace declarations (templates, copies)
	usesNil    bool         // some node is nillable
	stream     bool         // XML output is written straight to bytes (mapping_stream.go)
	pool       sync.Pool    // *evalCtx
	files      []string     // included files and table files, as read
	xmlNames   []XMLName    // the element and attribute names it writes as they are written in it
}

// Files lists the files the mapping read besides its own text: the files
// it includes and its table files, as paths built from the ones given.
// A configuration watcher reloads when one of them changes.
func (m *Mapping) Files() []string { return m.files }

// XMLName is an element or attribute name a mapping writes, and where.
type XMLName struct {
	Name      string
	File      string
	Line, Col int
	Attribute bool
}

// XMLNames returns the element and attribute names the mapping writes
// literally (its body's and its templates'), for checks that must be made
// before it runs: a name a facade's charset cannot hold fails the reply,
// and no character reference can stand in a name. Names it copies from
// its input are not known until then.
func (m *Mapping) XMLNames() []XMLName { return m.xmlNames }

// table is a value map (code table).
type table struct {
	name   string
	values map[string]any
}

// node is one compiled node of the output shape.
type node struct {
	key       string // output field or element name as written ("" for sequence items)
	line, col int
	forEach   *compiled
	cond      *compiled
	lets      []letDef
	value     *compiled // leaf expression, or #text / #value
	literal   any       // literal leaf (YAML number, bool or null) when isLiteral
	isLiteral bool
	attrs     []*node // XML output: "@name" keys
	children  []*node
	seq       bool        // children are the items of a YAML sequence
	object    bool        // a YAML mapping (fields / child elements)
	nsDecl    [][2]string // XML output: namespace declarations made on this element

	sorts      []sortKey // for-each: sort: keys
	groupBy    *compiled // for-each: group-by: key
	splice     *splice   // a choose:, call: or copy-of: among the children
	spliceOnly bool      // the node's whole content is one choose: or call:
	nillable   bool      // nil writes xsi:nil="true" (XML) or null (JSON)
	cdata      bool      // XML output: text as a CDATA section
	tags       *xmlTags  // XML output written as bytes: the element's fixed bytes (mapping_stream.go)
	// plain: a leaf that is one expression with a shortcut (compiled.single
	// or leaf), with nothing around it (a leaf written as a YAML string has
	// no let:, if:, for-each:, attributes or children): streamPlain and
	// jsonPlain write it
	plain    bool
	jsonKey  string // JSON output: the key as written, with its colon
	attrStep string // an XML attribute's step in error trails: "@" and its name
}

type letDef struct {
	name string
	slot int
	expr *compiled
}

func (n *node) leaf() bool { return !n.object && !n.seq }

// LoadMapping reads and compiles a mapping file; errors read
// "FILE:LINE:COL: …" naming the expression.
func LoadMapping(path string) (*Mapping, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return CompileMapping(path, src, filepath.Dir(path))
}

// topKeys are the keys a mapping file may have; includeKeys those of a
// file named under include:.
var (
	topKeys = map[string]bool{"output": true, "input": true, "namespaces": true, "tables": true, "templates": true,
		"include": true, "body": true, "identity": true, "description": true}
	includeKeys = map[string]bool{"namespaces": true, "tables": true, "templates": true, "include": true, "description": true}
)

// CompileMapping compiles a mapping given as YAML source; name is the file
// name used in errors, dir resolves table and include files.
func CompileMapping(name string, src []byte, dir string) (m *Mapping, err error) {
	defer func() {
		if r := recover(); r != nil { // a bug here must not take a route loader down
			m, err = nil, fmt.Errorf("%s: internal error compiling mapping: %v", name, r)
		}
	}()
	top, err := parseTop(name, src)
	if err != nil {
		return nil, err
	}
	m = &Mapping{name: name, namespaces: map[string]string{}, tables: map[string]*table{}, templates: map[string]*template{}}
	l := &loader{m: m, included: map[string]bool{}}
	if abs, err := filepath.Abs(name); err == nil {
		l.included[abs] = true
	}
	var body, bodyKey, ident ast.Node
	inputSet := false
	var unknown []error // every unknown key, with the body's problems
	for _, mv := range top.Values {
		key := keyText(mv.Key)
		if !topKeys[key] {
			unknown = append(unknown, errAtNode(name, mv.Key, fmt.Sprintf("unknown key %q (want output, input, namespaces, tables, templates, include, body or identity)", key)))
			continue
		}
		val := unwrap(mv.Value)
		switch key {
		case "output", "input":
			s, ok := val.(*ast.StringNode)
			var format bus.Format
			if ok {
				switch s.Value {
				case "xml":
					format = bus.FormatXML
				case "json":
					format = bus.FormatJSON
				}
			}
			if format == bus.FormatNone {
				return nil, errAtNode(name, mv.Value, fmt.Sprintf("%s: want xml or json", key))
			}
			if key == "output" {
				m.output = format
			} else {
				inputSet = true
				m.input = inputJSON
				if format == bus.FormatXML {
					m.input = inputXML
				}
			}
		case "body":
			body, bodyKey = val, mv.Key
		case "identity":
			ident, bodyKey = val, mv.Key
		default:
			if err := l.common(name, dir, key, mv); err != nil {
				return nil, err
			}
		}
	}
	if len(unknown) > 0 && (m.output == bus.FormatNone || body == nil && ident == nil) {
		return nil, errors.Join(unknown...) // the missing key is likely misspelt among them
	}
	if m.output == bus.FormatNone {
		return nil, &loadError{name, 1, 1, "missing output: (xml or json)"}
	}
	switch {
	case body != nil && ident != nil:
		return nil, errAtNode(name, bodyKey, "body: and identity: exclude each other")
	case body == nil && ident == nil:
		return nil, &loadError{name, 1, 1, "missing body: (or identity:)"}
	case ident != nil && m.output != bus.FormatXML:
		return nil, errAtNode(name, bodyKey, "identity: copies XML input to XML output (output: xml)")
	}
	if ident != nil {
		if inputSet && m.input != inputXML {
			return nil, errAtNode(name, bodyKey, "identity: copies XML input (input: xml)")
		}
		m.input, inputSet = inputXML, true
	}
	if !inputSet {
		roots := []ast.Node{body}
		for _, t := range l.order {
			roots = append(roots, t.ast)
		}
		if m.input, err = detectInput(name, roots...); err != nil {
			return nil, err
		}
	}
	if err := l.compileTemplates(); err != nil {
		return nil, err
	}
	env := &compileEnv{file: name, mode: m.input, namespaces: m.namespaces, tables: m.tables, templates: m.templates, vars: map[string]int{}}
	if ident != nil {
		if m.identity, err = m.compileIdentity(ident, env); err != nil {
			return nil, err
		}
	} else {
		m.body, err = m.compileNode("", body, env)
		if err != nil {
			return nil, errors.Join(append(unknown, err)...)
		}
		if err := m.checkSplices(m.body, env.file); err != nil {
			return nil, err
		}
	}
	if m.output == bus.FormatXML {
		if m.body != nil {
			if err := m.checkXMLBody(name, bodyKey); err != nil {
				return nil, err
			}
			if err := m.checkXMLNames(m.body, nil, xmlWrapper, name); err != nil {
				return nil, err
			}
		}
		for _, t := range l.order {
			if err := m.checkXMLNames(t.body, nil, xmlContent, t.file); err != nil {
				return nil, err
			}
		}
		if m.usesNil && m.body != nil { // one xsi declaration on the root rather than one per nil element
			root := m.body.children[0]
			if !slices.Contains(root.nsDecl, [2]string{"xmlns:xsi", xsiNS}) {
				root.nsDecl = append(root.nsDecl, [2]string{"xmlns:xsi", xsiNS})
			}
		}
	}
	if len(unknown) > 0 {
		return nil, errors.Join(unknown...)
	}
	m.stream = m.streamable()
	m.pool.New = func() any { return newEvalCtx(m) }
	return m, nil
}

// parseTop parses a mapping (or included) file down to its top-level map.
func parseTop(name string, src []byte) (*ast.MappingNode, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("%s:%s", name, strings.TrimSpace(yamlErrorText(err)))
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("%s: a mapping file holds one YAML document", name)
	}
	top, ok := unwrap(f.Docs[0].Body).(*ast.MappingNode)
	if !ok {
		return nil, errAtNode(name, f.Docs[0].Body, "a mapping file is a YAML map with output: and body:")
	}
	return top, nil
}

// loader gathers what a mapping file and the files it includes declare.
type loader struct {
	m        *Mapping
	included map[string]bool // absolute paths, against include cycles
	order    []*template     // in declaration order, for compiling
}

// common handles the top-level keys a mapping file shares with the files it
// includes.
func (l *loader) common(file, dir, key string, mv *ast.MappingValueNode) error {
	val := unwrap(mv.Value)
	switch key {
	case "namespaces":
		mn, ok := val.(*ast.MappingNode)
		if !ok {
			return errAtNode(file, mv.Value, "namespaces: want a map of prefix: URI")
		}
		for _, nv := range mn.Values {
			s, ok := unwrap(nv.Value).(*ast.StringNode)
			if !ok || s.Value == "" {
				return errAtNode(file, nv.Value, "namespace URI must be a non-empty string")
			}
			p := keyText(nv.Key)
			if !isNCName(p) {
				return errAtNode(file, nv.Key, fmt.Sprintf("namespace prefix %q is not a valid XML name", p))
			}
			if old, ok := l.m.namespaces[p]; ok && old != s.Value {
				return errAtNode(file, nv.Key, fmt.Sprintf("prefix %q is already bound to %q", p, old))
			}
			if p == "xsi" && s.Value != xsiNS {
				return errAtNode(file, nv.Value, "prefix xsi is reserved for "+xsiNS)
			}
			l.m.namespaces[p] = s.Value
		}
	case "tables":
		return l.m.loadTables(file, dir, val)
	case "templates":
		return l.collectTemplates(file, val)
	case "include":
		var paths []ast.Node
		switch t := val.(type) {
		case *ast.SequenceNode:
			paths = t.Values
		default:
			paths = []ast.Node{val}
		}
		for _, pn := range paths {
			s, ok := unwrap(pn).(*ast.StringNode)
			if !ok || s.Value == "" {
				return errAtNode(file, pn, "include: want a file path or a list of them")
			}
			if err := l.include(file, pn, filepath.Join(dir, s.Value)); err != nil {
				return err
			}
		}
	}
	return nil
}

// include reads a file of shared templates, tables and namespaces.
func (l *loader) include(from string, at ast.Node, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return errAtNode(from, at, err.Error())
	}
	if l.included[abs] {
		return errAtNode(from, at, fmt.Sprintf("%s is included twice (or includes itself)", path))
	}
	l.included[abs] = true
	l.m.files = append(l.m.files, path)
	src, err := os.ReadFile(path)
	if err != nil {
		return errAtNode(from, at, fmt.Sprintf("include: %v", err))
	}
	top, err := parseTop(path, src)
	if err != nil {
		return err
	}
	for _, mv := range top.Values {
		key := keyText(mv.Key)
		if !includeKeys[key] {
			return errAtNode(path, mv.Key, fmt.Sprintf("unknown key %q in an included file (want namespaces, tables, templates or include)", key))
		}
		if err := l.common(path, filepath.Dir(path), key, mv); err != nil {
			return err
		}
	}
	return nil
}

// Name returns the file name the mapping was loaded from.
func (m *Mapping) Name() string { return m.name }

// Output returns the format the mapping produces.
func (m *Mapping) Output() bus.Format { return m.output }

func yamlErrorText(err error) string {
	// goccy/go-yaml errors start with "[line:col] message" and a snippet.
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "[") {
		if j := strings.IndexByte(s, ']'); j > 0 {
			return s[1:j] + ": " + strings.TrimSpace(s[j+1:])
		}
	}
	return " " + s
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch t := n.(type) {
		case *ast.TagNode:
			n = t.Value
		case *ast.AnchorNode:
			n = t.Value
		default:
			return n
		}
	}
}

func keyText(k ast.Node) string {
	if s, ok := unwrap(k).(*ast.StringNode); ok {
		return s.Value
	}
	if t := k.GetToken(); t != nil {
		return t.Value
	}
	return k.String()
}

func nodePos(n ast.Node) (int, int) {
	if n == nil {
		return 1, 1
	}
	if mn, ok := n.(*ast.MappingNode); ok && len(mn.Values) > 0 && !mn.IsFlowStyle { // its token is the first ':'
		return nodePos(mn.Values[0].Key)
	}
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return 1, 1
	}
	line, col := t.Position.Line, t.Position.Column
	if t.Type == token.DoubleQuoteType || t.Type == token.SingleQuoteType {
		col++
	}
	return line, col
}

func errAtNode(file string, n ast.Node, msg string) error {
	line, col := nodePos(n)
	return &loadError{file, line, col, msg}
}

// detectInput decides whether the body's paths read JSON or XML.
func detectInput(file string, roots ...ast.Node) (inputMode, error) {
	var sawJSON, sawXML ast.Node
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		switch t := unwrap(n).(type) {
		case *ast.MappingNode:
			for _, mv := range t.Values {
				walk(mv.Value)
			}
		case *ast.SequenceNode:
			for _, v := range t.Values {
				walk(v)
			}
		case *ast.StringNode, *ast.LiteralNode:
			sc, err := scanExpr(scalarText(t), &compileEnv{mode: inputAny, detect: true})
			if err != nil {
				return
			}
			for _, p := range sc.paths {
				switch p.kind {
				case 'j':
					if sawJSON == nil {
						sawJSON = t
					}
				case 'x':
					if sawXML == nil {
						sawXML = t
					}
				}
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	switch {
	case sawJSON != nil && sawXML != nil:
		l1, c1 := nodePos(sawJSON)
		return 0, errAtNode(file, sawXML, fmt.Sprintf("the body mixes XPath with JSON paths (line %d:%d); say input: xml or input: json", l1, c1))
	case sawJSON != nil:
		return inputJSON, nil
	case sawXML != nil:
		return inputXML, nil
	}
	return inputAny, nil // no paths: the message decides
}

func scalarText(n ast.Node) string {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value
	case *ast.LiteralNode:
		return t.Value.Value
	}
	return ""
}

// compileExprAt compiles the expression held by a YAML scalar node.
func compileExprAt(n ast.Node, env *compileEnv) (*compiled, error) {
	n = unwrap(n)
	line, col := nodePos(n)
	switch t := n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
	case *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode: // if: false, let: {n: 3}
		return compileExpression(t.GetToken().Value, env, line, col)
	case *ast.NullNode:
		return compileExpression("nil", env, line, col)
	default:
		return nil, errAtNode(env.file, n, "want an expression (a YAML string)")
	}
	if _, ok := n.(*ast.LiteralNode); ok {
		line++
	}
	return compileExpression(scalarText(n), env, line, col)
}

func (m *Mapping) compileNode(key string, yn ast.Node, env *compileEnv) (*node, error) {
	yn = unwrap(yn)
	line, col := nodePos(yn)
	n := &node{key: key, line: line, col: col}
	if m.output == bus.FormatJSON {
		n.jsonKey = string(append(appendJSONString(nil, key), ':'))
	}
	switch t := yn.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		c, err := compileExprAt(t, env)
		if err != nil {
			return nil, err
		}
		n.value, n.plain = c, c.single || c.leaf != nil
	case *ast.IntegerNode, *ast.FloatNode:
		d, _, err := apd.NewFromString(strings.ReplaceAll(t.GetToken().Value, "_", ""))
		if err != nil {
			return nil, errAtNode(env.file, t, fmt.Sprintf("number %q: %v", t.GetToken().Value, err))
		}
		n.literal, n.isLiteral = d, true
	case *ast.BoolNode:
		n.literal, n.isLiteral = t.Value, true
	case *ast.NullNode:
		n.literal, n.isLiteral = nil, true
	case *ast.SequenceNode:
		n.seq = true
		for _, v := range t.Values {
			c, err := m.compileNode("", v, env)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
	case *ast.MappingNode:
		n.object = true
		if err := m.compileObject(n, t, env); err != nil {
			return nil, err
		}
	default:
		return nil, errAtNode(env.file, yn, fmt.Sprintf("unsupported YAML node (%s)", yn.Type()))
	}
	return n, nil
}

// reserved are the keys with a meaning of their own inside an object of the
// output shape; a field of the same name is written with a leading
// backslash ("\\sort").
var reserved = map[string]bool{"for-each": true, "if": true, "let": true, "sort": true, "group-by": true,
	"choose": true, "call": true, "context": true, "params": true, "copy-of": true, "nillable": true, "cdata": true}

func (m *Mapping) compileObject(n *node, t *ast.MappingNode, env *compileEnv) error {
	var forEach, cond, let, value, sortV, groupBy, callCtx, callParams ast.Node
	var rest []*ast.MappingValueNode // fields, and choose:/call:/copy-of: in their place
	var callKey *ast.MappingValueNode
	seen := map[string]bool{}
	for _, mv := range t.Values {
		k := keyText(mv.Key)
		if seen[k] {
			return errAtNode(env.file, mv.Key, fmt.Sprintf("duplicate key %q", k))
		}
		seen[k] = true
		switch k {
		case "for-each":
			forEach = mv.Value
		case "if":
			cond = mv.Value
		case "let":
			let = mv.Value
		case "sort":
			sortV = mv.Value
		case "group-by":
			groupBy = mv.Value
		case "context":
			callCtx = mv.Value
		case "params":
			callParams = mv.Value
		case "call":
			callKey = mv
			rest = append(rest, mv)
		case "choose", "copy-of":
			rest = append(rest, mv)
		case "nillable", "cdata":
			b, ok := unwrap(mv.Value).(*ast.BoolNode)
			if !ok {
				return errAtNode(env.file, mv.Value, k+": want true or false")
			}
			if k == "nillable" {
				n.nillable = b.Value
			} else {
				if m.output != bus.FormatXML {
					return errAtNode(env.file, mv.Key, "cdata: is for XML output")
				}
				n.cdata = b.Value
			}
		case "#text", "#value":
			if value != nil {
				return errAtNode(env.file, mv.Key, "#text and #value are the same thing: use one")
			}
			value = mv.Value
		default:
			if k == "" {
				return errAtNode(env.file, mv.Key, "empty key")
			}
			if strings.HasPrefix(k, "#") {
				return errAtNode(env.file, mv.Key, fmt.Sprintf("unknown reserved key %q (want #text or #value)", k))
			}
			rest = append(rest, mv)
		}
	}
	if callKey == nil && (callCtx != nil || callParams != nil) {
		at := callCtx
		if at == nil {
			at = callParams
		}
		return errAtNode(env.file, at, "context: and params: go with call: (write \\context or \\params for a field of that name)")
	}
	if forEach == nil && (sortV != nil || groupBy != nil) {
		at := sortV
		if at == nil {
			at = groupBy
		}
		return errAtNode(env.file, at, "sort: and group-by: go with for-each: (write \\sort for a field of that name)")
	}
	var err error
	if forEach != nil {
		if n.forEach, err = compileExprAt(forEach, env); err != nil {
			return err
		}
		if groupBy != nil {
			if n.groupBy, err = compileExprAt(groupBy, env); err != nil {
				return err
			}
			inner := *env
			inner.inGroup = true
			env = &inner
		}
		if sortV != nil {
			if n.sorts, err = compileSort(sortV, env); err != nil {
				return err
			}
		}
	}
	if let != nil {
		lm, ok := unwrap(let).(*ast.MappingNode)
		if !ok {
			return errAtNode(env.file, let, "let: want a map of name: expression")
		}
		inner := *env
		inner.vars = maps.Clone(env.vars)
		for _, lv := range lm.Values {
			name := keyText(lv.Key)
			if !isIdent(name) {
				return errAtNode(env.file, lv.Key, fmt.Sprintf("variable name %q: want letters, digits and _", name))
			}
			c, err := compileExprAt(lv.Value, &inner)
			if err != nil {
				return err
			}
			slot := m.nvars
			m.nvars++
			inner.vars[name] = slot
			n.lets = append(n.lets, letDef{name: name, slot: slot, expr: c})
		}
		env = &inner
	}
	if cond != nil {
		if n.cond, err = compileExprAt(cond, env); err != nil {
			return err
		}
	}
	if value != nil {
		v, err := m.compileNode("#text", value, env)
		if err != nil {
			return err
		}
		if !v.leaf() {
			return errAtNode(env.file, value, "#text / #value must be an expression or a literal")
		}
		n.value, n.literal, n.isLiteral = v.value, v.literal, v.isLiteral
	}
	splices := 0
	// A field that does not compile does not stop its siblings: a mapping's
	// author sees every broken field of the file at once.
	var fieldErrs []error
	for _, mv := range rest {
		k := keyText(mv.Key)
		var c *node
		switch k {
		case "choose", "call", "copy-of":
			splices++
			if splices > 1 {
				return errAtNode(env.file, mv.Key, "one choose:, call: or copy-of: per node (nest the others in a field, or use a template)")
			}
			s, err := m.compileSplice(k, mv, callCtx, callParams, env)
			if err != nil {
				fieldErrs = append(fieldErrs, err)
				continue
			}
			line, col := nodePos(mv.Key)
			c = &node{key: n.key, line: line, col: col, splice: s}
		default:
			k = strings.TrimPrefix(k, "\\") // an escaped reserved name is a plain field
			c, err = m.compileNode(k, mv.Value, env)
			if err != nil {
				fieldErrs = append(fieldErrs, err)
				continue
			}
			c.line, c.col = nodePos(mv.Key)
		}
		if m.output == bus.FormatXML && strings.HasPrefix(k, "@") && c.splice == nil {
			if !c.leaf() {
				return errAtNode(env.file, mv.Key, fmt.Sprintf("attribute %q must be an expression or a literal", k))
			}
			c.key, c.attrStep = k[1:], k
			n.attrs = append(n.attrs, c)
			continue
		}
		n.children = append(n.children, c)
	}
	if len(fieldErrs) > 0 {
		return errors.Join(fieldErrs...)
	}
	n.spliceOnly = len(n.children) == 1 && n.children[0].splice != nil && n.children[0].splice.kind != spliceCopy &&
		len(n.attrs) == 0 && n.value == nil && !n.isLiteral
	if m.output == bus.FormatJSON && (n.value != nil || n.isLiteral) && len(n.children) > 0 {
		return errAtNode(env.file, value, "#value cannot be mixed with fields in JSON output")
	}
	if n.value == nil && !n.isLiteral && len(n.children) == 0 && len(n.attrs) == 0 && n.forEach != nil && m.output == bus.FormatJSON {
		return errAtNode(env.file, forEach, "for-each without fields or #value")
	}
	return nil
}

func (m *Mapping) checkXMLBody(file string, bodyKey ast.Node) error {
	b := m.body
	if !b.object || len(b.children) != 1 || len(b.attrs) > 0 || b.value != nil || b.isLiteral || b.forEach != nil || b.cond != nil {
		return errAtNode(file, bodyKey, "body: XML output needs exactly one root element (one key under body:)")
	}
	if r := b.children[0]; r.forEach != nil || r.seq {
		return errAtNode(file, bodyKey, "body: the root element cannot repeat (for-each or a list)")
	}
	return nil
}

// Modes of checkXMLNames.
const (
	xmlElementNode = iota // n is an element
	xmlWrapper            // n is body: itself, which is no element
	xmlContent            // n is content landing in some element (a template's or choose's body)
)

// checkXMLNames validates element and attribute names and places the
// namespace declarations: a prefix is declared on the outermost element
// that uses it (in its name or an attribute's), on each branch.
func (m *Mapping) checkXMLNames(n *node, declared map[string]bool, mode int, file string) error {
	if n.nillable {
		m.usesNil = true
	}
	if mode != xmlWrapper {
		var uses []string
		prefixOf := func(name string, line, col int, attr bool) error {
			p, local, ok := strings.Cut(name, ":")
			if !ok {
				p, local = "", name
			}
			if !isNCName(local) || (ok && !isNCName(p)) {
				what := "element"
				if attr {
					what = "attribute"
				}
				return &loadError{file, line, col, fmt.Sprintf("%s name %q is not a valid XML name", what, name)}
			}
			m.xmlNames = append(m.xmlNames, XMLName{Name: name, File: file, Line: line, Col: col, Attribute: attr})
			if p == "" || p == "xml" {
				return nil
			}
			if _, ok := m.namespaces[p]; !ok && !(attr && p == "xsi") {
				return &loadError{file, line, col, fmt.Sprintf("prefix %q is not declared under namespaces:", p)}
			}
			if !declared[p] && !contains(uses, p) {
				uses = append(uses, p)
			}
			return nil
		}
		if mode == xmlElementNode {
			if err := prefixOf(n.key, n.line, n.col, false); err != nil {
				return err
			}
		}
		for _, a := range n.attrs {
			if err := prefixOf(a.key, a.line, a.col, true); err != nil {
				return err
			}
		}
		if len(uses) > 0 {
			declared = maps.Clone(declared)
			if declared == nil {
				declared = map[string]bool{}
			}
			for _, p := range uses {
				declared[p] = true
				uri := m.namespaces[p]
				if p == "xsi" {
					uri = xsiNS
				}
				n.nsDecl = append(n.nsDecl, [2]string{"xmlns:" + p, uri})
			}
		}
	}
	for _, c := range n.children {
		switch {
		case c.splice != nil:
			if c.splice.kind == spliceChoose {
				for _, b := range c.splice.branches {
					if err := m.checkXMLNames(b.body, declared, xmlContent, file); err != nil {
						return err
					}
				}
			}
		case c.seq: // a list: repeated elements named by the key
			for _, item := range c.children {
				item.key, item.line, item.col = c.key, c.line, c.col
				if err := m.checkXMLNames(item, declared, xmlElementNode, file); err != nil {
					return err
				}
			}
		default:
			if err := m.checkXMLNames(c, declared, xmlElementNode, file); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// ---- tables ----

func (m *Mapping) loadTables(file, dir string, val ast.Node) error {
	mn, ok := val.(*ast.MappingNode)
	if !ok {
		return errAtNode(file, val, "tables: want a map of name: {key: value} or name: {file: path}")
	}
	for _, tv := range mn.Values {
		name := keyText(tv.Key)
		body, ok := unwrap(tv.Value).(*ast.MappingNode)
		if !ok {
			return errAtNode(file, tv.Value, fmt.Sprintf("table %q: want a map of key: value or file: path", name))
		}
		t := &table{name: name, values: map[string]any{}}
		if len(body.Values) == 1 && keyText(body.Values[0].Key) == "file" {
			path := filepath.Join(dir, scalarOf(body.Values[0].Value))
			m.files = append(m.files, path)
			if err := t.load(path); err != nil {
				return errAtNode(file, body.Values[0].Value, fmt.Sprintf("table %q: %v", name, err))
			}
		} else if err := t.fromYAML(file, body); err != nil {
			return err
		}
		m.tables[name] = t
	}
	return nil
}

// scalarOf is the text of a scalar node as written: 0066100000 keeps its
// leading zeros.
func scalarOf(n ast.Node) string {
	n = unwrap(n)
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value
	case *ast.NullNode:
		return ""
	}
	if tok := n.GetToken(); tok != nil {
		return tok.Value
	}
	return n.String()
}

func (t *table) fromYAML(file string, mn *ast.MappingNode) error {
	for _, kv := range mn.Values {
		switch unwrap(kv.Value).(type) {
		case *ast.MappingNode, *ast.SequenceNode:
			return errAtNode(file, kv.Value, fmt.Sprintf("table %q: values must be scalars", t.name))
		}
		t.values[keyText(kv.Key)] = scalarOf(kv.Value)
	}
	return nil
}

func (t *table) load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		r := csv.NewReader(strings.NewReader(string(data)))
		r.FieldsPerRecord = -1
		header := true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if header {
				header = false
				continue
			}
			if len(rec) < 2 {
				line, _ := r.FieldPos(0)
				return fmt.Errorf("%s:%d: want key,value", path, line)
			}
			t.values[rec[0]] = rec[1]
		}
	case ".yaml", ".yml":
		f, err := parser.ParseBytes(data, 0)
		if err != nil {
			return fmt.Errorf("%s:%s", path, yamlErrorText(err))
		}
		if len(f.Docs) == 0 || f.Docs[0].Body == nil {
			return nil
		}
		mn, ok := unwrap(f.Docs[0].Body).(*ast.MappingNode)
		if !ok {
			return fmt.Errorf("%s: want a YAML map of key: value", path)
		}
		return t.fromYAML(path, mn)
	}
	return fmt.Errorf("%s: want a .yaml, .yml or .csv file", path)
}

// ---- applying ----

// Apply builds the output from in (in.XML() for XML input, in.Body for JSON
// input) and returns in.Reply() with the payload set.
func (m *Mapping) Apply(in *bus.Message) (out *bus.Message, err error) {
	c := m.pool.Get().(*evalCtx)
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, bus.ServerFault(500, "Mapping failed",
				fmt.Sprintf("%s: %s: internal error: %v", m.name, c.trailString(), r)).Hide(notTheRequest)
			c.trail = c.trail[:0] // do not pool a context in an unknown state
			return
		}
		c.reset()
		m.pool.Put(c)
	}()
	if err := c.start(in); err != nil {
		return nil, err
	}
	reply := in.Reply()
	switch {
	case m.output == bus.FormatJSON:
		c.startOutput()
		if err := c.jsonBody(m.body); err != nil {
			return nil, c.fault(err)
		}
		reply.SetCheckedJSON(c.takeOutput())
	case m.stream:
		ok, err := c.xmlBodyBytes(m.body)
		if err != nil {
			return nil, c.fault(err)
		}
		if !ok {
			return nil, errNoRoot(m)
		}
		reply.SetXMLBytes(c.takeOutput())
	default:
		var root *etree.Element
		var err error
		if m.identity != nil {
			root, err = c.identityCopy(m.identity)
		} else {
			root, err = c.xmlBody(m.body)
		}
		if err != nil {
			return nil, c.fault(err)
		}
		if root == nil {
			return nil, errNoRoot(m)
		}
		if m.tidyNS {
			tidyNamespaces(root, nil)
		}
		reply.SetXML(root)
	}
	return reply, nil
}

func errNoRoot(m *Mapping) *bus.Fault {
	return bus.ServerFault(500, "Mapping failed", m.name+": the mapping produced no root element; nothing to send").Hide(notTheRequest)
}

// startOutput readies c.buf for an output written as bytes. A buffer handed
// over by takeOutput is replaced by one the size of the last output, so an
// output is usually written in one allocation (no growing, no copy).
func (c *evalCtx) startOutput() {
	if c.buf == nil {
		n := c.m.outSize.Load()
		c.buf = make([]byte, 0, n+n/8+64)
	}
	c.buf = c.buf[:0]
}

// takeOutput hands over the bytes written to c.buf. A buffer much larger
// than its content (a small output after a large one) is copied instead and
// stays for the next Apply, so a message does not pin unused capacity.
func (c *evalCtx) takeOutput() []byte {
	n := len(c.buf)
	c.m.outSize.Store(int64(n))
	if cap(c.buf) > 2*n+4096 {
		return append([]byte(nil), c.buf...)
	}
	out := c.buf
	c.buf = nil
	return out
}

// runError is a failure while building one output node.
type runError struct {
	trail string
	expr  *compiled
	err   error
	input string // the input path read last, when known
}

func (e *runError) Error() string {
	if e.input != "" {
		return fmt.Sprintf("%s: %s: %s: input %s: %s", e.expr.where(), e.trail, e.expr.src, e.input, exprMessage(e.err))
	}
	return fmt.Sprintf("%s: %s: %s: %s", e.expr.where(), e.trail, e.expr.src, exprMessage(e.err))
}

func (e *runError) Unwrap() error { return e.err }

// fault turns a run error into the Fault the caller sees: 422 when the
// input is at fault, 500 when the mapping is.
func (c *evalCtx) fault(err error) *bus.Fault {
	detail := err.Error()
	var re *runError
	if !errors.As(err, &re) {
		detail = c.m.name + ": " + detail
	}
	return runFault("Mapping failed", detail, err)
}

// notTheRequest is what a caller learns of a mapping or expression that
// failed by a fault of its own: nothing it could change.
const notTheRequest = "the route could not process the message (a fault on Busbar's side, not in the request)"

// runFault is the Fault of a mapping or expression that failed at run time.
// The log gets internal: where (file:line:col), the output path, the
// expression. The caller gets what in its input is wrong — the value, the
// value map and key, the input path — and for a fault of the mapping's own,
// no more than that it is not the request's.
func runFault(title, internal string, err error) *bus.Fault {
	var ie *inputError
	if !errors.As(err, &ie) {
		f := bus.ServerFault(500, title, internal).Hide(notTheRequest)
		f.Cause = err
		return f
	}
	public := ie.msg
	if re := (*runError)(nil); errors.As(err, &re) && re.input != "" {
		public += " (input " + re.input + ")"
	}
	f := bus.ClientFault(422, title, internal).Hide(public)
	f.Cause = err
	return f
}

func (c *evalCtx) jsonBody(b *node) error {
	return c.jsonNode(b)
}

// jsonNode writes n's value (lets, if and for-each already handled by the
// caller for fields; here for the body itself).
func (c *evalCtx) jsonNode(n *node) error {
	if n.forEach != nil {
		return c.jsonArray(n)
	}
	ok, err := c.enter(n)
	if err != nil {
		return err
	}
	if !ok {
		c.buf = append(c.buf, "null"...)
		return nil
	}
	written, err := c.jsonContent(n)
	if err != nil {
		return err
	}
	if !written {
		c.buf = append(c.buf, "null"...)
	}
	return nil
}

// enter evaluates a node's let: bindings and its if:. ok is false when the
// node is not to be emitted.
func (c *evalCtx) enter(n *node) (bool, error) {
	for _, l := range n.lets {
		v, err := c.eval(l.expr)
		if err != nil {
			return false, err
		}
		c.vars[l.slot] = v
	}
	if n.cond != nil {
		v, err := c.eval(n.cond)
		if err != nil {
			return false, err
		}
		return truthy(v), nil
	}
	return true, nil
}

// jsonContent writes the value of n (not its key). written is false when
// n's value is nil (a leaf) and nothing was written.
func (c *evalCtx) jsonContent(n *node) (bool, error) {
	switch {
	case n.seq:
		c.buf = append(c.buf, '[')
		first := true
		for i, item := range n.children {
			c.push(item.key, i+1)
			mark := len(c.buf)
			if !first {
				c.buf = append(c.buf, ',')
			}
			w, err := c.jsonItem(item)
			c.pop()
			if err != nil {
				return false, err
			}
			if !w {
				c.buf = c.buf[:mark]
				continue
			}
			first = false
		}
		c.buf = append(c.buf, ']')
		return true, nil
	case n.spliceOnly:
		body, mark, err := c.enterSplice(n.children[0].splice)
		if err != nil || body == nil {
			return false, err
		}
		w, err := c.jsonItem(body)
		c.leaveSplice(mark)
		return w, err
	case n.object && n.value == nil && !n.isLiteral:
		c.buf = append(c.buf, '{')
		first := true
		if err := c.jsonFields(n.children, &first); err != nil {
			return false, err
		}
		c.buf = append(c.buf, '}')
		return true, nil
	}
	if w, ok := c.jsonLeafFast(n); ok {
		return w, nil
	}
	v, err := c.leafValue(n)
	if err != nil || v == nil {
		return false, err
	}
	if err := appendJSONValue(&c.buf, v); err != nil {
		return false, &runError{c.trailString(), n.value, err, ""}
	}
	return true, nil
}

// jsonLeafFast writes a leaf's value through a shortcut; ok is false when
// leafValue must run. written is false for nil (nothing written).
func (c *evalCtx) jsonLeafFast(n *node) (written, ok bool) {
	if s, found, ok := c.leafFastText(n); ok {
		if found {
			c.buf = appendJSONString(c.buf, s)
		}
		return found, true
	}
	if l := n.leafCall(); l != nil {
		if l.numeric() {
			if buf, found, ok := l.appendText(c, n.value, c.buf); ok {
				c.buf = buf
				return found, true
			}
		} else if s, found, ok := c.leafCallText(n); ok {
			if found {
				c.buf = appendJSONString(c.buf, s)
			}
			return found, true
		}
	}
	return false, false
}

// jsonPlain writes a plain field (node.plain) as jsonField would, without
// naming it in the trail: the shortcuts cannot fail. ok is false when
// they decline and jsonField must write the field.
func (c *evalCtx) jsonPlain(f *node, first bool) (written, ok bool) {
	mark := len(c.buf)
	if !first {
		c.buf = append(c.buf, ',')
	}
	c.buf = append(c.buf, f.jsonKey...)
	written, ok = c.jsonLeafFast(f)
	if !written {
		c.buf = c.buf[:mark] // a nil leaf is omitted
	}
	return written, ok
}

// jsonFields writes the fields of an object; a choose: or call: among them
// writes the fields of the content it picks.
func (c *evalCtx) jsonFields(fields []*node, first *bool) error {
	for _, f := range fields {
		if f.splice != nil {
			body, mark, err := c.enterSplice(f.splice)
			if err != nil {
				return err
			}
			if body != nil {
				ok, err := c.enter(body)
				if err == nil && ok {
					err = c.jsonFields(body.children, first)
				}
				if err != nil {
					return err
				}
			}
			c.leaveSplice(mark)
			continue
		}
		if f.plain {
			if w, ok := c.jsonPlain(f, *first); ok {
				*first = *first && !w
				continue
			}
		}
		w, err := c.jsonField(f, *first)
		if err != nil {
			return err
		}
		if w {
			*first = false
		}
	}
	return nil
}

// jsonItem writes one element of a YAML list (with its own if/let/for-each).
func (c *evalCtx) jsonItem(n *node) (bool, error) {
	if n.forEach != nil {
		return true, c.jsonArray(n)
	}
	ok, err := c.enter(n)
	if err != nil || !ok {
		return false, err
	}
	w, err := c.jsonContent(n)
	if err == nil && !w && n.nillable {
		c.buf = append(c.buf, "null"...)
		w = true
	}
	return w, err
}

// jsonField writes "key": value for one field of an object.
func (c *evalCtx) jsonField(f *node, first bool) (bool, error) {
	mark := len(c.buf)
	if !first {
		c.buf = append(c.buf, ',')
	}
	c.buf = append(c.buf, f.jsonKey...)
	c.push(f.key, 0)
	defer c.pop()
	if f.forEach != nil {
		return true, c.jsonArray(f)
	}
	ok, err := c.enter(f)
	if err != nil {
		return false, err
	}
	if ok {
		w, err := c.jsonContent(f)
		if err != nil {
			return false, err
		}
		if w {
			return true, nil
		}
		if f.nillable {
			c.buf = append(c.buf, "null"...)
			return true, nil
		}
	}
	c.buf = c.buf[:mark] // nil leaf or false if: the field is omitted
	return false, nil
}

// jsonArray writes a for-each node: always an array, even of 0 or 1 items.
func (c *evalCtx) jsonArray(n *node) error {
	items, err := c.loopItems(n)
	if err != nil {
		return err
	}
	saved := c.saveItem()
	defer c.restoreItem(saved)
	c.loops = append(c.loops, loopStep{expr: n.forEach})
	c.buf = append(c.buf, '[')
	first := true
	for i, it := range items {
		c.at(it, i+1, len(items))
		c.loops[len(c.loops)-1].idx = it.idx
		c.setTrailIndex(i + 1)
		mark := len(c.buf)
		if !first {
			c.buf = append(c.buf, ',')
		}
		ok, err := c.enter(n)
		if err != nil {
			return err
		}
		w := false
		if ok {
			if w, err = c.jsonContent(n); err != nil {
				return err
			}
			if !w && n.nillable {
				c.buf = append(c.buf, "null"...)
				w = true
			}
		}
		if !w {
			c.buf = c.buf[:mark]
			continue
		}
		first = false
	}
	c.buf = append(c.buf, ']')
	c.loops = c.loops[:len(c.loops)-1]
	return nil
}

func (c *evalCtx) leafValue(n *node) (any, error) {
	if n.isLiteral {
		return n.literal, nil
	}
	if n.value == nil {
		return nil, nil
	}
	if n.value.single {
		return c.evalSingle(n.value, true)
	}
	return c.eval(n.value)
}

// leafText is an XML text value: ok is false for nil (no text).
type leafText struct {
	s  string
	ok bool
}

// leafString is leafValue as XML text.
func (c *evalCtx) leafString(n *node) (leafText, error) {
	if s, found, ok := c.leafFastText(n); ok {
		return leafText{s, found}, nil
	}
	if s, found, ok := c.leafCallText(n); ok {
		return leafText{s, found}, nil
	}
	return c.leafValueString(n)
}

// streamLeafString is leafString for streamBuild, which writes the text
// before anything else can change c.text: a leafCall's text is made in
// c.text and viewed in place instead of copied into a string of its own.
// streamBuild empties c.text when it starts the next element, by which
// time the view has been written out.
func (c *evalCtx) streamLeafString(n *node) (leafText, error) {
	if t, ok := c.streamLeafFast(n); ok {
		return t, nil
	}
	return c.leafValueString(n)
}

// streamLeafFast is the shortcut half of streamLeafString; ok is false when
// leafValueString must run. It cannot fail, so its callers need not name
// the output node (push) until they fall back.
func (c *evalCtx) streamLeafFast(n *node) (t leafText, ok bool) {
	if s, found, ok := c.leafFastText(n); ok {
		return leafText{s, found}, true
	}
	if l := n.leafCall(); l != nil {
		start := len(c.text)
		b, found, ok := l.appendText(c, n.value, c.text)
		if ok {
			c.text = b
			if !found {
				return leafText{}, true
			}
			b = b[start:]
			return leafText{unsafe.String(unsafe.SliceData(b), len(b)), true}, true
		}
	}
	return leafText{}, false
}

func (c *evalCtx) leafValueString(n *node) (leafText, error) {
	v, err := c.leafValue(n)
	if err != nil || v == nil {
		return leafText{}, err
	}
	return leafText{toString(v), true}, nil
}

// leafCall is the leaf's leafCall shortcut, nil when it has none.
func (n *node) leafCall() *leafCall {
	if n.isLiteral || n.value == nil {
		return nil
	}
	return n.value.leaf
}

// leafCallText is the text of a leaf with a leafCall shortcut; ok is false
// when leafValue must run.
func (c *evalCtx) leafCallText(n *node) (s string, found, ok bool) {
	l := n.leafCall()
	if l == nil {
		return "", false, false
	}
	var scratch [32]byte
	b, found, ok := l.appendText(c, n.value, scratch[:0])
	if !found {
		return "", false, ok
	}
	return string(b), true, true
}

// leafFastText is the text of a leaf that is one simple XPath, read without
// building (or boxing) a value; ok is false when leafValue must run. It
// cannot fail, so the error bookkeeping of eval is not needed.
func (c *evalCtx) leafFastText(n *node) (s string, found, ok bool) {
	e := n.value
	if n.isLiteral || e == nil || !e.single {
		return "", false, false
	}
	p := e.paths[0]
	switch {
	case c.mode == inputXML && p.fast != nil && c.xmlRoot != nil:
		at := c.contextNav()
		return p.fast.text(at)
	case c.mode == inputJSON && p.isJSON && !p.current:
		// path1's JSON case for the two results that need no value: a
		// string (written as is) and nothing (null or missing).
		base := c.jsonRoot
		if !p.absolute && c.item.has {
			if c.item.val != nil {
				return "", false, true // a computed item has no fields
			}
			base = c.item.json
		}
		r := base
		if p.gjson != "" {
			r = base.Get(p.gjson)
		}
		switch r.Type {
		case gjson.String:
			return r.Str, true, true
		case gjson.Null:
			return "", false, true
		}
	}
	return "", false, false
}

// ---- XML output ----

func (c *evalCtx) xmlBody(b *node) (*etree.Element, error) {
	doc := etree.NewElement("") // temporary parent
	ok, err := c.enter(b)
	if err != nil || !ok {
		return nil, err
	}
	if err := c.xmlElement(b.children[0], doc); err != nil {
		return nil, err
	}
	if len(doc.Child) == 0 {
		return nil, nil
	}
	root := doc.Child[0].(*etree.Element)
	doc.RemoveChildAt(0)
	return root, nil
}

// xmlElement adds the element(s) node n produces to parent.
func (c *evalCtx) xmlElement(n *node, parent *etree.Element) error {
	c.push(n.key, 0)
	defer c.pop()
	if n.seq {
		for i, item := range n.children {
			c.setTrailIndex(i + 1)
			if err := c.xmlElement1(item, parent); err != nil {
				return err
			}
		}
		return nil
	}
	return c.xmlElement1(n, parent)
}

func (c *evalCtx) xmlElement1(n *node, parent *etree.Element) error {
	if n.forEach == nil {
		ok, err := c.enter(n)
		if err != nil || !ok {
			return err
		}
		return c.xmlBuild(n, parent)
	}
	items, err := c.loopItems(n)
	if err != nil {
		return err
	}
	saved := c.saveItem()
	defer c.restoreItem(saved)
	c.loops = append(c.loops, loopStep{expr: n.forEach})
	parent.Child = slices.Grow(parent.Child, len(items))
	for i, it := range items {
		c.at(it, i+1, len(items))
		c.loops[len(c.loops)-1].idx = it.idx
		c.setTrailIndex(i + 1)
		ok, err := c.enter(n)
		if err != nil {
			return err
		}
		if ok {
			if err := c.xmlBuild(n, parent); err != nil {
				return err
			}
		}
	}
	c.loops = c.loops[:len(c.loops)-1]
	return nil
}

// contentOf is the node whose content fills n's element: n itself, or for
// an element that is only a call:/include:, the template's body once
// entered (nil when its context selects nothing). When spliced is true the
// caller must leaveSplice(mark) once the element is built, error or not.
func (c *evalCtx) contentOf(n *node) (src *node, mark spliceMark, spliced bool, err error) {
	if !n.spliceOnly {
		return n, mark, false, nil
	}
	body, mark, err := c.enterSplice(n.children[0].splice)
	if err != nil {
		return nil, mark, false, err
	}
	if body != nil {
		ok, err := c.enter(body)
		if err != nil {
			return nil, mark, true, err
		}
		if !ok {
			body = nil
		}
	}
	return body, mark, true, nil
}

// xmlBuild creates one element for n under parent. A leaf whose value is
// nil creates nothing (or <x xsi:nil="true"/> when nillable); so does an
// element whose only content is a nil #text, or a choose: that picks nothing.
func (c *evalCtx) xmlBuild(n *node, parent *etree.Element) error {
	src, mark, spliced, err := c.contentOf(n)
	if spliced {
		defer c.leaveSplice(mark)
	}
	if err != nil {
		return err
	}
	var text leafText
	if src != nil && (src.value != nil || src.isLiteral) {
		var err error
		if text, err = c.leafString(src); err != nil {
			return err
		}
		if !text.ok && len(src.attrs) == 0 && len(src.children) == 0 {
			src = nil
		}
	}
	if src == nil {
		if n.nillable {
			el := parent.CreateElement(n.key)
			for _, ns := range n.nsDecl {
				el.CreateAttr(ns[0], ns[1])
			}
			setNil(el)
		}
		return nil
	}
	want := len(src.children)
	if text.ok {
		want++
	}
	el := c.newElement(parent, n.key, want)
	for _, ns := range n.nsDecl {
		el.CreateAttr(ns[0], ns[1])
	}
	if src != n {
		for _, ns := range src.nsDecl {
			el.CreateAttr(ns[0], ns[1])
		}
	}
	return c.xmlFill(el, src, text, n)
}

// newElement is parent.CreateElement(tag), with the element cut from a
// chunk allocated for this Apply (one allocation for many elements) and
// its child list sized for want tokens. The chunks are never reused: the
// elements belong to the output tree.
func (c *evalCtx) newElement(parent *etree.Element, tag string, want int) *etree.Element {
	if len(c.elems) == 0 {
		c.elems = make([]etree.Element, 8<<min(c.elemChunks, 5))
		c.elemChunks++
	}
	el := &c.elems[0]
	c.elems = c.elems[1:]
	el.Space, el.Tag = "", tag
	if i := strings.IndexByte(tag, ':'); i >= 0 {
		el.Space, el.Tag = tag[:i], tag[i+1:]
	}
	el.Attr = []etree.Attr{}
	el.Child = make([]etree.Token, 0, want)
	parent.AddChild(el)
	return el
}

// xmlFill adds n's attributes, text and children to el. text is n's value,
// already computed; style is the node whose nillable: and cdata: apply.
func (c *evalCtx) xmlFill(el *etree.Element, n *node, text leafText, style *node) error {
	for _, a := range n.attrs {
		c.push(a.attrStep, 0)
		v, err := c.leafValue(a)
		c.pop()
		if err != nil {
			return err
		}
		if v != nil {
			el.CreateAttr(a.key, toString(v))
		}
	}
	switch {
	case text.ok:
		if style.cdata {
			el.SetCData(text.s)
		} else {
			el.SetText(text.s)
		}
	case style.nillable && (n.value != nil || n.isLiteral):
		setNil(el)
	}
	for _, ch := range n.children {
		if ch.splice != nil {
			if err := c.xmlSplice(ch.splice, el, style); err != nil {
				return err
			}
			continue
		}
		if err := c.xmlElement(ch, el); err != nil {
			return err
		}
	}
	return nil
}

// xmlSplice adds what a choose:, call: or copy-of: produces to el.
func (c *evalCtx) xmlSplice(s *splice, el *etree.Element, style *node) error {
	if s.kind == spliceCopy {
		return c.copyOf(s.copyOf, el)
	}
	body, mark, err := c.enterSplice(s)
	if err != nil || body == nil {
		return err
	}
	defer c.leaveSplice(mark)
	ok, err := c.enter(body)
	if err != nil || !ok {
		return err
	}
	var text leafText
	if body.value != nil || body.isLiteral {
		if text, err = c.leafString(body); err != nil {
			return err
		}
	}
	for _, ns := range body.nsDecl {
		el.CreateAttr(ns[0], ns[1])
	}
	return c.xmlFill(el, body, text, style)
}

// isNCName reports whether s is an XML name without a colon.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f && isLetterRune(r):
		case i > 0 && (r == '-' || r == '.' || r >= '0' && r <= '9' || r == 0xB7 || r > 0x7f):
		default:
			return false
		}
	}
	return true
}
