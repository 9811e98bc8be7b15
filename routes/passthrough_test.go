package routes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// received is what the test backend got.
type received struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// recorder is an httptest backend on loopback that remembers the last
// request per path and answers as the path says.
type recorder struct {
	mu   sync.Mutex
	last map[string]received
	srv  *httptest.Server
}

const backendFault = `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
	`<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault>` +
	`<faultcode>SOAP-ENV:Server</faultcode><faultstring>RFC_ERROR_SYSTEM_FAILURE</faultstring>` +
	`<detail><RfcError>Company code 9999 is locked</RfcError></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{last: map[string]received{}}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.last[r.URL.Path] = received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		rec.mu.Unlock()
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.Header().Set("X-Backend", "echo")
			w.Header().Set("Connection", "X-Backend-Hop")
			w.Header().Set("X-Backend-Hop", "must not reach the caller")
			w.Write(body)
		case "/fault":
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, backendFault)
		case "/soap":
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			io.WriteString(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><PingResponse xmlns="urn:x"><ok>yes</ok></PingResponse></s:Body></s:Envelope>`)
		default: // /a, /b, /fallback…: say which route sent it
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Routed-To", r.URL.Path)
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "routed to "+r.URL.Path)
		}
	}))
	t.Cleanup(rec.srv.Close)
	t.Setenv("BACKEND_URL", rec.srv.URL)
	return rec
}

func (rec *recorder) got(t *testing.T, path string) received {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r, ok := rec.last[path]
	if !ok {
		t.Fatalf("the backend got no request at %s", path)
	}
	return r
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	clear(rec.last)
	rec.mu.Unlock()
}

const sapEnvelope = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:rfc="urn:sap-com:document:sap:rfc:functions">
  <soap:Body><rfc:BAPI_ACC_DOCUMENT_POST>
    <DOCUMENTHEADER><COMP_CODE>1000</COMP_CODE><HEADER_TXT>差旅 Travel</HEADER_TXT></DOCUMENTHEADER>
    <ACCOUNTGL><item><ITEMNO_ACC>0000000001</ITEMNO_ACC></item><item><ITEMNO_ACC>0000000002</ITEMNO_ACC></item></ACCOUNTGL>
  </rfc:BAPI_ACC_DOCUMENT_POST></soap:Body></soap:Envelope>`

func gbk(t *testing.T, s string) string {
	b, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigEnvelope is a SAP envelope of about size bytes.
func bigEnvelope(size int) string {
	var b strings.Builder
	b.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><rfc:BAPI_ACC_DOCUMENT_POST xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><DOCUMENTHEADER><COMP_CODE>1000</COMP_CODE></DOCUMENTHEADER><ACCOUNTGL>`)
	for i := 1; b.Len() < size-100; i++ {
		fmt.Fprintf(&b, "<item><ITEMNO_ACC>%010d</ITEMNO_ACC><GL_ACCOUNT>0066100000</GL_ACCOUNT><ITEM_TEXT>Flight 航班 %d</ITEM_TEXT></item>", i, i)
	}
	b.WriteString(`</ACCOUNTGL></rfc:BAPI_ACC_DOCUMENT_POST></soap:Body></soap:Envelope>`)
	return b.String()
}

// Pass-through: the backend gets the caller's bytes, Content-Type and
// SOAPAction as they were sent, and the caller gets the backend's status,
// Content-Type and bytes as they were sent.
func TestPassThroughBytes(t *testing.T) {
	rec := newRecorder(t)
	b := start(t, "testdata/passthrough")
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	cases := []struct {
		name, contentType, body string
	}{
		{"soap-utf8", "text/xml; charset=utf-8", sapEnvelope},
		{"soap-gbk", "text/xml; charset=GBK", gbk(t, strings.Replace(sapEnvelope, "UTF-8", "GBK", 1))},
		{"soap12", `application/soap+xml; charset=utf-8; action="urn:x:Post"`, strings.ReplaceAll(sapEnvelope, "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")},
		{"100KiB", "text/xml; charset=utf-8", bigEnvelope(100 << 10)},
		{"broken-xml", "text/xml", "<soap:Envelope><not closed"},
		{"binary", "application/octet-stream", string(random)},
		{"json", "application/json; charset=utf-8", `{"a": 1.10, "b": "x"}`},
		{"no-content-type", "", "plain bytes"},
		{"empty", "text/plain", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.reset()
			headers := map[string]string{"SOAPAction": `"urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"`}
			if c.contentType != "" {
				headers["Content-Type"] = c.contentType
			}
			r := b.do(t, "POST", "/pass", headers, c.body)
			got := rec.got(t, "/echo")
			if !bytes.Equal(got.Body, []byte(c.body)) {
				t.Errorf("the backend got %d bytes that differ from the %d sent", len(got.Body), len(c.body))
			}
			if ct := got.Header.Get("Content-Type"); ct != c.contentType {
				t.Errorf("the backend got Content-Type %q, want %q", ct, c.contentType)
			}
			if a := got.Header.Get("SOAPAction"); a != headers["SOAPAction"] {
				t.Errorf("the backend got SOAPAction %q, want %q", a, headers["SOAPAction"])
			}
			if r.Status != 200 || r.ContentType != c.contentType || r.Body != c.body {
				t.Errorf("the caller got %d %q and %d bytes; want 200 %q and the %d bytes sent back", r.Status, r.ContentType, len(r.Body), c.contentType, len(c.body))
			}
			if r.Header.Get("X-Backend") != "echo" {
				t.Errorf("the backend's own headers should pass through: %v", r.Header)
			}
		})
	}
}

func TestPassThroughFaultUntouched(t *testing.T) {
	newRecorder(t)
	b := start(t, "testdata/passthrough")
	// With response steps too: they apply to successful replies only.
	for _, path := range []string{"/pass/fault", "/reply-map/fault"} {
		r := b.do(t, "POST", path, map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"urn:x"`}, sapEnvelope)
		if r.Status != 500 || r.ContentType != "text/xml; charset=utf-8" || r.Body != backendFault {
			t.Errorf("%s: a backend's 500 SOAP Fault must reach the caller untouched; got %d %q:\n%s", path, r.Status, r.ContentType, r.Body)
		}
	}
}

func TestPassThroughHeaders(t *testing.T) {
	rec := newRecorder(t)
	b := start(t, "testdata/passthrough")
	r := b.do(t, "POST", "/pass?sap-client=800&lang=ZH", map[string]string{
		"Content-Type":        "text/xml",
		"X-Correlation-ID":    "corr-42",
		"X-Custom":            "kept",
		"Authorization":       "Basic Y2FsbGVyOnB3",
		"Connection":          "X-Hop",
		"X-Hop":               "connection-level, not forwarded",
		"Proxy-Authorization": "Basic cHJveHk6cHc=",
	}, "<x/>")
	got := rec.got(t, "/echo")
	want := map[string]string{"X-Custom": "kept", "X-Correlation-Id": "corr-42", "Authorization": "Basic Y2FsbGVyOnB3", "X-Hop": "", "Proxy-Authorization": ""}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("the backend got %s %q, want %q", k, g, v)
		}
	}
	if got.RawQuery != "lang=ZH&sap-client=800" {
		t.Errorf("the backend got query %q", got.RawQuery)
	}
	if r.Header.Get("X-Correlation-ID") != "corr-42" || r.Header.Get("X-Backend-Hop") != "" {
		t.Errorf("reply headers: %v", r.Header)
	}

	// The connector's and the route's headers win over the caller's.
	b.do(t, "POST", "/pass/keyed", map[string]string{"Content-Type": "text/xml", "Authorization": "Basic Y2FsbGVyOnB3", "X-Tenant": "caller"}, "<x/>")
	got = rec.got(t, "/echo")
	if got.Header.Get("Authorization") != "Basic c2FwOnNlY3JldA==" || got.Header.Get("X-Tenant") != "t1" {
		t.Errorf("the backend got Authorization %q, X-Tenant %q", got.Header.Get("Authorization"), got.Header.Get("X-Tenant"))
	}

	// GET with a path variable: no body, the reply as it came.
	r = b.do(t, "GET", "/pass/items/4%2F2", nil, "")
	if got := rec.got(t, "/items/4/2"); got.Method != "GET" || len(got.Body) != 0 {
		t.Errorf("the backend got %s with %d bytes", got.Method, len(got.Body))
	}
	if r.Status != 202 || r.Body != "routed to /items/4/2" {
		t.Errorf("GET: %d %s", r.Status, r.Body)
	}
}

func TestPassThroughLimits(t *testing.T) {
	newRecorder(t)
	b := start(t, "testdata/passthrough")
	big := strings.Repeat("x", 2<<10)
	r := b.do(t, "POST", "/pass/small", map[string]string{"Content-Type": "application/octet-stream"}, big)
	r.expect(t, 413, "application/problem+json")
	if !strings.Contains(r.Body, `"route":"pass-small"`) {
		t.Errorf("the problem should name the route: %s", r.Body)
	}
	// A SOAP caller gets its errors as SOAP faults (1.1: HTTP 500).
	r = b.do(t, "POST", "/pass/small", map[string]string{"Content-Type": "text/xml", "SOAPAction": `""`}, "<a>"+big+"</a>")
	r.expect(t, 500, "text/xml; charset=utf-8")
	if !strings.Contains(r.Body, "<bb:status>413</bb:status>") {
		t.Errorf("want a Client fault carrying status 413:\n%s", r.Body)
	}
}

func soapWithHeader(header, body string) string {
	return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:busbar:bench">` +
		header + `<soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

func TestMatch(t *testing.T) {
	rec := newRecorder(t)
	b := start(t, "testdata/passthrough")
	soap := map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"urn:other"`}
	with := func(base map[string]string, kv ...string) map[string]string {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	routing := func(target string) string {
		return `<soap:Header><w:Security xmlns:w="urn:wsse"/><h:Routing><h:Target>` + target + `</h:Target></h:Routing></soap:Header>`
	}
	const bapi = "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		want    string // the backend path the request reached; "" when none
		status  int
	}{
		{"header-a", "/hdr", with(soap, "X-Route", "a"), sapEnvelope, "/a", 202},
		{"header-b-name-case", "/hdr", with(soap, "x-ROUTE", "b"), sapEnvelope, "/b", 202},
		{"header-value-exact", "/hdr", with(soap, "X-Route", "A"), sapEnvelope, "/fallback", 202},
		{"soap-action-11", "/hdr", with(soap, "SOAPAction", `"`+bapi+`"`), sapEnvelope, "/action", 202},
		{"soap-action-12", "/hdr", map[string]string{"Content-Type": `application/soap+xml; charset=utf-8; action="` + bapi + `"`}, sapEnvelope, "/action", 202},
		{"most-conditions-first", "/hdr", with(soap, "X-Route", "b", "SOAPAction", bapi), sapEnvelope, "/b-action", 202},
		{"fallback", "/hdr", soap, sapEnvelope, "/fallback", 202},
		{"soap-header-a", "/soaphdr", soap, soapWithHeader(routing("a"), "<x/>"), "/a", 202},
		{"soap-header-b-relative", "/soaphdr", soap, soapWithHeader(routing("b"), "<x/>"), "/b", 202},
		// The envelope is read only up to </soap:Header>: what follows is
		// not parsed (and reaches the backend as it was sent).
		{"soap-header-garbage-after", "/soaphdr", soap, soapWithHeader(routing("a"), "") + "<<<not xml & never parsed", "/a", 202},
		{"soap-header-gbk", "/soaphdr", map[string]string{"Content-Type": "text/xml; charset=GBK", "SOAPAction": `""`},
			gbk(t, soapWithHeader(routing("b"), "<x>报销</x>")), "/b", 202},
		// SOAP 1.1 faults travel with HTTP 500; the status REST would get is in the detail.
		{"soap-header-none-is-404-fault", "/soaphdr", soap, soapWithHeader("", "<x/>"), "", 500},
		{"soap-header-broken-is-400-fault", "/soaphdr", soap, soapWithHeader(`<soap:Header><h:Routing></soap:Header>`, ""), "", 500},
		{"not-soap-is-404-problem", "/soaphdr", map[string]string{"Content-Type": "application/json"}, `{"a":1}`, "", 404},
		{"body-xpath-a", "/xpath", soap, sapEnvelope, "/a", 202},
		{"body-xpath-b-mapped", "/xpath", soap, strings.Replace(sapEnvelope, ">1000<", ">2000<", 1), "/b", 202},
		{"body-xpath-none", "/xpath", map[string]string{"Content-Type": "application/xml"}, "<r><DOCUMENTHEADER><COMP_CODE>3000</COMP_CODE></DOCUMENTHEADER></r>", "", 404},
		{"body-broken-xml", "/xpath", map[string]string{"Content-Type": "application/xml"}, "<r><DOCUMENTHEADER>", "", 400},
		// What a route reads is read as the parsers read it: the
		// Content-Type charset wins over the declaration (utf-8 included),
		// a byte with no character in the charset and a repeated JSON key
		// are refused, not guessed at.
		{"soap-header-utf8-label-wins", "/soaphdr", soap,
			gbk(t, `<?xml version="1.0" encoding="GBK"?>`+soapWithHeader(strings.Replace(routing("b"), "</h:Target>", "</h:Target><h:Note>报销</h:Note>", 1), "<x/>")), "", 500},
		{"body-xpath-bad-gbk-byte", "/xpath", map[string]string{"Content-Type": "application/xml; charset=gbk"},
			strings.Replace(gbk(t, sapEnvelope), "Travel", "Tr\xffvel", 1), "", 400},
		{"body-json-duplicate-key", "/json", map[string]string{"Content-Type": "application/json"}, `{"kind": "z", "kind": "a"}`, "", 400},
		{"body-json-a", "/json", map[string]string{"Content-Type": "application/json"}, `{"kind": "a"}`, "/a", 202},
		{"body-json-fallback", "/json", map[string]string{"Content-Type": "application/json"}, `{"kind": "z"}`, "/fallback", 202},
		{"rest-body", "/rest", map[string]string{"Content-Type": "application/json"}, `{"kind": "a"}`, "", 201},
		{"rest-header", "/rest", map[string]string{"Content-Type": "application/json", "X-Route": "h"}, `{"kind": "b"}`, "", 202},
		{"rest-fallback", "/rest", map[string]string{"Content-Type": "application/json"}, `{"kind": "b"}`, "", 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.reset()
			r := b.do(t, "POST", c.path, c.headers, c.body)
			if r.Status != c.status {
				t.Fatalf("want %d, got %d %s:\n%s", c.status, r.Status, r.ContentType, r.Body)
			}
			if want, ok := faultStatus[c.name]; ok && !strings.Contains(r.Body, "<bb:status>"+want+"</bb:status>") {
				t.Errorf("want a SOAP fault carrying status %s:\n%s", want, r.Body)
			}
			if c.want != "" {
				got := rec.got(t, c.want)
				if c.want == "/b" && c.path == "/xpath" { // body-b maps the request: the parsed payload was reused
					if string(got.Body) != `{"company":"2000","items":2}` {
						t.Errorf("the mapped request: %s", got.Body)
					}
				} else if !bytes.Equal(got.Body, []byte(c.body)) {
					t.Errorf("the backend got other bytes than sent:\n%s", got.Body)
				}
				return
			}
			rec.mu.Lock()
			n := len(rec.last)
			rec.mu.Unlock()
			if n != 0 {
				t.Errorf("no backend should have been called: %v", rec.last)
			}
		})
	}
}

var faultStatus = map[string]string{"soap-header-none-is-404-fault": "404", "soap-header-broken-is-400-fault": "400"}

// A request no route matches: 404 naming the path, as problem+json or, to
// a SOAP caller, a SOAP fault.
func TestNoMatchAnswers(t *testing.T) {
	newRecorder(t)
	b := start(t, "testdata/passthrough")
	r := b.do(t, "POST", "/xpath", map[string]string{"Content-Type": "application/xml"}, "<r/>")
	r.expect(t, 404, "application/problem+json")
	var p map[string]any
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil || !strings.Contains(fmt.Sprint(p["detail"]), "POST /xpath") {
		t.Errorf("the problem should name the path: %s", r.Body)
	}
	r = b.postSOAP12(t, "/soaphdr", "urn:x", soapWithHeader("", "<x/>"))
	r.expect(t, 400, "application/soap+xml; charset=utf-8")
	if !strings.Contains(r.Body, "<soap:Value>soap:Sender</soap:Value>") || !strings.Contains(r.Body, "POST /soaphdr") {
		t.Errorf("want a Sender fault naming the path:\n%s", r.Body)
	}
}

// A raw route calling a SOAP connector: the caller's SOAP 1.2 payload goes
// out in a SOAP 1.1 envelope, and the reply comes back in SOAP 1.2.
func TestRawToSOAPConnector(t *testing.T) {
	rec := newRecorder(t)
	b := start(t, "testdata/passthrough")
	r := b.postSOAP12(t, "/to-soap", "urn:caller", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><Ping xmlns="urn:x"/></e:Body></e:Envelope>`)
	r.expect(t, 200, "application/soap+xml; charset=utf-8")
	if !strings.Contains(r.Body, `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><PingResponse`) ||
		!strings.Contains(r.Body, `<ok>yes</ok></PingResponse></soap:Body>`) {
		t.Errorf("reply:\n%s", r.Body)
	}
	got := rec.got(t, "/soap")
	if got.Header.Get("SOAPAction") != `"urn:x:Ping"` || !strings.Contains(string(got.Body), `xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"`) {
		t.Errorf("the SOAP backend got %v:\n%s", got.Header, got.Body)
	}
}

// A response map applies to a successful raw reply.
func TestRawReplyMap(t *testing.T) {
	newRecorder(t)
	b := start(t, "testdata/passthrough")
	r := b.do(t, "POST", "/reply-map", map[string]string{"Content-Type": "text/xml"}, sapEnvelope)
	r.expect(t, 200, "application/json")
	if r.Body != `{"company":"1000","items":2}` {
		t.Errorf("mapped reply: %s", r.Body)
	}
}
