// Package inproc benchmarks Busbar's bench scenarios in one process, without
// wrk or sockets between client and Busbar: the whole route (inbound
// handler, maps, outbound connector) runs through connectors.Server's
// handler against an in-process backend that answers like bench/echo. It is
// where `go test -cpuprofile` shows what limits a scenario:
//
//	go test ./bench/inproc -run '^$' -bench 'Scenario/S5/200' -cpuprofile cpu.out
//	go tool pprof -top -nodecount 25 inproc.test cpu.out
package inproc

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bench/payloads"
	"github.com/busbar/busbar/bench/peers/handbridge"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/internal/cputime"
	"github.com/busbar/busbar/routes"
)

// echoBackend answers like bench/echo: /echo returns the request, the
// others their fixed replies.
func echoBackend(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch fixed, ok := payloads.FixedReplies[r.URL.Path]; {
		case ok:
			w.Header().Set("Content-Type", fixed.ContentType)
			io.WriteString(w, fixed.Body)
		default:
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.Write(body)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// scenario is one of the bench routes served in process, or the
// hand-written bridge doing the same (issue 4 compares S6 and S7 with it).
type scenario struct {
	name, path, ctype string
	soap              bool
	bridge            bool // bench/peers/handbridge instead of Busbar
	// validate serves the config with the demo's request.validate added
	// (in a copy: bench/routes stays the demo route, which S7 measures).
	validate bool
}

var scenarios = []scenario{
	{"S5", "/s5", "text/xml; charset=utf-8", true, false, false},
	{"S6", "/s6", "text/xml; charset=utf-8", true, false, false},
	{"bridge-S6", "/s6", "text/xml; charset=utf-8", true, true, false},
	{"S7", "/s7", "application/json", false, false, false},
	{"S7-validate", "/s7", "application/json", false, false, true},
	{"bridge-S7", "/s7", "application/json", false, true, false},
}

// handler serves the scenario's bench/routes config (or the bridge) against
// echoBackend.
func (sc scenario) handler(tb testing.TB) http.Handler {
	tb.Helper()
	backend := echoBackend(tb)
	if sc.bridge {
		// The pool is sized like bench/peers/bridge's and Busbar's connectors.
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
		tb.Cleanup(client.CloseIdleConnections)
		return handbridge.New(backend.URL, client)
	}
	tb.Setenv("BENCH_BACKEND", backend.URL)
	dir := filepath.Join("..", "routes", strings.ToLower(strings.TrimSuffix(sc.name, "-validate")))
	if sc.validate {
		dir = withValidate(tb, dir)
	}
	cfg, err := routes.Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cfg.Close)
	srv := connectors.NewServer(connectors.ServerConfig{})
	if err := srv.Swap(cfg.Endpoints()); err != nil {
		tb.Fatal(err)
	}
	return srv.Handler()
}

// withValidate copies the S7 config with the demo's voucher schema as its
// route's request.validate.
func withValidate(tb testing.TB, dir string) string {
	tb.Helper()
	tmp := tb.TempDir()
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		tb.Fatal(err)
	}
	schema, err := os.ReadFile(filepath.Join("..", "..", "examples", "schemas", "voucher.schema.json"))
	if err != nil {
		tb.Fatal(err)
	}
	route := filepath.Join(tmp, "routes", "voucher-to-sap.yaml")
	src, err := os.ReadFile(route)
	if err != nil {
		tb.Fatal(err)
	}
	const at = "request:\n"
	if !bytes.Contains(src, []byte(at)) {
		tb.Fatalf("%s has no %q", route, at)
	}
	src = bytes.Replace(src, []byte(at), []byte(at+"  validate: voucher.schema.json\n"), 1)
	if err := errors.Join(os.WriteFile(route, src, 0o644), os.WriteFile(filepath.Join(tmp, "voucher.schema.json"), schema, 0o644)); err != nil {
		tb.Fatal(err)
	}
	return tmp
}

func (sc scenario) body(n int) []byte {
	if sc.soap {
		return payloads.BAPI(n)
	}
	return payloads.Voucher(n)
}

func (sc scenario) serve(h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, sc.path, bytes.NewReader(body))
	req.Header.Set("Content-Type", sc.ctype)
	if sc.soap {
		req.Header.Set("SOAPAction", `"`+payloads.ActionBAPI+`"`)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// BenchmarkScenario runs S5, S6 and S7 (and S7 with request.validate) at 2 and 200 items, and the
// hand-written bridge's S6 and S7 beside them (ratio = S6 ns/op over
// bridge-S6 ns/op; both include the in-process backend's work). b.SetBytes is the
// request body, so MB/s reads as request bytes handled per second.
func BenchmarkScenario(b *testing.B) {
	for _, sc := range scenarios {
		for _, n := range payloads.Lines {
			b.Run(sc.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				h := sc.handler(b)
				body := sc.body(n)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				cpu := cputime.Process()
				for b.Loop() {
					if w := sc.serve(h, body); w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", sc.path, w.Code, w.Body)
					}
				}
				cputime.Report(b, cpu, time.Microsecond)
			})
		}
	}
}
