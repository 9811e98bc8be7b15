package transforms

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
)

// TestDependencyRules checks the design's rule: transforms imports bus and
// nothing else of Busbar, and never a network client.
func TestDependencyRules(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case strings.HasPrefix(p, "github.com/busbar/busbar/") && p != "github.com/busbar/busbar/bus":
				t.Errorf("%s imports %s: transforms may import bus only", f, p)
			case p == "net" || p == "net/http" || strings.HasPrefix(p, "net/rpc") || p == "net/smtp":
				t.Errorf("%s imports %s: a mapping never touches the network", f, p)
			}
		}
	}
}

// FuzzCompileExpr: no expression text makes the compiler or an evaluation panic.
func FuzzCompileExpr(f *testing.F) {
	for _, s := range []string{`$.a + 1`, `/*/A[B='x']`, `lookup("t", .k)`, `'a' + ./b`, `$x`, `[`, `"`, `(((`,
		`date($.d, "2006", "2006", "UTC")`, `xpath("//a")`, `json("a.#")`, `./A*2`, `- - -$.a`, `$.a ?? ./b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := CompileExpr(src, "f", 1, 1, map[string]string{"p": "urn:p"})
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
			return
		}
		for _, m := range []*bus.Message{jsonMsg(`{"a": 1, "d": "2024", "l": [1, 2]}`), xmlMsg(t, `<R><A>1</A><B>x</B></R>`)} {
			if _, err := e.String(m); err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
		}
	})
}
