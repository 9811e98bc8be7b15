package routes

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busbar/busbar/bench/payloads"
	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
)

// barrierBackend answers only once `want` calls are in progress at the
// same time (or after a bound, so a broken limiter fails the test instead
// of hanging it), and records the most calls it saw at once.
type barrierBackend struct {
	want    int64
	now     atomic.Int64
	most    atomic.Int64
	mu      sync.Mutex
	arrived chan struct{} // closed when `want` calls are in progress together
}

func (b *barrierBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := b.now.Add(1)
	defer b.now.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	b.mu.Lock()
	if n >= b.want {
		select {
		case <-b.arrived:
		default:
			close(b.arrived)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.arrived:
	case <-time.After(10 * time.Second):
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/echo"):
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write(body)
	case strings.HasSuffix(r.URL.Path, "/sap/bapi"):
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, payloads.BAPIReply)
	case strings.HasSuffix(r.URL.Path, "/api/postings"):
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, payloads.PostingReply)
	default:
		http.NotFound(w, r)
	}
}

// Requests through mapping routes compute within the work slots and give
// them back while their backend answers: with 2 slots, 8 requests all
// reach a backend that answers only when all 8 are there, and every one
// succeeds.
func TestWorkSlotsBoundComputeNotCalls(t *testing.T) {
	const slots, requests = 2, 8
	bapi, voucher := string(payloads.BAPI(2)), string(payloads.Voucher(2))
	cases := []struct {
		scenario, path string
		post           func(b *busbar, t *testing.T) reply
		contentType    string
	}{
		{"s5", "/s5", func(b *busbar, t *testing.T) reply { return b.postSOAP11(t, "/s5", payloads.ActionBAPI, bapi) }, "text/xml; charset=utf-8"},
		{"s6", "/s6", func(b *busbar, t *testing.T) reply { return b.postSOAP11(t, "/s6", payloads.ActionBAPI, bapi) }, "text/xml; charset=utf-8"},
		{"s7", "/s7", func(b *busbar, t *testing.T) reply { return b.postJSON(t, "/s7", voucher) }, "application/json"},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			backend := &barrierBackend{want: requests, arrived: make(chan struct{})}
			ts := httptest.NewServer(backend)
			defer ts.Close()
			t.Setenv("BENCH_BACKEND", ts.URL)
			work := bus.NewWorkLimiter(slots)
			b := startWith(t, "../bench/routes/"+c.scenario, connectors.ServerConfig{Work: work})
			var wg sync.WaitGroup
			replies := make([]reply, requests)
			for i := range requests {
				wg.Go(func() { replies[i] = c.post(b, t) })
			}
			wg.Wait()
			for i, r := range replies {
				if r.Status != http.StatusOK || r.ContentType != c.contentType {
					t.Errorf("request %d: want 200 %s, got %d %s:\n%s", i, c.contentType, r.Status, r.ContentType, r.Body)
				}
			}
			if got := backend.most.Load(); got != requests {
				t.Errorf("the backend saw at most %d calls at once, want all %d: a request kept its work slot through its call", got, requests)
			}
			s := work.Stats()
			if s.Peak < 1 || s.Peak > slots || s.Busy != 0 || s.Waiting != 0 {
				t.Errorf("want at most %d requests computing at once and none left, got %+v", slots, s)
			}
		})
	}
}
