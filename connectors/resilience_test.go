package connectors

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/sony/gobreaker/v2"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// backend is a loopback HTTP server whose answers a test scripts per call.
type backend struct {
	*httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
	times  []time.Time
	answer func(n int, w http.ResponseWriter, r *http.Request) // n counts from 1
}

func newBackend(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *backend {
	t.Helper()
	b := &backend{answer: answer}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.times = append(b.times, time.Now())
		b.mu.Unlock()
		b.answer(int(b.calls.Add(1)), w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// status answers with the given statuses in turn, the last one from then on.
func status(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(codes[min(n, len(codes))-1])
		w.Write([]byte(`{"n":` + strconv.Itoa(n) + `}`))
	}
}

// mustBuild validates and builds a connector that closes with the test.
func mustBuild(t *testing.T, c bus.ConnectorConfig, name string) bus.Connector {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	k, err := c.Build(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func build(t *testing.T, c HTTPConfig) *HTTPConnector {
	t.Helper()
	return mustBuild(t, &c, "erp").(*HTTPConnector)
}

// fast are retry settings that keep tests quick.
var fast = RetryConfig{Backoff: bus.Duration(time.Millisecond), MaxBackoff: bus.Duration(5 * time.Millisecond)}

func call(ctx context.Context, k bus.Connector, method string) (*bus.Message, *bus.Fault) {
	m := bus.NewMessage()
	m.Method = method
	if method != http.MethodGet {
		m.SetJSON([]byte(`{"voucher":"EXP-1"}`))
	}
	reply, err := k.Call(ctx, m)
	if err != nil {
		return nil, bus.AsFault(err)
	}
	return reply, nil
}

// callStatus is the status the caller sees: the reply's, or the fault's.
func callStatus(ctx context.Context, k bus.Connector, method string) (int, *bus.Fault) {
	reply, f := call(ctx, k, method)
	if f != nil {
		return f.Status, f
	}
	return reply.Status, nil
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		answers    []int
		idempotent bool // the connector says so
		route      bool // the route says so
		on         []string
		calls      int32
		status     int // reply status, or the fault's
	}{
		{"get-503-then-ok", "GET", []int{503, 503, 200}, false, false, nil, 3, 200},
		{"get-gives-up-after-attempts", "GET", []int{502}, false, false, nil, 3, 502},
		{"put-504-then-ok", "PUT", []int{504, 200}, false, false, nil, 2, 200},
		{"get-429-then-ok", "GET", []int{429, 201}, false, false, nil, 2, 201},
		{"post-503-not-retried", "POST", []int{503, 200}, false, false, nil, 1, 502},
		{"post-503-connector-idempotent", "POST", []int{503, 503, 200}, true, false, nil, 3, 200},
		{"post-503-route-idempotent", "POST", []int{503, 200}, false, true, nil, 2, 200},
		{"post-500-never-retried", "POST", []int{500, 200}, true, false, nil, 1, 502},
		{"get-500-never-retried", "GET", []int{500, 200}, false, false, nil, 1, 502},
		{"get-404-not-retried", "GET", []int{404, 200}, false, false, nil, 1, 404},
		{"503-not-in-on", "GET", []int{503, 200}, false, false, []string{"connect", "502"}, 1, 502},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t, status(c.answers...))
			r := fast
			r.On = c.on
			k := build(t, HTTPConfig{URL: b.URL, Retry: r, Idempotent: c.idempotent, Breaker: BreakerConfig{Disabled: true}})
			ctx := context.Background()
			if c.route {
				ctx = WithIdempotent(ctx)
			}
			got, f := callStatus(ctx, k, c.method)
			if got != c.status || b.calls.Load() != c.calls {
				t.Errorf("want status %d after %d calls, got %d after %d (fault %v)", c.status, c.calls, got, b.calls.Load(), f)
			}
			for i, body := range b.bodies {
				if c.method != "GET" && body != `{"voucher":"EXP-1"}` {
					t.Errorf("attempt %d sent %q", i+1, body)
				}
			}
		})
	}
}

// refusedURL is the URL of a loopback port nothing listens on.
func refusedURL() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ln.Close()
	return "http://" + ln.Addr().String()
}

// Nothing listens: the call never reached a backend, so even a POST is retried.
func TestRetryConnectionRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	k := build(t, HTTPConfig{URL: "http://" + addr, Retry: fast, Breaker: BreakerConfig{Disabled: true}})
	_, f := call(context.Background(), k, "POST")
	if f == nil || f.Status != 502 || !strings.HasSuffix(f.Detail, "(3 attempts)") {
		t.Fatalf("want a 502 after 3 attempts, got %v", f)
	}
	k = build(t, HTTPConfig{URL: "http://" + addr, Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Disabled: true}})
	if _, f = call(context.Background(), k, "POST"); f == nil || strings.Contains(f.Detail, "attempts") {
		t.Fatalf("attempts: 1 must not retry: %v", f)
	}
}

// A timeout after the request was sent is retried for GET, not for POST.
func TestRetryTimeout(t *testing.T) {
	hang := func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done() // the connector gives up first
			return
		}
		w.WriteHeader(200)
	}
	// A GET is retried after the timeout and answered; on a loaded machine
	// the retry itself may also run out of time and be retried once more,
	// so only "at least two calls" is asserted for it. A POST is never resent.
	for _, c := range []struct {
		method             string
		minCalls, maxCalls int32
		status             int
	}{{"GET", 2, 3, 200}, {"POST", 1, 1, 504}} {
		b := newBackend(t, hang)
		k := build(t, HTTPConfig{URL: b.URL, Timeout: bus.Duration(200 * time.Millisecond), Retry: fast, Breaker: BreakerConfig{Disabled: true}})
		got, f := callStatus(context.Background(), k, c.method)
		if n := b.calls.Load(); got != c.status || n < c.minCalls || n > c.maxCalls {
			t.Errorf("%s: want %d after %d–%d calls, got %d after %d (%v)", c.method, c.status, c.minCalls, c.maxCalls, got, n, f)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	answer := func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	}
	t.Run("longer-than-max-backoff-is-not-waited-for", func(t *testing.T) {
		b := newBackend(t, answer)
		k := build(t, HTTPConfig{URL: b.URL, Retry: RetryConfig{MaxBackoff: bus.Duration(500 * time.Millisecond)}, Breaker: BreakerConfig{Disabled: true}})
		if _, f := call(context.Background(), k, "GET"); f == nil || f.Status != 502 || b.calls.Load() != 1 {
			t.Errorf("want the 503 passed on after 1 call, got %v after %d", f, b.calls.Load())
		}
	})
	t.Run("honoured", func(t *testing.T) {
		b := newBackend(t, answer)
		k := build(t, HTTPConfig{URL: b.URL, Retry: RetryConfig{Backoff: bus.Duration(time.Millisecond), MaxBackoff: bus.Duration(2 * time.Second)}, Breaker: BreakerConfig{Disabled: true}})
		if reply, f := call(context.Background(), k, "GET"); f != nil || reply.Status != 200 || b.calls.Load() != 2 {
			t.Fatalf("want 200 after 2 calls, got %v after %d", f, b.calls.Load())
		}
		// A lower bound only: the retry must not come before the backend allowed it.
		if gap := b.times[1].Sub(b.times[0]); gap < 990*time.Millisecond {
			t.Errorf("retried %v after a Retry-After of 1s", gap)
		}
	})
	t.Run("not-past-the-deadline", func(t *testing.T) {
		b := newBackend(t, answer)
		k := build(t, HTTPConfig{URL: b.URL, Retry: RetryConfig{MaxBackoff: bus.Duration(2 * time.Second)}, Breaker: BreakerConfig{Disabled: true}})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, f := call(ctx, k, "GET"); f == nil || f.Status != 502 || b.calls.Load() != 1 {
			t.Errorf("want the 503 passed on at once (1 call), got %v after %d", f, b.calls.Load())
		}
		if ctx.Err() != nil {
			t.Error("the call waited for the deadline instead of answering")
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"Mon, 23 Nov 2026 10:00:07 GMT", 7 * time.Second, true},
		{"Mon, 23 Nov 2026 09:00:00 GMT", 0, true},
	}
	for i, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("case %d %q: want %v %v, got %v %v", i, c.in, c.want, c.ok, got, ok)
		}
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := newRetryPolicy(RetryConfig{Attempts: 10, Backoff: bus.Duration(100 * time.Millisecond), MaxBackoff: bus.Duration(time.Second)})
	var got []time.Duration
	for n := 0; n < 6; n++ {
		d, _, _ := p.wait(n, nil)
		got = append(got, d)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	o := &outbound{retry: p}
	for n := 0; n < 6; n++ {
		if d := o.backoff(0, 0, n, nil); d < got[n]/2 || d > got[n] {
			t.Errorf("retry %d: jittered wait %v outside [%v, %v]", n, d, got[n]/2, got[n])
		}
	}
}

// breakerSettings opens after 3 failures and stays open long enough that a
// test's next call certainly finds it open.
var breakerSettings = BreakerConfig{Failures: 3, OpenFor: bus.Duration(time.Minute)}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	b := newBackend(t, status(500))
	k := build(t, HTTPConfig{URL: b.URL, Retry: fast, Breaker: breakerSettings})
	for i := 0; i < 3; i++ {
		if _, f := call(context.Background(), k, "POST"); f == nil || f.Status != 502 {
			t.Fatalf("call %d: want the backend's 500 as 502, got %v", i+1, f)
		}
	}
	for i := 0; i < 5; i++ {
		_, f := call(context.Background(), k, "POST")
		if f == nil || f.Status != 503 || f.Title != "Backend circuit open" {
			t.Fatalf("want 503 Backend circuit open, got %v", f)
		}
		if !strings.Contains(f.Detail, `connector "erp": 3 calls in a row failed; calls are refused until `) {
			t.Errorf("detail: %s", f.Detail)
		}
		if ra, _ := strconv.Atoi(f.Header.Get("Retry-After")); ra < 55 || ra > 60 {
			t.Errorf("Retry-After %q, want about 60", f.Header.Get("Retry-After"))
		}
	}
	if n := b.calls.Load(); n != 3 {
		t.Errorf("the backend got %d calls, want 3: an open breaker must not call", n)
	}
}

// What does not count: 4xx, SOAP Faults, callers who hung up.
func TestBreakerIgnoresAnswers(t *testing.T) {
	t.Run("4xx", func(t *testing.T) {
		b := newBackend(t, status(422))
		k := build(t, HTTPConfig{URL: b.URL, Retry: fast, Breaker: breakerSettings})
		for i := 0; i < 6; i++ {
			if _, f := call(context.Background(), k, "POST"); f == nil || f.Status != 422 {
				t.Fatalf("call %d: %v", i+1, f)
			}
		}
	})
	t.Run("soap-fault", func(t *testing.T) {
		b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(500)
			io.WriteString(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>`+
				`<faultcode>s:Client</faultcode><faultstring>Company code 9999 does not exist</faultstring></s:Fault></s:Body></s:Envelope>`)
		})
		k := buildSOAP(t, b.URL)
		for i := 0; i < 6; i++ {
			if _, f := callSOAP(k); f == nil || f.FaultString != "Company code 9999 does not exist" {
				t.Fatalf("call %d: want the SOAP fault, got %v", i+1, f)
			}
		}
		if b.calls.Load() != 6 {
			t.Errorf("backend calls %d, want 6", b.calls.Load())
		}
	})
	t.Run("soap-500-without-fault-counts", func(t *testing.T) {
		b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			io.WriteString(w, `<html>Internal Server Error</html>`)
		})
		k := buildSOAP(t, b.URL)
		for i := 0; i < 4; i++ {
			callSOAP(k)
		}
		if _, f := callSOAP(k); f == nil || f.Status != 503 || b.calls.Load() != 3 {
			t.Errorf("want the breaker open after 3 calls, got %v after %d", f, b.calls.Load())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		b := newBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n <= 3 {
				arrived <- struct{}{}
				<-r.Context().Done()
				return
			}
			w.WriteHeader(200)
		})
		k := build(t, HTTPConfig{URL: b.URL, Retry: fast, Breaker: BreakerConfig{Failures: 1, OpenFor: bus.Duration(time.Minute)}})
		for i := 0; i < 3; i++ {
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-arrived; cancel() }()
			if _, f := call(ctx, k, "POST"); f == nil || !errors.Is(f, context.Canceled) {
				t.Fatalf("call %d: want a cancelled call, got %v", i+1, f)
			}
		}
		if reply, f := call(context.Background(), k, "POST"); f != nil || reply.Status != 200 {
			t.Errorf("cancelled calls opened the breaker: %v", f)
		}
	})
}

func TestBreakerHalfOpen(t *testing.T) {
	var healthy atomic.Bool
	b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(200)
			return
		}
		w.WriteHeader(502)
	})
	k := build(t, HTTPConfig{URL: b.URL, Retry: RetryConfig{Attempts: 1},
		Breaker: BreakerConfig{Failures: 2, OpenFor: bus.Duration(300 * time.Millisecond)}})
	open := func() {
		t.Helper()
		for i := 0; i < 2; i++ {
			call(context.Background(), k, "POST")
		}
		if k.endpoints[0].breaker.cb.State() != gobreaker.StateOpen {
			t.Fatalf("breaker %v after 2 failures", k.endpoints[0].breaker.cb.State())
		}
	}
	waitHalfOpen := func() {
		t.Helper()
		for i := 0; k.endpoints[0].breaker.cb.State() != gobreaker.StateHalfOpen; i++ {
			if i > 200 {
				t.Fatal("the breaker never became half-open")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A failed trial opens it again.
	open()
	waitHalfOpen()
	before := b.calls.Load()
	if _, f := call(context.Background(), k, "POST"); f == nil || f.Status != 502 {
		t.Fatalf("the trial call: %v", f)
	}
	if _, f := call(context.Background(), k, "POST"); f == nil || f.Status != 503 {
		t.Fatalf("after a failed trial: want 503, got %v", f)
	}
	if n := b.calls.Load() - before; n != 1 {
		t.Errorf("the backend got %d calls while half-open, want 1 trial", n)
	}
	// A good trial closes it: calls flow again.
	waitHalfOpen()
	healthy.Store(true)
	for i := 0; i < 3; i++ {
		if reply, f := call(context.Background(), k, "POST"); f != nil || reply.Status != 200 {
			t.Fatalf("call %d after recovery: %v", i+1, f)
		}
	}
	if k.endpoints[0].breaker.cb.State() != gobreaker.StateClosed {
		t.Errorf("breaker %v after a good trial", k.endpoints[0].breaker.cb.State())
	}
}

func TestMaxInflight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	b := newBackend(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			close(entered)
			<-release
		}
		w.WriteHeader(200)
	})
	k := build(t, HTTPConfig{URL: b.URL, MaxInflight: 1})
	first := make(chan *bus.Fault)
	go func() { _, f := call(context.Background(), k, "POST"); first <- f }()
	<-entered
	_, f := call(context.Background(), k, "POST")
	if f == nil || f.Status != 503 || f.Title != "Backend busy" || f.Header.Get("Retry-After") != "1" || !errors.Is(f, ErrBusy) {
		t.Errorf("want 503 Backend busy with Retry-After 1 (ErrBusy), got %v %v", f, f.Header)
	}
	close(release)
	if f := <-first; f != nil {
		t.Fatal(f)
	}
	if _, f := call(context.Background(), k, "POST"); f != nil {
		t.Errorf("a freed slot is not reused: %v", f)
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("backend calls %d, want 2", n)
	}
}

// REST and SOAP callers see the Retry-After that goes with a fault.
func TestFaultHeadersReachCallers(t *testing.T) {
	open := func(context.Context, *bus.Message) (*bus.Message, error) {
		return nil, unavailable("erp", "Backend circuit open", 17, "open")
	}
	srv := NewServer(ServerConfig{})
	srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/x", Handle: open}},
		SOAP: []*SOAPEndpoint{{Path: "/soap", Operations: []SOAPOperation{{Route: "s", Handle: open}}}},
	})
	h := httptest.NewServer(srv.Handler())
	defer h.Close()
	for _, c := range []struct {
		path, contentType, body string
		status                  int
		want                    string
	}{
		{"/x", "application/json", `{}`, 503,
			`{"type":"about:blank","title":"Backend circuit open","status":503,"detail":"connector \"erp\": open","correlationId":"`},
		{"/soap", "text/xml; charset=utf-8", `<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Req/></soap:Body></soap:Envelope>`, 500,
			`<faultstring>Backend circuit open: connector "erp": open</faultstring>`},
	} {
		resp, err := http.Post(h.URL+c.path, c.contentType, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("Retry-After") != "17" || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %v %s", c.path, resp.StatusCode, resp.Header, body)
		}
	}
}

func TestResilienceValidation(t *testing.T) {
	cases := []struct {
		cfg  HTTPConfig
		want string
	}{
		{HTTPConfig{Retry: RetryConfig{Attempts: -1}}, `field "retry.attempts" must be at least 1`},
		{HTTPConfig{Retry: RetryConfig{Attempts: 11}}, `field "retry.attempts": 11 tries`},
		{HTTPConfig{Retry: RetryConfig{Backoff: bus.Duration(time.Second), MaxBackoff: bus.Duration(time.Millisecond)}}, `field "retry.backoff": 1s is longer than max-backoff 1ms`},
		{HTTPConfig{Retry: RetryConfig{On: []string{"500"}}}, `field "retry.on": "500" is not retryable: use connect, timeout, reset, 429, 502, 503, 504`},
		{HTTPConfig{Breaker: BreakerConfig{Failures: -2}}, `field "breaker.failures" must not be negative`},
		{HTTPConfig{Breaker: BreakerConfig{HalfOpenCalls: -1}}, `field "breaker.half-open-calls" must not be negative`},
		{HTTPConfig{MaxInflight: -1}, `field "max-inflight" must not be negative`},
		{HTTPConfig{TLS: &TLSConfig{}}, `field "tls": "http://127.0.0.1:9" is not an https:// URL`},
	}
	for i, c := range cases {
		c.cfg.URL = "http://127.0.0.1:9"
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
	}
}

func buildSOAP(t *testing.T, url string) bus.Connector {
	t.Helper()
	return mustBuild(t, &SOAPConfig{Version: "1.1", HTTPConfig: HTTPConfig{URL: url, Retry: fast, Breaker: breakerSettings}}, "sap")
}

func callSOAP(k bus.Connector) (*bus.Message, *bus.Fault) {
	doc, _ := parseXMLString(`<Ping xmlns="urn:test"/>`)
	m := bus.NewMessage()
	m.SetXML(doc)
	reply, err := k.Call(context.Background(), m)
	if err != nil {
		return nil, bus.AsFault(err)
	}
	return reply, nil
}

func parseXMLString(s string) (*etree.Element, error) {
	doc, err := transforms.ParseXML([]byte(s), "")
	if err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// The defaults as docs/routes.md writes them: a connector that sets no
// retry key gets 3 attempts, 200ms, doubling, capped at 5s.
func TestRetryDefaults(t *testing.T) {
	p := newRetryPolicy(RetryConfig{})
	if p == nil || p.attempts != 3 || p.backoff != 200*time.Millisecond || p.maxBackoff != 5*time.Second {
		t.Fatalf("defaults: want 3 attempts, 200ms, 5s, got %+v", p)
	}
	var waits []time.Duration
	for n := range 6 {
		d, _, _ := p.wait(n, nil)
		waits = append(waits, d)
	}
	want := []time.Duration{200, 400, 800, 1600, 3200, 5000}
	for i := range want {
		if waits[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", waits, want)
		}
	}
	for _, c := range condNames[1:] {
		if p.on&condByName(c).bit() == 0 {
			t.Errorf("%s is not retried by default", c)
		}
	}
	// Only a max-backoff below the default backoff lowers it.
	if p := newRetryPolicy(RetryConfig{MaxBackoff: bus.Duration(50 * time.Millisecond)}); p.backoff != 50*time.Millisecond {
		t.Errorf("max-backoff 50ms: backoff %v, want 50ms", p.backoff)
	}
	if p := newRetryPolicy(RetryConfig{MaxBackoff: bus.Duration(time.Minute)}); p.backoff != 200*time.Millisecond {
		t.Errorf("max-backoff 1m: backoff %v, want 200ms", p.backoff)
	}
	// Measured on a connector: the first retry waits between half and all
	// of 200ms (the jitter).
	b := newBackend(t, status(503, 200))
	k := build(t, HTTPConfig{URL: b.URL, Breaker: BreakerConfig{Disabled: true}})
	if got, f := callStatus(context.Background(), k, "GET"); got != 200 || len(b.times) != 2 {
		t.Fatalf("want 200 after 2 calls, got %d after %d (%v)", got, len(b.times), f)
	}
	if gap := b.times[1].Sub(b.times[0]); gap < 100*time.Millisecond || gap > time.Second {
		t.Errorf("first retry after %v, want 100ms–200ms (plus scheduling)", gap)
	}
}

// A reply that blames the caller never counts against the backend, on any
// connector kind; a Server/Receiver fault on a 5xx does.
func TestBreakerVerdictOnFaults(t *testing.T) {
	const (
		fault11 = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:%s</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>`
		fault12 = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:%s</env:Value>` +
			`<env:Subcode><env:Value>m:Other</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">no</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`
	)
	raw := func(k bus.Connector) *bus.Fault {
		m := bus.NewMessage()
		m.Format, m.Body, m.ContentType = bus.FormatRaw, []byte("<x/>"), "text/xml"
		if _, err := k.Call(context.Background(), m); err != nil {
			return bus.AsFault(err)
		}
		return nil
	}
	mapped := func(k bus.Connector) *bus.Fault { _, f := call(context.Background(), k, "POST"); return f }
	soap := func(k bus.Connector) *bus.Fault { _, f := callSOAP(k); return f }
	cases := []struct {
		name, version, contentType, body string
		status                           int
		call                             func(bus.Connector) *bus.Fault
		counts                           bool
	}{
		{"soap11-client-500", "1.1", "text/xml", fault11, 500, soap, false},
		{"soap11-client-subcode-500", "1.1", "text/xml", strings.Replace(fault11, "%s", "Client.Auth", 1), 500, soap, false},
		{"soap11-server-500", "1.1", "text/xml", strings.Replace(fault11, "%s", "Server", 1), 500, soap, true},
		{"soap12-sender-500", "1.2", "application/soap+xml", fault12, 500, soap, false},
		{"soap12-receiver-500", "1.2", "application/soap+xml", strings.Replace(fault12, "%s", "Receiver", 1), 500, soap, true},
		{"soap12-sender-400", "1.2", "application/soap+xml", fault12, 400, soap, false},
		{"rest-mislabelled-client-fault-500", "", "text/html", fault11, 500, mapped, false},
		{"rest-503", "", "application/json", `{"error":"down"}`, 503, mapped, true},
		{"rest-429", "", "application/json", `{"error":"slow down"}`, 429, mapped, false},
		{"raw-client-fault-500", "", "text/xml; charset=utf-8", fault11, 500, raw, false},
		{"raw-sender-fault-500", "", "", fault12, 500, raw, false},
		{"raw-server-fault-500", "", "text/xml", strings.Replace(fault11, "%s", "Server", 1), 500, raw, true},
		{"raw-html-500", "", "text/html", `<html>Internal Server Error</html>`, 500, raw, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(c.body, "%s", map[bool]string{true: "Sender", false: "Client"}[strings.Contains(c.body, "2003/05")], 1)
			b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if c.contentType != "" {
					w.Header().Set("Content-Type", c.contentType)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, body)
			})
			hc := HTTPConfig{URL: b.URL, Retry: RetryConfig{Attempts: 1}, Breaker: breakerSettings}
			var k bus.Connector
			if c.version != "" {
				k = mustBuild(t, &SOAPConfig{Version: c.version, HTTPConfig: hc}, "sap")
			} else {
				k = build(t, hc)
			}
			for range 5 {
				c.call(k)
			}
			f := c.call(k)
			open := f != nil && f.Title == "Backend circuit open"
			if open != c.counts || (!c.counts && b.calls.Load() != 6) {
				t.Errorf("want breaker open %v, got %v after %d backend calls (%v)", c.counts, open, b.calls.Load(), f)
			}
		})
	}
}

// A call that must not be repeated and failed after its request went out
// says the backend may have acted on it; one that never connected says
// nothing was sent. Every connector kind answers alike.
func TestOutcomeUnknown(t *testing.T) {
	hang := func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	cut := func(_ int, w http.ResponseWriter, _ *http.Request) { // headers, half the body, then the connection drops
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, `{"posted":`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	kinds := []struct {
		name string
		call func(bus.Connector) *bus.Fault
		soap bool
	}{
		{"mapped", func(k bus.Connector) *bus.Fault {
			m := bus.NewMessage()
			m.CorrelationID = "corr-42"
			m.SetJSON([]byte(`{"voucher":"EXP-1"}`))
			_, err := k.Call(context.Background(), m)
			return bus.AsFault(err)
		}, false},
		{"raw", func(k bus.Connector) *bus.Fault {
			m := bus.NewMessage()
			m.CorrelationID = "corr-42"
			m.Format, m.Body, m.ContentType = bus.FormatRaw, []byte(`<voucher/>`), "text/xml"
			_, err := k.Call(context.Background(), m)
			return bus.AsFault(err)
		}, false},
		{"soap", func(k bus.Connector) *bus.Fault {
			doc, _ := parseXMLString(`<Post xmlns="urn:test"/>`)
			m := bus.NewMessage()
			m.CorrelationID = "corr-42"
			m.SetXML(doc)
			_, err := k.Call(context.Background(), m)
			return bus.AsFault(err)
		}, true},
	}
	for _, kind := range kinds {
		for _, c := range []struct {
			name    string
			answer  func(int, http.ResponseWriter, *http.Request)
			status  int
			title   string
			unknown bool
		}{
			{"hang", hang, 504, "Backend outcome unknown", true},
			{"cut-mid-reply", cut, 504, "Backend outcome unknown", true},
			{"refused", nil, 502, "Backend unreachable", false},
		} {
			t.Run(kind.name+"/"+c.name, func(t *testing.T) {
				url := refusedURL()
				var b *backend
				if c.answer != nil {
					b = newBackend(t, c.answer)
					url = b.URL
				}
				hc := HTTPConfig{URL: url, Timeout: bus.Duration(300 * time.Millisecond), Retry: fast, Breaker: BreakerConfig{Disabled: true}}
				var k bus.Connector = build(t, hc)
				if kind.soap {
					k = mustBuild(t, &SOAPConfig{Version: "1.1", HTTPConfig: hc}, "erp")
				}
				f := kind.call(k)
				if f == nil || f.Status != c.status || f.Title != c.title || f.Blame != bus.BlameServer {
					t.Fatalf("want %d %q, got %v", c.status, c.title, f)
				}
				says := strings.Contains(f.Detail, "the backend may have processed the request; check before resending (correlation id corr-42)")
				if says != c.unknown {
					t.Errorf("detail %q: want outcome-unknown words %v", f.Detail, c.unknown)
				}
				if b != nil && b.calls.Load() != 1 {
					t.Errorf("the backend got %d calls, want 1: a POST is never resent", b.calls.Load())
				}
			})
		}
	}
	// An idempotent call's timeout is a plain timeout: it could be, and was, retried.
	b := newBackend(t, hang)
	k := build(t, HTTPConfig{URL: b.URL, Timeout: bus.Duration(100 * time.Millisecond), Retry: fast, Breaker: BreakerConfig{Disabled: true}})
	if _, f := call(context.Background(), k, "GET"); f == nil || f.Title != "Backend timeout" || b.calls.Load() != 3 {
		t.Errorf("GET: want a plain Backend timeout after 3 calls, got %v after %d", f, b.calls.Load())
	}
}

// Several endpoints: failover takes the first whose breaker is closed,
// round-robin takes turns; a call moves on only when it reached nobody.
func TestEndpoints(t *testing.T) {
	ok := func() *backend { return newBackend(t, status(200)) }
	brk := BreakerConfig{Failures: 1, OpenFor: bus.Duration(time.Minute)}

	t.Run("failover-past-a-refused-endpoint", func(t *testing.T) {
		good := ok()
		k := build(t, HTTPConfig{URLs: []string{refusedURL(), good.URL}, Retry: fast, Breaker: brk})
		for i := range 3 {
			if got, f := callStatus(context.Background(), k, "POST"); got != 200 {
				t.Fatalf("call %d: want 200 from the second endpoint, got %d %v", i+1, got, f)
			}
		}
		if good.calls.Load() != 3 || k.endpoints[0].breaker.cb.State() != gobreaker.StateOpen ||
			k.endpoints[0].breaker.name() != "erp[1]" || k.endpoints[1].breaker.name() != "erp[2]" {
			t.Errorf("want 3 calls on erp[2] and erp[1] open, got %d, %s %v", good.calls.Load(),
				k.endpoints[0].breaker.name(), k.endpoints[0].breaker.cb.State())
		}
	})
	t.Run("round-robin", func(t *testing.T) {
		a, b := ok(), ok()
		k := build(t, HTTPConfig{URLs: []string{a.URL, b.URL}, Balance: "round-robin", Retry: fast, Breaker: brk})
		for range 6 {
			callStatus(context.Background(), k, "POST")
		}
		if a.calls.Load() != 3 || b.calls.Load() != 3 {
			t.Errorf("want 3 calls each, got %d and %d", a.calls.Load(), b.calls.Load())
		}
	})
	t.Run("a-sent-call-never-moves", func(t *testing.T) {
		hang := newBackend(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		good := ok()
		k := build(t, HTTPConfig{URLs: []string{hang.URL, good.URL}, Timeout: bus.Duration(200 * time.Millisecond), Retry: fast, Breaker: brk})
		_, f := call(context.Background(), k, "POST")
		if f == nil || f.Title != "Backend outcome unknown" || hang.calls.Load() != 1 || good.calls.Load() != 0 {
			t.Errorf("want outcome unknown from the first endpoint alone, got %v (calls %d, %d)", f, hang.calls.Load(), good.calls.Load())
		}
		// Its breaker opened: the next call goes to the second endpoint.
		if got, f := callStatus(context.Background(), k, "POST"); got != 200 || good.calls.Load() != 1 {
			t.Errorf("want the open endpoint skipped, got %d %v", got, f)
		}
	})
	t.Run("all-open", func(t *testing.T) {
		k := build(t, HTTPConfig{URLs: []string{refusedURL(), refusedURL()}, Retry: fast,
			Breaker: BreakerConfig{Failures: 1, OpenFor: bus.Duration(time.Minute)}})
		if _, f := call(context.Background(), k, "POST"); f == nil || f.Title != "Backend unreachable" {
			t.Fatalf("want Backend unreachable when no endpoint answers, got %v", f)
		}
		_, f := call(context.Background(), k, "POST")
		ra, _ := strconv.Atoi(f.Header.Get("Retry-After"))
		if f == nil || f.Status != 503 || f.Title != "Backend circuit open" || ra < 55 || ra > 60 ||
			!strings.Contains(f.Detail, "the breakers of all 2 endpoints are open") {
			t.Errorf("want 503 Backend circuit open with Retry-After about 60, got %v %v", f, f.Header)
		}
	})
}

func TestEndpointsValidation(t *testing.T) {
	for i, c := range []struct {
		cfg  HTTPConfig
		want string
	}{
		{HTTPConfig{}, `field "url" is required (or "urls", for several endpoints)`},
		{HTTPConfig{URL: "http://a", URLs: []string{"http://b"}}, `field "urls": write either url or urls, not both`},
		{HTTPConfig{URLs: []string{"http://a", "ftp://b"}}, `field "urls": "ftp://b" must start with http:// or https://`},
		{HTTPConfig{URL: "http://a", Balance: "random"}, `field "balance": "random" is not a balance: write failover or round-robin`},
	} {
		if err := c.cfg.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
	}
}
