package connectors

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
)

// payloadBytes is a payload as a streaming mapping writes it: one element
// declaring the prefixes it uses, text escaped as Busbar writes it.
const payloadBytes = `<p:Doc xmlns:p="urn:p" a="x &amp; &quot;y&quot;"><p:Line n="1">1 &lt; 2 "q"</p:Line><Empty></Empty></p:Doc>`

// bytesAndTree returns the same payload as two messages: bytes only, and
// the parsed tree.
func bytesAndTree(t *testing.T) (*bus.Message, *bus.Message) {
	t.Helper()
	b := bus.NewMessage()
	b.SetXMLBytes([]byte(payloadBytes))
	root, err := parseXMLString(payloadBytes)
	if err != nil {
		t.Fatal(err)
	}
	tr := bus.NewMessage()
	tr.SetXML(root)
	return b, tr
}

// A payload held as bytes goes inside soap:Body as it is: the envelope is
// byte for byte the one written around the same payload as a tree.
func TestEnvelopeSplicesPayloadBytes(t *testing.T) {
	for _, v := range []bus.SOAPVersion{bus.SOAP11, bus.SOAP12} {
		b, tr := bytesAndTree(t)
		var fromBytes, fromTree bytes.Buffer
		if err := writeMessageEnvelope(&fromBytes, v, b); err != nil {
			t.Fatal(err)
		}
		if err := writeMessageEnvelope(&fromTree, v, tr); err != nil {
			t.Fatal(err)
		}
		if fromBytes.String() != fromTree.String() {
			t.Errorf("SOAP %s:\nbytes %s\ntree  %s", v, fromBytes.String(), fromTree.String())
		}
		if !strings.Contains(fromBytes.String(), "<soap:Body>"+payloadBytes+"</soap:Body>") {
			t.Errorf("SOAP %s: payload not spliced: %s", v, fromBytes.String())
		}
		if b.Root != nil {
			t.Error("splicing parsed the payload bytes")
		}
	}
}

// The SOAP connector sends a bytes payload in the same envelope as a tree.
func TestSOAPConnectorSendsPayloadBytes(t *testing.T) {
	be := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write([]byte(`<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Ok/></soap:Body></soap:Envelope>`))
	})
	k := buildSOAP(t, be.URL)
	b, tr := bytesAndTree(t)
	for _, m := range []*bus.Message{b, tr} {
		if _, err := k.Call(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if len(be.bodies) != 2 || be.bodies[0] != be.bodies[1] {
		t.Fatalf("bodies differ:\nbytes %s\ntree  %s", be.bodies[0], be.bodies[1])
	}
	if !strings.Contains(be.bodies[0], "<soap:Body>"+payloadBytes+"</soap:Body>") {
		t.Errorf("payload not spliced: %s", be.bodies[0])
	}
}

// A facade, a REST endpoint and a raw endpoint answering a SOAP caller
// reply the same bytes whether the route's answer holds bytes or a tree.
func TestRepliesFromPayloadBytes(t *testing.T) {
	answer := func(useBytes bool) Handler {
		return func(_ context.Context, m *bus.Message) (*bus.Message, error) {
			b, tr := bytesAndTree(t)
			r := m.Reply()
			if useBytes {
				r.SetXMLBytes(b.Body)
			} else {
				r.SetXML(tr.Root)
			}
			return r, nil
		}
	}
	srv := NewServer(ServerConfig{})
	var eps Endpoints
	for _, useBytes := range []bool{true, false} {
		suffix := map[bool]string{true: "bytes", false: "tree"}[useBytes]
		eps.SOAP = append(eps.SOAP, &SOAPEndpoint{Path: "/soap-" + suffix,
			Operations: []SOAPOperation{{Route: "s", Handle: answer(useBytes)}}})
		eps.REST = append(eps.REST, RESTEndpoint{Route: "r", Method: "POST", Path: "/rest-" + suffix, Handle: answer(useBytes)})
		eps.HTTP = append(eps.HTTP, HTTPEndpoint{Route: "h", Method: "POST", Path: "/raw-" + suffix, Handle: answer(useBytes)})
	}
	if err := srv.Swap(eps); err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	post := func(path, contentType, body string) string {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + resp.Header.Get("Content-Type") + "\n" + string(b)
	}
	envelope := `<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Req/></soap:Body></soap:Envelope>`
	for _, tc := range []struct{ path, contentType, body string }{
		{"/soap-", "text/xml; charset=utf-8", envelope},
		{"/rest-", "application/json", `{}`},
		{"/raw-", "text/xml; charset=utf-8", envelope},
	} {
		fromBytes := post(tc.path+"bytes", tc.contentType, tc.body)
		fromTree := post(tc.path+"tree", tc.contentType, tc.body)
		if fromBytes != fromTree {
			t.Errorf("%s: replies differ\nbytes %s\ntree  %s", tc.path, fromBytes, fromTree)
		}
		if !strings.Contains(fromBytes, payloadBytes) || !strings.HasPrefix(fromBytes, "200 ") {
			t.Errorf("%s: reply %s", tc.path, fromBytes)
		}
	}
}

// Replies are sent with their Content-Length, never chunked, however large:
// HTTP/1.0 callers and some legacy SOAP stacks cannot read a chunked reply.
func TestRepliesCarryContentLength(t *testing.T) {
	big := "<Big>" + strings.Repeat("<Line>expense line</Line>", 4000) + "</Big>"
	answer := func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		r := m.Reply()
		r.SetXMLBytes([]byte(big))
		return r, nil
	}
	fail := func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		return nil, bus.ServerFault(502, "Backend error", strings.Repeat("detail ", 1000))
	}
	srv := NewServer(ServerConfig{})
	eps := Endpoints{
		SOAP: []*SOAPEndpoint{{Path: "/soap", Operations: []SOAPOperation{{Route: "s", Handle: answer}}},
			{Path: "/soap-fault", Operations: []SOAPOperation{{Route: "f", Handle: fail}}}},
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/rest", Handle: answer},
			{Route: "rf", Method: "POST", Path: "/rest-fault", Handle: fail}},
		HTTP: []HTTPEndpoint{{Route: "h", Method: "POST", Path: "/raw", Handle: answer}},
	}
	if err := srv.Swap(eps); err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	envelope := `<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Req/></soap:Body></soap:Envelope>`
	for _, tc := range []struct {
		path, contentType, body string
		status                  int
	}{
		{"/soap", "text/xml; charset=utf-8", envelope, 200},
		{"/soap-fault", "text/xml; charset=utf-8", envelope, 500},
		{"/rest", "application/json", `{}`, 200},
		{"/rest-fault", "application/json", `{}`, 502},
		{"/raw", "text/xml; charset=utf-8", envelope, 200},
	} {
		req, _ := http.NewRequest("POST", "http://"+addr+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || len(resp.TransferEncoding) > 0 || resp.ContentLength != int64(len(b)) || len(b) < 4000 {
			t.Errorf("%s: status %d, Transfer-Encoding %v, Content-Length %d for %d bytes", tc.path, resp.StatusCode, resp.TransferEncoding, resp.ContentLength, len(b))
		}
	}
}

// serveLoopback serves srv on a free loopback port until the test ends and
// returns its address.
func serveLoopback(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// A route's to.headers reach a SOAP backend (an API key, a tenant), but
// the envelope's Content-Type and the route's action are the protocol's.
func TestSOAPConnectorSendsRouteHeaders(t *testing.T) {
	var got http.Header
	be := newBackend(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write([]byte(`<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Ok/></soap:Body></soap:Envelope>`))
	})
	k := buildSOAP(t, be.URL)
	m, _ := bytesAndTree(t)
	m.SOAPAction = "urn:post"
	m.Header = http.Header{"X-Tenant": {"acme"}, "Content-Type": {"text/plain"}, "Soapaction": {`"urn:other"`}}
	if _, err := k.Call(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"X-Tenant": "acme", "Content-Type": "text/xml; charset=utf-8", "Soapaction": `"urn:post"`} {
		if g := got.Get(name); g != want {
			t.Errorf("%s: got %q, want %q", name, g, want)
		}
	}
}
