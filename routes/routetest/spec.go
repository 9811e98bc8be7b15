// Package routetest runs route test cases written in YAML: a request sent
// to the real compiled routes in-process, the replies of mocked connectors,
// and the response expected back. docs/testing.md describes the format;
// `busbar test` is its command.
package routetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/routes"
)

// The structs below are the test file format, as plain data; docs/testing.md
// is their reference and a test checks that every yaml key appears there.

// File is one test file: tests/*.yaml.
type File struct {
	// Config is the configuration directory the cases run against, relative
	// to the test file. Default: the directory `busbar test` was given.
	Config string `yaml:"config"`
	// Env sets environment variables while the file runs: for the ${NAME}
	// references of the configuration's files and env() in mappings.
	Env map[string]string `yaml:"env"`
	// Cases run in order.
	Cases []Case `yaml:"cases"`
}

// Case is one request and what must come of it.
type Case struct {
	// Name says what the case shows; failures are reported under it.
	Name string `yaml:"name"`
	// Request is what the caller sends.
	Request Request `yaml:"request"`
	// Connectors scripts the replies of connectors by name: one reply, or a
	// list for successive calls. A call without a scripted reply fails the case.
	Connectors map[string]Replies `yaml:"connectors"`
	// Expect is the response the caller must get.
	Expect Expect `yaml:"expect"`
}

// Request is the inbound HTTP request of a case.
type Request struct {
	// Method defaults to POST with a body, GET without.
	Method string `yaml:"method"`
	// Path is the URL path (and query) on Busbar.
	Path string `yaml:"path"`
	// Headers are sent as given; they win over the defaults below.
	Headers map[string]string `yaml:"headers"`
	// Body is the request body: a YAML mapping or list is sent as JSON;
	// a string as it is.
	Body Doc `yaml:"body"`
	// BodyFile reads the body from a file, relative to the test file.
	BodyFile string `yaml:"body-file"`
	// SOAP sends a SOAP "1.1" or "1.2" request: a body that is not an
	// envelope is wrapped in one, and the content type and action are set.
	SOAP string `yaml:"soap"`
	// Action is the SOAPAction (1.1) or the action parameter (1.2).
	Action string `yaml:"action"`
}

// Reply is one scripted reply of a connector's backend.
type Reply struct {
	// Status is the HTTP status; default 200 (500 for a SOAP Fault).
	Status int `yaml:"status"`
	// Headers are added to the reply; Content-Type defaults from the body.
	Headers map[string]string `yaml:"headers"`
	// Body is the reply body; for a SOAP connector a payload that is not an
	// envelope is wrapped in one of the connector's version.
	Body Doc `yaml:"body"`
	// BodyFile reads the body from a file, relative to the test file.
	BodyFile string `yaml:"body-file"`
	// Error makes the call fail instead: "unreachable" (the connection
	// drops) or "timeout" (the call's time runs out).
	Error string `yaml:"error"`
	// Expect checks the request the backend received for this call.
	Expect *Received `yaml:"expect"`
}

// Received is what a connector's backend must have received.
type Received struct {
	// Method is the HTTP method.
	Method string `yaml:"method"`
	// Path is the URL path, the connector's own path included.
	Path string `yaml:"path"`
	// Headers must be present with these values; others are not checked.
	Headers    map[string]string `yaml:"headers"`
	BodyChecks `yaml:",inline"`
}

// Expect is the response the caller must get.
type Expect struct {
	// Status is the HTTP status.
	Status int `yaml:"status"`
	// Headers must be present with these values; others are not checked.
	Headers    map[string]string `yaml:"headers"`
	BodyChecks `yaml:",inline"`
	// Fault expects a SOAP fault or a problem+json document.
	Fault *FaultExpect `yaml:"fault"`
}

// BodyChecks are the checks on a body. For a SOAP message they apply to the
// payload (the first child of Body), as a route sees it, unless an expected
// document is itself an envelope.
type BodyChecks struct {
	// Body is the whole body: JSON compared as JSON (numbers as written),
	// XML as XML (namespaces by URI, whitespace between elements ignored).
	Body Doc `yaml:"body"`
	// BodyFile reads Body from a file, relative to the test file.
	BodyFile string `yaml:"body-file"`
	// Partial is a part the body must contain: JSON members (a subset, lists
	// item by item), or XML elements, attributes and texts in order.
	Partial Doc `yaml:"partial"`
	// Assert maps expressions over the body (XPath or $.json paths, as in
	// mappings) to their expected value as text.
	Assert Asserts `yaml:"assert"`
	// Namespaces declares prefixes for the XPaths of Assert.
	Namespaces map[string]string `yaml:"namespaces"`
}

// FaultExpect is an expected error response.
type FaultExpect struct {
	// Code is the SOAP fault code (1.1 faultcode, 1.2 Code/Value) or the
	// problem's faultcode member; without a prefix only local names compare.
	Code string `yaml:"code"`
	// Reason is the SOAP faultstring or Reason/Text, or the problem's detail.
	Reason string `yaml:"reason"`
}

// Doc is a document written in a test file: a string is taken as it is; a
// YAML mapping or list is JSON, its numbers kept exactly as written (1250.00
// stays 1250.00).
type Doc struct {
	Text      []byte
	JSON      bool   // written as YAML structure
	Line, Col int    // where it is written in the test file
	File      string // or the file it was read from
}

// where names the document's place for messages.
func (d Doc) where() string {
	if d.File != "" {
		return d.File
	}
	return "line " + strconv.Itoa(d.Line)
}

// IsZero reports whether no document was given.
func (d Doc) IsZero() bool { return d.Text == nil }

// UnmarshalYAML implements go-yaml's NodeUnmarshaler.
func (d *Doc) UnmarshalYAML(n ast.Node) error {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		d.Line, d.Col = tk.Position.Line, tk.Position.Column
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return nil
	case *ast.StringNode:
		d.Text = []byte(v.Value)
		return nil
	case *ast.LiteralNode:
		d.Text = []byte(v.Value.Value)
		return nil
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		var b bytes.Buffer
		if err := writeJSON(&b, n); err != nil {
			return err
		}
		d.Text, d.JSON = b.Bytes(), true
		return nil
	}
	return routes.NodeError(n, "expected a text or a YAML mapping or list (sent as JSON), got %q", n.String())
}

// writeJSON writes a YAML node as JSON. Numbers are copied as written, so
// money keeps its scale; what JSON cannot say is an error at its position.
func writeJSON(b *bytes.Buffer, n ast.Node) error {
	switch v := n.(type) {
	case *ast.MappingValueNode:
		return writeJSONObject(b, []*ast.MappingValueNode{v})
	case *ast.MappingNode:
		return writeJSONObject(b, v.Values)
	case *ast.SequenceNode:
		b.WriteByte('[')
		for i, item := range v.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, item); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *ast.StringNode:
		writeJSONString(b, v.Value)
	case *ast.LiteralNode:
		writeJSONString(b, v.Value.Value)
	case *ast.IntegerNode, *ast.FloatNode:
		text := v.GetToken().Value
		if !json.Valid([]byte(text)) {
			return routes.NodeError(n, "%s is not a JSON number: quote it to send text (\"%s\")", text, text)
		}
		b.WriteString(text)
	case *ast.BoolNode:
		b.WriteString(strconv.FormatBool(v.Value))
	case *ast.NullNode:
		b.WriteString("null")
	case *ast.TagNode:
		if v.Start.Value == "!!str" {
			writeJSONString(b, v.Value.GetToken().Value)
			return nil
		}
		return writeJSON(b, v.Value)
	case *ast.AnchorNode:
		return writeJSON(b, v.Value)
	default:
		return routes.NodeError(n, "cannot be written as JSON: %q", n.String())
	}
	return nil
}

func writeJSONObject(b *bytes.Buffer, values []*ast.MappingValueNode) error {
	b.WriteByte('{')
	for i, mv := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		key := mv.Key.GetToken().Value
		if s, ok := mv.Key.(*ast.StringNode); ok {
			key = s.Value
		}
		writeJSONString(b, key)
		b.WriteByte(':')
		if err := writeJSON(b, mv.Value); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode adds a newline
}

// Replies is one reply or a list of replies, one per call.
type Replies []Reply

// UnmarshalYAML implements go-yaml's NodeUnmarshaler.
func (r *Replies) UnmarshalYAML(n ast.Node) error {
	items := []ast.Node{n}
	if seq, ok := n.(*ast.SequenceNode); ok {
		items = seq.Values
	}
	for _, item := range items {
		var one Reply
		if err := yaml.NodeToValue(item, &one, yaml.DisallowUnknownField()); err != nil {
			return err
		}
		*r = append(*r, one)
	}
	return nil
}

// Assert is one expression and the text it must give.
type Assert struct {
	Expr, Want string
	Line, Col  int
}

// Asserts keeps the order the file gives.
type Asserts []Assert

// UnmarshalYAML implements go-yaml's NodeUnmarshaler.
func (a *Asserts) UnmarshalYAML(n ast.Node) error {
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.NullNode:
		return nil
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	default:
		return routes.NodeError(n, "field \"assert\": expected a mapping of expression: expected value")
	}
	for _, mv := range values {
		pos := mv.Key.GetToken().Position
		as := Assert{Expr: mv.Key.GetToken().Value, Line: pos.Line, Col: pos.Column}
		if s, ok := mv.Key.(*ast.StringNode); ok {
			as.Expr = s.Value
		}
		switch v := mv.Value.(type) {
		case *ast.StringNode:
			as.Want = v.Value
		case *ast.NullNode:
		case ast.ScalarNode:
			as.Want = v.GetToken().Value
		default:
			return routes.NodeError(mv.Value, "assert %q: expected a single value", strings.TrimSpace(as.Expr))
		}
		*a = append(*a, as)
	}
	return nil
}

// problems says what decoding cannot check, every problem of the case.
func (c *Case) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if c.Name == "" {
		add("the case needs a name")
	}
	if !strings.HasPrefix(c.Request.Path, "/") {
		add("request.path %q must start with /", c.Request.Path)
	}
	if c.Request.SOAP != "" && c.Request.SOAP != "1.1" && c.Request.SOAP != "1.2" {
		add("request.soap %q: write \"1.1\" or \"1.2\"", c.Request.SOAP)
	}
	if !c.Request.Body.IsZero() && c.Request.BodyFile != "" {
		add("request: give body or body-file, not both")
	}
	if !c.Expect.Body.IsZero() && c.Expect.BodyFile != "" {
		add("expect: give body or body-file, not both")
	}
	for _, name := range sortedNames(c.Connectors) {
		for i, r := range c.Connectors[name] {
			if r.Error != "" && r.Error != "unreachable" && r.Error != "timeout" {
				add("connectors.%s reply %d: error %q: write unreachable or timeout", name, i+1, r.Error)
			}
			if r.Error != "" && (!r.Body.IsZero() || r.BodyFile != "" || r.Status != 0) {
				add("connectors.%s reply %d: an error reply has no status or body", name, i+1)
			}
			if !r.Body.IsZero() && r.BodyFile != "" {
				add("connectors.%s reply %d: give body or body-file, not both", name, i+1)
			}
			if r.Expect != nil && !r.Expect.Body.IsZero() && r.Expect.BodyFile != "" {
				add("connectors.%s reply %d: expect: give body or body-file, not both", name, i+1)
			}
		}
	}
	return out
}
