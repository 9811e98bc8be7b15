package transforms

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/busbar/busbar/bench/payloads"
)

func TestCheckJSON(t *testing.T) {
	many := func(extra string) string { // an object past dupScanKeys keys
		var b strings.Builder
		b.WriteString("{")
		for i := range 20 {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		return b.String() + extra + "}"
	}
	cases := []struct{ doc, want string }{
		{`{"companyCode":"1000","date":"2026-11-20","lines":[{"amount":1250.00},{"amount":-1.5e3}]}`, ""},
		{`[{"a":1},{"a":2}]`, ""},
		{`{"a":{"a":1},"b":{"a":2}}`, ""},
		{`{"x":{"a":1},"a":[{"a":true,"b":null}]}`, ""},
		{`{"a":"\ud83d\ude00 \" \\ \/ \n\r\t","A":"é"}`, ""},
		{`{"\u0061b":1,"ab_":2}`, ""},
		{many(`"k20":20`), ""},
		{" \"plain\" ", ""},
		{`{}`, ""},

		{`{"companyCode":"1000","companyCode":"2000"}`,
			`line 1, column 23: duplicate key "companyCode" at $.companyCode (first at line 1, column 2)`},
		{"{\"lines\":[{},{},\n{\"amount\":1,\n \"amount\":2}]}",
			`line 3, column 2: duplicate key "amount" at $.lines[2].amount (first at line 2, column 2)`},
		{`{"a":1,"\u0061":2}`, `line 1, column 8: duplicate key "a" at $.a (first at line 1, column 2)`},
		{`{"a b":1,"a b":2}`, `line 1, column 10: duplicate key "a b" at $["a b"] (first at line 1, column 2)`},
		{many(`"k3":3`), `line 1, column 162: duplicate key "k3" at $.k3 (first at line 1, column 23)`},
		{`{"x":{"a":1,"b":{"c":[1,{"a":1,"a":2}]}}}`,
			`line 1, column 32: duplicate key "a" at $.x.b.c[1].a (first at line 1, column 26)`},

		{"{\"text\":\"caf\xff\"}", `line 1, column 13 (byte 12): invalid UTF-8 (byte 0xFF) at $.text`},
		{"{\"te\xc3xt\":1}", `line 1, column 5 (byte 4): invalid UTF-8 (byte 0xC3) in a key of $`},
		{"[\"\xed\xa0\x80\"]", `line 1, column 3 (byte 2): invalid UTF-8 (byte 0xED) at $[0]`},
		{`{"text":"a\u0000b"}`, `line 1, column 11 (byte 10): \u0000 (U+0000), a character XML cannot hold at $.text`},
		{`{"a":{"te\u0001xt":1}}`, `line 1, column 10 (byte 9): \u0001 (U+0001), a character XML cannot hold in a key of $.a`},
		{`["\b"]`, `line 1, column 3 (byte 2): \b, a character XML cannot hold at $[0]`},
		{`["\uFFFF"]`, `line 1, column 3 (byte 2): \uFFFF (U+FFFF), a character XML cannot hold at $[0]`},
		{"[\"\xef\xbf\xbe\"]", `line 1, column 3 (byte 2): U+FFFE, a character XML cannot hold at $[0]`},
		{`{"a":"\ud800"}`, `line 1, column 7 (byte 6): \ud800, an unpaired surrogate that names no character at $.a`},
		{`{"a":"\udc00\ud800"}`, `line 1, column 7 (byte 6): \udc00, an unpaired surrogate that names no character at $.a`},
		{`{"a":"\ud800\u0041"}`, `line 1, column 7 (byte 6): \ud800, an unpaired surrogate that names no character at $.a`},

		// Syntax errors keep encoding/json's words.
		{"{\n  \"companyCode\": \"1000\",\n  \"lines\": [}\n",
			"line 3, column 14: invalid character '}' looking for beginning of value"},
		{`{"a":1}{}`, "line 1, column 9: data after the JSON document"},
		{`{"a":1`, "line 1, column 7: unexpected end of JSON input"},
		{"", "line 1, column 1: unexpected end of JSON input"},
		{`{"a":01}`, "line 1, column 8: invalid character '1' after object key:value pair"},
	}
	for n, c := range cases {
		err := CheckJSON([]byte(c.doc))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("case %d %q:\nwant %s\n got %s", n, c.doc, c.want, got)
		}
	}
}

// Apart from what it refuses on purpose, CheckJSON accepts what json.Valid
// accepts.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x"]}`, `[]`, `"\u00e9"`, `{"a":1 , "b" : {}}`,
		`1e`, `-`, `01`, `[1,]`, `{"a" 1}`, `tru`, `nul`, `"\x"`, `{"a":1,}`, `[`, `"`, ` `, `0.`, `1.e1`, `{"\u004"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckJSON(b)
		valid := json.Valid(b)
		switch {
		case err == nil && !valid:
			t.Errorf("%q: accepted, json.Valid refuses it", b)
		case err != nil && valid && strings.Contains(err.Error(), "invalid character"):
			t.Errorf("%q: %v, json.Valid accepts it", b, err)
		}
	})
}

// BenchmarkCheckJSON is the REST intake's check on S7's vouchers: json.Valid
// (what it was) beside CheckJSON, in the same run.
func BenchmarkCheckJSON(b *testing.B) {
	for _, n := range payloads.Lines {
		doc := payloads.Voucher(n)
		b.Run(fmt.Sprintf("%d/json.Valid", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(doc) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(fmt.Sprintf("%d/CheckJSON", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckJSON(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
