package routetest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/busbar/busbar/internal/yamldoc"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// The demo's own route tests (examples/tests) pass: `make test` runs them.
func TestExamples(t *testing.T) {
	var out bytes.Buffer
	res, err := Run("../../examples", Options{Out: &out, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed > 0 || res.Passed < 20 {
		t.Errorf("examples/tests: %d passed, %d failed:\n%s", res.Passed, res.Failed, out.String())
	}
	if want := fmt.Sprintf("\nok %d passed\n", res.Passed); !strings.HasSuffix(out.String(), want) {
		t.Errorf("the report should end with the summary:\n%s", out.String())
	}
}

// Wrong expectations fail with a readable report: the golden file is the
// exact text a user sees.
func TestFailingCases(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(filepath.Join("testdata", "failing"), Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed != 1 || res.Failed != 10 {
		t.Errorf("want 1 passed and 10 failed, got %d and %d", res.Passed, res.Failed)
	}
	golden(t, filepath.Join("testdata", "failing-report.txt"), out.String())
}

func TestRunTargets(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(filepath.Join("testdata", "failing", "tests", "broken.yaml"), Options{Out: &out})
	if err != nil || res.Failed != 1 || res.Passed != 0 {
		t.Errorf("one broken file: want 1 failure, got %+v, %v", res, err)
	}
	if _, err := Run("testdata", Options{}); err == nil || !strings.Contains(err.Error(), "no test files") {
		t.Errorf("a directory without tests/: want an error, got %v", err)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := unifiedDiff(string(want), got); d != "" {
		t.Errorf("%s differs:\n%s", path, d)
	}
}

// Every key of the test file format is documented in docs/testing.md.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/testing.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range yamldoc.Undocumented(string(doc), reflect.TypeOf(File{})) {
		t.Errorf("docs/testing.md does not document %s", m)
	}
}
