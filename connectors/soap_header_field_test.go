package connectors

import (
	"fmt"
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
