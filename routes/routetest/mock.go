package routetest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
)

// A mocked connector is the real connector, built from its own file, with
// its URL pointed at a backend on 127.0.0.1 that answers from the case's
// script. So the envelope, headers, status handling, fault mapping (and any
// retry policy) under test are exactly those of production; only the far
// side is scripted.

// backend is the scripted far side of one connector.
type backend struct {
	name string
	soap bus.SOAPVersion // the connector's SOAP version, 0 for REST
	srv  *httptest.Server
	run  *run // resolves body files of the current test file

	mu       sync.Mutex
	script   []Reply
	calls    []received
	problems []string
	expire   context.CancelCauseFunc // ends the call in flight as a timeout
	release  chan struct{}           // closed when the case ends
}

// received is one request the backend got.
type received struct {
	method, path string
	header       http.Header
	body         []byte
}

func newBackend(name string, soap bus.SOAPVersion) *backend {
	b := &backend{name: name, soap: soap, release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	return b
}

// reset starts a case: its script, nothing received yet.
func (b *backend) reset(r *run, script []Reply) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.release)
	b.run, b.script, b.calls, b.problems, b.release = r, script, nil, nil, make(chan struct{})
}

func (b *backend) close() {
	b.mu.Lock()
	close(b.release)
	b.release = make(chan struct{})
	b.mu.Unlock()
	b.srv.Close()
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body) // read first: the client must finish writing
	b.mu.Lock()
	n := len(b.calls)
	b.calls = append(b.calls, received{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: data})
	var reply *Reply
	if n < len(b.script) {
		reply = &b.script[n]
	} else {
		b.problems = append(b.problems, fmt.Sprintf("connector %s was called %s, but the case scripts %s for it", b.name, times(n+1), replies(len(b.script))))
	}
	expire, release, run := b.expire, b.release, b.run
	b.mu.Unlock()
	if reply == nil {
		http.Error(w, "busbar test: no reply scripted for this call", http.StatusInternalServerError)
		return
	}
	switch reply.Error {
	case "unreachable":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case "timeout":
		if expire != nil {
			expire(context.DeadlineExceeded)
		}
		// Hold the reply until the client gives up or the case ends; the
		// bound only guards against a connector that ignores cancellation.
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(time.Minute):
		}
		return
	}
	status, header, body, err := b.replyOf(run, reply)
	if err != nil {
		b.mu.Lock()
		b.problems = append(b.problems, fmt.Sprintf("connector %s reply %d: %v", b.name, n+1, err))
		b.mu.Unlock()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write(body)
}

// replyOf renders a scripted reply: a SOAP connector's payload goes into an
// envelope of its version; the content type follows the body.
func (b *backend) replyOf(r *run, reply *Reply) (int, http.Header, []byte, error) {
	body := reply.Body.Text
	if reply.BodyFile != "" {
		var err error
		if body, err = r.readFile(reply.BodyFile); err != nil {
			return 0, nil, nil, err
		}
	}
	status, contentType := reply.Status, ""
	first := firstElement(body)
	switch {
	case b.soap != 0 && len(bytes.TrimSpace(body)) > 0 && !reply.Body.JSON:
		if first.Local != "Envelope" {
			body = wrapEnvelope(b.soap, body)
		}
		contentType = connectors.ContentTypeSOAP11 + "; charset=utf-8"
		if b.soap == bus.SOAP12 {
			contentType = connectors.ContentTypeSOAP12 + "; charset=utf-8"
		}
		if status == 0 && isFault(body) {
			status = http.StatusInternalServerError
		}
	case first.Local != "":
		contentType = "application/xml; charset=utf-8"
	case len(bytes.TrimSpace(body)) > 0:
		contentType = "application/json"
		if !reply.Body.JSON && !json.Valid(body) {
			contentType = "text/plain; charset=utf-8"
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	for k, v := range reply.Headers {
		h.Set(k, v)
	}
	return status, h, body, nil
}

// firstElement is the name of the document element, zero when the text
// is not XML.
func firstElement(text []byte) xml.Name {
	t := bytes.TrimSpace(text)
	if len(t) == 0 || t[0] != '<' {
		return xml.Name{}
	}
	d := xml.NewDecoder(bytes.NewReader(t))
	d.Strict = false
	// Only the name is wanted, and GBK, GB18030 and Big5 leave ASCII as it
	// is: read any declared charset as bytes rather than give up on it.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.Name{}
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name
		}
	}
}

// wrapEnvelope puts payload text in an envelope as text, so the payload may
// use the envelope's soap: prefix (a <soap:Fault>) without declaring it.
func wrapEnvelope(v bus.SOAPVersion, payload []byte) []byte {
	ns := bus.NSSOAP11
	if v == bus.SOAP12 {
		ns = bus.NSSOAP12
	}
	payload = bytes.TrimSpace(payload)
	if bytes.HasPrefix(payload, []byte("<?xml")) {
		if i := bytes.Index(payload, []byte("?>")); i > 0 {
			payload = bytes.TrimSpace(payload[i+2:])
		}
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + ns + `"><soap:Body>`)
	b.Write(payload)
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes()
}

func isFault(envelope []byte) bool {
	b := parseBody("text/xml", envelope)
	return b.envelope && b.payload != nil && b.payload.Tag == "Fault" && b.payload.NamespaceURI() == b.root.NamespaceURI()
}

// mockConnector is the real connector with each call's context made
// cancellable, so a scripted timeout can end it at once, the way the
// connector's own time limit would.
type mockConnector struct {
	bus.Connector
	b *backend
}

func (m *mockConnector) Call(ctx context.Context, req *bus.Message) (*bus.Message, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m.b.mu.Lock()
	m.b.expire = cancel
	m.b.mu.Unlock()
	defer func() {
		m.b.mu.Lock()
		m.b.expire = nil
		m.b.mu.Unlock()
	}()
	return m.Connector.Call(ctx, req)
}

// mockBuilder substitutes every connector of the configuration: see
// routes.WithConnectors.
func (f *fileRun) mockBuilder(name, kind string, cfg bus.ConnectorConfig) (bus.Connector, error) {
	var hc *connectors.HTTPConfig
	var version bus.SOAPVersion
	switch c := cfg.(type) {
	case *connectors.SOAPConfig:
		hc, version = &c.HTTPConfig, bus.SOAP11
		if c.Version == "1.2" {
			version = bus.SOAP12
		}
	case *connectors.HTTPConfig:
		hc = c
	default:
		return nil, fmt.Errorf("busbar test cannot mock connectors of type %q yet", kind)
	}
	b := newBackend(name, version)
	f.backends[name] = b
	u, err := url.Parse(hc.URL)
	if err != nil {
		return nil, err
	}
	// Keep the connector's own path: the backend sees the URL it would in production.
	hc.URL = b.srv.URL + u.EscapedPath()
	if u.RawQuery != "" {
		hc.URL += "?" + u.RawQuery
	}
	c, err := cfg.Build(name)
	if err != nil {
		return nil, err
	}
	return &mockConnector{Connector: c, b: b}, nil
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

func replies(n int) string {
	switch n {
	case 0:
		return "no reply"
	case 1:
		return "one reply"
	}
	return fmt.Sprintf("%d replies", n)
}
