package connectors

import (
	"fmt"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

var fieldNS = map[string]string{"h": "urn:h", "g": "urn:g"}

// slowHeaderField is what a soap-header condition gives without the
// shortcut: the Header's tree, then the expression.
func slowHeaderField(t testing.TB, src string, body []byte) (bool, error) {
	e, err := transforms.CompileExpr(src, "t.yaml", 1, 1, fieldNS)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	hdr, err := decodeSOAPHeader(body, "")
	if err != nil || hdr == nil {
		return false, err
	}
	return e.BoolIn(hdr, &bus.Message{})
}

// TestHeaderFieldMatchesExpression: the bytes-level answer of a simple
// soap-header condition is the expression's answer, on the cases where
// XPath is subtle (namespaces by prefix or default, unprefixed names, the
// first of several matches, text spread over children and comments).
func TestHeaderFieldMatchesExpression(t *testing.T) {
	const env = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	bodies := []string{
		string(benchSOAP(2)),
		env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target>a</h:Target></h:Routing><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`,
		env + `<s:Header><h:Other><h:Target>b</h:Target></h:Other><h:Routing><h:Target>b</h:Target></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><Routing xmlns="urn:h"><Target>b</Target></Routing></s:Header></s:Envelope>`,
		env + `<s:Header><x:Routing xmlns:x="urn:h"><x:Target>b</x:Target></x:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing xmlns:h="urn:other"><h:Target>b</h:Target></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><Routing><Target>b</Target></Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target>b<!-- c --><h:Sub>x</h:Sub>y</h:Target></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target/></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target> b </h:Target></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing><h:Broken></s:Header></s:Envelope>`,
		env + `<s:Body><h:Routing><h:Target>b</h:Target></h:Routing></s:Body></s:Envelope>`,
		env + `<s:Header/><s:Body/></s:Envelope>`,
		`<h:Routing xmlns:h="urn:h"><h:Target>b</h:Target></h:Routing>`,
		env + `<s:Header><h:Routing><g:Target xmlns:g="urn:g">b</g:Target></h:Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Header><h:Routing><h:Target>c</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`,
		env + `<s:Header/><s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`,
	}
	exprs := []string{
		"/h:Routing/h:Target == 'b'",
		"./h:Routing/h:Target == \"b\"",
		"/Routing/Target == 'b'",
		"/h:Routing/Target == 'b'",
		"/h:Routing/h:Target == ''",
		"/h:Routing/h:Target == 'by'",
		"/h:Routing/h:Target == ' b '",
		"/h:Routing/h:Target/h:Sub == 'x'",
		"/h:Routing/g:Target == 'b'",
		"/h:Routing == 'b'",
	}
	for _, src := range exprs {
		f := ParseHeaderField(src, fieldNS)
		if f == nil {
			t.Fatalf("%s: not recognised", src)
		}
		for i, body := range bodies {
			value, found, sure := scanHeaderField([]byte(body), f.Path)
			holds := found && string(value) == f.Value
			want, err := slowHeaderField(t, src, []byte(body))
			if !sure {
				if err == nil {
					t.Errorf("%s, body %d: the scanner was not sure of a body the decoder reads", src, i)
				}
				continue
			}
			if err != nil || holds != want {
				t.Errorf("%s, body %d: scanner %v, expression %v (%v)", src, i, holds, want, err)
			}
		}
	}
}

func TestParseHeaderField(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{"/h:Routing/h:Target == 'b'", `{[{Routing urn:h false} {Target urn:h false}] b}`},
		{" ./Routing/g:T==\"x y\" ", `{[{Routing  true} {T urn:g false}] x y}`},
		{"/h:Routing/h:Target != 'b'", "<nil>"},
		{"/h:Routing/h:Target == 'b' and true", "<nil>"},
		{"'b' == /h:Routing/h:Target", "<nil>"},
		{"/h:Routing/h:Target == 1", "<nil>"},
		{`/h:Routing/h:Target == 'it\'s'`, "<nil>"},
		{"//h:Target == 'b'", "<nil>"},
		{"/h:Routing/*== 'b'", "<nil>"},
		{"/h:Routing/@id == 'b'", "<nil>"},
		{"/x:Routing == 'b'", "<nil>"}, // undeclared prefix: the expression reports it
	} {
		got := "<nil>"
		if f := ParseHeaderField(tc.src, fieldNS); f != nil {
			got = fmt.Sprint(*f)
		}
		if got != tc.want {
			t.Errorf("%q: want %s, got %s", tc.src, tc.want, got)
		}
	}
}

// Whatever the scanner is sure of, the expression over the decoded Header agrees with.
func FuzzHeaderField(f *testing.F) {
	const env = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	for _, seed := range []string{
		string(benchSOAP(2)),
		env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`,
		env + `<s:Header><Routing xmlns="urn:h"><Target>b<!--c-->x</Target></Routing></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing><h:X></s:Header></s:Envelope>`,
		env + `<s:Header><h:Routing xmlns:g="urn:h" g:x="1"><g:Target h:x="2" q:y="">b</g:Target></h:Routing></s:Header></s:Envelope>`,
	} {
		f.Add([]byte(seed))
	}
	const src = "/h:Routing/h:Target == 'b'"
	field := ParseHeaderField(src, fieldNS)
	f.Fuzz(func(t *testing.T, body []byte) {
		value, found, sure := scanHeaderField(body, field.Path)
		holds := found && string(value) == field.Value
		if !sure {
			return
		}
		want, err := slowHeaderField(t, src, body)
		if err != nil || holds != want {
			t.Fatalf("%q: scanner %v, expression %v (%v)", body, holds, want, err)
		}
	})
}

// TestHeaderScanAsStrictAsParser: what the parsers refuse before </Header>,
// the header scan refuses too, with the parsers' error, whether it builds
// the Header or reads a field from its bytes: else a route would be chosen
// on a Header that the backend, or a facade, refuses or reads otherwise.
// After </Header> nothing is read, so nothing is refused.
func TestHeaderScanAsStrictAsParser(t *testing.T) {
	const env = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	for _, c := range []struct {
		name, header, want string
		body               string // instead of env, the Header, a Body
	}{
		{"duplicate attribute", `<h:Routing><h:Target a="1" a="2">b</h:Target></h:Routing>`, "line 1, column 118: duplicate attribute a in element <h:Target>", ""},
		{"undeclared attribute prefix", `<h:Routing><h:Target q:a="1">b</h:Target></h:Routing>`, "attribute q:a in element <h:Target>: namespace prefix q is not declared", ""},
		{"undeclared element prefix", `<h:Routing><q:Other/><h:Target>b</h:Target></h:Routing>`, "element <q:Other>: namespace prefix q is not declared", ""},
		{"undeclared prefix on the Header", ``, "attribute q:a in element <s:Header>: namespace prefix q is not declared",
			env + `<s:Header q:a="1"><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`},
		{"prefix declared out of scope", `<h:Routing><g:A xmlns:g="urn:g"/><g:B/><h:Target>b</h:Target></h:Routing>`, "element <g:B>: namespace prefix g is not declared", ""},
		{"prefix declared empty", `<h:Routing xmlns:g=""><h:Target>b</h:Target></h:Routing>`, `namespace prefix g in element <h:Routing> is declared empty`, ""},
		{"one expanded name twice", `<h:Routing xmlns:g="urn:h" h:a="1" g:a="2"><h:Target>b</h:Target></h:Routing>`, "attributes h:a and g:a in element <h:Routing> have the same expanded name", ""},
		{"invalid UTF-8", "<h:Routing><h:Target>b</h:Target><h:Note>\xb3\xf6</h:Note></h:Routing>", "invalid UTF-8: byte 131 is 0xB3", ""},
		{"invalid UTF-8 in a comment", "<h:Routing><h:Target>b</h:Target><!-- \xb3\xf6 --></h:Routing>", "invalid UTF-8: byte 128 is 0xB3", ""},
		{"control character in a comment", "<h:Routing><h:Target>b</h:Target><!-- \x01 --></h:Routing>", "illegal character code U+0001", ""},
		{"invalid UTF-8 with an entity", "<h:Routing><h:Target>b&amp;</h:Target><h:Note>\xb3\xf6</h:Note></h:Routing>", "invalid UTF-8: byte 136 is 0xB3", ""},
		{"after the Header", "", "", env + `<s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body q:a="1" a="1" a="2">` + "\xb3" + `</s:Body></s:Envelope>`},
		{"after the Header, read by the decoder", "", "", env + `<s:Header><h:Routing><h:Target>b</h:Target><![CDATA[]]></h:Routing></s:Header><s:Body q:a="1" a="1" a="2">` + "\xb3" + `</s:Body></s:Envelope>`},
		// Offsets after a charset switch are the decoded text's, in the
		// decoder as in the parser.
		{"declared GBK", "", "", `<?xml version="1.0" encoding="GBK"?>` + env + "<s:Header><h:Routing><h:Target>b</h:Target><h:Note>\xb3\xf6</h:Note></h:Routing></s:Header><s:Body a='1' a='2'/></s:Envelope>"},
		{"declared GBK, duplicate attribute", "", "duplicate attribute a in element <h:Note>", `<?xml version="1.0" encoding="GBK"?>` + env + "<s:Header><h:Routing><h:Target>b</h:Target><h:Note>\xb3\xf6</h:Note><h:Note a='1' a='2'/></h:Routing></s:Header><s:Body/></s:Envelope>"},
		{"declared GBK, undecodable", "", "byte 168 (0xFF) is not valid GBK", `<?xml version="1.0" encoding="GBK"?>` + env + "<s:Header><h:Routing><h:Target>b</h:Target><h:Note>\x80\xff</h:Note></h:Routing></s:Header><s:Body/></s:Envelope>"},
		// More declaring elements than the fast scan keeps in scope.
		{"nine nested declarations", `<h:Routing><h:Target>b</h:Target><g0:A xmlns:g0="urn:g0"><g1:A xmlns:g1="urn:g1"><g2:A xmlns:g2="urn:g2"><g3:A xmlns:g3="urn:g3"><g4:A xmlns:g4="urn:g4"><g5:A xmlns:g5="urn:g5"><g6:A xmlns:g6="urn:g6"><g7:A xmlns:g7="urn:g7"><g8:A xmlns:g8="urn:g8"><g0:B/></g8:A></g7:A></g6:A></g5:A></g4:A></g3:A></g2:A></g1:A></g0:A></h:Routing>`, "", ""},
		{"nine nested declarations, one missing", `<h:Routing><h:Target>b</h:Target><g0:A xmlns:g0="urn:g0"><g1:A xmlns:g1="urn:g1"><g2:A xmlns:g2="urn:g2"><g3:A xmlns:g3="urn:g3"><g4:A xmlns:g4="urn:g4"><g5:A xmlns:g5="urn:g5"><g6:A xmlns:g6="urn:g6"><g7:A xmlns:g7="urn:g7"><g8:A xmlns:g8="urn:g8"><q:B/></g8:A></g7:A></g6:A></g5:A></g4:A></g3:A></g2:A></g1:A></g0:A></h:Routing>`, "element <q:B>: namespace prefix q is not declared", ""},
		{"same local name in two namespaces", `<h:Routing xmlns:g="urn:g" h:a="1" g:a="2" a="3"><h:Target>b</h:Target></h:Routing>`, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := env + `<s:Header>` + c.header + `</s:Header><s:Body/></s:Envelope>`
			if c.body != "" {
				body = c.body
			}
			if c.want != "" {
				if _, err := transforms.ParseDoc([]byte(body), ""); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("the parser: want %q, got %v", c.want, err)
				}
			}
			h, err := scanSOAPHeader([]byte(body), "")
			switch {
			case c.want == "" && (err != nil || h == nil):
				t.Fatalf("scanSOAPHeader: want the Header, got %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("scanSOAPHeader: want %q, got %v (%s)", c.want, err, headerString(h))
			}
			// The field's scan builds nothing: when it is sure, the Header
			// was good.
			value, found, sure := scanHeaderField([]byte(body), []FieldStep{{Local: "Routing", AnyNS: true}, {Local: "Target", AnyNS: true}})
			if c.want != "" && sure {
				t.Fatalf("scanHeaderField is sure (found %v, %q) of a Header the parser refuses", found, value)
			}
			if c.want == "" && sure && (!found || string(value) != "b") {
				t.Fatalf("scanHeaderField: %q found %v sure %v", value, found, sure)
			}
		})
	}
}
