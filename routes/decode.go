package routes

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// DecodeFile decodes a one-document YAML file strictly into v, the way route
// files are decoded: unknown keys are errors, and an error reads
// `file:line:col: field "x": …` (an *Error, or Errors: every problem of the
// file, not only the first). It returns the document's top
// node, for callers that want the position of a part; it does so with
// an error too when the only problems are unknown keys, and v holds all the
// rest. Values are taken as written: there is no ${ENV} substitution.
func DecodeFile(path string, v any) (ast.Node, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	parsed, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, yamlError(path, nil, err)
	}
	if len(parsed.Docs) != 1 || parsed.Docs[0].Body == nil {
		return nil, &Error{File: path, Line: 1, Col: 1, Msg: "expected exactly one YAML document"}
	}
	f := &file{path: path, root: parsed.Docs[0].Body}
	if errs := f.decode(f.root, v); errs != nil {
		if errs.onlyUnknownKeys() { // v holds the rest: the caller may check it too
			return f.root, errs.Sorted()
		}
		return nil, errs.Sorted()
	}
	return f.root, nil
}

// NodeError is an error at n's position. A custom decoder (a type with
// UnmarshalYAML(ast.Node) error) returns it so that the loader's error
// names the line and column of the offending value.
func NodeError(n ast.Node, format string, args ...any) error {
	return &nodeError{tk: n.GetToken(), msg: fmt.Sprintf(format, args...)}
}

// nodeError satisfies go-yaml's Error interface, which yamlError reads the
// position from.
type nodeError struct {
	tk  *token.Token
	msg string
}

func (e *nodeError) Error() string                 { return e.msg }
func (e *nodeError) GetToken() *token.Token        { return e.tk }
func (e *nodeError) GetMessage() string            { return e.msg }
func (e *nodeError) FormatError(bool, bool) string { return e.msg }

// allErrors finds every problem of node as a v of type t, where go-yaml's
// strict decoding stops at the first: each unknown key of every mapping
// (with what the file does decode around it) and each value that does not
// decode. It walks structs, lists and maps itself and leaves every other
// value, and every type with its own decoder, to go-yaml, so a value it
// passes is one go-yaml would have decoded.
func (f *file) allErrors(node ast.Node, t reflect.Type) Errors {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	node = unwrapNode(node)
	if _, null := node.(*ast.NullNode); null || node == nil {
		return nil
	}
	leaf := func() Errors {
		if err := yaml.NodeToValue(node, reflect.New(t).Interface(), yaml.DisallowUnknownField()); err != nil {
			return Errors{yamlError(f.path, f.root, err)}
		}
		return nil
	}
	if ownDecoder(t) {
		// A value with a short form and a block form (`delivery: async`
		// or a block) has its block walked like any struct, so every
		// problem in it is reported, not only go-yaml's first.
		if b, ok := reflect.New(t).Interface().(blockForm); ok {
			if _, isMap := mappingValues(node); isMap {
				return f.allErrors(node, reflect.TypeOf(b.block()))
			}
		}
		return leaf()
	}
	switch t.Kind() {
	case reflect.Struct:
		values, ok := mappingValues(node)
		if !ok {
			return leaf()
		}
		fields := yamlFields(t, map[string]reflect.Type{})
		var errs Errors
		for _, mv := range values {
			key := mv.Key.String()
			ft, known := fields[key]
			if !known {
				if key == "<<" { // a merge key: go-yaml's own business
					return leaf()
				}
				l, c := posOf(mv.Key)
				errs = append(errs, &Error{File: f.path, Line: l, Col: c, Msg: fmt.Sprintf("unknown field %q", key), unknownKey: true})
				continue
			}
			errs = append(errs, f.allErrors(mv.Value, ft)...)
		}
		return errs
	case reflect.Slice, reflect.Array:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			return leaf()
		}
		var errs Errors
		for _, item := range seq.Values {
			errs = append(errs, f.allErrors(item, t.Elem())...)
		}
		return errs
	case reflect.Map:
		values, ok := mappingValues(node)
		if !ok {
			return leaf()
		}
		var errs Errors
		for _, mv := range values {
			errs = append(errs, f.allErrors(mv.Value, t.Elem())...)
		}
		return errs
	}
	return leaf()
}

// blockForm is a type with its own decoder whose block form decodes as
// the struct block returns a pointer to.
type blockForm interface{ block() any }

// ownDecoder says whether values of t decode themselves (UnmarshalYAML,
// UnmarshalText): their inside is theirs to check.
func ownDecoder(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, m := range []string{"UnmarshalYAML", "UnmarshalText"} {
		if _, ok := p.MethodByName(m); ok {
			return true
		}
	}
	return false
}

// yamlFields maps the keys of struct t (inline structs flattened) to their types.
func yamlFields(t reflect.Type, into map[string]reflect.Type) map[string]reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && sf.Type.Kind() == reflect.Struct {
			yamlFields(sf.Type, into)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name) // go-yaml's default key
		}
		into[name] = sf.Type
	}
	return into
}

func unwrapNode(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

// mappingValues is the key/value pairs of a mapping node (a one-key
// mapping parses as a lone MappingValueNode).
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}
