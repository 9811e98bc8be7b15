package routes

import (
	"fmt"
	"io"
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

	"github.com/busbar/busbar/delivery"
)

// syncBackend counts calls and answers what its handler says; by default
// a document number that changes with every call, so a second backend
// call would show in the reply.
type syncBackend struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []backendCall
	answer func(n int, w http.ResponseWriter) // n: this call's number, from 1
}

func newSyncBackend(t *testing.T, l net.Listener) *syncBackend {
	b := &syncBackend{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.calls = append(b.calls, backendCall{r.Header.Get("X-Ref") + r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), r.URL.Path, string(body)})
		n, answer := len(b.calls), b.answer
		b.mu.Unlock()
		if answer != nil {
			answer(n, w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(ReplayedHeader, "true") // a backend's own: must not reach the caller
		fmt.Fprintf(w, `{"docNo":"%d"}`, 4700+n)
	})
	if l == nil {
		b.Server = httptest.NewServer(h)
	} else {
		b.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
		b.Start()
	}
	t.Cleanup(b.Close)
	return b
}

func (b *syncBackend) seen() []backendCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]backendCall(nil), b.calls...)
}

const syncKeyedRoute = `route: vouchers
from: {rest: {method: POST, path: /api/vouchers}}
to: {connector: backend, path: /post}
delivery: {mode: sync, idempotency-key: header}
`

func keyed(key string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Idempotency-Key": key}
}

// A repeat gets the first reply's bytes, marked as a replay, and the
// backend is called once; the same key with another payload is 422; a
// call without the key the route asks for is 400.
func TestSyncKeyRepeatReplays(t *testing.T) {
	backend := newSyncBackend(t, nil)
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": syncKeyedRoute}), openStore(t))
	body := `{"voucherNo":"V-1","amount":1}`
	first := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-1"), body)
	first.expect(t, http.StatusOK, "application/json")
	if first.Body != `{"docNo":"4701"}` || first.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("first call: %v %s", first.Header, first.Body)
	}
	again := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-1"), body)
	again.expect(t, http.StatusOK, "application/json")
	if again.Body != first.Body || again.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeat: %v %s, want %s replayed", again.Header, again.Body, first.Body)
	}
	r := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-1"), `{"voucherNo":"V-1","amount":2}`)
	r.expect(t, http.StatusUnprocessableEntity, "application/problem+json")
	r = b.postJSON(t, "/api/vouchers", body)
	r.expect(t, http.StatusBadRequest, "application/problem+json")
	if !strings.Contains(r.Body, "Idempotency-Key header required") {
		t.Errorf("no key: %s", r.Body)
	}
	calls := backend.seen()
	if len(calls) != 1 || calls[0].Key != "K-1" {
		t.Errorf("backend calls: %+v, want one, with Idempotency-Key K-1", calls)
	}
}

// A repeat while the first call waits for the backend is 409 with
// Retry-After; once the first is done, the repeat gets its reply.
func TestSyncKeyInFlight(t *testing.T) {
	hold, arrived := make(chan struct{}), make(chan struct{}, 1)
	backend := newSyncBackend(t, nil)
	backend.answer = func(n int, w http.ResponseWriter) {
		select { // without the key, a repeat arrives here too: it must not hang the test
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-hold:
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"docNo":"%d"}`, 4700+n)
	}
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": syncKeyedRoute}), openStore(t))
	body := `{"voucherNo":"V-2"}`
	done := make(chan reply, 1)
	go func() { done <- b.do(t, http.MethodPost, "/api/vouchers", keyed("K-2"), body) }()
	<-arrived
	r := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-2"), body)
	r.expect(t, http.StatusConflict, "application/problem+json")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("409 without Retry-After: %v", r.Header)
	}
	close(hold)
	first := <-done
	first.expect(t, http.StatusOK, "application/json")
	again := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-2"), body)
	if again.Status != http.StatusOK || again.Body != first.Body || again.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeat after the first finished: %d %v %s", again.Status, again.Header, again.Body)
	}
	if n := len(backend.seen()); n != 1 {
		t.Errorf("backend saw %d calls, want 1", n)
	}
}

// An unreachable backend got nothing: the key is released and the retry
// posts. A refusal (4xx) posted nothing either: released too.
func TestSyncKeyReleasedWhenNothingPosted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused until the backend starts on it
	b := startAsync(t, asyncConfig(t, "http://"+addr, map[string]string{"route.yaml": syncKeyedRoute}), openStore(t))
	body := `{"voucherNo":"V-3"}`
	r := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-3"), body)
	r.expect(t, http.StatusBadGateway, "application/problem+json")
	if !strings.Contains(r.Body, "Backend unreachable") {
		t.Fatalf("want unreachable: %s", r.Body)
	}
	if l, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	backend := newSyncBackend(t, l)
	var refuse atomic.Bool
	refuse.Store(true)
	backend.answer = func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		if refuse.Load() {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"period closed"}`))
			return
		}
		fmt.Fprintf(w, `{"docNo":"%d"}`, 4700+n)
	}
	r = b.do(t, http.MethodPost, "/api/vouchers", keyed("K-3"), body)
	r.expect(t, http.StatusBadRequest, "application/problem+json")
	refuse.Store(false)
	r = b.do(t, http.MethodPost, "/api/vouchers", keyed("K-3"), body)
	r.expect(t, http.StatusOK, "application/json")
	if r.Body != `{"docNo":"4702"}` || r.Header.Get(ReplayedHeader) != "" {
		t.Errorf("retry: %v %s, want the second backend call's reply", r.Header, r.Body)
	}
	if n := len(backend.seen()); n != 2 {
		t.Errorf("backend saw %d calls, want 2", n)
	}
}

// A call whose request went out and whose reply was lost may have been
// posted: the key is not released, and a repeat gets the recorded 504
// without calling the backend again.
func TestSyncKeyOutcomeUnknownKept(t *testing.T) {
	backend := newSyncBackend(t, nil)
	backend.answer = func(n int, w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // read the request, and hung up: the reply is lost
		}
	}
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": syncKeyedRoute}), openStore(t))
	body := `{"voucherNo":"V-5"}`
	first := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-5"), body)
	first.expect(t, http.StatusGatewayTimeout, "application/problem+json")
	if !strings.Contains(first.Body, "Backend outcome unknown") {
		t.Fatalf("first call: %s", first.Body)
	}
	again := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-5"), body)
	again.expect(t, http.StatusGatewayTimeout, "application/problem+json")
	if again.Body != first.Body || again.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeat: %v\n%s\nwant\n%s", again.Header, again.Body, first.Body)
	}
	if n := len(backend.seen()); n != 1 {
		t.Errorf("backend saw %d calls, want 1", n)
	}
}

// A SOAP facade with the key taken from the body: the key goes downstream
// in the route's key-header and, through the idempotencyKey variable, in
// the path; a repeat gets the first envelope's bytes.
func TestSyncKeySOAPFacade(t *testing.T) {
	backend := newSyncBackend(t, nil)
	route := `route: soap-vouchers
from: {soap: {path: /soap/vouchers, element: PostVoucher}}
to: {connector: backend, path: "/post/{idempotencyKey}"}
delivery:
  idempotency-key: concat('1000-', /*/VoucherNo)
  key-header: X-Ref
`
	b := startAsync(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": route}), openStore(t))
	first := b.postSOAP11(t, "/soap/vouchers", "", soapVoucher)
	if first.Status != http.StatusOK || !strings.Contains(first.Body, "<PostVoucherResponse><docNo>4701</docNo></PostVoucherResponse>") ||
		first.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("first call: %d %v %s", first.Status, first.Header, first.Body)
	}
	again := b.postSOAP11(t, "/soap/vouchers", "", soapVoucher)
	if again.Status != http.StatusOK || again.Body != first.Body || again.ContentType != first.ContentType ||
		again.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeat: %d %v\n%s\nwant\n%s", again.Status, again.Header, again.Body, first.Body)
	}
	other := strings.Replace(soapVoucher, "<PostVoucher>", `<PostVoucher><Amount>2</Amount>`, 1)
	r := b.postSOAP11(t, "/soap/vouchers", "", other)
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Body, "Idempotency key reused") {
		// SOAP 1.1 faults travel as 500; the problem is in the faultstring.
		t.Errorf("another payload under the same key: %d %s", r.Status, r.Body)
	}
	calls := backend.seen()
	if len(calls) != 1 || calls[0].Key != "1000-V-4" || calls[0].Path != "/post/1000-V-4" {
		t.Errorf("backend calls: %+v, want one with X-Ref 1000-V-4, also in the path", calls)
	}
}

func TestSyncKeyRouteErrors(t *testing.T) {
	for i, tc := range []struct{ from, delivery, want string }{
		{"rest: {path: /r}", "delivery: {mode: sync, attempts: 3}\n",
			`route.yaml:5:34: route "r": attempts is for ` + "`mode: async`" + `; a sync route takes idempotency-key and key-header`},
		{"rest: {path: /r}", "delivery: {key-header: X-Ref}\n",
			`route.yaml:5:24: route "r": key-header sends the idempotency key downstream: set ` + "`idempotency-key`"},
		{"http: {path: /r}", "delivery: {idempotency-key: header}\n",
			`route.yaml:5:29: route "r": idempotency keys are for from.rest and from.soap routes`},
		{"rest: {path: /r}", "delivery: {idempotency-key: \"concat($.a,\"}\n", `route "r": `},
	} {
		dir := t.TempDir()
		route := "route: r\nfrom: {" + tc.from + "}\nto: {connector: backend}\n# delivery\n" + tc.delivery
		os.WriteFile(filepath.Join(dir, "route.yaml"), []byte(route), 0o644)
		os.WriteFile(filepath.Join(dir, "backend.yaml"), []byte("connector: backend\ntype: http\nurl: http://127.0.0.1:1\n"), 0o644)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: want an error containing %q, got %v", i+1, tc.want, err)
		}
	}
}

// Without a store (busbar validate, route tests) a keyed sync route
// loads, and refuses calls rather than run them unguarded.
func TestSyncKeyWithoutStore(t *testing.T) {
	backend := newSyncBackend(t, nil)
	b := start(t, asyncConfig(t, backend.URL, map[string]string{"route.yaml": syncKeyedRoute}))
	r := b.do(t, http.MethodPost, "/api/vouchers", keyed("K-9"), `{}`)
	r.expect(t, http.StatusServiceUnavailable, "application/problem+json")
	if len(backend.seen()) != 0 {
		t.Error("the backend was called")
	}
}

// The store is opened for a configuration whose only keyed route is sync,
// and not for one without keys.
func TestSyncKeyOpensStore(t *testing.T) {
	store := openStore(t)
	for _, tc := range []struct {
		route string
		opens int
	}{{syncKeyedRoute, 1}, {strings.Replace(syncKeyedRoute, "delivery: {mode: sync, idempotency-key: header}\n", "", 1), 0}} {
		opens := 0
		cfg, err := Load(asyncConfig(t, "http://127.0.0.1:1", map[string]string{"route.yaml": tc.route}),
			WithStore(func() (*delivery.Store, error) { opens++; return store, nil }))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Close()
		if opens != tc.opens {
			t.Errorf("%s: store opened %d times, want %d", tc.route, opens, tc.opens)
		}
	}
}

// A facade in front of a SOAP backend whose reply declares its prefix on
// the Envelope: the recorded reply, an element cut out of that envelope,
// must come back as the same bytes.
func TestSyncKeySOAPBackendReplay(t *testing.T) {
	backend := newSyncBackend(t, nil)
	backend.answer = func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		fmt.Fprintf(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sap="urn:sap-com:document:sap:rfc:functions"><soap:Body><sap:PostResponse><sap:DocNo>%d</sap:DocNo><RETURN/></sap:PostResponse></soap:Body></soap:Envelope>`, 4700+n)
	}
	dir := asyncConfig(t, backend.URL, map[string]string{"route.yaml": `route: soap-vouchers
from: {soap: {path: /soap/vouchers, element: PostVoucher}}
to: {connector: sap, action: Post}
delivery: {idempotency-key: header}
`, "sap.yaml": "connector: sap\ntype: soap\nversion: \"1.1\"\nurl: " + backend.URL + "\n"})
	b := startAsync(t, dir, openStore(t))
	h := map[string]string{"Content-Type": "text/xml; charset=utf-8", "Idempotency-Key": "K-7"}
	first := b.do(t, http.MethodPost, "/soap/vouchers", h, soapVoucher)
	if first.Status != http.StatusOK || !strings.Contains(first.Body, "4701") {
		t.Fatalf("first call: %d %s", first.Status, first.Body)
	}
	again := b.do(t, http.MethodPost, "/soap/vouchers", h, soapVoucher)
	if again.Status != http.StatusOK || again.Body != first.Body || again.Header.Get(ReplayedHeader) != "true" {
		t.Errorf("repeat: %d %v\n%s\nwant\n%s", again.Status, again.Header, again.Body, first.Body)
	}
	if n := len(backend.seen()); n != 1 {
		t.Errorf("backend saw %d calls, want 1", n)
	}
}

// The same for an async route: the delivered reply a repeated submission
// gets as the operation's response keeps its namespace declarations.
func TestAsyncSOAPBackendReplyKeepsNamespaces(t *testing.T) {
	backend := newSyncBackend(t, nil)
	backend.answer = func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		fmt.Fprintf(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sap="urn:sap-com:document:sap:rfc:functions"><soap:Body><sap:PostResponse><sap:DocNo>%d</sap:DocNo></sap:PostResponse></soap:Body></soap:Envelope>`, 4700+n)
	}
	dir := asyncConfig(t, backend.URL, map[string]string{"route.yaml": `route: soap-vouchers
from: {soap: {path: /soap/vouchers, element: PostVoucher}}
to: {connector: sap, action: Post}
delivery: async
`, "sap.yaml": "connector: sap\ntype: soap\nversion: \"1.1\"\nurl: " + backend.URL + "\n"})
	b := startAsync(t, dir, openStore(t))
	h := map[string]string{"Content-Type": "text/xml; charset=utf-8", "Idempotency-Key": "K-8"}
	r := b.do(t, http.MethodPost, "/soap/vouchers", h, soapVoucher)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submission: %d %s", r.Status, r.Body)
	}
	b.waitState(t, r.Header.Get("Location"), "delivered")
	again := b.do(t, http.MethodPost, "/soap/vouchers", h, soapVoucher)
	if again.Status != http.StatusOK || !strings.Contains(again.Body, `<sap:PostResponse xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sap="urn:sap-com:document:sap:rfc:functions"><sap:DocNo>4701</sap:DocNo>`) {
		t.Errorf("repeat: %d %s", again.Status, again.Body)
	}
}
