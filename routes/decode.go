package routes

import (
	"fmt"
	"os"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// DecodeFile decodes a one-document YAML file strictly into v, the way route
// files are decoded: unknown keys are errors, and an error reads
// `file:line:col: field "x": …` (an *Error). It returns the document's top
// node, for callers that want the position of a part. Values are taken as
// written: there is no ${ENV} substitution.
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
	if err := f.decode(f.root, v); err != nil {
		return nil, err
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
