package routes

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busbar/busbar/certs"
)

// A route marked idempotent calls a mutual-TLS backend through a connector
// with every resilience key: the backend's 503 is retried (a POST, so only
// because the route says so), and once the breaker opens callers get 503
// with Retry-After without the backend being called.
func TestResilientConnectorFile(t *testing.T) {
	dir := t.TempDir()
	if err := certs.WriteDevSet(filepath.Join(dir, "certs"), time.Hour); err != nil {
		t.Fatal(err)
	}
	srvTLS, _, err := certs.Server(certs.ServerOptions{CertFile: filepath.Join(dir, "certs", "server.pem"),
		KeyFile: filepath.Join(dir, "certs", "server-key.pem"), ClientCAFile: filepath.Join(dir, "certs", "ca.pem"),
		ClientAuth: certs.RequireClientCert})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/down":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":"database down"}`))
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"starting"}`))
		default:
			w.Write([]byte(`{"posted":"` + r.TLS.PeerCertificates[0].Subject.CommonName + `"}`))
		}
	}))
	backend.TLS = srvTLS
	backend.StartTLS()
	defer backend.Close()
	t.Setenv("ERP_URL", backend.URL)

	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("erp.yaml", `connector: erp
type: http
url: ${ERP_URL}
timeout: 5s
retry: { attempts: 3, backoff: 1ms, max-backoff: 10ms, on: [connect, 503] }
idempotent: false
breaker: { failures: 2, window: 60s, open-for: 1m, half-open-calls: 1 }
max-inflight: 8
tls: { ca: certs/ca.pem, cert: certs/client.pem, key: certs/client-key.pem, server-name: localhost }
`)
	write("post.yaml", `route: post-voucher
from: { rest: { method: POST, path: /vouchers } }
to: { connector: erp, path: /vouchers, idempotent: true }
`)
	write("down.yaml", `route: down
from: { rest: { method: POST, path: /down } }
to: { connector: erp, path: /down }
`)
	b := start(t, dir)

	r := b.postJSON(t, "/vouchers", `{"voucherNo":"EXP-1"}`)
	r.expect(t, 200, "application/json")
	if r.Body != `{"posted":"busbar-dev-client"}` || calls.Load() != 2 {
		t.Fatalf("want the POST retried once over mTLS, got %s after %d calls", r.Body, calls.Load())
	}

	for i := 0; i < 2; i++ {
		b.postJSON(t, "/down", `{}`).expect(t, 502, "application/problem+json")
	}
	before := calls.Load()
	r = b.postJSON(t, "/down", `{}`)
	r.expect(t, 503, "application/problem+json")
	var p map[string]any
	json.Unmarshal([]byte(r.Body), &p)
	if p["title"] != "Backend circuit open" || p["route"] != "down" || r.Header.Get("Retry-After") == "" || calls.Load() != before {
		t.Errorf("want an open breaker answering for itself, got %v %s (backend calls %d → %d)", r.Header, r.Body, before, calls.Load())
	}
}
