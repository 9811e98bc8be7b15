package transforms

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/busbar/busbar/internal/cputime"
	"golang.org/x/net/html/charset"

	"github.com/busbar/busbar/internal/corpus"
)

// parseXMLEtree is the reference the fast parser is held to: etree's own
// reader over encoding/xml, with ParseXML's settings and checks as they were
// before parseXMLFast. It lives here so the differential tests keep their
// meaning once ParseXML calls parseXMLFast.
func parseXMLEtree(body []byte, charsetLabel string) (*etree.Document, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = xmlCharsetReader
	var src io.Reader = bytes.NewReader(body)
	if charsetLabel != "" {
		doc.ReadSettings.CharsetReader = passThrough
	}
	if charsetLabel != "" && !isUTF8(charsetLabel) {
		r, err := charset.NewReaderLabel(charsetLabel, src)
		if err != nil {
			return nil, fmt.Errorf("%w: unsupported charset %q", ErrNotXML, charsetLabel)
		}
		src = r
		doc.ReadSettings.CharsetReader = passThrough
	}
	if _, err := doc.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotXML, err)
	}
	roots := 0
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			roots++
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, fmt.Errorf("%w: text outside the document element", ErrNotXML)
			}
		}
	}
	if roots != 1 {
		return nil, fmt.Errorf("%w: %d document elements", ErrNotXML, roots)
	}
	return doc, nil
}

// compareParsers parses body with both parsers and describes any difference
// other than the documented ones (see parseXMLFast); "" when they agree.
func compareParsers(body []byte, label string) string {
	got, gerr := parseXMLFast(body, label)
	ref, refLabel := body, label
	if bytes.HasPrefix(body, []byte("\uFEFF")) { // it wins over the label, and is skipped
		ref, refLabel = body[3:], "utf-8"
	}
	want, werr := parseXMLEtree(ref, refLabel)
	var syn *xmlSyntaxError
	switch {
	case gerr != nil && !errors.Is(gerr, ErrNotXML):
		return fmt.Sprintf("error %q does not wrap ErrNotXML", gerr)
	case gerr != nil && errors.As(gerr, &syn) && (syn.Line < 1 || syn.Column < 1):
		return fmt.Sprintf("error %q has no position", gerr)
	case gerr != nil && werr != nil:
		return ""
	case gerr == nil && werr != nil:
		return fmt.Sprintf("fast parser accepts what etree rejects (%v)", werr)
	case gerr != nil:
		var undecodable *undecodableError // etree read it as U+FFFD
		if syn != nil && syn.stricter || errors.As(gerr, &undecodable) {
			return ""
		}
		return fmt.Sprintf("fast parser rejects what etree accepts: %v", gerr)
	}
	if d := diffTree(&got.Element, &want.Element, "/"); d != "" {
		return d
	}
	gs, err1 := got.WriteToString()
	ws, err2 := want.WriteToString()
	if err1 != nil || err2 != nil || gs != normaliseLineEnds(ws) && gs != ws {
		return fmt.Sprintf("serialised trees differ:\nfast: %q\netree: %q", gs, ws)
	}
	return ""
}

// normaliseLineEnds is what the fast parser does, and encoding/xml does not
// do, to comments, processing instructions and DOCTYPE.
func normaliseLineEnds(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// diffTree compares two trees token by token, including what serialising
// does not show: parents, indexes, attribute owners and text flags.
func diffTree(got, want *etree.Element, path string) string {
	if got.Space != want.Space || got.Tag != want.Tag {
		return fmt.Sprintf("%s: element %q:%q, want %q:%q", path, got.Space, got.Tag, want.Space, want.Tag)
	}
	if len(got.Attr) != len(want.Attr) {
		return fmt.Sprintf("%s: %d attributes, want %d", path, len(got.Attr), len(want.Attr))
	}
	for i := range got.Attr {
		g, w := &got.Attr[i], &want.Attr[i]
		if g.Space != w.Space || g.Key != w.Key || g.Value != w.Value {
			return fmt.Sprintf("%s: attribute %d is %q:%q=%q, want %q:%q=%q", path, i, g.Space, g.Key, g.Value, w.Space, w.Key, w.Value)
		}
		if g.Element() != got {
			return fmt.Sprintf("%s: attribute %s does not point to its element", path, g.FullKey())
		}
	}
	if len(got.Child) != len(want.Child) {
		return fmt.Sprintf("%s: %d child tokens, want %d", path, len(got.Child), len(want.Child))
	}
	for i, gt := range got.Child {
		wt := want.Child[i]
		at := fmt.Sprintf("%s%s[%d]", path, got.FullTag(), i)
		if gt.Parent() != got || gt.Index() != i {
			return fmt.Sprintf("%s: parent or index not set", at)
		}
		switch g := gt.(type) {
		case *etree.Element:
			w, ok := wt.(*etree.Element)
			if !ok {
				return fmt.Sprintf("%s: element, want %T", at, wt)
			}
			if d := diffTree(g, w, at+"/"); d != "" {
				return d
			}
		case *etree.CharData:
			w, ok := wt.(*etree.CharData)
			if !ok || g.Data != w.Data || g.IsWhitespace() != w.IsWhitespace() || g.IsCData() != w.IsCData() {
				return fmt.Sprintf("%s: text %q, want %#v", at, g.Data, wt)
			}
		case *etree.Comment:
			w, ok := wt.(*etree.Comment)
			if !ok || g.Data != normaliseLineEnds(w.Data) {
				return fmt.Sprintf("%s: comment %q, want %#v", at, g.Data, wt)
			}
		case *etree.ProcInst:
			w, ok := wt.(*etree.ProcInst)
			if !ok || g.Target != w.Target || g.Inst != normaliseLineEnds(w.Inst) {
				return fmt.Sprintf("%s: processing instruction %q %q, want %#v", at, g.Target, g.Inst, wt)
			}
		case *etree.Directive:
			w, ok := wt.(*etree.Directive)
			if !ok || g.Data != normaliseLineEnds(w.Data) {
				return fmt.Sprintf("%s: directive %q, want %#v", at, g.Data, wt)
			}
		default:
			return fmt.Sprintf("%s: unexpected token %T", at, gt)
		}
	}
	return ""
}

// TestParseXMLFastFiles: every XML document in the project's testdata and in
// the shared corpus of third-party WSDLs and SOAP messages reads into the
// same tree with both parsers (or fails with both).
func TestParseXMLFastFiles(t *testing.T) {
	forXMLFiles(t, compareParsers)
}

// forXMLFiles runs compare over every XML document in the project's testdata
// (subtest "project") and in the shared corpus ("corpus", skipped when it is
// absent), each also with CRLF line ends, and reports what it describes.
func forXMLFiles(t *testing.T, compare func(body []byte, label string) string) {
	collect := func(t *testing.T, root string, all bool) (files []string) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			switch filepath.Ext(path) {
			case ".xml", ".wsdl", ".xsd":
				if all || strings.Contains(filepath.ToSlash(path), "/testdata/") {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	run := func(t *testing.T, files []string) {
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			label := ""
			if strings.Contains(f, ".gbk.") {
				label = "gbk"
			}
			if d := compare(body, label); d != "" {
				t.Errorf("%s: %s", f, d)
			}
			if d := compare(bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n")), label); d != "" {
				t.Errorf("%s with CRLF line ends: %s", f, d)
			}
		}
	}
	t.Run("project", func(t *testing.T) {
		files := collect(t, "..", false)
		if n := len(files); n < 30 {
			t.Fatalf("found only %d XML files in the project's testdata", n)
		}
		run(t, files)
	})
	t.Run("corpus", func(t *testing.T) {
		run(t, collect(t, corpus.Dir(t), true))
	})
}

// gbkDeclared is a GBK document that says so: 差旅 as an attribute and as text.
const gbkDeclared = "<?xml version=\"1.0\" encoding=\"GBK\"?>\n<a t=\"\xb2\xee\xc2\xc3\">\xb2\xee\xc2\xc3</a>"

// sameCases exercise each construct; both parsers read them into the same
// tree. They also seed FuzzParseXMLFast.
var sameCases = []xmlCase{
	{"empty element", `<a/>`, ""},
	{"declaration and whitespace", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<a>\n  <b>x</b>\n</a>\n", ""},
	{"one local name in two namespaces", `<x xmlns:p="urn:p" xmlns:q="urn:q" p:a="1" q:a="2" a="3"><y xmlns:q="urn:r" q:a="1" p:a="2"/></x>`, ""},
	{"namespaces", `<s:Envelope xmlns:s="urn:s" xmlns="urn:d"><s:Body><m xmlns:t="urn:t" t:x="1" y="2"/></s:Body></s:Envelope>`, ""},
	{"edge colons", `<:a :b="1" b="2" c:="3"><x:/></:a>`, ""},
	{"entities", `<a b="&lt;&gt;&amp;&apos;&quot;">&lt;x&gt; &amp; &#65;&#x42;&#x4e2d;&#0000067;</a>`, ""},
	{"cdata", `<a>x<![CDATA[<b>&amp;]]]]>y<![CDATA[]]><![CDATA[ ]]></a>`, ""},
	{"whitespace cdata outside root", `<![CDATA[ ]]><a/>`, ""},
	{"comments and PIs", "<?pi x?><!-- c1 --><a><!----><?t?><?u  v w ?></a><!-- after -->", ""},
	{"doctype", `<!DOCTYPE a [<!ENTITY e "x"> <!-- c --> <!ELEMENT a (#PCDATA)> '">']><a/>`, ""},
	{"doctype quirks", `<!DOCTYPE a [<<!-x>>]><a/>`, ""},
	{"directive inside", `<a><!FOO bar></a>`, ""},
	{"crlf", "<a b=\"x\r\ny\rz\">1\r\n2\r3\r\n</a>", ""},
	{"tabs in attribute", "<a b=\"x\ty\nz\"/>", ""},
	{"no space between attributes", `<a b="1"c='2'/>`, ""},
	{"quotes and ]] in attribute", `<a b="'x]]>'" c='"'/>`, ""},
	{"chinese names", `<凭证 编号="1"><行>差旅</行></凭证>`, ""},
	{"gbk declaration", gbkDeclared, ""},
	{"gbk label overrides declaration", gbkDeclared, "gbk"},
	{"utf-8 label", `<?xml version="1.0" encoding="UTF-8"?><a>中</a>`, "UTF-8"},
	{"end tag space", "<a>x</a \n>", ""},
	{"spaces in tag", "<a \n b = \"1\"\t/>", ""},
	{"names", `<a.b-c_d1 _x="1" x.y="2"/>`, ""},
	{"bom", "\uFEFF<a/>", ""},
	{"bom and declaration", "\uFEFF<?xml version=\"1.0\"?><a/>", ""},
	{"prefix declared after its use", `<p:a p:x="1" xmlns:p="urn:p"><p:b/></p:a>`, ""},
	{"reference to CR", "<a>&#13;&#10;\n</a>", ""},
	{"whitespace reference outside root", "&#32;<a/>", ""},
}

// TestParseXMLFastSame: small documents exercising each construct read the
// same with both parsers.
func TestParseXMLFastSame(t *testing.T) {
	for _, c := range sameCases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseXMLFast([]byte(c.body), c.label); err != nil {
				t.Fatalf("parseXMLFast: %v", err)
			}
			if d := compareParsers([]byte(c.body), c.label); d != "" {
				t.Error(d)
			}
		})
	}
}

// errorCases are malformed documents, where the error points and what it
// says. They also seed FuzzParseXMLFast.
var errorCases = []struct {
	body      string
	line, col int
	msg       string
}{
	{"<a>\n  <b></c>\n</a>", 2, 6, "element <b> closed by </c> (<b> opened at line 2, column 3)"},
	{`<s:Body xmlns:s="urn:s"><a></b>`, 1, 28, "element <a> closed by </b>"},
	{`<a:x xmlns:a="urn:a"></b:x>`, 1, 22, "element <a:x> closed by </b:x>"},
	{"<a>\n<b>", 2, 4, "unexpected EOF: element <b> (line 2, column 1) is not closed"},
	{"<a>x</a></a>", 1, 9, "unexpected end element </a>"},
	{"<a/>\n<b/>", 2, 1, "more than one document element: <b> follows the end of the first"},
	{"<a/>\n junk", 2, 2, "text outside the document element"},
	{"junk<a/>", 1, 1, "text outside the document element"},
	{"<1a/>", 1, 2, `invalid XML name: "1a"`},
	{"< a/>", 1, 2, "expected element name after <"},
	{"<a\u00a0/>", 1, 2, `invalid XML name: "a\u00a0"`},
	{"<a:b:c/>", 1, 2, `invalid name "a:b:c": more than one colon`},
	{"<a b='1' c=\"2\" b=\"3\"/>", 1, 16, "duplicate attribute b in element <a>"},
	{`<a b=1/>`, 1, 6, "value of attribute b in element <a> is not quoted"},
	{`<a b/>`, 1, 5, "attribute b in element <a> has no value (= expected)"},
	{`<a b="<"/>`, 1, 7, "unescaped < inside an attribute value"},
	{`<a b="x`, 1, 8, "unexpected EOF: attribute value (line 1, column 4) is not closed"},
	{`<a/ >`, 1, 3, "expected /> in element <a>"},
	{"<a>\xff</a>", 1, 4, "invalid UTF-8"},
	{"<a>x\x01</a>", 1, 5, "illegal character code U+0001"},
	{"<a>\uFFFE</a>", 1, 4, "illegal character code U+FFFE"},
	{"<a b='\x00'/>", 1, 7, "illegal character code U+0000"},
	{"<a><!-- \x02 --></a>", 1, 9, "illegal character code U+0002"},
	{"<a><?pi \xc3?></a>", 1, 9, "invalid UTF-8"},
	{"<a>]]></a>", 1, 4, "unescaped ]]> not in CDATA section"},
	{"<a>&bogus;</a>", 1, 4, "invalid character entity &bogus;"},
	{"<a>&amp</a>", 1, 4, "invalid character entity &amp (no semicolon)"},
	{"<a>R&D</a>", 1, 5, "invalid character entity &D (no semicolon)"},
	{"<a>R & D</a>", 1, 6, "unescaped & (a literal & is written &amp;)"},
	{"<a>&#0;</a>", 1, 4, "character reference &#0; names illegal character code U+0000"},
	{"<a>&#xD800;</a>", 1, 4, "character reference &#xD800; names illegal character code U+D800"},
	{"<a>&#x110000;</a>", 1, 4, "invalid character reference &#x110000;"},
	{"<a>&#12a;</a>", 1, 4, "invalid character reference &#12a (no semicolon)"},
	{"<a>&#;</a>", 1, 4, "invalid character reference &#;"},
	{`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`, 1, 34, "invalid character entity &a;"},
	{"<a><!-- x -- y --></a>", 1, 11, `invalid sequence "--" not allowed in comments`},
	{"<a><!- x --></a>", 1, 4, "invalid sequence <!- not part of <!--"},
	{"<a", 1, 3, `unexpected EOF after "a"`},
	{"<a/>\n<!-- x", 2, 7, "unexpected EOF: comment (line 2, column 1) is not closed"},
	{"<a><![CDATA[x</a>", 1, 18, "unexpected EOF: CDATA section (line 1, column 4) is not closed"},
	{"<a><![CDATX[x]]></a>", 1, 4, "invalid <![ sequence"},
	{"<a><?pi x</a>", 1, 14, "unexpected EOF: processing instruction <?pi (line 1, column 4) is not closed"},
	{"<a><? x?></a>", 1, 6, "expected target name after <?"},
	{"<!DOCTYPE a [<!ENTITY x '>'> <a/>", 1, 34, "unexpected EOF: <!DOCTYPE (line 1, column 1) is not closed"},
	{`<?xml version="1.1"?><a/>`, 1, 1, `unsupported XML version "1.1"`},
	{`<?xml version="1.0" encoding="klingon"?><a/>`, 1, 1, `unsupported encoding "klingon" in the XML declaration`},
	{"<a>x</a y>", 1, 9, "invalid characters between </a and >"},
	{"<a>\n  中文<b></c></a>", 2, 8, "element <b> closed by </c>"},
	{strings.Repeat("<a>", maxXMLDepth+1), 1, 3*maxXMLDepth + 1, "elements nested deeper than 1024 levels"},
	// Stricter than encoding/xml: Namespaces in XML, and where the XML
	// declaration may be.
	{`<a><u:b/></a>`, 1, 5, "element <u:b>: namespace prefix u is not declared"},
	{`<a u:x="1"/>`, 1, 4, "attribute u:x in element <a>: namespace prefix u is not declared"},
	{`<a><b xmlns:p="urn:p"/><p:c/></a>`, 1, 25, "element <p:c>: namespace prefix p is not declared"},
	{`<a><b xmlns:p="urn:p"></b><p:c/></a>`, 1, 28, "element <p:c>: namespace prefix p is not declared"},
	{`<a><b xmlns:p="urn:p">t</b><p:c/></a>`, 1, 29, "element <p:c>: namespace prefix p is not declared"},
	{`<a xmlns:p=""/>`, 1, 4, `namespace prefix p in element <a> is declared empty (xmlns:p="")`},
	{`<!-- c --><?xml version="1.0"?><a/>`, 1, 11, "the XML declaration <?xml …?> must be at the very start of the document"},
	{` <?xml version="1.0"?><a/>`, 1, 2, "the XML declaration <?xml …?> must be at the very start"},
	{`<a/><?xml version="1.0"?>`, 1, 5, "the XML declaration <?xml …?> must be at the very start"},
	{"<a>x&amp;y</a><?xml version=\"1.0\" encoding=\"GBK\"?><!-- \xb2\xee -->", 1, 15, "the XML declaration <?xml …?> must be at the very start"},
	{`<a><?XML x?></a>`, 1, 4, "processing instruction target XML is reserved by XML"},
	// Namespaces in XML 1.0 §6.3: one expanded name, two attributes, of
	// which a backend would read either.
	{`<x xmlns:p="urn:same" xmlns:q="urn:same" p:a="1" q:a="2"/>`, 1, 50, "attributes p:a and q:a in element <x> have the same expanded name: p and q are both bound to namespace urn:same"},
	{`<r xmlns:p="urn:same"><x xmlns:q="urn:same" q:a="1" b="" p:a="2">t</x></r>`, 1, 58, "attributes q:a and p:a in element <x>"},
	{`<x q:a="1" xmlns:p="urn:&#x73;ame" p:a="2" xmlns:q="urn:same"/>`, 1, 36, "attributes q:a and p:a in element <x> have the same expanded name: q and p are both bound to namespace urn:same"},
	{`<x xmlns:p="urn:a&amp;b" xmlns:q="urn:a&amp;b" p:a="1" q:a="2"/>`, 1, 56, "namespace urn:a&b"},
	{`<x xmlns:q="http://www.w3.org/XML/1998/namespace" xml:a="1" q:a="2"/>`, 1, 61, "attributes xml:a and q:a"},
}

// TestParseXMLFastErrors: malformed input fails with a message that says
// where and what.
func TestParseXMLFastErrors(t *testing.T) {
	for i, c := range errorCases {
		_, err := parseXMLFast([]byte(c.body), "")
		var syn *xmlSyntaxError
		if !errors.As(err, &syn) {
			t.Errorf("case %d %.40q: want a syntax error, got %v", i, c.body, err)
			continue
		}
		if !errors.Is(err, ErrNotXML) {
			t.Errorf("case %d: %v does not wrap ErrNotXML", i, err)
		}
		if syn.Line != c.line || syn.Column != c.col || !strings.Contains(syn.Msg, c.msg) {
			t.Errorf("case %d %.40q:\n want %d:%d %s\n got  %d:%d %s", i, c.body, c.line, c.col, c.msg, syn.Line, syn.Column, syn.Msg)
		}
		if d := compareParsers([]byte(c.body), ""); d != "" {
			t.Errorf("case %d: %s", i, d)
		}
	}
	for _, body := range []string{"", "  \n", "<!-- only a comment -->"} {
		if _, err := parseXMLFast([]byte(body), ""); err == nil || !strings.Contains(err.Error(), "no element found") {
			t.Errorf("%q: want no element found, got %v", body, err)
		}
	}
	if _, err := parseXMLFast([]byte("<a/>"), "x-no-such-charset"); err == nil || !strings.Contains(err.Error(), `unsupported charset "x-no-such-charset"`) {
		t.Errorf("unknown charset label: got %v", err)
	}
}

// TestParseXMLFastDepth: etree's depth limit, exactly.
func TestParseXMLFastDepth(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("<a>", n) + strings.Repeat("</a>", n))
	}
	if _, err := parseXMLFast(deep(maxXMLDepth), ""); err != nil {
		t.Fatalf("%d levels: %v", maxXMLDepth, err)
	}
	for _, n := range []int{maxXMLDepth, maxXMLDepth + 1} {
		if d := compareParsers(deep(n), ""); d != "" {
			t.Errorf("%d levels: %s", n, d)
		}
	}
}

// TestParseXMLFastCopiesInput: the tree does not alias the caller's buffer.
func TestParseXMLFastCopiesInput(t *testing.T) {
	body := []byte(`<a b="v">text</a>`)
	doc, err := parseXMLFast(body, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if got, _ := doc.WriteToString(); got != `<a b="v">text</a>` {
		t.Errorf("tree changed with the input buffer: %s", got)
	}
	// The carved slices are capped: appending to one leaves its neighbours.
	root := doc.Root()
	root.CreateElement("c")
	root.CreateAttr("d", "e")
	if got, _ := doc.WriteToString(); got != `<a b="v" d="e">text<c/></a>` {
		t.Errorf("after edits: %s", got)
	}
}

// FuzzParseXMLFast: for any input both parsers fail, or both build the same
// tree, apart from the documented differences (parseXMLFast).
func FuzzParseXMLFast(f *testing.F) { fuzzParser(f, compareParsers) }

// xmlCase is a document for the parser tests, with the charset label it is
// read with.
type xmlCase = struct{ name, body, label string }

// fuzzParser seeds f with the parser tests' documents (and more) and fails
// an input for which compare reports a difference.
func fuzzParser(f *testing.F, compare func(body []byte, label string) string, more ...xmlCase) {
	for _, c := range append(sameCases[:len(sameCases):len(sameCases)], more...) {
		f.Add([]byte(c.body), c.label == "gbk")
	}
	for _, c := range errorCases {
		if len(c.body) < 200 {
			f.Add([]byte(c.body), false)
		}
	}
	f.Add([]byte("<a>\xb2\xee</a>"), true)
	f.Add([]byte(`<?xml version="1.0" encoding="utf-16"?><a/>`), false)
	f.Fuzz(func(t *testing.T, body []byte, gbk bool) {
		label := ""
		if gbk {
			label = "gbk"
		}
		if d := compare(body, label); d != "" {
			t.Errorf("%q: %s", body, d)
		}
	})
}

func BenchmarkParseXMLCurrent(b *testing.B) { benchmarkParse(b, parseXMLEtree) }

func BenchmarkParseXMLFast(b *testing.B) { benchmarkParse(b, parseXMLFast) }

func benchmarkParse(b *testing.B, parse func([]byte, string) (*etree.Document, error)) {
	benchmarkParseInputs(b, func(body []byte) error {
		doc, err := parse(body, "")
		if err == nil && doc.Root() == nil {
			err = errors.New("no root")
		}
		return err
	})
}

// benchmarkParseInputs runs parse over the voucher documents and the S5
// route's request.
func benchmarkParseInputs(b *testing.B, parse func([]byte) error) {
	type input struct {
		name string
		xml  []byte
	}
	var inputs []input
	for _, c := range voucherCases(b) {
		inputs = append(inputs, input{c.name, c.xml})
	}
	// The S5 benchmark route's request: a SOAP envelope of 200 BAPI lines.
	bapi, err := os.ReadFile("../bench/testdata/bapi-200.xml")
	if err != nil {
		b.Fatal(err)
	}
	inputs = append(inputs, input{"bapi-200", bapi})
	for _, c := range inputs {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.xml)))
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				if err := parse(c.xml); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}

// TestParseXMLFastConcurrent: the name-character cache and the scratch pool
// are shared between goroutines (run with -race).
func TestParseXMLFastConcurrent(t *testing.T) {
	body := []byte("<凭证 编号=\"1\"><行 a=\"&amp;\">差旅\r\n</行><ö/></凭证>")
	want, err := parseXMLEtree(body, "")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			for range 50 {
				got, err := parseXMLFast(body, "")
				if err != nil {
					errs <- err.Error()
					return
				}
				if d := diffTree(&got.Element, &want.Element, "/"); d != "" {
					errs <- d
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// TestEtreeMirrored: with the etree in go.mod the parser sets parents,
// indexes and attribute elements directly (xml_fast_layout.go). If an etree
// upgrade changes its structs this fails, so the mirrors get updated rather
// than the parser silently falling back to the slower exported way.
func TestEtreeMirrored(t *testing.T) {
	if !etreeMirrored {
		t.Error("etree's Element, CharData or Attr no longer match the mirrors in xml_fast_layout.go")
	}
}

// TestParseXMLFastUnmirrored: the exported way the parser takes when etree's
// structs no longer match the mirrors builds the same trees.
func TestParseXMLFastUnmirrored(t *testing.T) {
	defer func(was bool) { etreeMirrored = was }(etreeMirrored)
	etreeMirrored = false
	for _, c := range sameCases {
		if d := compareParsers([]byte(c.body), c.label); d != "" {
			t.Errorf("%s: %s", c.name, d)
		}
	}
}

// TestCheckXMLHead: the parsers' rules up to the first token ending at or
// after stop, and nothing after it; elements left open are no error.
func TestCheckXMLHead(t *testing.T) {
	const doc = `<a xmlns:p="urn:p"><p:b x="1">t</p:b><c a="1" a="2"/></a>`
	cut := strings.Index(doc, "<c")
	for _, c := range []struct {
		name    string
		text    string
		settled bool
		stop    int
		want    string
	}{
		{"stop 0 checks nothing", `<a a="1" a="2"/>`, false, 0, ""},
		{"before the error", doc, false, cut, ""},
		{"inside the erring tag", doc, false, cut + 1, "line 1, column 47: duplicate attribute a in element <c>"},
		{"past the end", doc, false, len(doc) + 10, "duplicate attribute a"},
		{"open elements at stop", `<a><b>text`, false, 6, ""},
		{"the token at stop is read whole", "<a>t\xff</a>", false, 4, "invalid UTF-8: byte 4 is 0xFF"},
		{"one expanded name", `<a xmlns:p="u" xmlns:q="u" p:x="" q:x=""/>`, false, 1, "the same expanded name"},
		{"a declared charset", "<?xml version=\"1.0\" encoding=\"GBK\"?><a>\xb3\xf6<b u:x=''/>", false, 50, "namespace prefix u is not declared"},
		{"settled: the declaration is not followed", "<?xml version=\"1.0\" encoding=\"GBK\"?><a>\xb3\xf6</a>", true, 50, "invalid UTF-8: byte 39 is 0xB3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckXMLHead([]byte(c.text), c.settled, c.stop)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrNotXML)) {
				t.Fatalf("want %q, got %v", c.want, err)
			}
		})
	}
}
