package routes

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/connectors"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// busbar is a Busbar serving a configuration directory on a loopback port,
// in this process, as `busbar serve` would.
type busbar struct {
	URL string
	srv *connectors.Server
	cfg *Config
}

// start serves dir. BUSBAR_DEMO_URL is set to the server's own URL first,
// so the demo's connectors reach the demo backends it serves.
func start(t *testing.T, dir string) *busbar {
	t.Helper()
	return startWith(t, dir, connectors.ServerConfig{})
}

// startWith is start with the server's settings (its Listen is set here)
// and load options.
func startWith(t *testing.T, dir string, sc connectors.ServerConfig, opts ...Option) *busbar {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	t.Setenv("BUSBAR_DEMO_URL", url)
	cfg, err := Load(dir, opts...)
	if err != nil {
		ln.Close()
		t.Fatalf("load %s:\n%v", dir, err)
	}
	sc.Listen = ln.Addr().String()
	srv := connectors.NewServer(sc)
	if err := srv.Swap(cfg.Endpoints()); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		cfg.Close()
	})
	return &busbar{URL: url, srv: srv, cfg: cfg}
}

// reply is what a client received.
type reply struct {
	Status      int
	ContentType string
	Header      http.Header
	Body        string
}

var client = &http.Client{Timeout: 20 * time.Second}

func (b *busbar) do(t *testing.T, method, path string, headers map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, b.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// A fixed correlation id keeps the faults in golden files the same from
	// run to run; a test may send its own.
	req.Header.Set("X-Correlation-ID", "test-correlation-id")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: string(data)}
}

func (b *busbar) postJSON(t *testing.T, path, body string) reply {
	return b.do(t, http.MethodPost, path, map[string]string{"Content-Type": "application/json"}, body)
}

func (b *busbar) postSOAP11(t *testing.T, path, action, body string) reply {
	return b.do(t, http.MethodPost, path, map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"` + action + `"`}, body)
}

func (b *busbar) postSOAP12(t *testing.T, path, action, body string) reply {
	return b.do(t, http.MethodPost, path, map[string]string{"Content-Type": `application/soap+xml; charset=utf-8; action="` + action + `"`}, body)
}

// golden compares got with testdata/golden/<name>, or rewrites it with -update.
// Addresses of the loopback server are replaced by ADDR so files are stable.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = loopback.ReplaceAllString(got, "ADDR")
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./routes -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: want\n%s\ngot\n%s", name, want, got)
	}
}

var loopback = regexp.MustCompile(`127\.0\.0\.1:\d+`)

func (r reply) expect(t *testing.T, status int, contentType string) {
	t.Helper()
	if r.Status != status || r.ContentType != contentType {
		t.Fatalf("want %d %s, got %d %s:\n%s", status, contentType, r.Status, r.ContentType, r.Body)
	}
}
