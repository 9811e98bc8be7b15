package routes

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Backends that are slow, gone or plain, served by httptest on loopback.
func TestBackendFailures(t *testing.T) {
	release := make(chan struct{})
	var echoed []byte
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select { // longer than the connector's 300ms, bounded by the test
			case <-release:
			case <-time.After(5 * time.Second):
			}
		case "/echo":
			echoed, _ = io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":true,"id":"0042","amount":12.50,"tags":["a","b"],"none":null}`))
		}
	}))
	defer backend.Close()
	defer close(release)
	// A port nothing listens on: take one, then free it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("BACKEND_URL", backend.URL)
	t.Setenv("GONE_URL", gone)
	b := start(t, "testdata/backends")

	t.Run("timeout-is-a-server-fault", func(t *testing.T) {
		began := time.Now()
		r := b.postSOAP11(t, "/soap/slow", "", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Ping/></s:Body></s:Envelope>`)
		r.expect(t, 500, "text/xml; charset=utf-8")
		if !strings.Contains(r.Body, "<faultcode>soap:Server</faultcode>") || !strings.Contains(r.Body, "<bb:status>504</bb:status>") {
			t.Errorf("want a Server fault with status 504:\n%s", r.Body)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Errorf("the connector's 300ms timeout took %v", d)
		}
	})
	t.Run("unreachable-is-502", func(t *testing.T) {
		r := b.postJSON(t, "/api/gone", `{"value": 1}`)
		r.expect(t, 502, "application/problem+json")
		var p map[string]any
		json.Unmarshal([]byte(r.Body), &p)
		if p["title"] != "Backend unreachable" || p["route"] != "rest-to-gone-soap" {
			t.Errorf("problem: %s", r.Body)
		}
	})
	t.Run("generic-conversion-both-ways", func(t *testing.T) {
		r := b.postSOAP12(t, "/soap/echo", "", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>
<Echo xmlns="urn:echo" kind="test"><code>0010010000</code><line>1</line><line>2</line><note/></Echo></e:Body></e:Envelope>`)
		r.expect(t, 200, "application/soap+xml; charset=utf-8")
		if got := string(echoed); got != `{"Echo":{"@kind":"test","code":"0010010000","line":["1","2"],"note":""}}` {
			t.Errorf("the REST backend got %s", got)
		}
		golden(t, "unmapped-echo-reply.xml", r.Body)
	})
}
