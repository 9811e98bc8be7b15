package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// A policy file holds one policy: its name, its kind, and the kind's
// settings beside them at the top level:
//
//	name: oa-clients
//	kind: api-key
//	header: X-API-Key
//	keys:
//	  - caller: oa
//	    sha256: 9f86d08…
//
// The name is what routes will refer to; "none" is reserved for the
// route-level opt-out.

// Error is a problem in a policy file, at a position when one is known:
// `file:line:col: policy "name": msg`.
type Error struct {
	File      string
	Line, Col int
	Policy    string
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Policy != "" {
		fmt.Fprintf(&b, "policy %q: ", e.Policy)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// commonKeys are the keys every policy file has; the rest are the kind's.
var commonKeys = map[string]bool{"name": true, "kind": true, "description": true}

// Set is the loaded policies by name.
type Set map[string]Policy

// decoded is a policy file read but not yet built.
type decoded struct {
	file, name string
	spec       Spec
}

// Load reads the policy files, decodes each strictly, and builds every
// policy: one call validates the whole set (duplicate names, unknown
// kinds and fields, bad keys, combinations that name unknown policies or
// each other in a cycle). Every file problem is reported, joined.
func Load(paths ...string) (Set, error) {
	var errs []error
	specs := map[string]decoded{}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			continue
		}
		d, err := decode(p, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := specs[d.name]; dup {
			errs = append(errs, &Error{File: p, Line: 1, Col: 1, Policy: d.name, Msg: "name already used by " + prev.file})
			continue
		}
		specs[d.name] = d
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	set := Set{}
	building := map[string]bool{}
	var build func(name string) (Policy, error)
	build = func(name string) (Policy, error) {
		if p, ok := set[name]; ok {
			return p, nil
		}
		d, ok := specs[name]
		if !ok {
			return nil, fmt.Errorf("no policy named %q", name)
		}
		if building[name] {
			return nil, fmt.Errorf("policy %q refers to itself through its members", name)
		}
		building[name] = true
		defer delete(building, name)
		p, err := d.spec.Build(&Env{Name: name, Dir: filepath.Dir(d.file), Policy: build})
		if err != nil {
			return nil, err
		}
		set[name] = p
		return p, nil
	}
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := build(n); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				err = &Error{File: specs[n].file, Policy: n, Msg: err.Error()}
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// LoadDir loads every *.yaml and *.yml file of dir as a policy file (see
// Load). A directory without policy files gives an empty set.
func LoadDir(dir string) (Set, error) {
	var paths []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		paths = append(paths, m...)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("auth: policy directory: %w", err)
	}
	sort.Strings(paths)
	return Load(paths...)
}

// decode parses one policy file: the common keys here, the rest by the
// kind's Spec with unknown fields refused.
func decode(path string, src []byte) (decoded, error) {
	d := decoded{file: path}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return d, yamlError(path, "", err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return d, &Error{File: path, Line: 1, Col: 1, Msg: "expected exactly one YAML document"}
	}
	var values []*ast.MappingValueNode
	switch n := f.Docs[0].Body.(type) {
	case *ast.MappingNode:
		values = n.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{n}
	default:
		return d, nodeErr(path, "", f.Docs[0].Body, "expected a mapping with name and kind")
	}
	var kindName string
	var rest []*ast.MappingValueNode
	for _, mv := range values {
		key := mv.Key.String()
		if !commonKeys[key] {
			rest = append(rest, mv)
			continue
		}
		var s string
		if err := yaml.NodeToValue(mv.Value, &s); err != nil || s == "" {
			return d, nodeErr(path, d.name, mv.Value, fmt.Sprintf("field %q: want a non-empty string", key))
		}
		switch key {
		case "name":
			d.name = s
		case "kind":
			kindName = s
		}
	}
	switch {
	case d.name == "":
		return d, &Error{File: path, Line: 1, Col: 1, Msg: `field "name" is required`}
	case d.name == "none":
		return d, &Error{File: path, Line: 1, Col: 1, Policy: d.name, Msg: `"none" is reserved for routes that opt out of authentication`}
	case kindName == "":
		return d, &Error{File: path, Line: 1, Col: 1, Policy: d.name, Msg: fmt.Sprintf(`field "kind" is required (one of %s)`, strings.Join(Kinds(), ", "))}
	}
	newSpec, ok := kind(kindName)
	if !ok {
		return d, &Error{File: path, Line: 1, Col: 1, Policy: d.name, Msg: fmt.Sprintf("unknown kind %q (one of %s)", kindName, strings.Join(Kinds(), ", "))}
	}
	d.spec = newSpec()
	if len(rest) > 0 {
		m := ast.Mapping(rest[0].GetToken(), false, rest...)
		if err := yaml.NodeToValue(m, d.spec, yaml.DisallowUnknownField()); err != nil {
			return d, yamlError(path, d.name, err)
		}
	}
	return d, nil
}

func yamlError(path, policy string, err error) *Error {
	e := &Error{File: path, Policy: policy, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

func nodeErr(path, policy string, n ast.Node, msg string) *Error {
	e := &Error{File: path, Policy: policy, Msg: msg}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		e.Line, e.Col = tk.Position.Line, tk.Position.Column
	}
	return e
}
