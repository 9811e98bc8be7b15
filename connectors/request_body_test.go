package connectors

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

// answer is what a raw exchange got back.
type answer struct {
	status int
	header http.Header
	body   string
	took   time.Duration // from the first byte sent to the answer
	close  bool          // the server closes the connection after it
	err    error
}

// exchange sends head, then the body's parts with pause between them (it
// stops sending when the answer comes or the connection breaks), and reads
// the answer. A part "" sends nothing more: the body never ends.
func exchange(addr, head string, pause time.Duration, parts ...string) answer {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return answer{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // a hung server fails the test, not the run
	start := time.Now()
	done := make(chan struct{})
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		for _, p := range parts {
			select {
			case <-done:
				return
			case <-time.After(pause):
			}
			if p == "" {
				return
			}
			if _, err := io.WriteString(conn, p); err != nil {
				return
			}
		}
	}()
	defer close(done)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), took: time.Since(start), close: resp.Close}
}

func postHead(path, contentType string, length int) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: busbar\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, contentType, length)
}

const soap11Action = "text/xml; charset=utf-8\r\nSOAPAction: \"urn:t:Echo\""

// A body that never finishes, or trickles in, gets 408 within the read
// timeout, or within the route's own timeout when that is shorter, in the
// caller's format and without the server's or the caller's address.
func TestBodyReadTimeout(t *testing.T) {
	const bound = 300 * time.Millisecond
	const slack = 2 * time.Second // a loaded machine; the old bound was two minutes
	long := Limits{Timeout: time.Minute}
	short := Limits{Timeout: bound}
	eps := Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Limits: long, Handle: echoHandle},
			{Route: "r-short", Method: "POST", Path: "/r-short", Limits: short, Handle: echoHandle}},
		HTTP: []HTTPEndpoint{{Route: "h", Method: "POST", Path: "/h", Limits: long, Handle: echoHandle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Limits: long, Handle: echoHandle}}}},
	}
	trickle := make([]string, 200) // 200 bytes, one each 50 ms: ten seconds
	for i := range trickle {
		trickle[i] = "x"
	}
	for _, c := range []struct {
		name        string
		readTimeout time.Duration
		path, ct    string
		parts       []string
		want        string
	}{
		{"REST, never ends", bound, "/r", "application/json", []string{`{"a":`, ""}, `"status":408`},
		{"REST, trickles", bound, "/r", "application/json", trickle, `"status":408`},
		{"REST, route timeout shorter", 0, "/r-short", "application/json", []string{`{"a":`, ""}, `"status":408`},
		{"raw, trickles", bound, "/h", "application/octet-stream", trickle, `"status":408`},
		{"raw SOAP, never ends", bound, "/h", soap11Action, []string{"<soap:Envelope", ""}, "<faultcode>soap:Client</faultcode>"},
		{"SOAP, trickles", bound, "/s", soap11Action, trickle, "<bb:status>408</bb:status>"},
	} {
		srv := NewServer(ServerConfig{ReadTimeout: c.readTimeout})
		if err := srv.Swap(eps); err != nil {
			t.Fatal(err)
		}
		addr := serveLoopback(t, srv)
		a := exchange(addr, postHead(c.path, c.ct, 200), 50*time.Millisecond, c.parts...)
		switch {
		case a.err != nil:
			t.Errorf("%s: %v after %v", c.name, a.err, a.took)
		case !strings.Contains(a.body, c.want) || !strings.Contains(a.body, "did not arrive within 300ms"):
			t.Errorf("%s: want %s, got %d %s", c.name, c.want, a.status, a.body)
		case a.took > bound+slack:
			t.Errorf("%s: answered after %v", c.name, a.took)
		}
		for _, leak := range []string{"127.0.0.1", "tcp", "i/o timeout"} {
			if strings.Contains(a.body, leak) {
				t.Errorf("%s: the answer quotes %q: %s", c.name, leak, a.body)
			}
		}
	}
}

// Once the body is read, the read deadline is gone: a route that runs
// longer than the read timeout (bodiless or not) is not cancelled by it.
func TestReadTimeoutSparesSlowRoutes(t *testing.T) {
	slow := func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		select {
		case <-time.After(600 * time.Millisecond):
			r := m.Reply()
			r.SetJSON([]byte(`{"done":true}`))
			return r, nil
		case <-ctx.Done():
			return nil, bus.ServerFault(http.StatusServiceUnavailable, "Cancelled", context.Cause(ctx).Error())
		}
	}
	srv := NewServer(ServerConfig{ReadTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})
	srv.Swap(Endpoints{REST: []RESTEndpoint{
		{Route: "post", Method: "POST", Path: "/slow", Handle: slow},
		{Route: "get", Method: "GET", Path: "/slow", Handle: slow},
	}})
	addr := serveLoopback(t, srv)
	for _, head := range []string{postHead("/slow", "application/json", 2), "GET /slow HTTP/1.1\r\nHost: busbar\r\n\r\n"} {
		body := ""
		if strings.HasPrefix(head, "POST") {
			body = "{}"
		}
		a := exchange(addr, head+body, 0)
		if a.err != nil || a.status != 200 {
			t.Errorf("%.4s: want 200, got %d %s %v", head, a.status, a.body, a.err)
		}
	}
}

// A declared Content-Length is not reserved: callers that announce 8 MiB
// and send one byte hold a first window each, not 8 MiB.
func TestDeclaredLengthIsNotReserved(t *testing.T) {
	srv := NewServer(ServerConfig{})
	srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Handle: echoHandle}},
		HTTP: []HTTPEndpoint{{Route: "h", Method: "POST", Path: "/h", Handle: echoHandle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Handle: echoHandle}}}},
	})
	addr := serveLoopback(t, srv)
	const conns, declared = 12, 8 << 20
	before := heapInUse()
	var open []net.Conn
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, conn)
		path := []string{"/r", "/h", "/s"}[i%3]
		io.WriteString(conn, postHead(path, soap11Action, declared)+"<")
	}
	time.Sleep(300 * time.Millisecond) // the handlers are reading by now
	grew := heapInUse() - before
	for _, c := range open {
		c.Close()
	}
	if limit := int64(conns) * (1 << 20); grew > limit {
		t.Errorf("%d requests announcing %d bytes and sending one grew the heap by %d bytes (limit %d)", conns, declared, grew, limit)
	}
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// The body's buffer grows by doubling windows from a small first one, and
// ends at the declared length exactly; every window is reserved first.
func TestFillGrowsAsBytesArrive(t *testing.T) {
	budget := newBodyBudget(1 << 30)
	for _, c := range []struct {
		size, declared int64
		pooled         int   // spare capacity to start with
		wantCap        int64 // of the buffer at the end
		wantReserved   int64
	}{
		{5, 5, 0, 5, 5},
		{100 << 10, 100 << 10, 0, 100 << 10, 100 << 10},
		{1 << 20, 1 << 20, 0, 1 << 20, 1 << 20},
		{100 << 10, -1, 0, 128 << 10, 128 << 10},
		{5, -1, 0, 16 << 10, 16 << 10},
		{5, 5, 4096, 4096, 5}, // a pooled buffer's capacity is pool memory: not reserved again
	} {
		res := bodyReservation{budget: budget}
		b, err := fill(make([]byte, 0, c.pooled), io.LimitReader(neverEnding('x'), c.size), c.declared, 2<<20, &res)
		if err != nil || int64(len(b)) != c.size || int64(cap(b)) != c.wantCap || res.n != c.wantReserved {
			t.Errorf("%d bytes (declared %d): got %d bytes, cap %d, reserved %d, %v; want cap %d, reserved %d",
				c.size, c.declared, len(b), cap(b), res.n, err, c.wantCap, c.wantReserved)
		}
		res.release()
	}
	if budget.inUse() != 0 {
		t.Errorf("%d bytes still reserved", budget.inUse())
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// A body refused before it is read to its end (too large by its declared
// length for the route or for the whole budget, over what is left of the
// budget) is answered at once, its connection closed, not after net/http
// waited for the rest of it.
func TestRefusedBodyIsAnsweredAtOnce(t *testing.T) {
	srv := NewServer(ServerConfig{BodyBudget: 96 << 10, ReadTimeout: 3 * time.Second})
	srv.Swap(Endpoints{REST: []RESTEndpoint{
		{Route: "small", Method: "POST", Path: "/small", Limits: Limits{MaxBody: 1 << 10}, Handle: echoHandle},
		{Route: "big", Method: "POST", Path: "/big", Handle: echoHandle},
	}})
	addr := serveLoopback(t, srv)
	// The holder takes a first window of 64KiB and sends no more.
	held := make(chan answer, 1)
	go func() { held <- exchange(addr, postHead("/big", "application/json", 80<<10), 0, " ", "") }()
	for deadline := time.Now().Add(5 * time.Second); srv.budget.inUse() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range []struct {
		path   string
		length int
		status int
		detail string
	}{
		{"/small", 100 << 10, 413, "the route accepts at most 1024 bytes"},
		{"/big", 200 << 10, 413, "the server accepts at most 98304 bytes of request bodies at once"},
		{"/big", 80 << 10, 503, "too many request bodies are being received at once"},
	} {
		a := exchange(addr, postHead(c.path, "application/json", c.length), 0, strings.Repeat(" ", 100), "")
		if a.err != nil || a.status != c.status || !strings.Contains(a.body, c.detail) || a.took > 2*time.Second || !a.close {
			t.Errorf("%s of %d bytes: want %d at once with Connection: close, got %d %v after %v: %s %v", c.path, c.length, c.status, a.status, a.header, a.took, a.body, a.err)
		}
	}
	if a := <-held; a.status != 408 {
		t.Errorf("the holder: want 408, got %d %s %v", a.status, a.body, a.err)
	}
}
