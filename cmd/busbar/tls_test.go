package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/certs"
)

// `busbar certs dev` writes a set that `busbar serve` uses for mutual TLS.
func TestServeWithDevCertificates(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	dir := filepath.Join(t.TempDir(), "dev")
	var out, errOut bytes.Buffer
	if code := run([]string{"certs", "dev", "--out", dir, "--days", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("certs dev: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "busbar serve --tls-cert "+filepath.Join(dir, "server.pem")) {
		t.Errorf("certs dev output:\n%s", out.String())
	}
	f := func(name string) string { return filepath.Join(dir, name) }

	base, stop := startServe(t, "--tls-cert", f("server.pem"), "--tls-key", f("server-key.pem"),
		"--client-ca", f("ca.pem"), "--client-auth", "require")
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("serve listens on %q, want https://127.0.0.1:…", base)
	}
	url := base + "/healthz"

	pool, err := certs.LoadCAPool(f("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: pool}
		if withCert {
			pair, err := tls.LoadX509KeyPair(f("client.pem"), f("client-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	resp, err := client(true).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("with a client certificate: %d %q", resp.StatusCode, body)
	}
	if resp, err := client(false).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %d", resp.StatusCode)
	}

	stop()
}

func TestTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	if err := certs.WriteDevSet(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--tls-cert", f("server.pem")}, 1, "a server needs both a certificate and a key file"},
		{[]string{"serve", "--tls-cert", f("server.pem"), "--tls-key", f("server-key.pem"), "--client-ca", f("ca.pem"), "--client-auth", "always"}, 1, `client auth "always"`},
		{[]string{"serve", "--tls-cert", f("server.pem"), "--tls-key", f("server-key.pem"), "--client-ca", f("ca.pem")}, 1, `say "require" or "verify-if-given"`},
		{[]string{"certs"}, 2, "usage: busbar certs dev --out DIR"},
		{[]string{"certs", "dev"}, 2, "usage: busbar certs dev --out DIR"},
		{[]string{"certs", "prod"}, 2, "busbar certs: unknown command \"prod\"\nusage: busbar certs dev --out DIR"},
		{[]string{"certs", "dev", "--out", dir, "--days", "0"}, 2, "1 ≤ N ≤ 397"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("busbar %s: want exit %d and %q, got %d %q", strings.Join(c.args, " "), c.code, c.want, code, errOut.String())
		}
	}
}
