package connectors

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/certs"
)

// An outbound connector with a client certificate calls a Busbar listener
// that requires one: mutual TLS end to end, both sides built from the dev CA.
func TestMutualTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if err := certs.WriteDevSet(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	tlsCfg, _, err := certs.Server(certs.ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"),
		ClientCAFile: f("ca.pem"), ClientAuth: certs.RequireClientCert})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerConfig{TLS: tlsCfg})
	err = srv.Swap(Endpoints{REST: []RESTEndpoint{{Route: "hello", Method: "POST", Path: "/hello",
		Handle: func(_ context.Context, m *bus.Message) (*bus.Message, error) {
			r := m.Reply()
			r.SetJSON([]byte(`{"hello":"over mTLS"}`))
			return r, nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	url := "https://" + addr

	connector := func(tc *TLSConfig) bus.Connector {
		t.Helper()
		c := HTTPConfig{URL: url, TLS: tc, Retry: fast}
		c.ResolveFiles(dir)
		return mustBuild(t, &c, "peer")
	}
	hello := func(k bus.Connector) (string, *bus.Fault) {
		m := bus.NewMessage()
		m.Method, m.Path = "POST", "/hello"
		m.SetJSON([]byte(`{}`))
		reply, err := k.Call(context.Background(), m)
		if err != nil {
			return "", bus.AsFault(err)
		}
		return string(reply.Bytes()), nil
	}

	// Relative names are relative to the configuration directory.
	if got, f := hello(connector(&TLSConfig{CA: "ca.pem", Cert: "client.pem", Key: "client-key.pem"})); f != nil || got != `{"hello":"over mTLS"}` {
		t.Fatalf("with a client certificate: %q %v", got, f)
	}
	for _, c := range []struct {
		name string
		tls  *TLSConfig
		want []string // any of these
	}{
		// TLS 1.3 clients learn of the refusal after the handshake: the
		// listener's alert, or the connection it closed under the request
		// (which HTTP/2 reports without the cause).
		{"no-client-certificate", &TLSConfig{CA: "ca.pem"}, []string{"certificate required", "broken pipe", "connection reset", "http2: client conn could not be established"}},
		{"unknown-CA", &TLSConfig{Cert: "client.pem", Key: "client-key.pem"}, []string{"certificate signed by unknown authority"}},
		{"wrong-server-name", &TLSConfig{CA: "ca.pem", Cert: "client.pem", Key: "client-key.pem", ServerName: "sap.example.com"}, []string{"not sap.example.com"}},
	} {
		_, f := hello(connector(c.tls))
		if c.name == "no-client-certificate" && f != nil && f.Title == "Backend outcome unknown" {
			continue // the connection closed under a request already written: the client cannot tell more
		}
		// Certificate problems do not go away by trying again: one attempt.
		if f == nil || f.Status != 502 || !containsAny(f.Error(), c.want) || strings.Contains(f.Error(), "attempts") {
			t.Errorf("%s: want a 502 naming %q after one attempt, got %v", c.name, c.want, f)
		}
	}
	// Tests against a self-signed system may skip verification, explicitly.
	if got, f := hello(connector(&TLSConfig{InsecureSkipVerify: true, Cert: "client.pem", Key: "client-key.pem"})); f != nil || got == "" {
		t.Errorf("insecure-skip-verify: %q %v", got, f)
	}
}

func TestTLSConfigValidation(t *testing.T) {
	dir := t.TempDir()
	if err := certs.WriteDevSet(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tls  TLSConfig
		want string
	}{
		{TLSConfig{CA: "ca.pem", InsecureSkipVerify: true}, `field "tls.insecure-skip-verify": it ignores the "ca"`},
		{TLSConfig{CA: "missing.pem"}, `field "tls.ca": certs: open ` + filepath.Join(dir, "missing.pem")},
		{TLSConfig{CA: "client-key.pem"}, `field "tls.ca": certs: ` + filepath.Join(dir, "client-key.pem") + ` holds no PEM certificate`},
		{TLSConfig{Cert: "client.pem"}, `field "tls.cert": a client certificate needs its key`},
		{TLSConfig{Key: "client-key.pem"}, `field "tls.key": a client key needs its certificate`},
		{TLSConfig{Cert: "client.pem", Key: "server-key.pem"}, `field "tls.cert": `},
	}
	for i, c := range cases {
		cfg := HTTPConfig{URL: "https://127.0.0.1:9", TLS: &c.tls}
		cfg.ResolveFiles(dir)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
