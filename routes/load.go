package routes

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// file is one parsed configuration file.
type file struct {
	path string   // as shown in errors: relative to the working directory when possible
	rel  string   // relative to the configuration directory
	root ast.Node // the document's top-level mapping
	kind string   // "route", "connector", "map"
	src  []byte   // the text as read, for inline maps
}

// Directories whose YAML files are data (value tables, route test cases),
// not configuration: they are read by whatever references them.
var dataDirs = map[string]bool{"tables": true, "testdata": true, "tests": true}

// skipDir says whether the loader's scan leaves out a folder below the
// configuration directory: hidden ones and data folders.
func skipDir(name string) bool { return strings.HasPrefix(name, ".") || dataDirs[name] }

// configName says whether the scan reads a file of this name.
func configName(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"))
}

// readDir parses every *.yaml / *.yml file under dir and sorts it by kind.
func readDir(dir string) ([]*file, Errors) {
	var files []*file
	var errs Errors
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && skipDir(name) {
				return filepath.SkipDir
			}
			return nil
		}
		if !configName(name) {
			return nil
		}
		f, e := parseFile(dir, p)
		if e != nil {
			errs = append(errs, e)
			return nil
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		errs = append(errs, &Error{File: dir, Msg: err.Error()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, errs
}

func parseFile(dir, p string) (*file, *Error) {
	src, err := os.ReadFile(p)
	if err != nil {
		return nil, &Error{File: p, Msg: err.Error()}
	}
	rel, _ := filepath.Rel(dir, p)
	f := &file{path: p, rel: filepath.ToSlash(rel), src: src}
	parsed, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, yamlError(p, nil, err)
	}
	if len(parsed.Docs) != 1 || parsed.Docs[0].Body == nil {
		return nil, &Error{File: p, Line: 1, Col: 1, Msg: "expected exactly one YAML document"}
	}
	f.root = parsed.Docs[0].Body
	if mv, ok := f.root.(*ast.MappingValueNode); ok { // a one-key document
		f.root = &ast.MappingNode{BaseNode: &ast.BaseNode{}, Start: mv.Key.GetToken(), Values: []*ast.MappingValueNode{mv}}
	}
	m, ok := f.root.(*ast.MappingNode)
	if !ok {
		l, c := posOf(f.root)
		return nil, &Error{File: p, Line: l, Col: c, Msg: "expected a mapping (key: value lines) at the top level"}
	}
	for _, v := range m.Values {
		switch v.Key.String() {
		case "route":
			f.kind = "route"
		case "connector":
			f.kind = "connector"
		case "output":
			f.kind = "map"
		}
		if f.kind != "" {
			break
		}
	}
	if f.kind == "" {
		l, c := 1, 1
		if len(m.Values) > 0 {
			l, c = posOf(m.Values[0].Key)
		}
		return nil, &Error{File: p, Line: l, Col: c,
			Msg: "unknown file kind: a configuration file starts with `route:`, `connector:` or (a mapping) `output:`; data files belong under tables/"}
	}
	return f, nil
}

// decode decodes a file (or a part of it) strictly into v, with environment
// substitution in every string value first.
//
// On failure it returns every problem of the node, not just the first. When
// the only problems are unknown keys, v holds everything else, so the
// caller may go on checking it and report its other problems too.
func (f *file) decode(node ast.Node, v any) Errors {
	err := yaml.NodeToValue(node, v, yaml.DisallowUnknownField())
	if err == nil {
		return nil
	}
	errs := f.allErrors(node, reflect.TypeOf(v))
	if len(errs) == 0 { // the walk missed what go-yaml saw: say that at least
		return Errors{yamlError(f.path, f.root, err)}
	}
	if errs.onlyUnknownKeys() {
		if err := yaml.NodeToValue(node, v); err != nil {
			return append(errs, yamlError(f.path, f.root, err))
		}
	}
	return errs
}

// substitute replaces ${NAME}, ${NAME:-default} (defaults may nest:
// ${A:-${B:-x}}) and ${file:path} in every string value of the file, in
// place; $${ writes a literal ${. It works on parsed values, never on the
// text, so a value with a colon or a newline can never change the file's
// structure. read gets every file a ${file:…} reads.
func (f *file) substitute(dir string, read fileSet) Errors {
	var errs Errors
	ast.Walk(visitFunc(func(n ast.Node) bool {
		if isInlineMap(n) {
			return false // an inline map is taken as written, like a mapping file
		}
		s, ok := n.(*ast.StringNode)
		if !ok || !strings.Contains(s.Value, "${") {
			return true
		}
		v, err := expand(dir, s.Value, read)
		if err != nil {
			l, c := posOf(s)
			errs = append(errs, &Error{File: f.path, Line: l, Col: c, Msg: err.Error()})
		}
		s.Value = v
		return true
	}), f.root)
	return errs
}

func expand(dir, s string, read fileSet) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 2
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			continue
		}
		depth, j := 0, i+2
		for ; j < len(s); j++ {
			if s[j] == '{' {
				depth++
			} else if s[j] == '}' {
				if depth == 0 {
					break
				}
				depth--
			}
		}
		if j == len(s) {
			return s, fmt.Errorf("%q: unclosed ${", s)
		}
		v, err := resolveRef(dir, s[i+2:j], read)
		if err != nil {
			return s, err
		}
		b.WriteString(v)
		i = j
	}
	return b.String(), nil
}

func resolveRef(dir, ref string, read fileSet) (string, error) {
	if p, ok := strings.CutPrefix(ref, "file:"); ok {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		read.add(p)
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("${file:%s}: %v", strings.TrimPrefix(ref, "file:"), err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	name, def, hasDef := strings.Cut(ref, ":-")
	if name == "" {
		return "", fmt.Errorf("${%s}: empty variable name", ref)
	}
	if v, ok := os.LookupEnv(name); ok && (v != "" || !hasDef) {
		return v, nil
	}
	if hasDef {
		return expand(dir, def, read)
	}
	return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
}

// without returns a copy of a mapping node without the given keys, for
// decoding a connector's own fields after the common ones.
func without(n ast.Node, keys ...string) ast.Node {
	m := n.(*ast.MappingNode)
	out := *m
	out.Values = nil
	for _, v := range m.Values {
		skip := false
		for _, k := range keys {
			if v.Key.String() == k {
				skip = true
			}
		}
		if !skip {
			out.Values = append(out.Values, v)
		}
	}
	return &out
}
