package transforms

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/beevik/etree"
)

// compareDoc parses body with ParseDoc and with parseXMLFast and describes
// any difference: the error, the tree (Doc.Tree), the namespace URI of every
// element and prefixed attribute, parents, children and text as the Doc's
// accessors read them, and the same URIs in each element's copy (Element).
// "" when they agree.
func compareDoc(body []byte, label string) string {
	want, werr := parseXMLFast(body, label)
	d, gerr := ParseDoc(body, label)
	if werr != nil || gerr != nil {
		switch {
		case werr == nil:
			return fmt.Sprintf("ParseDoc fails (%v), parseXMLFast does not", gerr)
		case gerr == nil:
			return fmt.Sprintf("parseXMLFast fails (%v), ParseDoc does not", werr)
		case gerr.Error() != werr.Error():
			return fmt.Sprintf("ParseDoc fails with %q, parseXMLFast with %q", gerr, werr)
		case !errors.Is(gerr, ErrNotXML):
			return fmt.Sprintf("error %q does not wrap ErrNotXML", gerr)
		}
		return ""
	}
	if s := docSpansOK(d); s != "" {
		return s
	}
	got := d.Tree()
	if s := diffTree(&got.Element, &want.Element, "/"); s != "" {
		return "Tree: " + s
	}
	toks := preorder(&want.Element, nil)
	if len(toks) != len(d.nodes) {
		return fmt.Sprintf("%d nodes, the tree has %d", len(d.nodes), len(toks))
	}
	index := make(map[etree.Token]int32, len(toks))
	for i, tok := range toks {
		index[tok] = int32(i)
	}
	if d.nodes[0].kind != docDocument || d.nodes[0].parent != -1 || d.nodes[0].end != int32(len(d.nodes)) {
		return fmt.Sprintf("node 0 is %+v", d.nodes[0])
	}
	if r := d.Root(); r < 0 || toks[r] != want.Root() {
		return fmt.Sprintf("Root is node %d", r)
	}
	for i := int32(1); i < int32(len(toks)); i++ {
		tok := toks[i]
		if p := d.nodes[i].parent; p != index[tok.Parent()] {
			return fmt.Sprintf("node %d: parent %d, want %d", i, p, index[tok.Parent()])
		}
		if e, ok := tok.(*etree.Element); ok {
			if s := sameNamespaces(d, i, e); s != "" {
				return fmt.Sprintf("node %d: %s", i, s)
			}
			if got, want := d.text(i), elementText(e); got != want {
				return fmt.Sprintf("node %d: text %q, want %q", i, got, want)
			}
		}
	}
	// Each copy is built with its ancestors, and etree's NamespaceURI walks
	// up to the root: checking every copy of a deep fuzzed document would
	// take minutes, so copies are checked while the nodes they cost stay in
	// a budget that any real document's fit in.
	depth := make([]int, len(toks))
	budget := 1 << 18
	for i, tok := range toks {
		if i > 0 {
			depth[i] = depth[d.nodes[i].parent] + 1
		}
		e, ok := tok.(*etree.Element)
		if !ok {
			continue
		}
		var kids []etree.Token
		// Children as every walk over a Doc finds them: i+1, then each
		// child's end.
		for c := int32(i) + 1; c < d.nodes[i].end; c = d.nodes[c].end {
			kids = append(kids, toks[c])
		}
		if len(kids) != len(e.Child) {
			return fmt.Sprintf("node %d: %d children by end, want %d", i, len(kids), len(e.Child))
		}
		for k := range kids {
			if kids[k] != e.Child[k] {
				return fmt.Sprintf("node %d: child %d differs", i, k)
			}
		}
		if i == 0 {
			continue
		}
		// The copy of element i: the same URIs for all inside it.
		if budget -= (int(d.nodes[i].end) - i + depth[i]) * (1 + depth[i]/8); budget < 0 {
			continue
		}
		copied := preorder(d.Element(int32(i)), nil)
		for k, tok := range copied {
			if d.token(int32(i), int32(i+k)) != tok {
				return fmt.Sprintf("token(%d, %d) is not the copy's node", i, i+k)
			}
			if e, ok := tok.(*etree.Element); ok {
				if s := sameNamespaces(d, int32(i+k), e); s != "" {
					return fmt.Sprintf("Element(%d), node %d: %s", i, i+k, s)
				}
			}
		}
		if d.Element(int32(i)) != copied[0] {
			return fmt.Sprintf("Element(%d) is another element on the second call", i)
		}
	}
	return ""
}

// docSpansOK checks that every span is in src and every node's end is
// consistent with its parent's.
func docSpansOK(d *Doc) string {
	in := func(s docSpan) bool { return s.off <= s.end && int(s.end) <= len(d.src) }
	for i, n := range d.nodes {
		if !in(n.name) || !in(n.space) {
			return fmt.Sprintf("node %d: span out of src", i)
		}
		if n.end <= int32(i) || n.parent >= 0 && n.end > d.nodes[n.parent].end {
			return fmt.Sprintf("node %d: end %d outside its parent", i, n.end)
		}
		if n.kind != docElement && n.kind != docDocument && n.end != int32(i)+1 {
			return fmt.Sprintf("node %d: a %d with children", i, n.kind)
		}
	}
	for i, a := range d.attrs {
		if !in(a.space) || !in(a.key) || !in(a.value) || a.ns < 0 || int(a.ns) >= len(d.uris) {
			return fmt.Sprintf("attribute %d out of range", i)
		}
	}
	if d.uris[0] != "" {
		return fmt.Sprintf("uris[0] is %q", d.uris[0])
	}
	return ""
}

// sameNamespaces compares the namespace URIs node i holds for itself and its
// attributes with what etree finds for e.
func sameNamespaces(d *Doc, i int32, e *etree.Element) string {
	if d.nodes[i].kind != docElement {
		return fmt.Sprintf("a %d, want element <%s>", d.nodes[i].kind, e.FullTag())
	}
	if d.local(i) != e.Tag || d.prefix(i) != e.Space {
		return fmt.Sprintf("<%s:%s>, want <%s>", d.prefix(i), d.local(i), e.FullTag())
	}
	if got, want := d.uri(i), e.NamespaceURI(); got != want {
		return fmt.Sprintf("<%s> in namespace %q, want %q", e.FullTag(), got, want)
	}
	n := &d.nodes[i]
	if int(n.nattr) != len(e.Attr) {
		return fmt.Sprintf("<%s> has %d attributes, want %d", e.FullTag(), n.nattr, len(e.Attr))
	}
	for k := range e.Attr {
		a, da := &e.Attr[k], &d.attrs[n.attr+int32(k)]
		if got, want := d.uris[da.ns], a.NamespaceURI(); got != want || a.Space == "" && da.ns != 0 {
			return fmt.Sprintf("<%s>: attribute %s in namespace %q (%d), want %q", e.FullTag(), a.FullKey(), got, da.ns, want)
		}
		if d.nsDecl(n.attr+int32(k)) != isNSDecl(*a) {
			return fmt.Sprintf("<%s>: nsDecl(%s) is wrong", e.FullTag(), a.FullKey())
		}
	}
	return ""
}

// preorder appends t and everything inside it in document order.
func preorder(t etree.Token, to []etree.Token) []etree.Token {
	to = append(to, t)
	if e, ok := t.(*etree.Element); ok {
		for _, c := range e.Child {
			to = preorder(c, to)
		}
	}
	return to
}

// docCases add to sameCases what only a Doc has to get right: namespace
// scopes, decoded text after the input, and a charset switch moving it.
var docCases = []xmlCase{
	{"scopes", `<a xmlns="urn:d" xmlns:p="urn:p"><p:b xmlns:p="urn:q" p:x="1"><c/></p:b><p:c xmlns="" x="2"><d/></p:c><p:d p:y="3" xmlns:p="urn:late"/></a>`, ""},
	{"xml prefix", `<a xml:lang="en"><xml:c/></a>`, ""},
	{"xmlns prefixed element", `<xmlns:a xmlns:xmlns="urn:x"/>`, ""},
	{"uri repeated and decoded", `<a xmlns:p="urn:&amp;" xmlns:q="urn:&#38;"><p:b xmlns="urn:&amp;"/></a>`, ""},
	{"empty default", `<a xmlns=""><b/></a>`, ""},
	{"decoded before a switch", "<?xml version=\"1.0\"\r\nencoding=\"GBK\"?>\r\n&#32;<!-- x\r\ny --><?pi a\rb?>\r\n<a t=\"\xb2\xee&amp;\">\xb2\xee\xc2\xc3\r\n</a>", ""},
	{"switch to a shorter input", utf16Doc(`<?xml version="1.0" encoding="utf-16le"?>`, "\r\n<a b=\"&amp;\">x&lt;y</a>"), ""},
	{"directive with a comment", "<!DOCTYPE a [<!-- c -->\r\n<!ELEMENT a ANY>]><a/>", ""},
	{"long", "<a>" + strings.Repeat(`<b x="1&amp;">t&lt;</b><c/>`, 500) + "</a>", ""},
}

// utf16Doc is decl in ASCII followed by body in UTF-16LE, as a document
// declaring encoding="utf-16le" is read: the switch shortens what follows.
func utf16Doc(decl, body string) string {
	b := []byte(decl)
	for _, u := range utf16.Encode([]rune(body)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

// TestParseDocSame: each construct reads into the Doc of the same tree as
// parseXMLFast's.
func TestParseDocSame(t *testing.T) {
	cases := append(docCases[:len(docCases):len(docCases)], sameCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseDoc([]byte(c.body), c.label); err != nil {
				t.Fatalf("ParseDoc: %v", err)
			}
			if s := compareDoc([]byte(c.body), c.label); s != "" {
				t.Error(s)
			}
		})
	}
}

// TestParseDocFiles: the project's XML files and the third-party corpus.
func TestParseDocFiles(t *testing.T) {
	forXMLFiles(t, compareDoc)
}

// TestParseDocErrors: malformed input fails as with parseXMLFast, with the
// line and column.
func TestParseDocErrors(t *testing.T) {
	for i, c := range errorCases {
		_, err := ParseDoc([]byte(c.body), "")
		var syn *xmlSyntaxError
		if !errors.As(err, &syn) || syn.Line != c.line || syn.Column != c.col || !strings.Contains(syn.Msg, c.msg) {
			t.Errorf("case %d %.40q:\n want %d:%d %s\n got  %v", i, c.body, c.line, c.col, c.msg, err)
		}
		if s := compareDoc([]byte(c.body), ""); s != "" {
			t.Errorf("case %d: %s", i, s)
		}
	}
	for _, body := range []string{"", "  \n", "<!-- only a comment -->"} {
		if s := compareDoc([]byte(body), ""); s != "" {
			t.Errorf("%q: %s", body, s)
		}
	}
	if s := compareDoc([]byte("<a/>"), "x-no-such-charset"); s != "" {
		t.Errorf("unknown charset label: %s", s)
	}
	if _, err := ParseDoc([]byte("<a/>"), "x-no-such-charset"); err == nil || !strings.Contains(err.Error(), `unsupported charset "x-no-such-charset"`) {
		t.Errorf("unknown charset label: got %v", err)
	}
}

// TestParseDocCharsets: GBK and GB18030, from the transport's label or the
// declaration, read into UTF-8 text.
func TestParseDocCharsets(t *testing.T) {
	// 差旅 in GBK (GB18030 encodes it the same), 𠀀 (U+20000) in GB18030
	const chailv, ext = "\xb2\xee\xc2\xc3", "\x95\x32\x82\x36"
	cases := []struct {
		name, body, label, text string
	}{
		{"gbk label", `<a t="` + chailv + `">` + chailv + `</a>`, "gbk", "差旅"},
		{"gbk declaration", `<?xml version="1.0" encoding="GBK"?><a t="` + chailv + `">` + chailv + `</a>`, "", "差旅"},
		{"label wins", `<?xml version="1.0" encoding="UTF-8"?><a t="` + chailv + `">` + chailv + `</a>`, "GBK", "差旅"},
		{"gb18030 label", `<a t="` + ext + `">` + ext + chailv + `</a>`, "gb18030", "𠀀差旅"},
		{"gb18030 declaration", `<?xml version="1.0" encoding="gb18030"?>` + "\r\n" + `<a t="` + ext + `">` + ext + chailv + "&amp;</a>", "", "𠀀差旅&"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseDoc([]byte(c.body), c.label)
			if err != nil {
				t.Fatal(err)
			}
			root := d.Root()
			if got := d.text(root); got != c.text {
				t.Errorf("text %q, want %q", got, c.text)
			}
			if got := d.str(d.attrs[d.nodes[root].attr].value); !strings.HasPrefix(c.text, got) {
				t.Errorf("attribute %q, want the start of %q", got, c.text)
			}
			if s := compareDoc([]byte(c.body), c.label); s != "" {
				t.Error(s)
			}
		})
	}
}

// TestParseDocOwnsInput: the Doc neither aliases the caller's buffer nor
// shares the parser's pooled memory with the next document.
func TestParseDocOwnsInput(t *testing.T) {
	body := []byte("<a b=\"&lt;v\">te&amp;xt\r\n</a>")
	d, err := ParseDoc(body, "")
	if err != nil {
		t.Fatal(err)
	}
	const want = "<a b=\"&lt;v\">te&amp;xt\n</a>"
	for i := range body {
		body[i] = 'x'
	}
	for range 20 {
		if _, err := ParseDoc([]byte("<q r=\"&gt;&gt;&gt;&gt;\">&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;</q>"), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := parseXMLFast([]byte("<q>&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;&lt;</q>"), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := d.Tree().WriteToString(); got != want {
		t.Errorf("the Doc changed after its input was reused and more were parsed: %q", got)
	}
}

// TestDocProcInstDirective: a Doc tells its first processing instruction
// (the XML declaration is not one) and its first <!…> declaration, for
// readers that must refuse them (SOAP).
func TestDocProcInstDirective(t *testing.T) {
	cases := []struct{ body, pi, directive string }{
		{`<?xml version="1.0"?><a/>`, "", ""},
		{"\uFEFF<?xml version=\"1.0\"?><a><!-- c --></a>", "", ""},
		{`<?xml version="1.0"?><?style x?><a><?inner?></a>`, "style", ""},
		{`<a><b><?deep y?></b></a><?after?>`, "deep", ""},
		{`<!DOCTYPE a [<!ENTITY e "x">]><a/>`, "", "DOCTYPE"},
		{`<a><!FOO bar><?p?></a>`, "p", "FOO"},
	}
	for i, c := range cases {
		d, err := ParseDoc([]byte(c.body), "")
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if d.ProcInst() != c.pi || d.Directive() != c.directive {
			t.Errorf("case %d %q: want %q, %q, got %q, %q", i, c.body, c.pi, c.directive, d.ProcInst(), d.Directive())
		}
	}
}

// FuzzParseDoc: for any input ParseDoc fails as parseXMLFast does, or reads
// the same document (compareDoc).
func FuzzParseDoc(f *testing.F) { fuzzParser(f, compareDoc, docCases...) }

// BenchmarkParseDoc: ParseDoc over BenchmarkParseXMLFast's inputs.
func BenchmarkParseDoc(b *testing.B) {
	benchmarkParseInputs(b, func(body []byte) error {
		d, err := ParseDoc(body, "")
		if err == nil && d.Root() < 0 {
			err = errors.New("no root")
		}
		return err
	})
}

// TestDocReleaseReuse: a document parsed into arrays another one released
// (their items not zero) reads exactly as one parsed into fresh arrays.
func TestDocReleaseReuse(t *testing.T) {
	cases := append(append([]xmlCase{}, sameCases...), docCases...)
	for round := range 2 {
		for i, c := range cases {
			// The largest first, so that the next ones get arrays with
			// someone else's nodes in them.
			big := cases[(i+round+1)%len(cases)]
			if d, err := ParseDoc([]byte(big.body+strings.Repeat(" ", 0)), big.label); err == nil {
				d.Release()
				d.Release() // a second call does nothing
			}
			if s := compareDoc([]byte(c.body), c.label); s != "" {
				t.Errorf("%s (round %d): %s", c.name, round, s)
			}
		}
	}
	d, err := ParseDoc([]byte(`<a><b>x</b></a>`), "")
	if err != nil {
		t.Fatal(err)
	}
	text := d.text(d.Root())
	e := d.Element(d.Root())
	d.Release()
	if text != "x" || e.FindElement("b").Text() != "x" {
		t.Errorf("a string or a tree taken from a Doc changed when it was released: %q, %q", text, e.FindElement("b").Text())
	}
}
