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
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/busbar/busbar/bench/payloads"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/routes"
)

// echoBackend answers like bench/echo: /echo returns the request, the
// others their fixed replies.
func echoBackend(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/sap/bapi":
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			io.WriteString(w, payloads.BAPIReply)
		case "/api/postings":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, payloads.PostingReply)
		default:
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.Write(body)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// scenario is one of the bench routes served in process.
type scenario struct {
	name, path, ctype string
	soap              bool
}

var scenarios = []scenario{
	{"S5", "/s5", "text/xml; charset=utf-8", true},
	{"S6", "/s6", "text/xml; charset=utf-8", true},
	{"S7", "/s7", "application/json", false},
}

// handler serves the scenario's bench/routes config against echoBackend.
func (sc scenario) handler(tb testing.TB) http.Handler {
	tb.Helper()
	backend := echoBackend(tb)
	tb.Setenv("BENCH_BACKEND", backend.URL)
	cfg, err := routes.Load(filepath.Join("..", "routes", strings.ToLower(sc.name)))
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

// BenchmarkScenario runs S5, S6 and S7 at 2 and 200 items. b.SetBytes is the
// request body, so MB/s reads as request bytes handled per second.
func BenchmarkScenario(b *testing.B) {
	for _, sc := range scenarios {
		for _, n := range payloads.Lines {
			b.Run(sc.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				h := sc.handler(b)
				body := sc.body(n)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if w := sc.serve(h, body); w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", sc.path, w.Code, w.Body)
					}
				}
			})
		}
	}
}
