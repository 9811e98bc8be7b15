package connectors

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

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
