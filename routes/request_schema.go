package routes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// requestSchema is a compiled `request.validate`: a JSON Schema every
// request body of the route must satisfy before any step acts on it.
type requestSchema struct {
	rel    string // as the route names it: for the log, never for callers
	schema *jsonschema.Schema
}

// schemaResult is one schema file compiled once per load, shared by every
// route that names it.
type schemaResult struct {
	s   *requestSchema
	err error
}

// maxViolations bounds the list a caller gets: a 1 MiB body of wrong lines
// has tens of thousands of violations, and the first hundred say what is wrong.
const maxViolations = 100

// Numbers the validator cannot check cheaply: math/big turns a number's
// text into an exact fraction, and 1e999999 costs it a million-digit power
// of ten (beyond 1e6 it fails and the validator panics). No amount, count
// or code a route validates comes near these bounds.
const (
	maxNumberText     = 100
	maxNumberExponent = 400
)

var schemaPrinter = message.NewPrinter(language.English)

// validateStep checks the request body against a JSON Schema, first in the
// route, so that a body of the wrong shape (`{}`, an array) is refused
// before a map fills a backend's document with empty values.
func (rc *routeCompiler) validateStep(rel string) {
	keys := []string{"request", "validate"}
	in := rc.spec.From.REST
	if in == nil {
		rc.fail(keys, "`validate` checks the JSON body of a from.rest route")
		return
	}
	if m := strings.ToUpper(in.Method); m == http.MethodGet || m == http.MethodDelete {
		rc.fail(keys, "a %s route takes no body to validate", m)
		return
	}
	s, err := rc.l.requestSchema(rel)
	if err != nil {
		rc.fail(keys, "%v", err)
		return
	}
	rc.steps = append(rc.steps, bus.NamedStep{Name: "validate", Step: bus.StepFunc(s.check)})
}

// requestSchema compiles a schema file relative to the configuration
// directory, once per load.
func (l *loader) requestSchema(rel string) (*requestSchema, error) {
	rel = filepath.ToSlash(filepath.Clean(rel))
	if r, ok := l.schemas[rel]; ok {
		return r.s, r.err
	}
	if l.schemas == nil {
		l.schemas = map[string]schemaResult{}
	}
	s, err := compileSchema(l.dir, rel, l.read)
	l.schemas[rel] = schemaResult{s, err}
	return s, err
}

// compileSchema compiles dir/rel, recording in read every file it reads
// (the schema and the files its $ref names) for the hot reload.
func compileSchema(dir, rel string, read fileSet) (*requestSchema, error) {
	absDir := absPath(dir)
	path := filepath.Join(absDir, filepath.FromSlash(rel))
	c := jsonschema.NewCompiler()
	// Pinned: the library's default follows its newest draft, and a schema
	// without $schema must not change meaning with an upgrade.
	c.DefaultDraft(jsonschema.Draft2020)
	// `format: date` should refuse "20.11.2026", not annotate it.
	c.AssertFormat()
	c.UseLoader(schemaLoader{dir: absDir, read: read})
	sch, err := c.Compile(path)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %s", rel, schemaProblem(err, absDir))
	}
	return &requestSchema{rel: rel, schema: sch}, nil
}

// schemaLoader reads the schema and the files its $ref names: files of the
// configuration directory only. A $ref to a URL would have the bus fetch,
// at every load, from a host nobody reviewed, and a file elsewhere would
// be configuration the directory does not hold. The draft meta-schemas
// are built into the library and never fetched.
type schemaLoader struct {
	dir  string // absolute
	read fileSet
}

func (s schemaLoader) Load(u string) (any, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if pu.Scheme != "file" {
		return nil, fmt.Errorf("$ref %s: only files of the configuration directory are read, never URLs", u)
	}
	path, err := jsonschema.FileLoader{}.ToFile(u)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(s.dir, path); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s is outside the configuration directory", path)
	}
	s.read.add(path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// The one JSON check of the bus: a duplicate key in a schema would be
	// read as its last value, silently.
	if err := transforms.CheckJSON(b); err != nil {
		return nil, err
	}
	v, _, err := decodeChecked(b)
	return v, err
}

// schemaProblem says what is wrong with a schema, with paths relative to
// the configuration directory and without the library's nesting.
func schemaProblem(err error, absDir string) string {
	var le *jsonschema.LoadURLError
	for errors.As(err, &le) {
		err = le.Err
	}
	var sv *jsonschema.SchemaValidationError
	var msg string
	if errors.As(err, &sv) {
		var ve *jsonschema.ValidationError
		if errors.As(sv.Err, &ve) {
			var parts []string
			for _, v := range violations(ve) {
				parts = append(parts, "at "+orRoot(v.Pointer)+": "+v.Message)
			}
			msg = "not a valid JSON Schema: " + strings.Join(parts, "; ")
		} else {
			msg = sv.Err.Error()
		}
	} else {
		msg = err.Error()
	}
	fileURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(absDir) + "/"}).String()
	msg = strings.ReplaceAll(msg, fileURL, "")
	return strings.ReplaceAll(msg, absDir+string(filepath.Separator), "")
}

// violation is one way a body fails its schema, as callers get it in the
// problem document's "errors".
type violation struct {
	Pointer string `json:"pointer"` // RFC 6901, "" for the whole document
	Message string `json:"message"`

	tokens []string // the pointer's tokens, for ordering
}

func (s *requestSchema) check(_ context.Context, m *bus.Message) (*bus.Message, error) {
	if m.Format != bus.FormatJSON {
		return nil, bus.ClientFault(http.StatusUnsupportedMediaType, "Unsupported media type",
			"this route checks its request against a JSON Schema: send application/json")
	}
	if !m.JSONChecked { // the REST inbound side checks every body; a step that wrote one may not have
		if err := transforms.CheckJSON(m.Body); err != nil {
			return nil, bus.ClientFault(http.StatusBadRequest, "Malformed JSON", err.Error())
		}
	}
	doc, vs, err := decodeChecked(m.Body)
	if err != nil {
		return nil, bus.ClientFault(http.StatusBadRequest, "Malformed JSON", err.Error())
	}
	if len(vs) == 0 {
		if vs, err = s.validate(doc); err != nil {
			return nil, err
		}
	}
	if len(vs) == 0 {
		return m, nil
	}
	return nil, s.fault(vs)
}

// validate runs the validator. A panic in it (a number math/big cannot
// take, should one pass decodeChecked's bound) is the bus's fault, a 500
// for that request, not a crash.
func (s *requestSchema) validate(doc any) (vs []violation, err error) {
	failed := func(why string) *bus.Fault {
		f := bus.ServerFault(0, "Request validation failed", "the request could not be checked against its schema")
		f.Internal = fmt.Sprintf("schema %s: %s", s.rel, why)
		return f
	}
	defer func() {
		if r := recover(); r != nil {
			vs, err = nil, failed(fmt.Sprintf("validator panic: %v", r))
		}
	}()
	verr := s.schema.Validate(doc)
	if verr == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(verr, &ve) {
		return nil, failed(verr.Error())
	}
	return violations(ve), nil
}

// fault is the 400 a caller gets: every violation (up to maxViolations)
// with its JSON pointer, in document order.
func (s *requestSchema) fault(vs []violation) *bus.Fault {
	first := vs[0]
	detail := orRoot(first.Pointer) + ": " + first.Message
	if n := len(vs); n > 1 {
		detail = fmt.Sprintf("%d violations, the first: %s", n, detail)
	}
	if len(vs) > maxViolations {
		detail += fmt.Sprintf(" (the first %d are listed)", maxViolations)
		vs = vs[:maxViolations]
	}
	f := bus.ClientFault(http.StatusBadRequest, "Request does not match its schema", detail)
	f.Internal = detail + " (schema " + s.rel + ")"
	f.Extra = map[string]any{"errors": vs}
	return f
}

func orRoot(pointer string) string {
	if pointer == "" {
		return "the document"
	}
	return pointer
}

// violations flattens the validator's tree into its leaves, one per
// failed keyword, in document order. A missing required member or a member
// not allowed is listed at its own pointer, one per member.
func violations(ve *jsonschema.ValidationError) []violation {
	var out []violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := e.InstanceLocation
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, p := range k.Missing {
				out = append(out, newViolation(append(at[:len(at):len(at)], p), "required, missing"))
			}
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				out = append(out, newViolation(append(at[:len(at):len(at)], p), "not allowed here"))
			}
		default:
			out = append(out, newViolation(at, e.ErrorKind.LocalizedString(schemaPrinter)))
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return tokensLess(out[i].tokens, out[j].tokens) })
	return out
}

func newViolation(tokens []string, msg string) violation {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return violation{Pointer: b.String(), Message: msg, tokens: tokens}
}

// tokensLess orders pointers as the document reads: /lines/2 before /lines/10.
func tokensLess(a, b []string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		if errX == nil && errY == nil {
			return x < y
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

func tooBig(n string) bool {
	if len(n) > maxNumberText {
		return true
	}
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return err != nil || e > maxNumberExponent || e < -maxNumberExponent
}
