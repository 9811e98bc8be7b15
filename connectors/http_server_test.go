package connectors

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

// Shutdown lets a request in flight finish and answer, then stops.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{REST: []RESTEndpoint{{Route: "slow", Method: "POST", Path: "/slow",
		Handle: func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
			close(entered)
			time.Sleep(300 * time.Millisecond)
			r := m.Reply()
			r.SetJSON([]byte(`{"done":true}`))
			return r, nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/slow", "application/json", strings.NewReader(`{}`))
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.status != 200 || r.body != `{"done":true}` {
		t.Fatalf("the request in flight: %d %q %v", r.status, r.body, r.err)
	}
	if _, err := http.Post("http://"+ln.Addr().String()+"/slow", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("the server still accepts requests after Shutdown")
	}
}

// A route's time limit turns into a 504 problem.
func TestRouteTimeout(t *testing.T) {
	srv := NewServer(ServerConfig{})
	srv.Swap(Endpoints{REST: []RESTEndpoint{{Route: "stuck", Method: "GET", Path: "/stuck", Limits: Limits{Timeout: 50 * time.Millisecond},
		Handle: func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
			p := &bus.Pipeline{Route: "stuck", Steps: []bus.NamedStep{{Name: "wait", Step: bus.StepFunc(func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			})}}}
			return p.Run(ctx, m)
		}}}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	resp, err := http.Get("http://" + ln.Addr().String() + "/stuck")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 504 || !strings.Contains(string(b), `"title":"Timeout"`) {
		t.Errorf("want 504 Timeout, got %d %s", resp.StatusCode, b)
	}
}

// TestReadBody: the body reader gives the bytes sent, into a pooled buffer
// or not, whether the length was announced or not, and refuses a body over
// the limit (413) or shorter than announced (400).
func TestReadBody(t *testing.T) {
	s := NewServer(ServerConfig{})
	for _, tc := range []struct {
		name   string
		body   string
		length int64 // -1: unknown (chunked)
		status int   // 0: read
	}{
		{"announced", "hello", 5, 0},
		{"unknown length", "hello", -1, 0},
		{"over the limit", "hello world", 11, 413},
		{"over the limit, unknown length", "hello world", -1, 413},
		{"shorter than announced", "hel", 5, 400},
	} {
		for _, pooled := range []bool{false, true} {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			w := httptest.NewRecorder()
			var buf *bytes.Buffer
			if pooled {
				buf = getBuffer()
			}
			res := bodyReservation{}
			got, err := s.readRequestBody(buf, w, r, 8, time.Second, &res)
			f, _ := err.(*bus.Fault)
			switch {
			case tc.status == 0 && (err != nil || string(got) != tc.body):
				t.Errorf("%s (pooled %v): want %q, got %q, %v", tc.name, pooled, tc.body, got, err)
			case tc.status != 0 && (f == nil || f.Status != tc.status):
				t.Errorf("%s (pooled %v): want a %d fault, got %q, %v", tc.name, pooled, tc.status, got, err)
			}
		}
	}
}

// A header Busbar acts on, sent twice, is refused before any route runs:
// Busbar would read the first copy and the backend might read the other.
func TestAmbiguousHeadersRefused(t *testing.T) {
	srv := NewServer(ServerConfig{})
	called := 0
	handle := func(_ context.Context, m *bus.Message) (*bus.Message, error) { called++; return m.Reply(), nil }
	err := srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Handle: handle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Handle: handle}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		header http.Header
		status int
		want   string
	}{
		{"/s", http.Header{"Content-Type": {"text/xml"}, "Soapaction": {`"a"`, `"b"`}}, 500,
			"<faultcode>soap:Client</faultcode><faultstring>Ambiguous request: the request carries 2 SOAPAction headers; send one</faultstring>"},
		{"/r", http.Header{"Content-Type": {"application/json", "text/xml; charset=gbk"}}, 400,
			`"title":"Ambiguous request","status":400,"detail":"the request carries 2 Content-Type headers; send one"`},
	} {
		r := httptest.NewRequest("POST", c.path, strings.NewReader(`<Echo/>`))
		r.Header = c.header
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: want %d with %s, got %d %s", c.path, c.status, c.want, w.Code, w.Body)
		}
	}
	if called != 0 {
		t.Errorf("a route ran %d times", called)
	}
}
