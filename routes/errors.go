package routes

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Error is one problem in a configuration file. It reads
// `path/file.yaml:LINE:COL: route "NAME": message`.
type Error struct {
	File      string
	Line, Col int
	Kind      string // "route", "connector", "map"; "" before the kind is known
	Name      string
	Msg       string

	unknownKey bool // an unknown key: the rest of its file still decodes
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Kind != "" && e.Name != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.Name)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load, in file and line order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) onlyUnknownKeys() bool {
	for _, e := range es {
		if !e.unknownKey {
			return false
		}
	}
	return true
}

// named gives every error the kind and name of the file's component.
func (es Errors) named(kind, name string) Errors {
	for _, e := range es {
		e.Kind, e.Name = kind, name
	}
	return es
}

// Sorted sorts es in file, line and column order, in place, and returns it.
func (es Errors) Sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].File != es[j].File {
			return es[i].File < es[j].File
		}
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}

// yamlError turns a go-yaml error into an Error at its position, in words a
// route author knows (field names as written in the file, no Go types).
func yamlError(file string, root ast.Node, err error) *Error {
	e := &Error{File: file, Line: 1, Col: 1}
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
		e.Msg = ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) {
			e.Msg = typeMessage(root, te)
		}
		return e
	}
	// Errors from a field's own decoder (a duration, a size) carry no
	// position, but they quote the offending value: find it in the file.
	e.Msg = err.Error()
	if m := quoted.FindStringSubmatch(e.Msg); m != nil {
		if n := findScalar(root, m[1]); n != nil {
			pos := n.GetToken().Position
			e.Line, e.Col = pos.Line, pos.Column
			if key := keyOf(root, n.GetToken()); key != "" {
				e.Msg = fmt.Sprintf("field %q: %s", key, e.Msg)
			}
		}
	}
	return e
}

var quoted = regexp.MustCompile(`"([^"]*)"`)

func typeMessage(root ast.Node, te *yaml.TypeError) string {
	want := "a value of another type"
	if te.DstType != nil {
		switch te.DstType.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "a whole number"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a text value"
		case reflect.Map, reflect.Struct, reflect.Pointer:
			want = "a mapping (key: value lines)"
		case reflect.Slice:
			want = "a list (- item lines)"
		}
	}
	msg := "expected " + want
	if te.Token != nil {
		if key := keyOf(root, te.Token); key != "" {
			msg = fmt.Sprintf("field %q: %s", key, msg)
		}
		if te.Token.Value != "" {
			msg += fmt.Sprintf(", got %q", te.Token.Value)
		}
	}
	return msg
}

// keyOf names the mapping key whose value starts at tk.
func keyOf(root ast.Node, tk *token.Token) string {
	var key string
	ast.Walk(visitFunc(func(n ast.Node) bool {
		mv, ok := n.(*ast.MappingValueNode)
		if ok && mv.Value != nil && samePos(mv.Value.GetToken(), tk) {
			key = mv.Key.String()
			return false
		}
		return key == ""
	}), root)
	return key
}

func samePos(a, b *token.Token) bool {
	return a != nil && b != nil && a.Position != nil && b.Position != nil &&
		a.Position.Line == b.Position.Line && a.Position.Column == b.Position.Column
}

// findScalar finds the first scalar node whose text is value.
func findScalar(root ast.Node, value string) ast.Node {
	var found ast.Node
	ast.Walk(visitFunc(func(n ast.Node) bool {
		if found != nil {
			return false
		}
		if s, ok := n.(ast.ScalarNode); ok {
			if _, isMap := n.(*ast.MappingValueNode); !isMap && fmt.Sprint(s.GetValue()) == value {
				found = n
				return false
			}
		}
		return true
	}), root)
	return found
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

// nodeAt finds the value under a path of mapping keys, e.g. ("to", "connector").
func nodeAt(root ast.Node, keys ...string) ast.Node {
	n := root
	for _, k := range keys {
		m, ok := n.(*ast.MappingNode)
		if !ok {
			if mv, isMV := n.(*ast.MappingValueNode); isMV {
				m = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
			} else {
				return nil
			}
		}
		var next ast.Node
		for _, v := range m.Values {
			if v.Key.String() == k {
				next = v.Value
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// posOf is the line and column of a node, or of the file start.
func posOf(n ast.Node) (int, int) {
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 1, 1
	}
	p := n.GetToken().Position
	return p.Line, p.Column
}
