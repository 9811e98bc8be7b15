package connectors

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// TestOutboundHeaders: what a call puts on the wire. The route's headers
// win over the connector's (an empty route value does not), the
// connector's are sent under their canonical names, and Busbar's own
// (User-Agent, X-Correlation-ID, Content-Type, Accept) are always there.
func TestOutboundHeaders(t *testing.T) {
	var got http.Header
	var gotBody string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if r.Header.Get("Content-Type") == "application/json" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{}`)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><R/></soap:Body></soap:Envelope>`)
	}))
	defer backend.Close()
	connHeaders := map[string]string{"x-api-key": "secret", "X-Tenant": "t1", "X-Empty-Route": "from-connector"}
	for i, tc := range []struct {
		soap  bool
		route http.Header
		want  map[string]string
	}{
		{false, nil, map[string]string{"X-Api-Key": "secret", "X-Tenant": "t1", "User-Agent": "busbar",
			"X-Correlation-Id": "corr-7", "Content-Type": "application/json",
			"Accept": "application/json, application/problem+json, application/xml;q=0.9"}},
		{false, http.Header{"X-Tenant": {"t2"}, "X-Empty-Route": {""}}, map[string]string{"X-Tenant": "t2",
			"X-Empty-Route": "from-connector", "X-Api-Key": "secret"}},
		{true, nil, map[string]string{"X-Api-Key": "secret", "User-Agent": "busbar", "X-Correlation-Id": "corr-7",
			"Content-Type": "text/xml; charset=utf-8", "Soapaction": `"urn:post"`, "Accept": "text/xml, application/soap+xml"}},
	} {
		cfg := HTTPConfig{URL: backend.URL, Headers: connHeaders}
		var k bus.Connector
		var err error
		req := &bus.Message{CorrelationID: "corr-7", Header: tc.route, SOAPAction: "urn:post"}
		if tc.soap {
			k, err = (&SOAPConfig{HTTPConfig: cfg, Version: "1.1"}).Build("erp")
			req.SetXML(etree.NewElement("Post"))
		} else {
			k, err = cfg.Build("erp")
			req.SetJSON([]byte(`{"a":1}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Call(context.Background(), req); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		k.Close()
		for name, want := range tc.want {
			if g := got.Get(name); g != want {
				t.Errorf("case %d: %s: want %q, got %q", i, name, want, g)
			}
		}
		wantBody := `{"a":1}`
		if tc.soap {
			wantBody = utf8Declaration + `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Post></Post></soap:Body></soap:Envelope>`
		}
		if gotBody != wantBody {
			t.Errorf("case %d: body: want %q, got %q", i, wantBody, gotBody)
		}
	}
}

// TestOneAttemptFailures: a connector without retries calls the transport
// directly; its failures must read as they did through http.Client: the
// connector's timeout is a 504 (the reply's headers late, or its body), a
// closed port a 502 naming the call as `Post "URL": …`, with any password
// in the URL hidden.
func TestOneAttemptFailures(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server watches the connection and cancels r's context when the client leaves
		if r.URL.Path == "/slow-body" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			io.WriteString(w, `{"a":`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct {
		url, path  string
		status     int
		wantDetail string
	}{
		{slow.URL, "/slow-headers", 504, `connector "erp": no reply in time`},
		{slow.URL, "/slow-body", 504, `connector "erp": no reply in time`},
		{closedURL, "/x", 502, `connector "erp": Post "` + closedURL + `/x": dial tcp`},
		{strings.Replace(closedURL, "http://", "http://user:pw@", 1), "/x", 502,
			`connector "erp": Post "` + strings.Replace(closedURL, "http://", "http://user:***@", 1) + `/x": dial tcp`},
	} {
		cfg := HTTPConfig{URL: tc.url, Timeout: bus.Duration(100 * time.Millisecond),
			Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Disabled: true}}
		k, err := cfg.Build("erp")
		if err != nil {
			t.Fatal(err)
		}
		req := &bus.Message{Path: tc.path}
		req.SetJSON([]byte(`{}`))
		_, err = k.Call(context.Background(), req)
		k.Close()
		f, _ := err.(*bus.Fault)
		// The URL and addresses are for the log (Error), not the caller (Detail).
		if f == nil || f.Status != tc.status || !strings.Contains(f.Error(), tc.wantDetail) || strings.Contains(f.Detail, "127.0.0.1") {
			t.Errorf("%s%s: want %d %q… in the log only, got %v (caller: %q)", tc.url, tc.path, tc.status, tc.wantDetail, err, f.Detail)
		}
	}
}
