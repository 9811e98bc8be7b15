package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

const docsPath = "../docs/mapping.md"

// docBlock is one fenced block of docs/mapping.md.
type docBlock struct {
	info       string // what follows ``` on the opening line
	text       string
	start, end int // line numbers (0-based) of the fences
}

// docExample is a mapping with its input and expected output.
type docExample struct {
	files  map[string]string // yaml file=PATH blocks before the map
	mapB   docBlock
	input  *docBlock
	output *docBlock
}

func readDocBlocks(t *testing.T) ([]string, []docBlock) {
	t.Helper()
	src, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		b := docBlock{info: strings.TrimSpace(lines[i][3:]), start: i}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		if j == len(lines) {
			t.Fatalf("%s:%d: unclosed fence", docsPath, i+1)
		}
		b.text, b.end = strings.Join(lines[i+1:j], "\n"), j
		blocks = append(blocks, b)
		i = j
	}
	return lines, blocks
}

// docExamples groups the blocks into examples and checks that every block
// is of a known kind, so that no example escapes the test.
func docExamples(t *testing.T, blocks []docBlock) []docExample {
	t.Helper()
	var out []docExample
	files := map[string]string{}
	var cur *docExample
	flush := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	for i := range blocks {
		b := &blocks[i]
		switch {
		case strings.HasPrefix(b.info, "yaml file="):
			flush()
			files[strings.TrimPrefix(b.info, "yaml file=")] = b.text
		case b.info == "yaml map":
			flush()
			cur = &docExample{files: files, mapB: *b}
			files = map[string]string{}
		case b.info == "json input" || b.info == "xml input":
			if cur == nil || cur.input != nil {
				t.Fatalf("%s:%d: an input block belongs after a ```yaml map block", docsPath, b.start+1)
			}
			cur.input = b
		case b.info == "json output" || b.info == "xml output" || b.info == "text output":
			if cur == nil || cur.output != nil {
				t.Fatalf("%s:%d: an output block belongs after a ```yaml map block", docsPath, b.start+1)
			}
			cur.output = b
			flush()
		case b.info == "yaml sketch" || b.info == "go" || b.info == "text" || b.info == "sh":
			// syntax sketches and prose, not examples
		default:
			t.Fatalf("%s:%d: fence %q: want yaml map, yaml file=PATH, json|xml input, json|xml|text output, yaml sketch, go, sh or text",
				docsPath, b.start+1, b.info)
		}
	}
	flush()
	for _, ex := range out {
		if ex.output == nil {
			t.Fatalf("%s:%d: the example has no output block", docsPath, ex.mapB.start+1)
		}
	}
	return out
}

// TestDocsExamples runs every example of docs/mapping.md and compares the
// output (JSON compared as compact bytes, XML with whitespace-only text
// ignored, a fault as "STATUS detail"). -update rewrites the output blocks.
func TestDocsExamples(t *testing.T) {
	t.Setenv("SAP_CLIENT", "800")
	lines, blocks := readDocBlocks(t)
	examples := docExamples(t, blocks)
	if len(examples) < 20 {
		t.Fatalf("only %d examples in %s", len(examples), docsPath)
	}
	var repl []docBlock // output blocks to rewrite, text replaced
	for _, ex := range examples {
		got, err := runDocExample(t, ex)
		if err != nil {
			t.Errorf("%s:%d: %v", docsPath, ex.mapB.start+1, err)
			continue
		}
		want := strings.TrimSpace(ex.output.text)
		if docOutputEqual(ex.output.info, want, got) {
			continue
		}
		if *update {
			b := *ex.output
			b.text = got
			repl = append(repl, b)
			continue
		}
		t.Errorf("%s:%d: example output differs\nwant:\n%s\ngot:\n%s", docsPath, ex.output.start+1, want, got)
	}
	if len(repl) > 0 {
		for i := len(repl) - 1; i >= 0; i-- { // from the end: earlier line numbers stay valid
			b := repl[i]
			lines = append(lines[:b.start+1], append(strings.Split(b.text, "\n"), lines[b.end:]...)...)
		}
		if err := os.WriteFile(docsPath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %d output blocks", len(repl))
	}
}

func runDocExample(t *testing.T, ex docExample) (string, error) {
	m, in, text, err := docExampleMapping(t, ex)
	if m == nil {
		return text, err
	}
	out, err := m.Apply(in)
	if err != nil {
		var f *bus.Fault
		if !errors.As(err, &f) {
			return "", fmt.Errorf("Apply returned %T", err)
		}
		if f.Internal != "" {
			return fmt.Sprintf("%d %s\nlog: %s", f.Status, f.Detail, f.Internal), nil
		}
		return fmt.Sprintf("%d %s", f.Status, f.Detail), nil
	}
	if m.Output() == bus.FormatJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, out.Body, "", "  "); err != nil {
			return "", fmt.Errorf("output is not JSON: %s", out.Body)
		}
		return b.String(), nil
	}
	root, err := outputTree(out)
	if err != nil {
		return "", err
	}
	doc := etree.NewDocument()
	doc.SetRoot(root.Copy())
	if m.identity == nil {
		doc.Indent(2)
	}
	s, _ := doc.WriteToString()
	return strings.TrimSpace(s), nil
}

// docExampleMapping compiles an example's mapping (its files written to a
// temporary folder) and builds its input message. m is nil when the
// mapping does not compile: text is then the result, or err the failure.
func docExampleMapping(t *testing.T, ex docExample) (m *Mapping, in *bus.Message, text string, err error) {
	dir := t.TempDir()
	for name, text := range ex.files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, nil, "", err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return nil, nil, "", err
		}
	}
	m, err = CompileMapping("maps/example.yaml", []byte(ex.mapB.text), dir)
	if err != nil {
		if ex.output.info == "text output" {
			return nil, nil, err.Error(), nil
		}
		return nil, nil, "", err
	}
	in = bus.NewMessage()
	switch {
	case ex.input == nil:
		in.Format, in.Body = bus.FormatJSON, []byte("{}")
	case ex.input.info == "json input":
		in.Format, in.Body = bus.FormatJSON, []byte(ex.input.text)
	default:
		doc, err := ParseXML([]byte(ex.input.text), "")
		if err != nil {
			return nil, nil, "", fmt.Errorf("input: %v", err)
		}
		in.Format, in.Body, in.Root = bus.FormatXML, []byte(ex.input.text), doc.Root()
	}
	return m, in, "", nil
}

func docOutputEqual(kind, want, got string) bool {
	switch kind {
	case "json output":
		var a, b bytes.Buffer
		if json.Compact(&a, []byte(want)) != nil || json.Compact(&b, []byte(got)) != nil {
			return false
		}
		return a.String() == b.String()
	case "xml output":
		return normalizeXML(want) == normalizeXML(got)
	}
	return want == got
}

// normalizeXML serialises a document without its whitespace-only text.
func normalizeXML(s string) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		return "unparsable: " + s
	}
	var strip func(e *etree.Element)
	strip = func(e *etree.Element) {
		for i := 0; i < len(e.Child); i++ {
			switch c := e.Child[i].(type) {
			case *etree.CharData:
				if c.IsWhitespace() && !c.IsCData() {
					e.RemoveChildAt(i)
					i--
				}
			case *etree.Element:
				strip(c)
			}
		}
	}
	if doc.Root() == nil {
		return "no root: " + s
	}
	strip(doc.Root())
	out, _ := doc.WriteToString()
	return out
}

// TestDocsCoverEverything: every function and every reserved key has an
// executed example in docs/mapping.md.
func TestDocsCoverEverything(t *testing.T) {
	_, blocks := readDocBlocks(t)
	examples := docExamples(t, blocks)
	var maps strings.Builder
	for _, ex := range examples {
		maps.WriteString(ex.mapB.text)
		maps.WriteByte('\n')
		for _, f := range ex.files {
			maps.WriteString(f)
			maps.WriteByte('\n')
		}
	}
	all := maps.String()
	var missing []string
	names := []string{"group", "xpath", "json"}
	for name := range functions {
		names = append(names, name)
	}
	for _, name := range names {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\(`).MatchString(all) {
			missing = append(missing, name+"()")
		}
	}
	keys := []string{"output", "input", "namespaces", "tables", "templates", "include", "body", "identity",
		"from", "rules", "match", "drop", "rename", "namespace", "value", "prepend", "append", "replace",
		"when", "then", "otherwise", "by", "order", "as", "#text", "#value", "file"}
	for k := range reserved {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^\s*(- )?"?`+regexp.QuoteMeta(k)+`"?:`).MatchString(all) &&
			!strings.Contains(all, "{"+k+":") && !strings.Contains(all, "{ "+k+":") && !strings.Contains(all, ", "+k+":") {
			missing = append(missing, k+":")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s has no executed example using: %s", docsPath, strings.Join(missing, ", "))
	}
}
