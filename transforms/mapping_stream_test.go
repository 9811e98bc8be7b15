package transforms

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// withoutStreaming runs f with streamed XML output off: what is compiled
// inside f builds an etree tree.
func withoutStreaming(f func()) {
	streamXML = false
	defer func() { streamXML = true }()
	f()
}

// outcome renders what Apply returned for comparing the two output paths:
// the fault, or the output's format and bytes exactly as they go on the wire.
func outcome(t *testing.T, m *Mapping, in *bus.Message) string {
	t.Helper()
	out, err := m.Apply(in)
	if err != nil {
		var f *bus.Fault
		if !errors.As(err, &f) {
			t.Fatalf("%s: Apply returned %T", m.Name(), err)
		}
		if out != nil {
			t.Errorf("%s: Apply returned output with a fault", m.Name())
		}
		return fmt.Sprintf("fault %d %v %s %s [log: %s]", f.Status, f.Blame, f.Title, f.Detail, f.Internal)
	}
	if m.stream && out.Root != nil {
		t.Errorf("%s: a streaming mapping built a tree", m.Name())
	}
	if !m.stream && m.output == bus.FormatXML && out.XMLBytes() != nil {
		t.Errorf("%s: a tree mapping offers bytes", m.Name())
	}
	var b bytes.Buffer
	if out.Root != nil {
		out.Root.WriteTo(&b, &bus.XMLWriteSettings)
	} else {
		b.Write(out.Body)
	}
	return fmt.Sprintf("%s %s %s\n%s", out.Format, out.ID, out.SOAP, b.String())
}

// compareStream compiles a mapping with and without streaming and compares
// the two outcomes on the input newIn makes (fresh for each run). It
// reports whether the mapping streams.
func compareStream(t *testing.T, where string, compile func() (*Mapping, error), newIn func() *bus.Message) bool {
	t.Helper()
	var tree *Mapping
	var treeErr error
	withoutStreaming(func() { tree, treeErr = compile() })
	stream, streamErr := compile()
	if fmt.Sprint(treeErr) != fmt.Sprint(streamErr) {
		t.Fatalf("%s: compile errors differ: %v / %v", where, treeErr, streamErr)
	}
	if treeErr != nil {
		return false
	}
	if tree.stream {
		t.Fatalf("%s: streams with streaming off", where)
	}
	want, got := outcome(t, tree, newIn()), outcome(t, stream, newIn())
	if want != got {
		t.Errorf("%s: streamed output differs from the tree's\ntree:\n%s\nstream:\n%s", where, want, got)
	}
	// Again on the same (pooled) context: nothing left over from the first run.
	if again := outcome(t, stream, newIn()); again != got {
		t.Errorf("%s: second run differs\nfirst:\n%s\nsecond:\n%s", where, got, again)
	}
	return stream.stream
}

// TestStreamMatchesTree runs every golden case, every docs example and the
// benchmark mappings with the output streamed and built as a tree: bytes
// and fault texts must be identical.
func TestStreamMatchesTree(t *testing.T) {
	dirs, err := filepath.Glob("testdata/mapping/*")
	if err != nil || len(dirs) == 0 {
		t.Fatal("no golden cases", err)
	}
	streamed := 0
	for _, dir := range dirs {
		compile := func() (*Mapping, error) { return LoadMapping(filepath.Join(dir, "mapping.yaml")) }
		if compareStream(t, dir, compile, func() *bus.Message { return goldenInput(t, dir) }) {
			streamed++
		}
	}
	_, blocks := readDocBlocks(t)
	for _, ex := range docExamples(t, blocks) {
		where := fmt.Sprintf("%s:%d", docsPath, ex.mapB.start+1)
		var in *bus.Message
		compile := func() (*Mapping, error) {
			m, msg, _, err := docExampleMapping(t, ex)
			if m == nil && err == nil {
				err = errors.New("does not compile")
			}
			in = msg
			return m, err
		}
		if compareStream(t, where, compile, func() *bus.Message { c := *in; c.Root = in.Root; return &c }) {
			streamed++
		}
	}
	if streamed < 12 { // every XML case without identity:, templates or copy-of:
		t.Errorf("only %d cases streamed; the comparison proves little", streamed)
	}
	t.Logf("%d cases streamed", streamed)
}

// TestStreamVoucher: the benchmark's JSON → BAPI mapping, 200 lines.
func TestStreamVoucher(t *testing.T) {
	var tree string
	withoutStreaming(func() { tree, _ = voucherRoundTrip(t, 200) })
	stream, _ := voucherRoundTrip(t, 200)
	if tree != stream {
		t.Errorf("JSON → XML differs:\ntree   %.400s\nstream %.400s", tree, stream)
	}
}

// TestBenchMappingsStream: the mappings of the S5 and S7 benchmark routes
// take the streaming path (a change that silently sent them back to the
// tree would show only as a slower benchmark).
func TestBenchMappingsStream(t *testing.T) {
	for _, p := range []string{
		"../bench/routes/s5/maps/bapi-to-ledger.yaml",
		"../bench/routes/s5/maps/ledger-to-bapi.yaml",
		"../bench/routes/s7/maps/voucher-to-bapi.yaml",
		"testdata/mapping/voucher-to-bapi/mapping.yaml",
	} {
		m, err := LoadMapping(p)
		if err != nil {
			t.Fatal(err)
		}
		if !m.stream {
			t.Errorf("%s does not stream", p)
		}
	}
}

// TestStreamEdges: the constructs where streaming could part from the
// tree: escaping, nil, CDATA, duplicate and nil attributes, choose:, more
// no root, and a fault in the middle of the document.
func TestStreamEdges(t *testing.T) {
	const input = `{"s": "a&b<c>d\"e'f\r\ng\th\u0001i\ufffej]]>k 中文 \ud83d\ude00", "empty": "", "n": 2,
		"items": [{"v": "1"}, {"v": "x"}, {"v": "3"}]}`
	const bom = `<bom><part no="P-1"><name>  Bicycle </name>
		<part no="P-2"><name>Wheel</name><part no="P-3"><name>Spoke &amp; nipple</name></part></part>
		<part no="P-5"><name>Frame</name></part></part></bom>`
	for _, tc := range []struct {
		name, src string
		stream    bool
		in        string // XML input; the JSON above when empty
	}{
		{"escaping", `
output: xml
body:
  r:
    "@a": $.s
    t: $.s
    e: $.empty
    n: $.none
    num: $.n * 2`, true, ""},
		{"cdata", `
output: xml
body:
  r:
    c:
      cdata: true
      "#text": $.s
    d:
      cdata: true
      "#text": $.empty`, true, ""},
		{"nil", `
output: xml
namespaces:
  p: urn:p
body:
  p:r:
    a:
      nillable: true
      "#text": $.none
    b:
      nillable: true
      "@x": "'1'"
      "#text": $.none
    c:
      nillable: true
      "@x": $.none
    p:d:
      nillable: true
      choose:
        - when: $.n > 5
          then: "'big'"
    e:
      nillable: true
      "#text": $.s`, true, ""},
		{"choose among children", `
output: xml
body:
  r:
    first: "'1'"
    choose:
      - when: $.n > 1
        then:
          big: $.n
          more:
            x: "'y'"
      - otherwise:
          small: $.n
    last: "'z'"`, true, ""},
		{"choose adds an attribute", `
output: xml
body:
  r:
    first: "'1'"
    choose:
      - when: $.n > 1
        then:
          "@big": "'yes'"
          big: $.n
    last: "'z'"`, false, ""},
		{"choose is the content", `
output: xml
namespaces:
  q: urn:q
body:
  r:
    k:
      choose:
        - when: $.n > 1
          then:
            "@q:a": "'1'"
            "#text": "'two'"
            sub: "'s'"
        - otherwise: "'one'"`, true, ""},
		{"no root", `
output: xml
body:
  r:
    if: $.n > 5
    v: "'x'"`, true, ""},
		{"fault mid-document", `
output: xml
body:
  r:
    head: "'h'"
    item:
      for-each: $.items
      "@n": position()
      v: decimal(.v, 2)`, true, ""},
		{"templates", `
output: xml
namespaces:
  b: urn:bom
  x: urn:x
templates:
  part:
    params: { level: 1 }
    body:
      "@no": ./@no
      "@x:level": $level
      b:name: normalize(./name)
      b:part:
        for-each: ./part
        call: part
        params: { level: $level + 1 }
  extra:
    body:
      b:note: "'n'"
      x:flag:
        nillable: true
        "#text": ./missing
body:
  b:bom:
    b:part:
      call: part
      context: /bom/part
    call: extra`, true, bom},
		{"template adds an attribute", `
output: xml
templates:
  t:
    body:
      "@a": "'1'"
      c: "'x'"
body:
  r:
    first: "'1'"
    call: t`, false, bom},
		{"template without end", `
output: xml
templates:
  loop:
    body:
      again:
        call: loop
body:
  start:
    call: loop`, true, bom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compile := func() (*Mapping, error) { return CompileMapping("edge.yaml", []byte(tc.src), ".") }
			newIn := func() *bus.Message {
				in := bus.NewMessage()
				in.ID = "e1"
				if tc.in == "" {
					in.SetJSON([]byte(input))
					return in
				}
				doc, err := ParseXML([]byte(tc.in), "")
				if err != nil {
					t.Fatal(err)
				}
				in.SetXML(doc.Root())
				return in
			}
			if got := compareStream(t, tc.name, compile, newIn); got != tc.stream {
				t.Errorf("streams: %v, want %v", got, tc.stream)
			}
		})
	}
}

// TestStreamFaultLeavesNothing: a fault half-way through a streamed document
// returns no message, and the next run on the pooled context starts clean.
func TestStreamFaultLeavesNothing(t *testing.T) {
	m, err := CompileMapping("f.yaml", []byte(`
output: xml
body:
  r:
    item:
      for-each: $.items
      v: decimal(.v, 2)`), ".")
	if err != nil || !m.stream {
		t.Fatal(err, m.stream)
	}
	run := func(body string) (*bus.Message, error) {
		in := bus.NewMessage()
		in.SetJSON([]byte(body))
		return m.Apply(in)
	}
	out, err := run(`{"items": [{"v": "1"}, {"v": "bad"}]}`)
	if out != nil || err == nil || !strings.Contains(err.Error(), "item[2]") {
		t.Fatalf("out %v, err %v", out, err)
	}
	out, err = run(`{"items": [{"v": "7"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out.Bytes()); got != "<r><item><v>7.00</v></item></r>" {
		t.Errorf("after a fault: %s", got)
	}

	// A large output, then a small one: each right, and the small one
	// does not keep the large one's buffer.
	big := `{"items": [` + strings.Repeat(`{"v": "1"},`, 2000) + `{"v": "2"}]}`
	out, err = run(big)
	if err != nil {
		t.Fatal(err)
	}
	first := out.Bytes()
	if want := "<r>" + strings.Repeat("<item><v>1.00</v></item>", 2000) + "<item><v>2.00</v></item></r>"; string(first) != want {
		t.Errorf("large output: %.200s…", first)
	}
	out, err = run(`{"items": [{"v": "3"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Bytes(); string(got) != "<r><item><v>3.00</v></item></r>" || cap(got) > 4096+2*len(got) {
		t.Errorf("small output after a large one: %q (capacity %d)", got, cap(got))
	}
	if !strings.HasSuffix(string(first), "<item><v>2.00</v></item></r>") {
		t.Error("the large output changed after the next Apply")
	}
}

// TestStreamEscapingMatchesEtree compares the escaping with etree's for
// text and attribute values over strings with every kind of character,
// broken UTF-8 included.
func TestStreamEscapingMatchesEtree(t *testing.T) {
	parts := []string{"a", "&", "<", ">", "'", `"`, "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "é", "中",
		"\uFFFD", "\uFFFE", "\uFFFF", "\U0001F600", "\xff", "\xe4\xb8", "\xed\xa0\x80", "]]>", "]]", " "}
	var cases []string
	for _, a := range parts {
		for _, b := range parts {
			cases = append(cases, a+b, "x"+a+"y"+b+"z")
		}
	}
	for _, s := range cases {
		var want bytes.Buffer
		etree.NewText(s).WriteTo(&want, &bus.XMLWriteSettings)
		if got := appendEscaped(nil, s, &textEscapes); string(got) != want.String() {
			t.Errorf("text %q: got %q, etree %q", s, got, want.String())
		}
		want.Reset()
		etree.NewCData(s).WriteTo(&want, &bus.XMLWriteSettings)
		if got := appendCData(nil, s); string(got) != want.String() {
			t.Errorf("cdata %q: got %q, etree %q", s, got, want.String())
		}
		want.Reset()
		el := etree.NewElement("e")
		el.CreateAttr("a", s)
		el.WriteTo(&want, &bus.XMLWriteSettings)
		got := `<e a="` + string(appendEscaped(nil, s, &attrEscapes)) + `"></e>`
		if got != want.String() {
			t.Errorf("attribute %q: got %q, etree %q", s, got, want.String())
		}
	}
}
