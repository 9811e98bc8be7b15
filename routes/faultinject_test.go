package routes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault injection: whole routes against backends that misbehave, asserting
// what the caller sees, how many requests reached the backend and what the
// breaker did.

// writeConfig writes files (name → text) into a fresh configuration directory.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// passThroughRoute is the oa-sap-post-document route of the examples.
const passThroughRoute = `route: oa-sap-post-document
from:
  http: { method: POST, path: /pass/sap/rfc }
to: { connector: sap-ecc-passthrough, path: /bapi }
`

const (
	postAction  = "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"
	clientFault = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault>` +
		`<faultcode>SOAP-ENV:Client</faultcode><faultstring>Malformed envelope</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	okEnvelope = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>` +
		`<BAPI_ACC_DOCUMENT_POSTResponse><OBJ_KEY>4900000001</OBJ_KEY></BAPI_ACC_DOCUMENT_POSTResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

func envelope(payload string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` + payload + `</soapenv:Body></soapenv:Envelope>`
}

// Defect 1 of issue 10: a caller's malformed envelopes, which SAP answers
// with Client faults on HTTP 500, must not open the pass-through's breaker
// and lock every other caller out; Server faults still open it.
func TestCallerFaultsDoNotOpenBreaker(t *testing.T) {
	var calls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		switch {
		case strings.Contains(string(body), "BROKEN"):
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, clientFault)
		case strings.Contains(string(body), "LOCKED"):
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, backendFault) // a Server fault
		default:
			io.WriteString(w, okEnvelope)
		}
	}))
	defer backend.Close()
	t.Setenv("SAP_SOAP_BASE", backend.URL)
	b := start(t, writeConfig(t, map[string]string{
		"sap.yaml": "connector: sap-ecc-passthrough\ntype: http\nurl: ${SAP_SOAP_BASE}\ntimeout: 2s\n" +
			"breaker: { failures: 5, open-for: 1m }\n",
		"route.yaml": passThroughRoute,
	}))

	for i := range 8 {
		r := b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BROKEN"))
		if r.Status != 500 || r.Body != clientFault {
			t.Fatalf("bad call %d: want the backend's Client fault, got %d %s", i+1, r.Status, r.Body)
		}
	}
	r := b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BAPI_ACC_DOCUMENT_POST/>"))
	if r.Status != 200 || r.Body != okEnvelope || calls.Load() != 9 {
		t.Fatalf("a good caller after 8 Client faults: want 200 from the backend (9 calls), got %d %s (%d calls)", r.Status, r.Body, calls.Load())
	}

	for range 5 {
		b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<LOCKED/>"))
	}
	r = b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BAPI_ACC_DOCUMENT_POST/>"))
	if r.Status == 200 || !strings.Contains(r.Body, "Backend circuit open") || calls.Load() != 14 {
		t.Errorf("after 5 Server faults: want the breaker open (14 calls), got %d %s (%d calls)", r.Status, r.Body, calls.Load())
	}
}

// misbehaving is a raw TCP backend: it reads each request (counting it once
// its headers and body have arrived) and then does what act says with the
// connection, which it closes afterwards unless act returns keep.
type misbehaving struct {
	ln       net.Listener
	requests atomic.Int32
}

func newMisbehaving(t *testing.T, act func(n int, c net.Conn, r *http.Request) (keep bool)) *misbehaving {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &misbehaving{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					io.Copy(io.Discard, r.Body)
					if !act(int(m.requests.Add(1)), c, r) {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return m
}

func (m *misbehaving) URL() string { return "http://" + m.ln.Addr().String() }

// replyWith writes a whole HTTP/1.1 reply and keeps the connection.
func replyWith(status int, contentType, body string, extra ...string) func(int, net.Conn, *http.Request) bool {
	return func(_ int, c net.Conn, _ *http.Request) bool {
		head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", status, http.StatusText(status), contentType, len(body))
		for i := 0; i+1 < len(extra); i += 2 {
			head += extra[i] + ": " + extra[i+1] + "\r\n"
		}
		io.WriteString(c, head+"\r\n"+body)
		return true
	}
}

// logLines captures what connectors log (they take slog.Default when built).
func logLines(t *testing.T) func() string {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// seen is what one call's caller saw.
type seen struct {
	status      int
	contentType string
	title       string // problem+json title, or the SOAP faultstring's start
	retryAfter  bool
}

func TestFaultInjection(t *testing.T) {
	const (
		problem  = "application/problem+json"
		postBody = `{"voucherNo":"EXP-2026-0001","amount":"1250.00"}`
	)
	refusedURL := func(t *testing.T) string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ln.Close()
		return "http://" + ln.Addr().String()
	}
	hang := func(_ int, c net.Conn, _ *http.Request) bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until the connector gives up and closes
		return false
	}
	cases := []struct {
		name      string
		act       func(int, net.Conn, *http.Request) bool // nil: nothing listens
		connector string                                  // extra connector keys
		method    string
		want      []seen // per call, in order
		requests  int32  // requests that reached the backend
		logs      []string
	}{
		{name: "refused", method: "POST",
			want:     []seen{{502, problem, "Backend unreachable", false}},
			requests: 0},
		{name: "refused-opens-breaker", method: "POST", connector: "breaker: { failures: 2, open-for: 1m }\n",
			want: []seen{{502, problem, "Backend unreachable", false}, {502, problem, "Backend unreachable", false},
				{503, problem, "Backend circuit open", true}},
			logs: []string{`msg="circuit breaker open" connector=erp breaker=erp from=closed`}},
		{name: "reset-mid-reply", method: "POST", act: func(_ int, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"posted\":")
			c.(*net.TCPConn).SetLinger(0) // RST, not FIN
			return false
		}, want: []seen{{504, problem, "Backend outcome unknown", false}}, requests: 1},
		{name: "hang-post", method: "POST", act: hang,
			want: []seen{{504, problem, "Backend outcome unknown", false}}, requests: 1},
		{name: "hang-get-is-retried", method: "GET", act: hang,
			want: []seen{{504, problem, "Backend timeout", false}}, requests: 3},
		{name: "slow-but-in-time", method: "POST", act: func(n int, c net.Conn, r *http.Request) bool {
			time.Sleep(150 * time.Millisecond)
			return replyWith(200, "application/json", `{"posted":true}`)(n, c, r)
		}, want: []seen{{200, "application/json", "", false}}, requests: 1},
		{name: "truncated-body", method: "POST", act: func(_ int, c net.Conn, _ *http.Request) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"posted\":true}")
			return false // FIN after 15 of 100 bytes
		}, want: []seen{{504, problem, "Backend outcome unknown", false}}, requests: 1},
		{name: "503-post-not-retried-then-breaker", method: "POST", connector: "breaker: { failures: 2, open-for: 1m }\n",
			act: replyWith(503, "application/json", `{"error":"maintenance"}`),
			want: []seen{{502, problem, "Backend error", false}, {502, problem, "Backend error", false},
				{503, problem, "Backend circuit open", true}},
			requests: 2, logs: []string{`msg="circuit breaker open" connector=erp breaker=erp from=closed`}},
		{name: "503-get-retried", method: "GET", act: func(n int, c net.Conn, r *http.Request) bool {
			if n == 1 {
				return replyWith(503, "application/json", `{"error":"starting"}`)(n, c, r)
			}
			return replyWith(200, "application/json", `{"ok":true}`)(n, c, r)
		}, want: []seen{{200, "application/json", "", false}}, requests: 2},
		{name: "429-with-retry-after", method: "POST", connector: "breaker: { failures: 1, open-for: 1m }\n",
			act:      replyWith(429, "application/json", `{"error":"slow down"}`, "Retry-After", "7"),
			want:     []seen{{429, problem, "Backend rejected the request", true}, {429, problem, "Backend rejected the request", true}},
			requests: 2},
		{name: "wrong-content-type", method: "POST", act: replyWith(200, "application/json", `<html>Login</html>`),
			want: []seen{{502, problem, "Backend sent malformed JSON", false}}, requests: 1},
		{name: "oversized-body", method: "POST", connector: "max-reply: 1KiB\n",
			act:  replyWith(200, "application/json", `{"pad":"`+strings.Repeat("x", 4096)+`"}`),
			want: []seen{{502, problem, "Backend reply too large", false}}, requests: 1},
		{name: "client-fault-on-500", method: "POST", connector: "breaker: { failures: 1, open-for: 1m }\n",
			act:      replyWith(500, "text/xml; charset=utf-8", clientFault),
			want:     []seen{{502, problem, "Backend error", false}, {502, problem, "Backend error", false}, {502, problem, "Backend error", false}},
			requests: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := logLines(t)
			url := refusedURL(t)
			var backend *misbehaving
			if c.act != nil {
				backend = newMisbehaving(t, c.act)
				url = backend.URL()
			}
			t.Setenv("ERP_URL", url)
			b := start(t, writeConfig(t, map[string]string{
				"erp.yaml": "connector: erp\ntype: http\nurl: ${ERP_URL}\ntimeout: 300ms\n" +
					"retry: { backoff: 1ms, max-backoff: 20ms }\n" + c.connector,
				"route.yaml": "route: vouchers\nfrom: { rest: { method: " + c.method + ", path: /vouchers } }\n" +
					"limits: { timeout: 3s }\nto: { connector: erp, path: /vouchers, method: " + c.method + " }\n",
			}))
			for i, want := range c.want {
				var r reply
				if c.method == "GET" {
					r = b.do(t, "GET", "/vouchers", nil, "")
				} else {
					r = b.postJSON(t, "/vouchers", postBody)
				}
				var p struct {
					Title  string `json:"title"`
					Detail string `json:"detail"`
				}
				json.Unmarshal([]byte(r.Body), &p)
				got := seen{r.Status, r.ContentType, p.Title, r.Header.Get("Retry-After") != ""}
				if got != want {
					t.Errorf("call %d: want %+v, got %+v: %s", i+1, want, got, r.Body)
				}
				if want.title == "Backend outcome unknown" && !strings.Contains(p.Detail, "may have processed the request; check before resending (correlation id ") {
					t.Errorf("call %d: the detail must warn against resending blindly: %s", i+1, p.Detail)
				}
			}
			if backend != nil {
				if n := backend.requests.Load(); n != c.requests {
					t.Errorf("the backend got %d requests, want %d", n, c.requests)
				}
			}
			for _, l := range c.logs {
				if !strings.Contains(logs(), l) {
					t.Errorf("log lacks %q:\n%s", l, logs())
				}
			}
		})
	}
}

// A SOAP caller of a pass-through route whose backend took the envelope and
// never answered gets a Server fault that says the posting may have happened.
func TestPassThroughOutcomeUnknown(t *testing.T) {
	backend := newMisbehaving(t, func(_ int, c net.Conn, _ *http.Request) bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		return false
	})
	t.Setenv("SAP_SOAP_BASE", backend.URL())
	b := start(t, writeConfig(t, map[string]string{
		"sap.yaml":   "connector: sap-ecc-passthrough\ntype: http\nurl: ${SAP_SOAP_BASE}\ntimeout: 300ms\n",
		"route.yaml": passThroughRoute,
	}))
	r := b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BAPI_ACC_DOCUMENT_POST/>"))
	if r.Status != 500 || !strings.Contains(r.Body, "<faultcode>soap:Server</faultcode>") ||
		!strings.Contains(r.Body, "Backend outcome unknown") || !strings.Contains(r.Body, "check before resending (correlation id ") {
		t.Errorf("want a Server fault saying the outcome is unknown, got %d %s", r.Status, r.Body)
	}
	if n := backend.requests.Load(); n != 1 {
		t.Errorf("the backend got %d requests, want 1: the envelope is never resent", n)
	}
}
