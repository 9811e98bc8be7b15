package connectors

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/busbar/busbar/bus"
)

func TestParseRate(t *testing.T) {
	for i, c := range []struct {
		in    string
		limit rate.Limit
		count int
		err   string
	}{
		{"50/s", 50, 50, ""},
		{"600/min", 10, 600, ""},
		{" 3600 / h ", 1, 3600, ""},
		{"5/10s", 0.5, 5, ""},
		{"10/100ms", 100, 10, ""},
		{"50", 0, 0, `"50": write a whole number of requests over a period`},
		{"0/s", 0, 0, `"0/s": write a whole number`},
		{"1.5/s", 0, 0, `"1.5/s": write a whole number`},
		{"5/fortnight", 0, 0, `"5/fortnight": the period "fortnight" is not s, min, h or a duration such as 10s`},
		{"5/-1s", 0, 0, `the period "-1s"`},
	} {
		limit, count, err := parseRate(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("case %d: %q: want an error with %q, got %v", i, c.in, c.err, err)
		case c.err == "" && (err != nil || limit != c.limit || count != c.count):
			t.Errorf("case %d: %q: want %v/s (%d), got %v/s (%d), %v", i, c.in, c.limit, c.count, limit, count, err)
		}
	}
}

func TestRateLimitValidate(t *testing.T) {
	for i, c := range []struct {
		cfg  RateLimitConfig
		want string // "" valid
	}{
		{RateLimitConfig{Rate: "50/s"}, ""},
		{RateLimitConfig{Rate: "50/s", Burst: 100, Per: "caller", Key: "header:X-Api-Key"}, ""},
		{RateLimitConfig{Rate: "50/s", Per: "caller", Key: "ip"}, ""},
		{RateLimitConfig{}, `field "rate-limit.rate": "": write a whole number`},
		{RateLimitConfig{Rate: "50/s", Burst: -1}, `field "rate-limit.burst" must not be negative`},
		{RateLimitConfig{Rate: "50/s", Per: "user"}, `field "rate-limit.per": "user": write route or caller`},
		{RateLimitConfig{Rate: "50/s", Key: "ip"}, "field \"rate-limit.key\": callers are told apart only with `per: caller`"},
		{RateLimitConfig{Rate: "50/s", Per: "caller", Key: "cookie"}, `field "rate-limit.key": "cookie": write ip or header:NAME`},
		{RateLimitConfig{Rate: "50/s", Per: "caller", Key: "header:"}, `field "rate-limit.key": "header:": write header:NAME`},
		{RateLimitConfig{Rate: "50/s", Per: "caller", Key: "header:X Key"}, `"header:X Key": write header:NAME`},
	} {
		_, err := NewRateLimit(c.cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("case %d: want valid, got %v", i, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
	}
}

func request(remote string, header ...string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// admitted counts how many of n requests the limit lets through at once.
func admitted(l *RateLimit, r *http.Request, n int) (int, *bus.Fault) {
	ok := 0
	var last *bus.Fault
	for range n {
		if err := l.admit(r); err != nil {
			last = err.(*bus.Fault)
		} else {
			ok++
		}
	}
	return ok, last
}

func TestRateLimitPerRoute(t *testing.T) {
	l, err := NewRateLimit(RateLimitConfig{Rate: "1/min", Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	a, b := request("10.0.0.1:1000"), request("10.0.0.2:1000")
	if n, _ := admitted(l, a, 2); n != 2 {
		t.Errorf("first caller: %d of 2 admitted", n)
	}
	n, f := admitted(l, b, 2) // the route's one bucket has one token left
	if n != 1 || f == nil || f.Status != 429 || f.Blame != bus.BlameServer {
		t.Fatalf("second caller: %d admitted, fault %v", n, f)
	}
	if ra := f.Header.Get("Retry-After"); ra != "60" && ra != "59" {
		t.Errorf("Retry-After %q, want about 60 (one request a minute)", ra)
	}
	if f.Detail != "the route admits 1/min for all its callers" {
		t.Errorf("detail %q", f.Detail)
	}
	var none *RateLimit
	if none.admit(a) != nil {
		t.Error("no limit must admit")
	}
}

func TestRateLimitPerCaller(t *testing.T) {
	byIP, _ := NewRateLimit(RateLimitConfig{Rate: "1/min", Burst: 2, Per: "caller"})
	byKey, _ := NewRateLimit(RateLimitConfig{Rate: "1/min", Burst: 2, Per: "caller", Key: "header:X-Api-Key"})
	for i, c := range []struct {
		l    *RateLimit
		r    *http.Request
		want int // admitted of 3
	}{
		{byIP, request("10.0.0.1:1000"), 2},
		{byIP, request("10.0.0.1:2000"), 0}, // same address, another port
		{byIP, request("10.0.0.2:1000"), 2},
		{byIP, request("[2001:db8::1]:1000"), 2},
		{byIP, request("[2001:db8::ffff]:1000"), 0}, // same /64
		{byIP, request("[2001:db8:0:1::1]:1000"), 2},
		{byKey, request("10.0.0.1:1000", "X-Api-Key", "k1"), 2},
		{byKey, request("10.0.0.2:1000", "X-Api-Key", "k1"), 0}, // the key, wherever it comes from
		{byKey, request("10.0.0.1:1000", "X-Api-Key", "k2"), 2},
		{byKey, request("10.0.0.1:1000"), 2},                          // no key: its address
		{byKey, request("10.0.0.9:1000", "X-Api-Key", "10.0.0.1"), 2}, // a key never poses as an address
		{byKey, request("10.0.0.1:1000", "X-Api-Key", strings.Repeat("k", 4096)), 2},
		{byKey, request("10.0.0.3:1000", "X-Api-Key", strings.Repeat("k", 4096)), 0},
	} {
		if n, _ := admitted(c.l, c.r, 3); n != c.want {
			t.Errorf("case %d: %s %v: %d of 3 admitted, want %d", i, c.r.RemoteAddr, c.r.Header, n, c.want)
		}
	}
	for id := range byKey.callers.cur {
		if len(id.key) > longKey {
			t.Errorf("a key of %d bytes is held as it came", len(id.key))
		}
	}
}

// An attacker rotating through addresses does not grow the callers held
// past the bound, and a caller that keeps coming back keeps its bucket
// (it stays refused) all the while.
func TestCallerBucketsBounded(t *testing.T) {
	l, err := newRateLimit(RateLimitConfig{Rate: "1/h", Burst: 1, Per: "caller"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	steady := request("192.0.2.1:1000")
	if l.admit(steady) != nil {
		t.Fatal("the first request of a caller is admitted")
	}
	for i := range 100_000 {
		l.admit(request(fmt.Sprintf("10.%d.%d.%d:1000", i>>16, i>>8&0xff, i&0xff)))
		if i%200 == 0 && l.admit(steady) == nil {
			t.Fatalf("after %d other callers the steady caller's bucket was forgotten", i)
		}
	}
	if n := l.callers.size(); n > 1000 {
		t.Errorf("%d callers held, bound 1000", n)
	}
}

// Callers unseen for longer than their bucket takes to fill are forgotten.
func TestCallerBucketsForgetIdle(t *testing.T) {
	l, _ := NewRateLimit(RateLimitConfig{Rate: "10/s", Per: "caller"})
	now := time.Now()
	for i := range 50 {
		l.callers.get(callerID{key: fmt.Sprint(i)}, now)
	}
	idle := l.callers.idle
	l.callers.get(callerID{key: "a"}, now.Add(idle))
	l.callers.get(callerID{key: "b"}, now.Add(2*idle))
	if n := l.callers.size(); n != 2 {
		t.Errorf("%d callers held after two idle periods, want the 2 recent ones", n)
	}
}

// Callers over the rate get 429 with Retry-After in their own format — a
// Server fault for SOAP callers, with HTTP 429 too — before their body is
// read.
func TestRateLimitAnswers(t *testing.T) {
	lim := func() Limits {
		l, err := NewRateLimit(RateLimitConfig{Rate: "1/min", Burst: 1})
		if err != nil {
			t.Fatal(err)
		}
		return Limits{Rate: l}
	}
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Limits: lim(), Handle: echoHandle}},
		HTTP: []HTTPEndpoint{{Route: "h", Method: "POST", Path: "/h", Limits: lim(), Handle: echoHandle},
			{Route: "hs", Method: "POST", Path: "/hs", Limits: lim(), Handle: echoHandle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Namespace: "urn:t", Limits: lim(), Handle: echoHandle}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	for _, c := range []struct {
		path, ct, body string
		want           string
	}{
		{"/r", "application/json", `{}`, `"title":"Too many requests","status":429,"detail":"the route admits 1/min for all its callers"`},
		{"/h", "application/json", `{}`, `"status":429`},
		{"/hs", soap11Action, soapEcho, "<faultcode>soap:Server</faultcode><faultstring>Too many requests: the route admits 1/min for all its callers</faultstring>"},
		{"/s", soap11Action, soapEcho, "<faultcode>soap:Server</faultcode>"},
	} {
		if a := exchange(addr, postHead(c.path, c.ct, len(c.body)), 0, c.body); a.status != 200 {
			t.Errorf("%s: the first request: %d %s %v", c.path, a.status, a.body, a.err)
		}
		// The second is refused at once, even though its body never comes
		// (but a facade must read the envelope to know the operation).
		parts := []string{c.body[:1], ""}
		if c.path == "/s" {
			parts = []string{c.body}
		}
		a := exchange(addr, postHead(c.path, c.ct, len(c.body)), 0, parts...)
		if a.err != nil || a.status != 429 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, c.want) {
			t.Errorf("%s: want 429 with Retry-After and %s, got %d %v %s %v", c.path, c.want, a.status, a.header, a.body, a.err)
		}
	}
}

// The cost of a rate limit on the request path: one bucket for the route,
// and a bucket per caller found by address or by header.
func BenchmarkRateLimitAdmit(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  RateLimitConfig
		r    *http.Request
	}{
		{"route", RateLimitConfig{Rate: "1000000000/s"}, request("10.0.0.1:1000")},
		{"caller-ip", RateLimitConfig{Rate: "1000000000/s", Per: "caller"}, request("10.0.0.1:1000")},
		{"caller-ipv6", RateLimitConfig{Rate: "1000000000/s", Per: "caller"}, request("[2001:db8::1]:1000")},
		{"caller-header", RateLimitConfig{Rate: "1000000000/s", Per: "caller", Key: "header:X-Api-Key"}, request("10.0.0.1:1000", "X-Api-Key", "k1")},
	} {
		l, err := NewRateLimit(c.cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if l.admit(c.r) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
