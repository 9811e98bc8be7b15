package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// devSet writes a dev set into a fresh directory and returns the path of a file in it.
func devSet(t *testing.T) func(string) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteDevSet(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	return func(name string) string { return filepath.Join(dir, name) }
}

// serveTLS serves "hello <client CN>" over TLS on a loopback port.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: discardLog(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cn := "anonymous"
			if len(r.TLS.PeerCertificates) > 0 {
				cn = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			io.WriteString(w, "hello "+cn)
		})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(t *testing.T, url string, cfg *tls.Config) (string, *tls.ConnectionState, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.TLS, nil
}

func TestMutualTLS(t *testing.T) {
	f := devSet(t)
	srvCfg, _, err := Server(ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"),
		ClientCAFile: f("ca.pem"), ClientAuth: RequireClientCert})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, srvCfg)

	withCert, _, err := Client(ClientOptions{CAFile: f("ca.pem"), CertFile: f("client.pem"), KeyFile: f("client-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	body, state, err := get(t, url, withCert)
	if err != nil || body != "hello busbar-dev-client" {
		t.Fatalf("with a client certificate: %q, %v", body, err)
	}
	if state.Version < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", state.Version)
	}

	noCert, _, err := Client(ClientOptions{CAFile: f("ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if body, _, err := get(t, url, noCert); err == nil {
		t.Errorf("a client without a certificate was served: %q", body)
	}

	// The system pool does not know the dev CA.
	if _, _, err := get(t, url, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
		t.Error("a client that does not trust the dev CA connected")
	}

	// A certificate from another CA is refused too.
	other, err := NewDevCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp, _ := other.IssueClient("intruder", time.Hour)
	foreign, _ := tls.X509KeyPair(cp, kp)
	pool, _ := LoadCAPool(f("ca.pem"))
	if body, _, err := get(t, url, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{foreign}}); err == nil {
		t.Errorf("a client certificate from another CA was accepted: %q", body)
	}
}

func TestVerifyIfGiven(t *testing.T) {
	f := devSet(t)
	srvCfg, _, err := Server(ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"),
		ClientCAFile: f("ca.pem"), ClientAuth: VerifyClientCertIfGiven})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, srvCfg)
	noCert, _, _ := Client(ClientOptions{CAFile: f("ca.pem")})
	if body, _, err := get(t, url, noCert); err != nil || body != "hello anonymous" {
		t.Errorf("without a certificate: %q, %v", body, err)
	}
	withCert, _, _ := Client(ClientOptions{CAFile: f("ca.pem"), CertFile: f("client.pem"), KeyFile: f("client-key.pem")})
	if body, _, err := get(t, url, withCert); err != nil || body != "hello busbar-dev-client" {
		t.Errorf("with a certificate: %q, %v", body, err)
	}
}

func TestTLS11Refused(t *testing.T) {
	f := devSet(t)
	srvCfg, _, err := Server(ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, srvCfg)
	pool, _ := LoadCAPool(f("ca.pem"))
	old := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, _, err := get(t, url, old); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

// A renewed certificate is served without a restart.
func TestServerCertificateReload(t *testing.T) {
	f := devSet(t)
	srvCfg, kp, err := Server(ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	kp.CheckInterval = -1 // look at the files on every handshake
	url := serveTLS(t, srvCfg)
	pool, _ := LoadCAPool(f("ca.pem"))
	client := &tls.Config{RootCAs: pool}
	serial := func() string {
		t.Helper()
		_, state, err := get(t, url, client)
		if err != nil {
			t.Fatal(err)
		}
		return state.PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	if before != kp.Leaf().SerialNumber.String() {
		t.Fatalf("served serial %s, loaded %s", before, kp.Leaf().SerialNumber)
	}

	// A broken renewal (the key of another pair) keeps the old pair serving.
	if err := WriteFileAtomic(f("server-key.pem"), mustRead(t, f("client-key.pem")), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != before {
		t.Errorf("a mismatched key replaced the certificate: serial %s", got)
	}
	if kp.LastError() == nil {
		t.Error("LastError is nil after a failed reload")
	}

	// Renew with the same CA: the next handshake gets the new serial.
	ca := loadCA(t, f("ca.pem"), f("ca-key.pem"))
	cert, key, err := ca.IssueServer(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	WriteFileAtomic(f("server.pem"), cert, 0o644)
	WriteFileAtomic(f("server-key.pem"), key, 0o600)
	after := serial()
	if after == before {
		t.Fatalf("the renewed certificate is not served: serial still %s", after)
	}
	if kp.LastError() != nil {
		t.Errorf("LastError after a good reload: %v", kp.LastError())
	}
}

// Files are looked at no more often than the check interval; Reload forces it.
func TestReloadIsBounded(t *testing.T) {
	f := devSet(t)
	kp, err := LoadKeyPair(f("server.pem"), f("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kp.CheckInterval = time.Hour
	before := kp.Certificate().Leaf.SerialNumber.String()
	ca := loadCA(t, f("ca.pem"), f("ca-key.pem"))
	cert, key, _ := ca.IssueServer([]string{"busbar.test"}, 2*time.Hour)
	WriteFileAtomic(f("server.pem"), cert, 0o644)
	WriteFileAtomic(f("server-key.pem"), key, 0o600)
	if got := kp.Certificate().Leaf.SerialNumber.String(); got != before {
		t.Errorf("the files were read again inside the check interval")
	}
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := kp.Certificate().Leaf; got.SerialNumber.String() == before || got.DNSNames[0] != "busbar.test" {
		t.Errorf("Reload did not pick up the new pair: %s %v", got.SerialNumber, got.DNSNames)
	}
}

func TestOptionErrors(t *testing.T) {
	f := devSet(t)
	cases := []struct {
		srv  *ServerOptions
		cli  *ClientOptions
		want string
	}{
		{srv: &ServerOptions{CertFile: f("server.pem")}, want: "both a certificate and a key"},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("missing.pem")}, want: "missing.pem: no such file"},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("client-key.pem")}, want: "private key does not match public key"},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), ClientCAFile: f("ca.pem")}, want: `say "require" or "verify-if-given"`},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), ClientAuth: "always"}, want: `client auth "always"`},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), ClientAuth: "require"}, want: "needs a client CA file"},
		{srv: &ServerOptions{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), ClientAuth: "require", ClientCAFile: f("server-key.pem")}, want: "holds no PEM certificate"},
		{cli: &ClientOptions{CertFile: f("client.pem")}, want: "needs both cert and key"},
		{cli: &ClientOptions{CAFile: f("nope.pem")}, want: "nope.pem: no such file"},
	}
	for i, c := range cases {
		var err error
		if c.srv != nil {
			_, _, err = Server(*c.srv)
		} else {
			_, _, err = Client(*c.cli)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: want an error containing %q, got %v", i, c.want, err)
		}
	}
}

func TestDevSet(t *testing.T) {
	f := devSet(t)
	for _, name := range DevFiles {
		st, err := os.Stat(f(name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "-key.pem") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	kp, err := LoadKeyPair(f("server.pem"), f("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := kp.Leaf()
	pool, _ := LoadCAPool(f("ca.pem"))
	for _, host := range DevHosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	exp, err := NotAfter(f("server.pem"))
	if err != nil || !exp.Equal(kp.NotAfter()) || time.Until(exp) > time.Hour || time.Until(exp) < 50*time.Minute {
		t.Errorf("NotAfter %v (%v), pair says %v", exp, err, kp.NotAfter())
	}
	cli, _ := LoadKeyPair(f("client.pem"), f("client-key.pem"))
	if _, err := cli.Leaf().Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := cli.Leaf().Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Error("the client certificate verifies as a server certificate")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadCA reads back a CA WriteDevSet wrote.
func loadCA(t *testing.T, certFile, keyFile string) *CA {
	t.Helper()
	ca, err := CAFromPEM(mustRead(t, certFile), mustRead(t, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
