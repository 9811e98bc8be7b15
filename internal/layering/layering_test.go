// Package layering holds the test of DESIGN.md's dependency rules between
// Busbar's packages, in one table, so a new package states its rule here
// rather than in a copy of the check.
package layering

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/busbar/busbar/"

// allowed lists, for each package, the Busbar packages it may import. The
// data flows one way: cmd → routes → {connectors, transforms, delivery} →
// bus; certs and bus are leaves; auth and delivery know bus only, so that
// routes and connectors ask them, never the reverse.
var allowed = map[string][]string{
	"bus":        {},
	"certs":      {},
	"transforms": {"bus"},
	"wsdl":       {"bus", "transforms"},
	"auth":       {"bus"},
	"delivery":   {"bus"},
	"connectors": {"bus", "certs", "transforms"},
	"routes":     {"bus", "connectors", "delivery", "transforms", "wsdl", "certs", "auth"},
}

// network is what a package that must never touch the network may not import.
var network = map[string]bool{"transforms": true}

// TestDependencyRules reads the imports from the source (no go command
// needed) of every package in the table, tests excluded.
func TestDependencyRules(t *testing.T) {
	fset := token.NewFileSet()
	for pkg, may := range allowed {
		files, _ := filepath.Glob(filepath.Join("..", "..", pkg, "*.go"))
		if len(files) == 0 {
			t.Errorf("package %s: no Go files found", pkg)
		}
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
				if dep, ok := strings.CutPrefix(p, module); ok && !slices.Contains(may, dep) {
					t.Errorf("%s imports %s: %s may import %v of Busbar", filepath.Base(f), dep, pkg, may)
				}
				if network[pkg] && (p == "net" || p == "net/http" || strings.HasPrefix(p, "net/rpc") || p == "net/smtp") {
					t.Errorf("%s imports %s: %s never touches the network", filepath.Base(f), p, pkg)
				}
			}
		}
	}
}
