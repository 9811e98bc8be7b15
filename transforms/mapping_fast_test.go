package transforms

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/busbar/busbar/bus"
)

// withoutFastPaths runs f with the shortcuts of mapping_fast.go off: what
// is compiled inside f takes the general path (expr VM, antchfx/xpath).
func withoutFastPaths(f func()) {
	fastPaths = false
	defer func() { fastPaths = true }()
	f()
}

// TestFastPathsMatchGeneral runs every golden case and every docs example
// with and without the shortcuts: output and fault text must be identical.
func TestFastPathsMatchGeneral(t *testing.T) {
	dirs, err := filepath.Glob("testdata/mapping/*")
	if err != nil || len(dirs) == 0 {
		t.Fatal("no golden cases", err)
	}
	dirs = append(dirs, "testdata/bench")
	for _, dir := range dirs {
		if dir == "testdata/bench" {
			continue // not a golden folder; covered by TestFastPathsVoucher
		}
		var slow string
		withoutFastPaths(func() { slow, _ = runGolden(t, dir) })
		fast, _ := runGolden(t, dir)
		if slow != fast {
			t.Errorf("%s: the shortcuts change the result\ngeneral:\n%s\nshortcut:\n%s", dir, slow, fast)
		}
	}
	_, blocks := readDocBlocks(t)
	for _, ex := range docExamples(t, blocks) {
		var slow string
		var slowErr error
		withoutFastPaths(func() { slow, slowErr = runDocExample(t, ex) })
		fast, fastErr := runDocExample(t, ex)
		if fmt.Sprint(slowErr) != fmt.Sprint(fastErr) || slow != fast {
			t.Errorf("%s:%d: the shortcuts change the result\ngeneral: %v\n%s\nshortcut: %v\n%s",
				docsPath, ex.mapB.start+1, slowErr, slow, fastErr, fast)
		}
	}
}

// TestFastPathsVoucher: the benchmark mappings, 2 and 200 lines both ways.
func TestFastPathsVoucher(t *testing.T) {
	run := func() (string, string) { return voucherRoundTrip(t, 200) }
	var sx, sj string
	withoutFastPaths(func() { sx, sj = run() })
	fx, fj := run()
	if sx != fx {
		t.Errorf("JSON → XML differs:\ngeneral  %.400s\nshortcut %.400s", sx, fx)
	}
	if sj != fj {
		t.Errorf("XML → JSON differs:\ngeneral  %.400s\nshortcut %.400s", sj, fj)
	}
}

// TestFastXPathAgainstAntchfx compares the shortcut walk with antchfx/xpath
// node by node, for simple paths from several context nodes of a document
// with namespaces, attributes, repeated and nested names and mixed content.
func TestFastXPathAgainstAntchfx(t *testing.T) {
	const src = `<r:Doc xmlns:r="urn:r" xmlns:o="urn:o" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d1" o:id="d2">
  <Head a="1" xsi:type="T"><Code>10</Code><o:Code>20</o:Code><Code/></Head>
  <item n="1"><Code>x<b>y</b>z</Code><item n="1.1"><Code>inner</Code></item></item>
  <!-- a comment --><item n="2" xmlns="urn:d"><Code>2</Code><名称>差旅</名称></item>
  <r:item n="3"><r:Code>r3</r:Code></r:item>text<item/>
</r:Doc>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(src); err != nil {
		t.Fatal(err)
	}
	ns := map[string]string{"r": "urn:r", "o": "urn:o", "d": "urn:d", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
	paths := []string{
		"/*", "/Doc", "/r:Doc", "/o:Doc", "/x", "/@id", "/*/@id",
		"/*/Head", "/*/Head/Code", "/*/Head/o:Code", "/*/Head/r:Code", "/*/Head/*", "/*/*", "/*/*/Code",
		"/*/item/Code", "/*/item/item/Code", "/*/d:item/Code", "/*/r:item/r:Code", "/*/item/名称",
		"/*/Head/@a", "/*/Head/@type", "/*/Head/@xsi:type", "/*/Head/@*", "/*/item/@n", "/*/*/@n",
		"/*/@o:id", "/*/@r:id", "/*/@*", "/*/@xmlns", "/*/@r",
		"./Code", "./item", "./item/Code", "./@n", "@n", "@*", "./*", "./*/Code", "./b", "./Code/b",
	}
	root := doc.Root()
	contexts := []*xmlNav{newXMLNav(root)} // the virtual root
	collect := newXMLNav(root)
	collect.MoveToChild()
	contexts = append(contexts, collect)
	for _, e := range root.FindElements("//*") {
		contexts = append(contexts, &xmlNav{root: root, cur: e, attr: -1})
	}
	checked := 0
	for _, p := range paths {
		f := compileFastXPath(p, ns)
		if f == nil {
			t.Errorf("%s: no shortcut", p)
			continue
		}
		pool, err := newXPathPool(p, ns)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, at := range contexts {
			want, err := evalXPath(pool, at)
			if err != nil {
				t.Fatal(err)
			}
			got, handled := f.nodes(at)
			if !handled {
				t.Fatalf("%s from %s: not handled", p, describeNav(at))
			}
			if describeValue(got) != describeValue(want) {
				t.Errorf("%s from %s:\nwant %s\n got %s", p, describeNav(at), describeValue(want), describeValue(got))
			}
			s, found, _ := f.text(at)
			wantS, wantFound := "", want != nil
			if wantFound {
				wantS = toString(want)
			}
			if s != wantS || found != wantFound {
				t.Errorf("%s from %s: text %q %v, want %q %v", p, describeNav(at), s, found, wantS, wantFound)
			}
			checked++
		}
	}
	if checked < 500 {
		t.Fatalf("only %d comparisons", checked)
	}
	// A context the shortcut leaves to antchfx: an attribute.
	attrNav := &xmlNav{root: root, cur: root, attr: 0}
	if _, handled := compileFastXPath("./Code", ns).nodes(attrNav); handled {
		t.Error("an attribute context must go to the general engine")
	}
}

// TestFastXPathShapes: which paths get the shortcut.
func TestFastXPathShapes(t *testing.T) {
	ns := map[string]string{"p": "urn:p"}
	for _, tc := range []struct {
		src  string
		fast bool
	}{
		{"/*/A/B", true}, {"./A", true}, {"@a", true}, {"./@p:a", true}, {"/p:A/B-C.d/_e", true}, {"/*/@*", true},
		{"/", false}, {".", false}, {"//A", false}, {"/*//A", false}, {"../A", false}, {"./A/..", false},
		{"./A[1]", false}, {"./A/text()", false}, {"/p:*", false}, {"/q:A", false}, {"./A/@b/C", false},
		{"./child::A", false}, {"./A | ./B", false}, {"count(./A)", false}, {"./1A", false}, {"./A/", false},
	} {
		if got := compileFastXPath(tc.src, ns) != nil; got != tc.fast {
			t.Errorf("%q: shortcut %v, want %v", tc.src, got, tc.fast)
		}
	}
}

func describeNav(n *xmlNav) string {
	if n.cur == nil {
		return "the root"
	}
	return nodePath(n)
}

func describeValue(v any) string {
	nodes, ok := v.(xmlNodes)
	if !ok {
		return fmt.Sprintf("%T %v", v, v)
	}
	var parts []string
	for _, n := range nodes {
		x := n.(*xmlNav)
		parts = append(parts, fmt.Sprintf("%s=%q(%d)", nodePath(x), x.Value(), x.NodeType()))
	}
	return strings.Join(parts, " ")
}

// TestScalarArgsMatchGeneral: functions reading a path argument as one
// value (scalarArgs) get the first node's text instead of a node-set; the
// results and the fault texts (which name the input node) must not change,
// for present, missing, empty, repeated and malformed values, attributes
// and ".".
func TestScalarArgsMatchGeneral(t *testing.T) {
	const input = `<Doc><item seq="7" bad="x"><N>0000000042</N><A>12.345</A><A>9</A><E/><T>  a b </T><X>1e3</X><M>-0.005</M></item>` +
		`<item seq="" bad="1.5"><N>abc</N><A>-2.5</A><E></E><T>x</T><X>1.2.3</X><M>99999999999999999999.5</M></item></Doc>`
	exprs := []string{
		"number(./N)", "number(./A)", "number(./Z)", "number(@seq)", "number(./X)", "number(.)",
		"decimal(./A, 2)", "decimal(./M, 2)", "decimal(./M, 0)", "decimal(./X, 1)", "decimal(./N)", "decimal(./E, 2)",
		"decimal(./Z, 2)", "decimal(@bad, 1)", "decimal(./A, ./N)", "decimal(./A, @seq)",
		"round(./M, 2, 'half-even')", "round(./A, 1)", "round(./A, 1, @bad)",
		"formatNumber(./A, '#,##0.00')", "formatNumber(./N, ./T)", "formatNumber(./M, '0.0', 'half-even')",
		"pad(@seq, 10)", "pad(./N, 3)", "pad(./Z, 4)", "padRight(./T, 8, '.')", "pad(./A, 6, ./E)", "pad(./A, @bad)",
		"decimal(./A, -1)", "decimal(./A, 40)", "decimal(./T, 2)", "number(./T)", "decimal(./N, 18)", "decimal(./A, 17)",
		"pad(., 30)", "padRight(@seq, 3)", "pad(./T, 9)", "padRight(./Z, 2)", "pad(./A, -2)",
		"string(./A)", "upper(./T)", "lower(./Z)", "trim(./T)", "normalize(.)", "string(@bad)",
		"decimal(./X)", "decimal(./T)", "decimal(@bad)", "decimal(@seq)", "decimal(.)", "decimal(./M)",
	}
	var b strings.Builder
	b.WriteString("output: json\nbody:\n  r:\n    for-each: /*/item\n")
	for i, e := range exprs {
		fmt.Fprintf(&b, "    f%d: %q\n", i, e)
	}
	// One expression per mapping as well, so a fault in one does not hide
	// the others.
	srcs := []string{b.String()}
	for _, e := range exprs {
		srcs = append(srcs, fmt.Sprintf("output: xml\nbody:\n  r:\n    i:\n      for-each: /*/item\n      \"@v\": %q\n      w: %q\n", e, e))
	}
	// Several shortcut texts in one element and its child: each is made in
	// the same scratch buffer (streamLeafString) and must survive the others.
	srcs = append(srcs, `
output: xml
body:
  r:
    i:
      for-each: /*/item
      "@a": number(./N)
      "@b": decimal(./A, 2)
      "@c": padRight(./T, 40, '*')
      "#text": pad(@seq, 12)
      c:
        "@d": pad(./T, 20)
        "@e": number(./X)
        "#text": decimal(./M, 3)
        e:
          "@f": decimal(./A, 1)
          "#text": number(.)
      d: number(./Z)
`)
	doc, err := ParseXML([]byte(input), "")
	if err != nil {
		t.Fatal(err)
	}
	// From an etree tree and from a Doc (the fast walks differ).
	run := func(src string, fromDoc bool) string {
		m, err := CompileMapping("scalar.yaml", []byte(src), "")
		if err != nil {
			t.Fatalf("%s\n%v", src, err)
		}
		in := jsonMsg("")
		in.Format, in.Root = bus.FormatXML, doc.Root()
		if fromDoc {
			in = docInput(t, in)
		}
		return outcome(t, m, in)
	}
	// The last mapping must produce output, not a fault, to test anything.
	if out := run(srcs[len(srcs)-1], false); strings.HasPrefix(out, "fault") {
		t.Fatalf("the mapping with several shortcut texts fails: %s", out)
	}
	faults := 0
	for _, src := range srcs {
		var general string
		withoutFastPaths(func() { general = run(src, false) })
		for _, doc := range []bool{false, true} {
			if fast := run(src, doc); fast != general {
				t.Errorf("%s\n(from a Doc: %v)\ngeneral:  %s\nshortcut: %s", src, doc, general, fast)
			}
		}
		if strings.HasPrefix(general, "fault") {
			faults++
		}
	}
	if faults < 5 {
		t.Errorf("only %d faults compared", faults)
	}
}

// TestItemBuffersMatchGeneral: for-each loops at the same depth take over
// each other's item slices (itemBuf), and their nodes come from one chunk
// per evaluation (navBuf). Sibling loops, loops nested in them, a template
// called with a context from inside a loop, group-by with sort, and a
// second message through the same pooled contexts must give what the
// general path gives, from a tree and from a Doc.
func TestItemBuffersMatchGeneral(t *testing.T) {
	const src = `
output: xml
templates:
  line:
    body:
      n: ./@n
      sub:
        for-each: ./s
        "@v": .
body:
  r:
    a:
      for-each: /*/g
      "@k": ./@k
      l:
        for-each: ./l
        "@n": ./@n
        c:
          call: line
          context: .
    b:
      for-each: /*/g/l
      group-by: ./@cat
      sort: groupKey()
      "@cat": groupKey()
      "@count": count(group())
      m:
        for-each: group()
        "@n": ./@n
    c:
      for-each: /*/g
      sort: ./@k
      "@k": ./@k
      f:
        for-each: ./l/s
        "#text": .
`
	inputs := []string{
		`<d><g k="2"><l n="1" cat="x"><s>a</s><s>b</s></l><l n="2" cat="y"><s>c</s></l></g>` +
			`<g k="1"><l n="3" cat="x"/><l n="4" cat="z"><s>d</s><s>e</s><s>f</s></l></g></d>`,
		`<d><g k="9"><l n="7" cat="q"><s>z</s></l></g></d>`,
	}
	run := func(fromDoc bool) string {
		m, err := CompileMapping("items.yaml", []byte(src), "")
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for round := 0; round < 2; round++ { // the second round reuses pooled contexts
			for _, x := range inputs {
				doc, err := ParseXML([]byte(x), "")
				if err != nil {
					t.Fatal(err)
				}
				in := jsonMsg("")
				in.Format, in.Root = bus.FormatXML, doc.Root()
				if fromDoc {
					in = docInput(t, in)
				}
				out.WriteString(outcome(t, m, in) + "\n")
			}
		}
		return out.String()
	}
	var general string
	withoutFastPaths(func() { general = run(false) })
	for _, fromDoc := range []bool{false, true} {
		if fast := run(fromDoc); fast != general {
			t.Errorf("from a Doc: %v\ngeneral:\n%s\nshortcut:\n%s", fromDoc, general, fast)
		}
	}
	if !strings.Contains(general, `<m n="4"></m>`) || strings.Contains(general, "fault") {
		t.Errorf("unexpected output:\n%s", general)
	}
}

// TestPlainLeavesMatchGeneral: the routes that skip the trail and the
// general writing (streamPlain and attrText for streamed XML, jsonPlain
// for JSON, start tags whose attributes are written as computed) and the
// items' nav chunk must give what the general evaluation gives, from an
// etree tree and from a Doc, including where a shortcut declines and the
// general route must take over (and name the output node in its fault).
func TestPlainLeavesMatchGeneral(t *testing.T) {
	const items = `<d><h a="1"/><i n="7"><X>1.5</X><T>a&amp;b"c</T><N>0042</N></i>` +
		`<i n="x"><X>abc</X><T></T><N>1e3</N></i><i><X>-0.125</X><N> 9 </N></i></d>`
	const okItems = `<d><i n="7"><X>1.5</X><T>a&amp;b"&lt;c</T><N>0042</N></i><i n=""><X>2</X><N>1e3</N></i></d>`
	var nested strings.Builder
	nested.WriteString("<d>")
	for g := range 3 {
		fmt.Fprintf(&nested, `<g k="%d">`, g)
		for l := range 40 {
			fmt.Fprintf(&nested, `<l n="%d-%d"><s>%d</s></l>`, g, l, l)
		}
		nested.WriteString("</g>")
	}
	nested.WriteString("</d>")
	cases := []struct {
		name, src, in string
		want          string // in the general outcome: what the case is about
	}{
		{"plain leaf declines, fault names it", `
output: xml
body:
  r:
    i:
      for-each: /*/i
      t: ./T
      v: decimal(./X, 2)`, items, "r/i[2]/v"},
		{"plain leaves: nil, empty, escaped, not a fastDec number", `
output: xml
body:
  r:
    i:
      for-each: /*/i
      t: ./T
      z: ./Z
      n: number(./N)
      d: decimal(./N)
      p: pad(./T, 8)
      q: padRight(@n, 3)`, okItems, "<n>1000</n>"},
		{"decimal(x) on text that is not a number", `
output: xml
body:
  r:
    i:
      for-each: /*/i
      d: decimal(./X)`, items, "r/i[2]/d"},
		{"attribute shortcut declines, fault names it", `
output: xml
body:
  r:
    i:
      for-each: /*/i
      "@n": ./@n
      "@v": decimal(./X, 1)
      t: ./T`, items, "r/i[2]/@v"},
		{"attributes written as computed: nil, escaped, duplicate-free", `
output: xml
namespaces:
  p: urn:p
body:
  r:
    i:
      for-each: /*/i
      "@n": ./@n
      "@z": ./Z
      "@t": ./T
      "@c": "'x' + ./N"
      "#text": number(./N)
    k:
      for-each: /*/i
      nillable: true
      "@n": ./@n
      "#text": ./Z
    p:m:
      "@a": /*/i/@n`, okItems, `<i n="7" t="a&amp;b&quot;&lt;c" c="x0042">42</i>`},
		{"contexts the shortcuts do not walk: attributes, computed items", `
output: xml
body:
  r:
    a:
      for-each: /*/i/@n
      v: ./x
      w: string(.)
      n: number(.)
    b:
      for-each: "[1, 'two']"
      v: ./X
      w: pad(., 4)`, okItems, "<w>0two</w>"},
		{"item navs outlive the chunk they were cut from", `
output: xml
templates:
  line:
    body:
      n: ./@n
      s:
        for-each: ./s
        "#text": .
body:
  r:
    g:
      for-each: /*/g
      l:
        for-each: ./l
        c:
          call: line
          context: .
      k: ./@k
      first: ./l/@n
    all:
      for-each: /*/g/l/s
      "#text": number(.)`, nested.String(), `<k>2</k><first>2-0</first>`},
		{"JSON fields: nil first, numbers, declining", `
output: json
body:
  r:
    for-each: /*/i
    z: ./Z
    t: ./T
    n: number(./N)
    d: decimal(./N)
    p: pad(@n, 4)
    x: decimal(./X, 1)`, items, "r[2]/x"},
		{"JSON fields from JSON input: strings, nulls, numbers, objects", `
output: json
body:
  r:
    for-each: $.items
    s: .s
    n: .n
    o: .o
    z: .z
    d: decimal(.n)`, `{"items": [{"s": "a\"b", "n": 1.50, "o": {"k": 1}, "z": null}, {"n": "x"}]}`, "items[1]"},
		{"XML from JSON input: plain leaves that decline", `
output: xml
body:
  r:
    i:
      for-each: $.items
      s: .s
      n: .n
      o: .o
      z: .z`, `{"items": [{"s": "a<b", "n": 1.50, "o": {"k": 1}, "z": null}, {"s": true}]}`, "<n>1.50</n>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			compile := func() *Mapping {
				m, err := CompileMapping("plain.yaml", []byte(tc.src), "")
				if err != nil {
					t.Fatalf("%v", err)
				}
				return m
			}
			inputs := map[string]func() *bus.Message{}
			if strings.HasPrefix(tc.in, "<") {
				tree := func() *bus.Message { return xmlMsg(t, tc.in) }
				inputs["tree"], inputs["doc"] = tree, func() *bus.Message { return docInput(t, tree()) }
			} else {
				inputs["json"] = func() *bus.Message { return jsonMsg(tc.in) }
			}
			var general *Mapping
			withoutFastPaths(func() { withoutStreaming(func() { general = compile() }) })
			shortcut := compile()
			for name, in := range inputs {
				want := outcome(t, general, in())
				if !strings.Contains(want, tc.want) {
					t.Errorf("%s input: general outcome without %q:\n%s", name, tc.want, want)
				}
				for round := range 2 { // the second run reuses the pooled context
					if got := outcome(t, shortcut, in()); got != want {
						t.Errorf("%s input, run %d:\ngeneral:  %s\nshortcut: %s", name, round+1, want, got)
					}
				}
			}
		})
	}
}
