package routes

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
)

// asyncBackend is a REST backend that records every call and answers with
// the status the test sets (200 with a document number by default).
type asyncBackend struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []backendCall
	status atomic.Int32  // 0: 200
	fail   atomic.Int32  // answer 503 to this many calls, then the status
	hold   chan struct{} // set before the first call: calls wait until it is closed
}

type backendCall struct {
	Key, ContentType string
	Path, Body       string
}

func newAsyncBackend(t *testing.T) *asyncBackend {
	b := &asyncBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.calls = append(b.calls, backendCall{r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), r.URL.Path, string(body)})
		b.mu.Unlock()
		if b.hold != nil {
			<-b.hold
		}
		w.Header().Set("Content-Type", "application/json")
		if b.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"SAP is down"}`))
			return
		}
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			w.Write([]byte(`{"error":"company code 9999 does not exist"}`))
			return
		}
		w.Write([]byte(`{"docNo":"4711"}`))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *asyncBackend) seen() []backendCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]backendCall(nil), b.calls...)
}

// asyncConfig is a configuration directory with a connector to the
// backend and the given route files.
func asyncConfig(t *testing.T, backend string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["backend.yaml"] = `connector: backend
type: http
url: ` + backend + `
timeout: 2s
retry: {attempts: 1}
breaker: {failures: 2, open-for: 300ms}
`
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const asyncVoucherRoute = `route: vouchers-async
from: {rest: {method: POST, path: /api/vouchers}}
to: {connector: backend, path: /post}
delivery:
  mode: async
  backoff: 20ms
  max-backoff: 50ms
  attempts: 3
`

// openStore opens a store in a fresh directory for one test.
func openStore(t *testing.T) *delivery.Store {
	t.Helper()
	s, err := delivery.Open(context.Background(), delivery.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startAsync serves dir with a message store.
func startAsync(t *testing.T, dir string, store *delivery.Store) *busbar {
	t.Helper()
	return startWith(t, dir, connectors.ServerConfig{}, WithStore(func() (*delivery.Store, error) { return store, nil }))
}

// statusDoc is the status endpoint's document, as a client reads it.
type statusDoc struct {
	ID        string            `json:"id"`
	State     string            `json:"state"`
	Attempts  []json.RawMessage `json:"attempts"`
	Pauses    int               `json:"pauses"`
	Reply     json.RawMessage   `json:"reply"`
	ReplyType string            `json:"replyType"`
	LastError string            `json:"lastError"`
	Tried     int               `json:"tried"`
}

// waitState polls location until the message is in state, or fails.
func (b *busbar) waitState(t *testing.T, location, state string) statusDoc {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last reply
	for time.Now().Before(deadline) {
		last = b.do(t, http.MethodGet, location, nil, "")
		if last.Status == http.StatusOK {
			var st statusDoc
			if err := json.Unmarshal([]byte(last.Body), &st); err != nil {
				t.Fatalf("status %s: %v\n%s", location, err, last.Body)
			}
			if st.State == state {
				return st
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %s never became %s; last status %d:\n%s", location, state, last.Status, last.Body)
	return statusDoc{}
}

// acceptedDoc reads a 202 (or a duplicate's 200) and checks its Location.
func acceptedDoc(t *testing.T, r reply, status int) accepted {
	t.Helper()
	r.expect(t, status, "application/json")
	var a accepted
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil || a.MessageID == "" {
		t.Fatalf("answer %q: %v", r.Body, err)
	}
	if loc := r.Header.Get("Location"); loc != StatusPath+a.MessageID || a.Location != loc {
		t.Fatalf("Location %q, body location %q, want %s%s", loc, a.Location, StatusPath, a.MessageID)
	}
	return a
}

func TestAsyncRESTDelivered(t *testing.T) {
	backend := newAsyncBackend(t)
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncVoucherRoute}), openStore(t))
	r := b.do(t, http.MethodPost, "/api/vouchers", map[string]string{"Content-Type": "application/json", "Idempotency-Key": "V-1"},
		`{"voucherNo":"V-1","amount":12.5}`)
	a := acceptedDoc(t, r, http.StatusAccepted)
	if a.Status != delivery.Queued {
		t.Errorf("status %q, want queued", a.Status)
	}
	st := b.waitState(t, a.Location, "delivered")
	if string(st.Reply) != `{"docNo":"4711"}` || st.Tried != 1 {
		t.Errorf("delivered status: reply %s, tried %d", st.Reply, st.Tried)
	}
	calls := backend.seen()
	if len(calls) != 1 || calls[0].Key != "V-1" || calls[0].Body != `{"voucherNo":"V-1","amount":12.5}` {
		t.Errorf("backend calls: %+v", calls)
	}
	if r := b.do(t, http.MethodGet, StatusPath+"nosuchmessage", nil, ""); r.Status != http.StatusNotFound {
		t.Errorf("unknown message: %d %s", r.Status, r.Body)
	}
}

// A backend that fails, then opens its breaker, then recovers: the open
// breaker pauses delivery (the gate) instead of using up the attempts.
func TestAsyncBackendDownThenUp(t *testing.T) {
	backend := newAsyncBackend(t)
	backend.fail.Store(2) // opens the breaker (failures: 2), attempts: 3
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncVoucherRoute}), openStore(t))
	a := acceptedDoc(t, b.postJSON(t, "/api/vouchers", `{"voucherNo":"V-2"}`), http.StatusAccepted)
	st := b.waitState(t, a.Location, "delivered")
	if len(st.Attempts) != 3 || st.Tried != 3 || st.Pauses != 0 {
		t.Errorf("want 2 failed attempts and the delivery, no pause (the gate held it back), got tried %d, pauses %d:\n%s",
			st.Tried, st.Pauses, st.Attempts)
	}
	if len(backend.seen()) != 3 {
		t.Errorf("backend saw %d calls, want 3", len(backend.seen()))
	}
	// Without a key from the caller, the message id goes downstream.
	if k := backend.seen()[2].Key; k != a.MessageID {
		t.Errorf("Idempotency-Key %q, want the message id %q", k, a.MessageID)
	}
}

func TestAsyncCallerFaultIsDead(t *testing.T) {
	backend := newAsyncBackend(t)
	backend.status.Store(http.StatusBadRequest)
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncVoucherRoute}), openStore(t))
	a := acceptedDoc(t, b.postJSON(t, "/api/vouchers", `{"companyCode":"9999"}`), http.StatusAccepted)
	st := b.waitState(t, a.Location, "dead")
	if st.Tried != 1 || !strings.Contains(st.LastError, "400") && !strings.Contains(st.LastError, "9999") {
		t.Errorf("want dead after 1 attempt with the backend's reason, got tried %d, last error %q", st.Tried, st.LastError)
	}
	time.Sleep(100 * time.Millisecond) // longer than the backoff: no further attempt comes
	if n := len(backend.seen()); n != 1 {
		t.Errorf("backend saw %d calls, want 1", n)
	}
}

func TestAsyncIdempotencyKeyFromBody(t *testing.T) {
	backend := newAsyncBackend(t)
	route := strings.NewReplacer("  mode: async\n",
		"  mode: async\n  idempotency-key: concat($.companyCode, '-', $.voucherNo)\n  business-key: $.voucherNo\n",
		"path: /post}", "path: \"/post/{idempotencyKey}\"}\nrequest: {validate: voucher.schema.json}").Replace(asyncVoucherRoute)
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": route,
		"voucher.schema.json": `{"type": "object", "required": ["voucherNo"]}`}), openStore(t))
	// The request is checked before it is stored: a caller's mistake is
	// its 400 now, not a dead letter later.
	r := b.postJSON(t, "/api/vouchers", `{"companyCode":"1000"}`)
	r.expect(t, http.StatusBadRequest, "application/problem+json")
	body := `{"companyCode":"1000","voucherNo":"V-3","amount":1}`
	first := acceptedDoc(t, b.postJSON(t, "/api/vouchers", body), http.StatusAccepted)
	b.waitState(t, first.Location, "delivered")
	again := acceptedDoc(t, b.postJSON(t, "/api/vouchers", body), http.StatusOK)
	if again.MessageID != first.MessageID || again.Status != delivery.Delivered {
		t.Errorf("repeat: %+v, want message %s delivered", again, first.MessageID)
	}
	r = b.postJSON(t, "/api/vouchers", `{"companyCode":"1000","voucherNo":"V-3","amount":2}`)
	r.expect(t, http.StatusUnprocessableEntity, "application/problem+json")
	calls := backend.seen()
	if len(calls) != 1 || calls[0].Key != "1000-V-3" || calls[0].Path != "/post/1000-V-3" {
		t.Errorf("backend calls: %+v, want one with key 1000-V-3, also in the path (route variable idempotencyKey)", calls)
	}
}

// A repeated submission while the first is still being delivered is a
// 409 that says where the first one's status is.
func TestAsyncIdempotencyInFlight(t *testing.T) {
	backend := newAsyncBackend(t)
	backend.hold = make(chan struct{})
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncVoucherRoute}), openStore(t))
	key := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "V-6"}
	first := acceptedDoc(t, b.do(t, http.MethodPost, "/api/vouchers", key, `{"voucherNo":"V-6"}`), http.StatusAccepted)
	b.waitState(t, first.Location, "delivering")
	r := b.do(t, http.MethodPost, "/api/vouchers", key, `{"voucherNo":"V-6"}`)
	r.expect(t, http.StatusConflict, "application/problem+json")
	if r.Header.Get("Location") != first.Location || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, `"messageId":"`+first.MessageID+`"`) {
		t.Errorf("409: %v %s", r.Header, r.Body)
	}
	close(backend.hold)
	b.waitState(t, first.Location, "delivered")
	acceptedDoc(t, b.do(t, http.MethodPost, "/api/vouchers", key, `{"voucherNo":"V-6"}`), http.StatusOK)
	if n := len(backend.seen()); n != 1 {
		t.Errorf("backend saw %d calls, want 1", n)
	}
}

const asyncSOAPRoute = `route: soap-vouchers-async
from: {soap: {path: /soap/vouchers, element: PostVoucher}}
to: {connector: backend, path: /post}
delivery: async
`

const soapVoucher = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><PostVoucher><VoucherNo>V-4</VoucherNo></PostVoucher></s:Body></s:Envelope>`

func TestAsyncSOAPFacade(t *testing.T) {
	backend := newAsyncBackend(t)
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncSOAPRoute}), openStore(t))
	r := b.postSOAP11(t, "/soap/vouchers", "", soapVoucher)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusAccepted || r.Body != "" || !strings.HasPrefix(loc, StatusPath) {
		t.Fatalf("want a one-way 202 with a Location, got %d %q %q", r.Status, loc, r.Body)
	}
	b.waitState(t, loc, "delivered")
	calls := backend.seen()
	if len(calls) != 1 || !strings.Contains(calls[0].Body, `"VoucherNo":"V-4"`) || calls[0].Key != strings.TrimPrefix(loc, StatusPath) {
		t.Errorf("backend calls: %+v", calls)
	}
	// The same envelope under the same key, once delivered: the first
	// outcome, as the operation's response element.
	r = b.do(t, http.MethodPost, "/soap/vouchers", map[string]string{"Content-Type": "text/xml; charset=utf-8", "Idempotency-Key": "K-4"}, soapVoucher)
	if r.Status != http.StatusAccepted {
		t.Fatalf("keyed submission: %d %s", r.Status, r.Body)
	}
	b.waitState(t, r.Header.Get("Location"), "delivered")
	r2 := b.do(t, http.MethodPost, "/soap/vouchers", map[string]string{"Content-Type": "text/xml; charset=utf-8", "Idempotency-Key": "K-4"}, soapVoucher)
	if r2.Status != http.StatusOK || !strings.Contains(r2.Body, "<PostVoucherResponse><docNo>4711</docNo></PostVoucherResponse>") ||
		r2.Header.Get("Location") != r.Header.Get("Location") {
		t.Errorf("repeat: %d %v %s", r2.Status, r2.Header, r2.Body)
	}
	if n := len(backend.seen()); n != 2 {
		t.Errorf("backend saw %d calls, want 2", n)
	}
}

// A reload that leaves an async route's delivery settings alone keeps its
// worker running (and gives it the new route); one that changes them
// replaces it; a removed route's worker stops with the old configuration.
func TestAsyncReloadKeepsWorker(t *testing.T) {
	backend := newAsyncBackend(t)
	store := openStore(t)
	withStore := WithStore(func() (*delivery.Store, error) { return store, nil })
	other := strings.NewReplacer("vouchers-async", "other-async", "/api/vouchers", "/api/other").Replace(asyncVoucherRoute)
	dir := asyncConfig(t, backend.URL, map[string]string{"route.yaml": asyncVoucherRoute, "other.yaml": other})
	first, err := Load(dir, withStore)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	w1, o1 := first.workers.m["vouchers-async"], first.workers.m["other-async"]
	// An unrelated edit (a description) to one, another backoff for the other.
	os.WriteFile(filepath.Join(dir, "route.yaml"), []byte(asyncVoucherRoute+"description: edited\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "other.yaml"), []byte(strings.Replace(other, "backoff: 20ms", "backoff: 30ms", 1)), 0o644)
	second, err := Load(dir, withStore, Reusing(first))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if w2 := second.workers.m["vouchers-async"]; w2 != w1 || w2.route.Load() != second.async[indexOfAsync(second, "vouchers-async")] {
		t.Errorf("unchanged route: worker %p, want %p, serving the new route", w2, w1)
	}
	if o2 := second.workers.m["other-async"]; o2 == o1 || o2 == nil {
		t.Errorf("changed route: want a new worker, got %p (was %p)", o2, o1)
	}
	first.Close() // as serve does after the swap: must not stop what second took over
	srv := connectors.NewServer(connectors.ServerConfig{})
	if err := srv.Swap(second.Endpoints()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/vouchers", "/api/other"} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"n":1}`)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(backend.seen()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(backend.seen()); n != 2 {
		t.Errorf("backend saw %d calls after the reload, want 2", n)
	}
	// The route gone: its worker stops with the configuration that had it.
	os.Remove(filepath.Join(dir, "other.yaml"))
	third, err := Load(dir, withStore, Reusing(second))
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	second.Close()
	if len(second.workers.m) != 0 || third.workers.m["other-async"] != nil || third.workers.m["vouchers-async"] != w1 {
		t.Errorf("after removing a route: old %v, new %v", second.workers.m, third.workers.m)
	}
}

func indexOfAsync(c *Config, name string) int {
	for i, a := range c.async {
		if a.name == name {
			return i
		}
	}
	return -1
}

func TestAsyncRouteErrors(t *testing.T) {
	for i, tc := range []struct{ delivery, want string }{
		{"delivery: later\n", `route.yaml:5:11: route "r": delivery "later": write sync or async`},
		{"delivery: {mode: async, attempt: 3}\n", `unknown field "attempt"`},
		{"delivery: {mode: async, partitions: 4}\n", `route.yaml:5:37: route "r": partitions order the messages of one ordering-key: set ` + "`ordering-key`" + ` too`},
		{"delivery: {mode: sync, attempts: 3}\n", `route.yaml:5:34: route "r": attempts is for ` + "`mode: async`"},
		{"delivery: {mode: async, backoff: 1m, max-backoff: 1s}\n", `max-backoff 1s is shorter than backoff 1m0s`},
		{"delivery: {mode: async, idempotency-key: \"concat($.a,\"}\n", `route "r": `},
		// Every problem of the block, not only the first.
		{"delivery:\n  mode: async\n  attempt: 3\n  backoff: soon\nrequst: {}\n", `route.yaml:7:3: route "r": unknown field "attempt"
` + "{dir}" + `route.yaml:8:12: route "r": field "backoff": invalid duration "soon": write it like 30s, 1m30s or 500ms
` + "{dir}" + `route.yaml:9:1: route "r": unknown field "requst"`},
		{"delivery:\n  mode: async\n  attempt: 3\nrequst: {}\n", `route.yaml:7:3: route "r": unknown field "attempt"
` + "{dir}" + `route.yaml:8:1: route "r": unknown field "requst"`},
	} {
		dir := t.TempDir()
		route := "route: r\nfrom: {rest: {path: /r}}\nto: {connector: backend}\n# delivery\n" + tc.delivery
		os.WriteFile(filepath.Join(dir, "route.yaml"), []byte(route), 0o644)
		os.WriteFile(filepath.Join(dir, "backend.yaml"), []byte("connector: backend\ntype: http\nurl: http://127.0.0.1:1\n"), 0o644)
		_, err := Load(dir)
		tc.want = strings.ReplaceAll(tc.want, "{dir}", dir+"/")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: want an error containing %q, got %v", i+1, tc.want, err)
		}
	}
}

// The demo's async OA reimbursement: the GBK form is stored as received
// (a one-way 202), booked in the demo SAP by the worker, and a second
// submission of the same form (the same form number) is not booked again.
func TestExampleOAReimbursementAsync(t *testing.T) {
	b := startAsync(t, examples, openStore(t))
	form, err := os.ReadFile(examples + "/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		t.Fatal(err)
	}
	submit := func() reply {
		return b.do(t, http.MethodPost, "/soap/oa/reimbursement/async", map[string]string{
			"Content-Type": "text/xml; charset=GBK",
			"SOAPAction":   `"http://oa.example.cn/finance/reimbursement/SubmitReimbursement"`}, string(form))
	}
	r := submit()
	loc := r.Header.Get("Location")
	if r.Status != http.StatusAccepted || loc == "" {
		t.Fatalf("want a one-way 202 with a Location, got %d %q:\n%s", r.Status, loc, r.Body)
	}
	var st struct {
		statusDoc
		Reply          string `json:"reply"`
		IdempotencyKey string `json:"idempotencyKey"`
		BusinessKey    string `json:"businessKey"`
	}
	done := b.waitState(t, loc, "delivered")
	raw := b.do(t, http.MethodGet, loc, nil, "").Body
	json.Unmarshal([]byte(raw), &st)
	if !strings.Contains(raw, `"reply":"<oa:SubmitReimbursementResponse`) {
		t.Errorf("an XML reply in the status is XML text: %s", raw)
	}
	if st.IdempotencyKey != "BX-2026-11-0088" || st.BusinessKey != "1000-BX-2026-11-0088" ||
		!strings.Contains(st.Reply, "<oa:SapDocument>") || !strings.Contains(st.Reply, "已过账") || done.Tried != 1 {
		t.Errorf("delivered status: %+v", st)
	}
	again := submit()
	text, _ := simplifiedchinese.GBK.NewDecoder().String(again.Body)
	if again.Status != http.StatusOK || again.Header.Get("Location") != loc || !strings.Contains(text, "<oa:SapDocument>") {
		t.Errorf("a second submission of the form: %d %s", again.Status, again.Body)
	}
}
