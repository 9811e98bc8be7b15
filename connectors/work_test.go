package connectors

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

const soapEcho = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Echo xmlns="urn:t"><A>1</A></Echo></soap:Body></soap:Envelope>`

func echoHandle(_ context.Context, m *bus.Message) (*bus.Message, error) { return m, nil }

// A request whose caller goes away while it waits for a work slot gets a
// fault in its own format, never a hang.
func TestWorkSlotWaitCancelled(t *testing.T) {
	work := bus.NewWorkLimiter(1)
	srv := NewServer(ServerConfig{Work: work})
	err := srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Handle: echoHandle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Namespace: "urn:t", Handle: echoHandle}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, holder, _ := work.Begin(context.Background())
	defer holder.End()
	cases := []struct {
		path, contentType, body string
		status                  int // SOAP 1.1 sends every fault with 500
		wantType, wantBody      string
	}{
		{"/r", "application/json", `{"a":1}`, 503, "application/problem+json", `"title":"Request cancelled"`},
		{"/s", "text/xml; charset=utf-8", soapEcho, 500, "text/xml; charset=utf-8",
			`<faultstring>Request cancelled: the request was cancelled while it waited for a work slot</faultstring>`},
	}
	for _, c := range cases {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)).WithContext(ctx)
		req.Header.Set("Content-Type", c.contentType)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != c.status || rec.Header().Get("Content-Type") != c.wantType || !strings.Contains(rec.Body.String(), c.wantBody) {
			t.Errorf("%s: want %d %s containing %s, got %d %s:\n%s", c.path, c.status, c.wantType, c.wantBody, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if s := work.Stats(); s.Busy != 1 || s.Waiting != 0 {
		t.Errorf("the cancelled requests must hold nothing: %+v", s)
	}
}

// A reply that arrives when every slot is taken waits for one within the
// route's time limit; past it the caller gets a 504, and nothing leaks.
func TestWorkSlotResumeTimeout(t *testing.T) {
	arrived, answer := make(chan struct{}), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(arrived)
		<-answer
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, soapEcho)
	}))
	defer backend.Close()
	defer close(answer)
	cfg := &SOAPConfig{HTTPConfig: HTTPConfig{URL: backend.URL, Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Disabled: true}}, Version: "1.1"}
	conn, err := cfg.Build("backend")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	work := bus.NewWorkLimiter(1)
	srv := NewServer(ServerConfig{Work: work})
	srv.Swap(Endpoints{SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Namespace: "urn:t",
		Limits: Limits{Timeout: 300 * time.Millisecond},
		Handle: func(ctx context.Context, m *bus.Message) (*bus.Message, error) { return conn.Call(ctx, m) }}}}}})
	req := httptest.NewRequest(http.MethodPost, "/s", strings.NewReader(soapEcho))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { srv.Handler().ServeHTTP(rec, req); close(done) }()
	select { // the request waits on its backend: its slot is free
	case <-arrived:
	case <-done:
		t.Fatalf("the request never reached its backend: %d %s", rec.Code, rec.Body)
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach its backend within 10s")
	}
	_, holder, err := work.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	answer <- struct{}{}
	<-done
	holder.End()
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "<faultstring>Timeout: the route's time limit was reached while the request waited for a work slot") ||
		!strings.Contains(rec.Body.String(), "<bb:status>504</bb:status>") {
		t.Errorf("want a SOAP fault saying 504 Timeout, got %d:\n%s", rec.Code, rec.Body)
	}
	if s := work.Stats(); s.Busy != 0 || s.Waiting != 0 || s.Peak != 1 {
		t.Errorf("want every slot back and never two held, got %+v", s)
	}
}

// A route that panics gives its slot back (net/http recovers the panic).
func TestWorkSlotReleasedOnPanic(t *testing.T) {
	work := bus.NewWorkLimiter(1)
	srv := NewServer(ServerConfig{Work: work})
	srv.Swap(Endpoints{REST: []RESTEndpoint{{Route: "boom", Method: "POST", Path: "/boom",
		Handle: func(context.Context, *bus.Message) (*bus.Message, error) { panic("mapping bug") }}}})
	ts := httptest.NewServer(srv.Handler())
	ts.Config.ErrorLog = nil
	defer ts.Close()
	for range 2 { // the second request would wait forever for a lost slot
		if resp, err := http.Post(ts.URL+"/boom", "application/json", strings.NewReader(`{}`)); err == nil {
			resp.Body.Close()
			t.Fatalf("want the connection dropped, got %d", resp.StatusCode)
		}
	}
	if s := work.Stats(); s.Busy != 0 {
		t.Errorf("want the slot back, got %+v", s)
	}
}
