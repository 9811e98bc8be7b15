package transforms

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
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

func TestEncodeXMLErrors(t *testing.T) {
	cases := []struct{ doc, label, want string }{
		{`<a>表情😀</a>`, "GBK", "text cannot be written in GBK: character U+1F600 at byte 9 has no GBK encoding"},
		{`<a>€ and ₩</a>`, "Big5", "text cannot be written in Big5: character U+20A9 at byte 11 has no Big5 encoding"},
		{"<a>\xff</a>", "GBK", "text cannot be written in GBK: invalid UTF-8 at byte 3"},
		{`<a/>`, "latin1", `charset "latin1" cannot be written: use utf-8, gbk, gb18030 or big5`},
	}
	for _, c := range cases {
		_, err := EncodeXML([]byte(c.doc), c.label)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s in %s:\nwant %s\n got %v", c.doc, c.label, c.want, err)
		}
	}
	// GB18030 covers all of Unicode.
	if out, err := EncodeXML([]byte(`<a>表情😀</a>`), "gb18030"); err != nil || !strings.Contains(string(out), "GB18030") {
		t.Errorf("gb18030: %v", err)
	}
}
