package connectors

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBodyBudgetTakeAndGive(t *testing.T) {
	b := newBodyBudget(100)
	steps := []struct {
		take int64
		ok   bool
		used int64
	}{{60, true, 60}, {50, false, 60}, {40, true, 100}, {1, false, 100}}
	for i, s := range steps {
		if ok := b.take(s.take); ok != s.ok || b.inUse() != s.used {
			t.Errorf("case %d: take(%d) = %v with %d in use, want %v with %d", i, s.take, ok, b.inUse(), s.ok, s.used)
		}
	}
	b.give(100)
	if b.inUse() != 0 {
		t.Errorf("%d in use after giving everything back", b.inUse())
	}
	var none *bodyBudget // no budget: everything fits
	if !none.take(1<<62) || none.inUse() != 0 || newBodyBudget(0) != nil {
		t.Error("a nil budget must admit everything")
	}
}

// Concurrent reservations never pass the budget, and all come back.
func TestBodyBudgetConcurrent(t *testing.T) {
	b := newBodyBudget(1000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				r := bodyReservation{budget: b}
				for range 3 {
					if r.grow(100) != nil {
						break
					}
					if u := b.inUse(); u > 1000 {
						t.Errorf("%d bytes in use, budget 1000", u)
					}
				}
				r.release()
				r.release() // twice is harmless
			}
		})
	}
	wg.Wait()
	if b.inUse() != 0 {
		t.Errorf("%d bytes still in use", b.inUse())
	}
}

// A request whose body would pass the server's budget is refused at once
// with 503 and Retry-After (a Server fault for SOAP callers), while
// requests within it are served; the bytes come back when a request has
// been answered.
func TestBodyBudgetRefusesPastIt(t *testing.T) {
	// The holder below ends with a 408 after the read timeout.
	srv := NewServer(ServerConfig{BodyBudget: 256 << 10, ReadTimeout: 3 * time.Second})
	srv.Swap(Endpoints{
		REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/r", Handle: echoHandle}},
		HTTP: []HTTPEndpoint{{Route: "h", Method: "POST", Path: "/h", Handle: echoHandle}},
		SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Element: "Echo", Handle: echoHandle}}}},
	})
	addr := serveLoopback(t, srv)
	// A holder announces 200 KiB and sends 150 KiB: it holds 200 KiB of
	// the budget (windows of 64, 128 and 200 KiB) and waits.
	const declared = 200 << 10
	held := make(chan answer, 1)
	go func() {
		head := postHead("/h", "application/octet-stream", declared)
		held <- exchange(addr, head, 0, strings.Repeat("x", 150<<10), "")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.budget.inUse() != declared && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if u := srv.budget.inUse(); u != declared {
		t.Fatalf("the holder reserved %d bytes, want %d", u, declared)
	}
	for _, c := range []struct{ path, ct, want string }{
		{"/r", "application/json", `"status":503`},
		{"/h", "application/json", `"status":503`},
		{"/s", soap11Action, "<faultcode>soap:Server</faultcode>"},
	} {
		a := exchange(addr, postHead(c.path, c.ct, 100<<10), 0, strings.Repeat(" ", 100<<10))
		if a.err != nil || !strings.Contains(a.body, c.want) || a.header.Get("Retry-After") != "1" {
			t.Errorf("%s: want %s with Retry-After 1, got %d %v %.300s %v", c.path, c.want, a.status, a.header, a.body, a.err)
		}
	}
	// Within what is left: served.
	if a := exchange(addr, postHead("/r", "application/json", 2), 0, "{}"); a.status != 200 {
		t.Errorf("a small body within the budget: %d %s %v", a.status, a.body, a.err)
	}
	if u := srv.budget.inUse(); u != declared {
		t.Errorf("%d bytes in use after the refusals, want the holder's %d", u, declared)
	}
	if a := <-held; a.status != 408 {
		t.Errorf("the holder: want 408, got %d %s %v", a.status, a.body, a.err)
	}
	for srv.budget.inUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if u := srv.budget.inUse(); u != 0 {
		t.Errorf("%d bytes still in use after every request ended", u)
	}
}
