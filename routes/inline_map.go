package routes

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/busbar/busbar/transforms"
)

// MapRef is the value of a `map:` key: the path of a mapping file (relative
// to the configuration directory), or the mapping itself written inline in
// the same syntax as a mapping file.
type MapRef struct {
	// Path is the mapping file, when the value is a string.
	Path string
	// Inline is the mapping as written in the route file, when the value is
	// a YAML mapping.
	Inline ast.Node
}

// IsZero reports whether no mapping was given.
func (r MapRef) IsZero() bool { return r.Path == "" && r.Inline == nil }

// UnmarshalYAML takes a string (a file path) or a mapping (an inline map).
func (r *MapRef) UnmarshalYAML(n ast.Node) error {
	switch v := n.(type) {
	case *ast.StringNode:
		r.Path = v.Value
	case *ast.NullNode:
	case *ast.MappingNode, *ast.MappingValueNode:
		r.Inline = n
	default:
		return NodeError(n, "field \"map\": expected a mapping file's path or an inline mapping (output:, body: …), got %q", n.String())
	}
	return nil
}

// inlineMapping compiles an inline map. The compiler is given the route
// file's text with everything but the map blanked out, so the lines and
// columns in its errors (and in run-time errors) are the route file's own.
// Like a mapping file, an inline map's text is taken as written: no ${ENV}
// substitution (the map reads environment values with env()). Table files
// are relative to the configuration directory, like every path in a route.
func (l *loader) inlineMapping(f *file, n ast.Node) (*transforms.Mapping, Errors) {
	m, err := transforms.CompileMapping(f.path, []byte(isolate(string(f.src), n)), l.dir)
	if err != nil {
		return nil, rawErrors(f.path, err)
	}
	l.read.add(m.Files()...)
	return m, nil
}

// isolate returns src with every character outside node n replaced: other
// lines become empty, and on the node's first line what precedes it becomes
// spaces, so positions in the result are positions in src.
func isolate(src string, n ast.Node) string {
	start := startOf(n)
	if start == nil || start.Position == nil {
		return ""
	}
	lines := strings.Split(src, "\n")
	first := start.Position.Line - 1
	last := len(lines) - 1
	endCol := -1 // in runes; -1 keeps the whole last line
	if m, ok := n.(*ast.MappingNode); ok && m.IsFlowStyle && m.End != nil && m.End.Position != nil {
		last, endCol = m.End.Position.Line-1, m.End.Position.Column
	} else {
		// A block mapping ends before the first later line indented less
		// than its keys (blank lines and comments do not end it).
		indent := start.Position.Column - 1
		for i := first + 1; i < len(lines); i++ {
			t := strings.TrimLeft(lines[i], " ")
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			if len(lines[i])-len(t) < indent {
				last = i - 1
				break
			}
		}
	}
	var b strings.Builder
	for i, line := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < first || i > last {
			continue
		}
		r := []rune(line)
		if i == last && endCol >= 0 && endCol <= len(r) {
			r = r[:endCol]
		}
		if i == first {
			for j := 0; j < start.Position.Column-1 && j < len(r); j++ {
				r[j] = ' '
			}
		}
		b.WriteString(string(r))
	}
	return b.String()
}

// startOf is the first token of a node as written: a block mapping's
// GetToken is the colon after its first key, not the key.
func startOf(n ast.Node) *token.Token {
	switch v := n.(type) {
	case *ast.MappingNode:
		if v.IsFlowStyle || len(v.Values) == 0 {
			return v.GetToken()
		}
		return startOf(v.Values[0])
	case *ast.MappingValueNode:
		return v.Key.GetToken()
	}
	return n.GetToken()
}

// isInlineMap tells a `map:` key whose value is a mapping.
func isInlineMap(n ast.Node) bool {
	mv, ok := n.(*ast.MappingValueNode)
	if !ok || mv.Key.String() != "map" {
		return false
	}
	switch mv.Value.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// useMap returns the compiled mapping a `map:` key gives, reporting any
// problem at keys (a file reference) or inside the inline map, and nil then.
func (rc *routeCompiler) useMap(keys []string, prefix string, ref MapRef) *transforms.Mapping {
	if ref.Inline != nil {
		m, errs := rc.l.inlineMapping(rc.f, ref.Inline)
		for _, err := range errs {
			err.Kind, err.Name, err.Msg = "route", rc.spec.Route, prefix+"inline map: "+err.Msg
			rc.errs = append(rc.errs, err)
		}
		return m
	}
	m, errs := rc.l.mapping(ref.Path)
	switch {
	case len(errs) == 1 && (errors.Is(errs[0], os.ErrNotExist) || strings.Contains(errs[0].Msg, "no such file")):
		rc.fail(keys, "%smap %q: file not found under %s", prefix, ref.Path, rc.l.dir)
	case len(errs) > 0:
		for _, err := range errs {
			rc.fail(keys, "%smap %q is invalid: %s", prefix, ref.Path, err.Error())
		}
	case m == nil:
		rc.fail(keys, "%smap %q cannot be used (see its own error)", prefix, ref.Path)
	}
	return m
}

// describe names the mapping in an error message.
func (r MapRef) describe() string {
	if r.Inline != nil {
		return "the inline map"
	}
	return "map " + strconv.Quote(r.Path)
}
