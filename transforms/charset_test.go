package transforms

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

func TestEncodeXML(t *testing.T) {
	doc := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<报销 金额="12.50">差旅费</报销>`)
	cases := []struct{ label, decl string }{
		{"gbk", `<?xml version="1.0" encoding="GBK"?>`},
		{"GB18030", `<?xml version="1.0" encoding="GB18030"?>`},
		{"", `<?xml version="1.0" encoding="UTF-8"?>`},
	}
	for _, c := range cases {
		out, err := EncodeXML(doc, c.label)
		if err != nil {
			t.Fatalf("%s: %v", c.label, err)
		}
		if !bytes.HasPrefix(out, []byte(c.decl+"\n")) || bytes.Count(out, []byte("<?xml")) != 1 {
			t.Errorf("%s: declaration: %q", c.label, out)
		}
		if c.label != "" && bytes.Contains(out, []byte("差旅费")) {
			t.Errorf("%s: the text is still UTF-8", c.label)
		}
		// What was written reads back, through the declaration alone.
		parsed, err := ParseXML(out, "")
		if err != nil {
			t.Fatalf("%s: %v", c.label, err)
		}
		if r := parsed.Root(); r.Tag != "报销" || r.Text() != "差旅费" || r.SelectAttrValue("金额", "") != "12.50" {
			t.Errorf("%s: read back %s %q", c.label, r.Tag, r.Text())
		}
	}
	gbk, _ := EncodeXML([]byte(`<a>差旅费</a>`), "GBK")
	want, _ := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GBK"?>` + "\n<a>差旅费</a>")
	if string(gbk) != want {
		t.Errorf("a document without a declaration: %q", gbk)
	}
}

// A character the charset lacks is a character reference where XML allows
// one (text, attribute values, CDATA split around it), so a reply never
// fails for it; in a name, a comment or a processing instruction it is an
// error naming it.
func TestEncodeXMLUnencodable(t *testing.T) {
	cases := []struct{ doc, label, want, text string }{
		{`<a>表情😀</a>`, "GBK", `<a>表情&#x1F600;</a>`, "表情😀"},
		{`<a t="😀" u='x😀'>x</a>`, "GBK", `<a t="&#x1F600;" u='x&#x1F600;'>x</a>`, "x"},
		{`<a><![CDATA[x😀<y]]></a>`, "GBK", `<a><![CDATA[x]]>&#x1F600;<![CDATA[<y]]></a>`, "x😀<y"},
		{`<a>€ and ₩</a>`, "Big5", `<a>€ and &#x20A9;</a>`, "€ and ₩"},
		{`<?pi x?><!-- ok --><a>😀</a>`, "GBK", `<?pi x?><!-- ok --><a>&#x1F600;</a>`, "😀"},
		{`<a>表情😀</a>`, "gb18030", `<a>表情😀</a>`, "表情😀"}, // GB18030 covers all of Unicode

		{`<😀>x</😀>`, "GBK", "text cannot be written in GBK: character U+1F600 at byte 1 is in a name, where no character reference can stand for it", ""},
		{`<a b😀="1"/>`, "GBK", "text cannot be written in GBK: character U+1F600 at byte 4 is in a name, where no character reference can stand for it", ""},
		{`<!--😀--><a/>`, "GBK", "text cannot be written in GBK: character U+1F600 at byte 4 is in a comment, processing instruction or DOCTYPE, where no character reference can stand for it", ""},
		{"<a>\xff</a>", "GBK", "text cannot be written in GBK: invalid UTF-8 at byte 3", ""},
		{`<a/>`, "latin1", `charset "latin1" cannot be written: use utf-8, gbk, gb18030 or big5`, ""},
	}
	for n, c := range cases {
		out, err := EncodeXML([]byte(c.doc), c.label)
		if c.text == "" {
			if err == nil || err.Error() != c.want {
				t.Errorf("case %d %s in %s:\nwant %s\n got %v", n, c.doc, c.label, c.want, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d %s in %s: %v", n, c.doc, c.label, err)
			continue
		}
		utf8Text, err := DecodeCharset(out, c.label)
		if err != nil || !strings.HasSuffix(string(utf8Text), "?>\n"+c.want) {
			t.Errorf("case %d %s in %s:\nwant …%s\n got %s (%v)", n, c.doc, c.label, c.want, utf8Text, err)
			continue
		}
		// What was written reads back as what it meant.
		if doc, err := ParseXML(out, ""); err != nil || doc.Root().Text() != c.text {
			t.Errorf("case %d %s in %s: read back %v", n, c.doc, c.label, err)
		}
	}
}

// Which charset an XML body is read in, by RFC 7303: a byte-order mark,
// then the Content-Type charset (utf-8 included), then the XML
// declaration, else UTF-8. Bytes the chosen charset has no character for
// are an error naming the first one, never U+FFFD. ParseXML and ParseDoc
// choose alike.
func TestXMLCharsetPrecedence(t *testing.T) {
	enc := func(e encoding.Encoding, s string) string {
		b, err := e.NewEncoder().String(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gbk := func(s string) string { return enc(simplifiedchinese.GBK, s) }
	const bom = "\uFEFF"
	declGBK := `<?xml version="1.0" encoding="GBK"?>`
	declUTF8 := `<?xml version="1.0" encoding="UTF-8"?>`
	cases := []struct {
		body, label, want string // want: the text, or the error's end
	}{
		{gbk(declGBK + "<a>差旅</a>"), "", "差旅"},
		{gbk("<a>差旅</a>"), "gbk", "差旅"},
		{gbk(declUTF8 + "<a>差旅</a>"), "GBK", "差旅"},
		{enc(traditionalchinese.Big5, declGBK+"<a>差旅</a>"), "big5", "差旅"},
		{declGBK + "<a>差旅</a>", "utf-8", "差旅"},
		{gbk(declGBK + "<a>差旅</a>"), "utf-8", "line 1, column 40: invalid UTF-8: byte 39 is 0xB2"},
		{bom + declGBK + "<a>差旅</a>", "", "差旅"},
		{bom + declGBK + "<a>差旅</a>", "gbk", "差旅"},
		{bom + "<a>差旅</a>", "big5", "差旅"},
		{"<a>差旅</a>", "", "差旅"},
		{gbk("<a>差旅</a>"), "", "line 1, column 4: invalid UTF-8: byte 3 is 0xB2"},
		{gbk("<a>差</a>") + "\xff", "gbk", "byte 9 (0xFF) is not valid gbk"},
		{gbk(declGBK+"<a>差") + "\xff" + "</a>", "", "byte 41 (0xFF) is not valid GBK"},
		{gbk("<a>差") + "\x81\x20</a>", "gbk", "byte 5 (0x81) is not valid gbk"},
		{enc(simplifiedchinese.GB18030, "<a>\uFFFD</a>"), "gb18030", "\uFFFD"}, // GB18030 has U+FFFD
		{"<a/>", "ebcdic", `unsupported charset "ebcdic"`},
	}
	for n, c := range cases {
		doc, err := ParseXML([]byte(c.body), c.label)
		d, derr := ParseDoc([]byte(c.body), c.label)
		got, dgot := "", ""
		if err != nil {
			got = err.Error()
		} else {
			got = doc.Root().Text()
		}
		if derr != nil {
			dgot = derr.Error()
		} else {
			dgot = d.Tree().Root().Text()
		}
		if !strings.HasSuffix(got, c.want) || dgot != got {
			t.Errorf("case %d (%q, charset %q): want …%s\n got %s (ParseDoc: %s)", n, c.body, c.label, c.want, got, dgot)
		}
	}
}

// A request still to be sent is refused instead: its caller can be told.
func TestEncodeXMLStrict(t *testing.T) {
	_, err := EncodeXMLStrict([]byte(`<a t="x">表情😀</a>`), "GBK")
	if want := "text cannot be written in GBK: character U+1F600 at byte 15 has no GBK encoding"; err == nil || err.Error() != want {
		t.Errorf("want %s, got %v", want, err)
	}
}

// BenchmarkDecodeCharset: the strict decoding of a GBK form beside the
// lenient reader it replaced (x/net/html/charset), in the same run.
func BenchmarkDecodeCharset(b *testing.B) {
	form, err := os.ReadFile("../examples/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("charset.NewReaderLabel", func(b *testing.B) {
		b.SetBytes(int64(len(form)))
		b.ReportAllocs()
		for b.Loop() {
			r, _ := charset.NewReaderLabel("gbk", bytes.NewReader(form))
			if _, err := io.ReadAll(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeCharset", func(b *testing.B) {
		b.SetBytes(int64(len(form)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeCharset(form, "gbk"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
