package routes

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/internal/cputime"
)

// In-process benchmarks of issue 4's scenarios S1–S4 (the configurations
// in testdata/bench are written in the contract's syntax), beside a plain
// httputil.ReverseProxy and a direct call to the same backend.
//
// Each iteration is one request through the handler (no inbound socket:
// what differs between Busbar and a proxy is the handler) to a backend on
// loopback, in a child process, that answers a canned SAP reply. ns/op is
// wall time per request; cpu-ns/op is the CPU this process spent per
// request (getrusage): the handler, its outbound HTTP client and the GC,
// not the backend. BenchmarkDirect is the floor: the same call made by a
// bare http.Client. Run:
//
//	go test ./routes -run '^$' -bench 'Direct|ReverseProxy|PassThrough|Match' -benchmem

const benchReply = `<?xml version="1.0" encoding="utf-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><n0:BAPI_ACC_DOCUMENT_POSTResponse xmlns:n0="urn:sap-com:document:sap:rfc:functions"><OBJ_KEY>010000004220260</OBJ_KEY><OBJ_SYS>ECCCLNT800</OBJ_SYS><OBJ_TYPE>BKPFF</OBJ_TYPE><RETURN><item><TYPE>S</TYPE><ID>RW</ID><NUMBER>605</NUMBER><MESSAGE>Document posted successfully: BKPFF 010000004220260 ECCCLNT800</MESSAGE></item></RETURN></n0:BAPI_ACC_DOCUMENT_POSTResponse></soap-env:Body></soap-env:Envelope>`

// benchEnvelope is a BAPI_ACC_DOCUMENT_POST call with a routing SOAP
// header and n line items.
func benchEnvelope(items int, target, company string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:rfc="urn:sap-com:document:sap:rfc:functions" xmlns:h="urn:busbar:bench">` +
		`<soapenv:Header><h:Routing><h:Target>` + target + `</h:Target><h:Source>OA</h:Source></h:Routing></soapenv:Header>` +
		`<soapenv:Body><rfc:BAPI_ACC_DOCUMENT_POST><DOCUMENTHEADER><BUS_ACT>RFBU</BUS_ACT><USERNAME>OAUSER</USERNAME><COMP_CODE>` + company +
		`</COMP_CODE><DOC_DATE>20261120</DOC_DATE><PSTNG_DATE>20261120</PSTNG_DATE><DOC_TYPE>SA</DOC_TYPE><REF_DOC_NO>EXP-2026-0001</REF_DOC_NO></DOCUMENTHEADER><ACCOUNTGL>`)
	for i := 1; i <= items; i++ {
		fmt.Fprintf(&b, `<item><ITEMNO_ACC>%010d</ITEMNO_ACC><GL_ACCOUNT>0066100000</GL_ACCOUNT><ITEM_TEXT>Travel expense line %d</ITEM_TEXT><COSTCENTER>0000001000</COSTCENTER></item>`, i, i)
	}
	b.WriteString(`</ACCOUNTGL><CURRENCYAMOUNT>`)
	for i := 1; i <= items; i++ {
		fmt.Fprintf(&b, `<item><ITEMNO_ACC>%010d</ITEMNO_ACC><CURRENCY>CNY</CURRENCY><AMT_DOCCUR>125.00</AMT_DOCCUR></item>`, i)
	}
	b.WriteString(`</CURRENCYAMOUNT></rfc:BAPI_ACC_DOCUMENT_POST></soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

// benchBackend serves the canned reply from a child process (this test
// binary running TestBenchBackend), so that the benchmark process's CPU
// time is the proxy's own: the handler and its outbound HTTP client.
func benchBackend(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchBackend$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BUSBAR_BENCH_BACKEND=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench backend: %v", err)
	}
	return "http://" + strings.TrimSpace(addr)
}

// TestBenchBackend is the benchmarks' backend process; it runs only when
// they start it, and stops when its stdin closes.
func TestBenchBackend(t *testing.T) {
	if os.Getenv("BUSBAR_BENCH_BACKEND") == "" {
		t.Skip("the benchmarks' backend process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, benchReply)
	})}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// discardWriter is a reusable ResponseWriter, the same for every contender.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) reset()                      { clear(w.h); w.code, w.n = 0, 0 }

// serve runs h once per iteration with the request body payload and checks
// every answer is the backend's.
func serve(b *testing.B, h http.Handler, path string, headers map[string]string, payload []byte) {
	req := httptest.NewRequest(http.MethodPost, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.ContentLength = int64(len(payload))
	w := &discardWriter{h: http.Header{}}
	body := bytes.NewReader(payload)
	rc := io.NopCloser(body)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for i := 0; i < b.N; i++ {
		body.Reset(payload)
		req.Body = rc
		w.reset()
		h.ServeHTTP(w, req)
		if w.code != 200 || w.n != len(benchReply) {
			b.Fatalf("answer %d with %d bytes", w.code, w.n)
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
}

var benchSizes = []int{2, 200}

func soapHeaders() map[string]string {
	return map[string]string{"Content-Type": "text/xml; charset=utf-8",
		"SOAPAction": `"urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"`}
}

// directHandler is the least a proxy built on net/http's client can do:
// one call with the body in a reused buffer, the reply copied through a
// reused buffer, nothing else.
func directHandler(b *testing.B, client *http.Client, backend string) http.Handler {
	var in bytes.Buffer
	copyBuf := make([]byte, 32<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.Reset()
		in.ReadFrom(r.Body)
		out, _ := http.NewRequest(http.MethodPost, backend, bytes.NewReader(in.Bytes()))
		resp, err := client.Do(out)
		if err != nil {
			b.Fatal(err)
		}
		w.WriteHeader(resp.StatusCode)
		io.CopyBuffer(w, resp.Body, copyBuf)
		resp.Body.Close()
	})
}

// S0: the client calls the backend itself.
func BenchmarkDirect(b *testing.B) {
	backend := benchBackend(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	for _, n := range benchSizes {
		payload := benchEnvelope(n, "b", "2000")
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			serve(b, directHandler(b, client, backend), "/", soapHeaders(), payload)
		})
	}
}

// The pass-through a Go user would write: a plain ReverseProxy with its idle
// pool sized like Busbar's connector.
func BenchmarkReverseProxy(b *testing.B) {
	backend := benchBackend(b)
	target, _ := url.Parse(backend)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.URL.Path = "/" },
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	for _, n := range benchSizes {
		payload := benchEnvelope(n, "b", "2000")
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) { serve(b, rp, "/pass/sap", soapHeaders(), payload) })
	}
}

func benchBusbar(b *testing.B) http.Handler {
	b.Setenv("BACKEND_URL", benchBackend(b))
	cfg, err := Load("testdata/bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cfg.Close)
	srv := connectors.NewServer(connectors.ServerConfig{})
	if err := srv.Swap(cfg.Endpoints()); err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

// S1: pass-through.
func BenchmarkPassThrough(b *testing.B) {
	h := benchBusbar(b)
	for _, n := range benchSizes {
		payload := benchEnvelope(n, "b", "2000")
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) { serve(b, h, "/pass/sap", soapHeaders(), payload) })
	}
}

// S2–S4: two routes share a path; the request goes to the second, so the
// first route's condition is evaluated and fails first.
func BenchmarkMatch(b *testing.B) {
	h := benchBusbar(b)
	headers := soapHeaders()
	headers["X-Route"] = "b"
	for _, kind := range []struct{ name, path string }{{"header", "/hdr"}, {"soap-header", "/soaphdr"}, {"body-xpath", "/xpath"}} {
		for _, n := range benchSizes {
			payload := benchEnvelope(n, "b", "2000")
			b.Run(fmt.Sprintf("%s/items=%d", kind.name, n), func(b *testing.B) { serve(b, h, kind.path, headers, payload) })
		}
	}
}

// contender is one way of serving the benchmark's requests.
type contender struct {
	name, path string
	h          http.Handler
	headers    map[string]string
}

// BenchmarkInterleaved runs the contenders in turn (A C B, B A C, …) in chunks of 25
// requests, so that every one of them meets the same machine load (other
// processes on a shared 2-core machine move separate runs by ±50 %), and
// reports each one's CPU per request and the ratios the targets
// are written in:
//
//	S1/RP   pass-through over a plain ReverseProxy   (target ≤ 0.8)
//	S2/S1   header match over pass-through           (target ≤ 1.05)
//	S3/S1   SOAP-header match over pass-through      (target ≤ 1.10 at 200 items)
//	S4/S1   XPath-on-the-body match over pass-through
//
// The "-net" ratios subtract the direct call (the bare http.Client's CPU,
// which every contender pays): what the proxy itself adds.
func BenchmarkInterleaved(b *testing.B) {
	busbar := benchBusbar(b)
	backend := os.Getenv("BACKEND_URL")
	target, _ := url.Parse(backend)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.URL.Path = "/" },
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	direct := directHandler(b, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, backend)
	headers := soapHeaders()
	headers["X-Route"] = "b"
	contenders := []contender{
		{"direct", "/", direct, headers},
		{"RP", "/pass/sap", rp, headers},
		{"S1", "/pass/sap", busbar, headers},
		{"S2", "/hdr", busbar, headers},
		{"S3", "/soaphdr", busbar, headers},
		{"S4", "/xpath", busbar, headers},
	}
	for _, n := range benchSizes {
		payload := benchEnvelope(n, "b", "2000")
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			const chunk = 25
			reqs := make([]*http.Request, len(contenders))
			for j, c := range contenders {
				reqs[j] = httptest.NewRequest(http.MethodPost, c.path, nil)
				for k, v := range c.headers {
					reqs[j].Header.Set(k, v)
				}
				reqs[j].ContentLength = int64(len(payload))
			}
			w := &discardWriter{h: http.Header{}}
			body := bytes.NewReader(payload)
			rc := io.NopCloser(body)
			cpu := make([]time.Duration, len(contenders))
			b.ResetTimer()
			rng := mathrand.New(mathrand.NewPCG(4, 2))
			for i := 0; i < b.N; i += chunk {
				// A new order every round: a collection of one contender's
				// garbage (a plain ReverseProxy allocates 32 KiB per request)
				// is charged to whoever runs when it happens, so every
				// contender must follow every other one as often. This
				// favours the contenders that allocate most; forcing
				// collections between chunks would cost more than a request.
				for _, j := range rng.Perm(len(contenders)) {
					c := contenders[j]
					start := cputime.Process()
					for k := 0; k < chunk; k++ {
						body.Reset(payload)
						reqs[j].Body = rc
						w.reset()
						c.h.ServeHTTP(w, reqs[j])
						if w.code != 200 || w.n != len(benchReply) {
							b.Fatalf("%s: answer %d with %d bytes", c.name, w.code, w.n)
						}
					}
					cpu[j] += cputime.Process() - start
				}
			}
			per := func(j int) float64 { return float64(cpu[j]) / float64((b.N+chunk-1)/chunk*chunk) }
			for j, c := range contenders {
				b.ReportMetric(per(j), c.name+"-cpu-ns/op")
			}
			d := per(0)
			b.ReportMetric(per(2)/per(1), "S1/RP")
			b.ReportMetric((per(2)-d)/(per(1)-d), "S1/RP-net")
			for j, name := range []string{"S2/S1", "S3/S1", "S4/S1"} {
				b.ReportMetric(per(3+j)/per(2), name)
			}
		})
	}
}
