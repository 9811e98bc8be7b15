package wsdl

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busbar/busbar/internal/corpus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// corpusDir is the shared third-party corpus (skips the test when absent).
func corpusDir(t testing.TB) string { return corpus.Dir(t) }

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s: output differs from the golden file (go test -update rewrites it)\n%s", name, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("first difference at line %d:\nwant: %s\ngot:  %s", i+1, a, b)
		}
	}
	return ""
}

// summary renders what Load found, for golden files. base is stripped from
// file paths so the files do not depend on where the corpus lives.
func summary(d *Definitions, base string) string {
	var b strings.Builder
	rel := func(s string) string { return strings.ReplaceAll(s, base+string(filepath.Separator), "") }
	fmt.Fprintf(&b, "targetNamespace: %s\n", d.TargetNamespace)
	for _, f := range d.Files {
		fmt.Fprintf(&b, "file: %s\n", filepath.ToSlash(rel(f)))
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", filepath.ToSlash(rel(w)))
	}
	for _, s := range d.Services {
		fmt.Fprintf(&b, "service %s\n", s.Name)
		for _, p := range s.Ports {
			fmt.Fprintf(&b, "  port %s binding=%s soap=%s address=%s\n", p.Name, p.Binding, p.SOAP, p.Address)
		}
	}
	for _, o := range d.Operations() {
		fmt.Fprintf(&b, "operation %s/%s soap=%s action=%q %s/%s\n  in=%s parts=%v\n  out=%s faults=%v\n",
			o.Binding, o.Name, o.SOAP, o.Action, o.Style, o.Use, o.Input, o.InputParts, o.Output, o.Faults)
	}
	return b.String()
}

// renderElement renders an element tree, one element a line.
func renderElement(e *ElementInfo) string {
	var b strings.Builder
	var walk func(e *ElementInfo, depth int)
	walk = func(e *ElementInfo, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), e.Name)
		if e.Type.Local != "" {
			fmt.Fprintf(&b, " type=%s", e.Type)
		}
		if e.Simple != "" {
			fmt.Fprintf(&b, " simple=%s", e.Simple)
		}
		max := fmt.Sprint(e.MaxOccurs)
		if e.MaxOccurs < 0 {
			max = "unbounded"
		}
		fmt.Fprintf(&b, " occurs=%d..%s", e.MinOccurs, max)
		for _, f := range []struct {
			on   bool
			name string
		}{{e.Repeats, "repeats"}, {e.Nillable, "nillable"}, {e.Choice, "choice"}, {e.Any, "any"}, {e.Recursive, "recursive"}} {
			if f.on {
				b.WriteString(" " + f.name)
			}
		}
		b.WriteString("\n")
		for _, c := range e.Children {
			walk(c, depth+1)
		}
	}
	walk(e, 0)
	return b.String()
}
