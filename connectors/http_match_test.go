package connectors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/busbar/busbar/bus"
)

func TestScanSOAPHeader(t *testing.T) {
	const env11 = `<?xml version="1.0"?><!-- c --><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	// One declaration: a second is refused, as the parsers refuse it.
	gbkBody, _ := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GBK"?>` + strings.TrimPrefix(env11, `<?xml version="1.0"?>`) +
		`<s:Header><h:Routing><h:Target>报销</h:Target></h:Routing></s:Header><s:Body/></s:Envelope>`)
	cases := []struct {
		name, body, charset string
		want                string // the Header as written back; "" for none
		err                 string
	}{
		{"header", env11 + `<s:Header><h:Routing><h:Target>a</h:Target></h:Routing></s:Header><s:Body><x/></s:Body></s:Envelope>`, "",
			`<s:Header xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"><h:Routing><h:Target>a</h:Target></h:Routing></s:Header>`, ""},
		{"soap12-own-declarations", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header xmlns:h="urn:other"><h:A x="1">&amp;</h:A></e:Header></e:Envelope>`, "",
			`<e:Header xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:h="urn:other"><h:A x="1">&amp;</h:A></e:Header>`, ""},
		{"stops-at-header-end", env11 + `<s:Header><h:T>a</h:T></s:Header><s:Body><broken></s:Body>&&&`, "",
			`<s:Header xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"><h:T>a</h:T></s:Header>`, ""},
		{"gbk", gbkBody, "GBK",
			`<s:Header xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"><h:Routing><h:Target>报销</h:Target></h:Routing></s:Header>`, ""},
		{"gbk-by-declaration", gbkBody, "",
			`<s:Header xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"><h:Routing><h:Target>报销</h:Target></h:Routing></s:Header>`, ""},
		{"no-header", env11 + `<s:Body><x/></s:Body></s:Envelope>`, "", "", ""},
		{"empty-envelope", env11 + `</s:Envelope>`, "", "", ""},
		{"not-soap", `<Envelope><Header/></Envelope>`, "", "", ""},
		{"header-of-another-namespace", env11 + `<h:Header/><s:Body/></s:Envelope>`, "", "", ""},
		{"json", `{"a": 1}`, "", "", ""},
		// Up to </Header>, what the parsers refuse (here, encoding/xml took it).
		{"second-declaration", `<?xml version="1.0"?>` + env11 + `<s:Header/><s:Body/></s:Envelope>`, "", "",
			"the XML declaration <?xml …?> must be at the very start of the document"},
		{"undeclared-prefix-decoder-path", env11 + `<s:Header><h:T q:a="&amp;"/></s:Header><s:Body/></s:Envelope>`, "", "",
			"line 1, column 127: attribute q:a in element <h:T>: namespace prefix q is not declared"},
		{"broken-in-header", env11 + `<s:Header><h:T></s:Header>`, "", "", "closed by </s:Header>"},
		{"ends-in-header", env11 + `<s:Header><h:T>`, "", "", "ends inside <h:T>"},
		// A route chosen by the first Header must not then read another.
		{"second-header", env11 + `<s:Header><h:T>a</h:T></s:Header><s:Header><h:T>b</h:T></s:Header><s:Body/></s:Envelope>`, "", "",
			"the envelope has a second <s:Header>"},
		{"second-empty-header", env11 + `<s:Header><h:T>a</h:T></s:Header>` + "\n <!-- c -->\n" + `<s:Header/><s:Body/></s:Envelope>`, "", "",
			"the envelope has a second <s:Header>"},
		{"second-header-own-prefix", env11 + `<s:Header/><x:Header xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"/><s:Body/></s:Envelope>`, "", "",
			"the envelope has a second <x:Header>"},
		{"second-header-after-pi", env11 + `<s:Header/><?pi?><s:Header/><s:Body/></s:Envelope>`, "", "",
			"the envelope has a second <s:Header>"},
		{"second-header-gbk", gbkBody[:strings.Index(gbkBody, "<s:Body/>")] + `<s:Header/></s:Envelope>`, "", "",
			"the envelope has a second <s:Header>"},
		{"doctype", `<!DOCTYPE s:Envelope>` + env11 + `<s:Header/><s:Body/></s:Envelope>`, "", "",
			"the message holds a document type declaration (<!DOCTYPE>)"},
		{"pi-in-header", env11 + `<s:Header><h:T><?route b?>a</h:T></s:Header><s:Body/></s:Envelope>`, "", "",
			"the message holds a processing instruction <?route?>"},
		{"header-then-header-of-another-namespace", env11 + `<s:Header/><h:Header/><s:Body/></s:Envelope>`, "",
			`<s:Header xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"/>`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := scanSOAPHeader([]byte(c.body), c.charset)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("want an error with %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if h != nil {
				doc := etree.NewDocument()
				doc.SetRoot(h)
				got, _ = doc.WriteToString()
			}
			if got != c.want {
				t.Errorf("want\n%s\ngot\n%s", c.want, got)
			}
		})
	}
}

func TestMediaParam(t *testing.T) {
	cases := []struct{ ct, name, want string }{
		{"text/xml; charset=utf-8", "charset", "utf-8"},
		{"text/xml;charset=GBK", "charset", "GBK"},
		{`application/soap+xml; charset=utf-8; action="urn:a;b"`, "action", "urn:a;b"},
		{`application/soap+xml; Action=urn:x ; charset=utf-8`, "action", "urn:x"},
		{"text/xml", "charset", ""},
		{`text/xml; action="unterminated`, "action", ""},
	}
	for i, c := range cases {
		if got := mediaParam(c.ct, c.name); got != c.want {
			t.Errorf("case %d: %q %s: want %q, got %q", i, c.ct, c.name, c.want, got)
		}
	}
}

// The exact-path map answers what it knows; templates, other methods and
// escaped paths get gorilla/mux's behaviour.
func TestRouterExactAndTemplates(t *testing.T) {
	srv := NewServer(ServerConfig{})
	answer := func(name string) Handler {
		return func(_ context.Context, m *bus.Message) (*bus.Message, error) {
			r := m.Reply()
			r.SetJSON([]byte(`{"route":"` + name + `","id":"` + m.Vars["id"] + `"}`))
			return r, nil
		}
	}
	err := srv.Swap(Endpoints{
		REST: []RESTEndpoint{
			{Route: "template", Method: "GET", Path: "/claims/{id}", Handle: answer("template")},
			{Route: "exact", Method: "POST", Path: "/claims/new", Handle: answer("exact")},
		},
		HTTP: []HTTPEndpoint{{Route: "raw", Method: "POST", Path: "/claims/new", Handle: answer("raw")}},
	})
	if err == nil || !strings.Contains(err.Error(), "from.rest and from.http") {
		t.Fatalf("want a kind conflict, got %v", err)
	}
	if err := srv.Swap(Endpoints{REST: []RESTEndpoint{
		{Route: "template", Method: "GET", Path: "/claims/{id}", Handle: answer("template")},
		{Route: "exact", Method: "POST", Path: "/claims/new", Handle: answer("exact")},
		{Route: "exact-get", Method: "GET", Path: "/claims/mine", Handle: answer("exact-get")},
	}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ method, path, want string }{
		{"POST", "/claims/new", `{"route":"exact","id":""}`},
		{"GET", "/claims/new", `{"route":"template","id":"new"}`}, // the exact path has no GET: the template serves it
		{"GET", "/claims/mine", `{"route":"exact-get","id":""}`},
		{"GET", "/claims/a%2Fb", `{"route":"template","id":"a/b"}`},
		{"DELETE", "/claims/new", "405"},
		{"GET", "/nothing", "404"},
		{"GET", "/healthz", "ok\n"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		var body io.Reader
		if c.method == "POST" {
			body = strings.NewReader("{}") // a POST to a REST route needs a body
		}
		srv.Handler().ServeHTTP(w, httptest.NewRequest(c.method, c.path, body))
		got := w.Body.String()
		if w.Code != 200 {
			got = strconv.Itoa(w.Code)
		}
		if got != c.want {
			t.Errorf("%s %s: want %s, got %d %s", c.method, c.path, c.want, w.Code, w.Body.String())
		}
	}
}

// Two fallbacks on one method and path cannot be told apart.
func TestSwapTwoFallbacks(t *testing.T) {
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{HTTP: []HTTPEndpoint{{Route: "a", Method: "POST", Path: "/p"}, {Route: "b", Method: "POST", Path: "/p"}}})
	if err == nil || !strings.Contains(err.Error(), "without a match (routes a and b)") {
		t.Fatalf("got %v", err)
	}
}

// A loan of a pooled body ends with the call: a late read fails rather
// than send bytes that may by then belong to another request.
func TestLentBodyRevoked(t *testing.T) {
	lent := &lentBody{data: []byte("hello world")}
	r := lent.reader()
	buf := make([]byte, 5)
	if n, err := r.Read(buf); n != 5 || err != nil || string(buf) != "hello" {
		t.Fatalf("read %d %v %q", n, err, buf)
	}
	again, _ := io.ReadAll(lent.reader())
	if string(again) != "hello world" {
		t.Fatalf("a second reader (a retry) starts over: %q", again)
	}
	lent.revoke()
	if _, err := r.Read(buf); !errors.Is(err, errBodyRevoked) {
		t.Fatalf("after revoke: %v", err)
	}
}

func headerString(h *etree.Element) string {
	if h == nil {
		return "<nil>"
	}
	doc := etree.NewDocument()
	doc.SetRoot(h.Copy())
	s, _ := doc.WriteToString()
	return s
}

// The fast path takes the usual envelopes (else it would not be faster).
func TestScanSOAPHeaderFastTakesUsualEnvelopes(t *testing.T) {
	for i, body := range []string{
		string(benchSOAP(2)),
		"\xef\xbb\xbf" + `<?xml version='1.0' encoding='UTF-8'?>` + "\n<!-- from OA -->\n" +
			`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` + "\n  " +
			`<soap:Header><wsse:Security xmlns:wsse="urn:wsse" soap:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>oa</wsse:Username></wsse:UsernameToken></wsse:Security><r:T xmlns:r="urn:r" a='x'/></soap:Header><soap:Body/></soap:Envelope>`,
		`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body></e:Envelope>`,
		`<json/>`,
	} {
		fast, sure := scanSOAPHeaderFast([]byte(body))
		slow, err := decodeSOAPHeader([]byte(body), "")
		if !sure || err != nil || headerString(fast) != headerString(slow) {
			t.Errorf("case %d: fast (sure %v)\n%s\ndecoder (%v)\n%s", i, sure, headerString(fast), err, headerString(slow))
		}
	}
}

// Whatever the fast path is sure of, encoding/xml agrees with.
func FuzzScanSOAPHeader(f *testing.F) {
	const env = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	for _, seed := range []string{
		string(benchSOAP(2)),
		env + `<s:Header><h:A x="1">t</h:A><!-- c --><h:B/></s:Header><s:Body/></s:Envelope>`,
		env + `<s:Header><h:A>a &amp; b</h:A></s:Header></s:Envelope>`,
		env + `<s:Header><h:A><![CDATA[x]]></h:A></s:Header></s:Envelope>`,
		env + `<s:Header><h:A></h:B></s:Header></s:Envelope>`,
		env + `<s:Header><h:A x="1" x="2"/></s:Header></s:Envelope>`,
		env + `<s:Header><h:A xmlns:g="urn:h" g:x="1" h:x="2" q:y="3"><g:B/></h:A></s:Header></s:Envelope>`,
		`<?xml version="1.0" encoding="GBK"?>` + env + `<s:Header/></s:Envelope>`,
		env + `<s:Body/></s:Envelope>`,
		env + `<s:Header><h:A/></s:Header><s:Header><h:B/></s:Header><s:Body/></s:Envelope>`,
		`<a:b:c/>`,
		`{"a":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, sure := scanSOAPHeaderFast(body)
		if !sure {
			return
		}
		slow, err := decodeSOAPHeader(body, "")
		if err != nil {
			t.Fatalf("the fast path accepted what the decoder rejects (%v):\n%q\n%s", err, body, headerString(fast))
		}
		if a, b := headerString(fast), headerString(slow); a != b {
			t.Fatalf("fast and decoder differ on %q:\nfast    %s\ndecoder %s", body, a, b)
		}
	})
}

// lend copies a small borrowed body (the pooled buffer may be reused at
// once) and lends a big one until revoke; own never revokes. The readers
// of copied and owned bodies are bytes.Readers, which net/http sends with
// the headers in one write.
func TestLendAndOwn(t *testing.T) {
	small := []byte("hello")
	big := bytes.Repeat([]byte("x"), smallBody+1)
	for _, tc := range []struct {
		name      string
		body      *lentBody
		data      []byte
		inMemory  bool
		revocable bool
	}{
		{"small borrowed", lend(small), small, true, false},
		{"big borrowed", lend(big), big, false, true},
		{"owned", own(big), big, true, false},
	} {
		want := string(tc.data)
		r := tc.body.reader()
		_, isLent := r.(*lentReader)
		if isLent == tc.inMemory {
			t.Errorf("%s: reader %T", tc.name, r)
		}
		if tc.name == "small borrowed" {
			small[0] = 'j' // the pool reuses the buffer
		}
		tc.body.revoke()
		got, err := io.ReadAll(r)
		if tc.revocable {
			if !errors.Is(err, errBodyRevoked) {
				t.Errorf("%s: after revoke: %v", tc.name, err)
			}
			continue
		}
		if err != nil || string(got) != want {
			t.Errorf("%s: read %d bytes, %v; want the %d bytes lent", tc.name, len(got), err, len(want))
		}
		if again, _ := io.ReadAll(tc.body.reader()); string(again) != want {
			t.Errorf("%s: a second reader (a retry) does not start over", tc.name)
		}
	}
	if lend(nil) != nil || own(nil) != nil {
		t.Error("an empty body is lent")
	}
}
