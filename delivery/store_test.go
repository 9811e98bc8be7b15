package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/busbar/busbar/bus"
)

// openTest opens a store on dir (a fresh t.TempDir() when empty) and
// closes it at the end of the test.
func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(context.Background(), Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backend is a scripted Deliverer: it records what it got and fails
// while told to.
type backend struct {
	mu        sync.Mutex
	got       []string // message ids in delivery order
	bodies    []string
	calls     map[string]int
	failWith  func(env *Envelope) error // nil: accept everything
	delivered chan string
}

func newBackend() *backend {
	return &backend{calls: map[string]int{}, delivered: make(chan string, 1000)}
}

func (b *backend) Deliver(ctx context.Context, env *Envelope) ([]byte, string, error) {
	b.mu.Lock()
	b.calls[env.ID]++
	fail := b.failWith
	b.mu.Unlock()
	if fail != nil {
		if err := fail(env); err != nil {
			return nil, "", err
		}
	}
	b.mu.Lock()
	b.got = append(b.got, env.ID)
	b.bodies = append(b.bodies, string(env.Body))
	b.mu.Unlock()
	b.delivered <- env.ID
	return []byte("ok:" + string(env.Body)), "text/plain", nil
}

func (b *backend) setFail(f func(env *Envelope) error) {
	b.mu.Lock()
	b.failWith = f
	b.mu.Unlock()
}

func (b *backend) callsOf(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[id]
}

// waitState polls a message's status until it reaches want.
func waitState(t *testing.T, s *Store, id string, want State, within time.Duration) *Status {
	t.Helper()
	deadline := time.Now().Add(within)
	var st *Status
	var err error
	for time.Now().Before(deadline) {
		st, err = s.Get(context.Background(), id)
		if err == nil && st.State == want {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("message %s: want %s, got error %v", id, want, err)
	}
	t.Fatalf("message %s: want %s within %s, got %s (%+v)", id, want, within, st.State, st)
	return nil
}

func accept(t *testing.T, s *Store, route, body string, mod ...func(*Submission)) string {
	t.Helper()
	sub := &Submission{Body: []byte(body), ContentType: "application/json"}
	for _, f := range mod {
		f(sub)
	}
	id, err := s.Accept(context.Background(), route, sub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var fastRetry = RouteConfig{MaxAttempts: 3, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 5 * time.Second}

func TestSubmissionFrom(t *testing.T) {
	m := bus.NewMessage()
	m.SetJSON([]byte(`{"a":1}`))
	m.ContentType, m.SOAPAction, m.CorrelationID, m.Path = "application/json", "urn:x", "c-1", "/v/1"
	m.Query = url.Values{"q": {"1"}}
	m.Header = http.Header{"Idempotency-Key": {"K-1"}}
	m.SetVar("id", "1")
	sub := SubmissionFrom(m)
	if string(sub.Body) != `{"a":1}` || sub.IdempotencyKey != "K-1" || sub.Query != "q=1" || sub.Vars["id"] != "1" ||
		sub.ContentType != "application/json" || sub.SOAPAction != "urn:x" || sub.CorrelationID != "c-1" || sub.Path != "/v/1" {
		t.Fatalf("got %+v", sub)
	}
}

func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	if _, err := Open(context.Background(), Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second store on the same data dir: want an error, got %v", err)
	}
}

func TestSyncAlwaysIsOn(t *testing.T) {
	s := openTest(t, "")
	if !s.ns.JetStreamConfig().SyncAlways {
		t.Fatal("embedded server runs without SyncAlways: an acknowledged accept may not be on disk")
	}
}

func TestAcceptThenDeliver(t *testing.T) {
	s := openTest(t, "")
	id := accept(t, s, "vouchers", `{"n":1}`, func(sub *Submission) {
		sub.BusinessKey, sub.CorrelationID, sub.SOAPAction, sub.Caller = "1000/2026/V1", "corr-1", "urn:post", "oa"
		sub.Path, sub.Query, sub.Vars = "/api/v1/vouchers/1000", "dry=false", map[string]string{"company": "1000"}
	})
	st, err := s.Get(context.Background(), id)
	if err != nil || st.State != Queued || st.BusinessKey != "1000/2026/V1" {
		t.Fatalf("before the worker: want queued with its business key, got %+v, %v", st, err)
	}
	b := newBackend()
	var seen *Envelope
	var mu sync.Mutex
	d := DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		mu.Lock()
		seen = env
		mu.Unlock()
		return b.Deliver(ctx, env)
	})
	if _, err := s.StartWorker(context.Background(), "vouchers", fastRetry, d); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, s, id, Delivered, 5*time.Second)
	if string(st.Reply) != `ok:{"n":1}` || st.ReplyType != "text/plain" || len(st.Attempts) != 1 || st.Attempts[0].Outcome != OutcomeDelivered {
		t.Fatalf("want the reply and one delivered attempt, got %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.ContentType != "application/json" || seen.SOAPAction != "urn:post" || seen.CorrelationID != "corr-1" ||
		seen.Caller != "oa" || seen.Attempt != 1 || seen.Accepted.IsZero() ||
		seen.Path != "/api/v1/vouchers/1000" || seen.Query != "dry=false" || seen.Vars["company"] != "1000" ||
		seen.Key() != id {
		t.Fatalf("envelope lost headers: %+v", seen)
	}
}

func TestRouteNameOutsideSubjectSyntax(t *testing.T) {
	s := openTest(t, "")
	const route = "finance vouchers/报销.v2*"
	b := newBackend()
	if _, err := s.StartWorker(context.Background(), route, fastRetry, b); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, route, "x", func(sub *Submission) { sub.IdempotencyKey = "K 1/ä" })
	if st := waitState(t, s, id, Delivered, 5*time.Second); st.Route != route {
		t.Fatalf("route %q", st.Route)
	}
	if _, err := s.Accept(context.Background(), route, &Submission{Body: []byte("x"), IdempotencyKey: "K 1/ä"}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("want ErrDuplicate, got %v", err)
	}
	if got, err := s.List(context.Background(), Filter{Route: route}); err != nil || len(got) != 1 {
		t.Fatalf("list by route: %v, %v", got, err)
	}
}

func TestBackendDownThenUp(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	var down sync.Mutex
	isDown := true
	b.setFail(func(*Envelope) error {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return errors.New("connection refused")
		}
		return nil
	})
	cfg := fastRetry
	cfg.MaxAttempts = 50
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "x")
	deadline := time.Now().Add(5 * time.Second)
	for b.callsOf(id) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	down.Lock()
	isDown = false
	down.Unlock()
	st := waitState(t, s, id, Delivered, 5*time.Second)
	n := len(st.Attempts)
	if n < 4 || st.Attempts[0].Outcome != OutcomeFailed || st.Attempts[0].Error != "connection refused" || st.Attempts[n-1].Outcome != OutcomeDelivered {
		t.Fatalf("want failed attempts then a delivered one, got %+v", st.Attempts)
	}
	if st.Tried != n || st.LastError != "" {
		t.Fatalf("tried %d, attempts %d, last error %q", st.Tried, n, st.LastError)
	}
}

// gate is a breaker the test opens and closes.
type gate struct {
	mu   sync.Mutex
	open bool
	asks int
}

func (g *gate) Ready() (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asks++
	return !g.open, 10 * time.Millisecond
}

func (g *gate) set(open bool) { g.mu.Lock(); g.open = open; g.mu.Unlock() }
func (g *gate) count() int    { g.mu.Lock(); defer g.mu.Unlock(); return g.asks }

func TestOpenBreakerDoesNotBurnAttempts(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	g := &gate{open: true}
	cfg := fastRetry
	cfg.MaxAttempts = 2
	cfg.Gate = g
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "x")
	deadline := time.Now().Add(5 * time.Second)
	for g.count() < 10 && time.Now().Before(deadline) { // many more pauses than MaxAttempts
		time.Sleep(5 * time.Millisecond)
	}
	if g.count() < 10 {
		t.Fatalf("the gate was asked %d times", g.count())
	}
	if n := b.callsOf(id); n != 0 {
		t.Fatalf("the backend was called %d times through an open breaker", n)
	}
	if st, _ := s.Get(context.Background(), id); st.State != Queued || st.Tried != 0 {
		t.Fatalf("an open breaker burnt attempts: %+v", st)
	}
	// A breaker that opens between Ready and the call: a PauseError.
	var once sync.Once
	b.setFail(func(*Envelope) error {
		var err error
		once.Do(func() { err = Pause(10*time.Millisecond, errors.New("breaker open")) })
		return err
	})
	g.set(false)
	st := waitState(t, s, id, Delivered, 5*time.Second)
	if st.Tried != 1 || len(st.Attempts) != 1 || st.Pauses != 1 {
		t.Fatalf("want one attempt and one pause, got tried %d, attempts %+v, pauses %d", st.Tried, st.Attempts, st.Pauses)
	}
}

func TestDeadLetterAfterMaxAttemptsThenReplay(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	b.setFail(func(*Envelope) error { return errors.New("SAP is down") })
	if _, err := s.StartWorker(context.Background(), "r", fastRetry, b); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "voucher-1", func(sub *Submission) { sub.IdempotencyKey = "k1" })
	st := waitState(t, s, id, Dead, 5*time.Second)
	if st.Tried != 3 || len(st.Attempts) != 3 || st.LastError != "SAP is down" {
		t.Fatalf("want 3 failed attempts and the last error, got %+v", st)
	}
	for i, a := range st.Attempts {
		if a.Outcome != OutcomeFailed || a.At.IsZero() || a.Error != "SAP is down" {
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.callsOf(id); n != 3 {
		t.Fatalf("a dead message was tried again: %d calls", n)
	}
	dead, err := s.List(context.Background(), Filter{Route: "r", State: Dead})
	if err != nil || len(dead) != 1 || dead[0].ID != id {
		t.Fatalf("dead letters: %+v, %v", dead, err)
	}
	env, err := s.Payload(context.Background(), id)
	if err != nil || string(env.Body) != "voucher-1" {
		t.Fatalf("the dead letter lost its payload: %v, %v", env, err)
	}
	// A resubmission gets the first outcome (dead), not a second message.
	_, err = s.Accept(context.Background(), "r", &Submission{Body: []byte("voucher-1"), IdempotencyKey: "k1"})
	var dup *DuplicateError
	if !errors.As(err, &dup) || dup.MessageID != id || dup.Status.State != Dead {
		t.Fatalf("resubmitting a dead message: want its dead status, got %v", err)
	}

	b.setFail(nil)
	if err := s.Replay(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, s, id, Delivered, 5*time.Second)
	if st.Replays != 1 || len(st.Attempts) != 4 || st.Tried != 1 || st.Attempts[3].Outcome != OutcomeDelivered {
		t.Fatalf("after the replay: want the history kept and one more attempt, got %+v", st)
	}
	if err := s.Replay(context.Background(), id); !errors.Is(err, ErrNotReplayable) {
		t.Fatalf("replaying a delivered message: want ErrNotReplayable, got %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.callsOf(id); n != 4 {
		t.Fatalf("want 4 calls (3 failed, 1 after the replay), got %d", n)
	}
}

func TestLargeReplyAndErrorAreCapped(t *testing.T) {
	s := openTest(t, "")
	big := strings.Repeat("报", MaxStoredReply) // 3 bytes a rune: over the cap
	fail := true
	var mu sync.Mutex
	if _, err := s.StartWorker(context.Background(), "r", fastRetry, DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return nil, "", errors.New(big)
		}
		return []byte(big), "text/plain", nil
	})); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "x")
	st := waitState(t, s, id, Delivered, 5*time.Second)
	if st.Reply != nil || st.ReplySize != len(big) || st.ReplyType != "text/plain" {
		t.Fatalf("reply: %d bytes kept, size %d", len(st.Reply), st.ReplySize)
	}
	if e := st.Attempts[0].Error; len(e) > 2<<10+3 || !utf8.ValidString(e) || !strings.HasSuffix(e, "…") {
		t.Fatalf("error text: %d bytes, valid UTF-8 %v", len(e), utf8.ValidString(e))
	}
}

func TestClientFaultIsDeadAtOnce(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	b.setFail(func(*Envelope) error { return bus.ClientFault(400, "Bad voucher", "unbalanced") })
	cfg := fastRetry
	cfg.MaxAttempts = 10
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "x")
	st := waitState(t, s, id, Dead, 5*time.Second)
	if st.Tried != 1 || st.Attempts[0].Outcome != OutcomeRejected {
		t.Fatalf("a fault blaming the caller: want dead after one attempt, got %+v", st)
	}
	// A 429 blames the caller too, but is retried.
	b.setFail(func(*Envelope) error { return bus.ClientFault(429, "Too many requests", "") })
	id = accept(t, s, "r", "y")
	deadline := time.Now().Add(5 * time.Second)
	for b.callsOf(id) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.callsOf(id) < 2 {
		t.Fatal("a 429 was not retried")
	}
}

func TestIdempotency(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	key := func(k string) func(*Submission) { return func(s *Submission) { s.IdempotencyKey = k } }
	id := accept(t, s, "r", "a", key("K"))
	// In flight (queued, no worker yet): 409.
	_, err := s.Accept(ctx, "r", &Submission{Body: []byte("a"), IdempotencyKey: "K"})
	var ke *KeyError
	if !errors.Is(err, ErrInFlight) || !errors.As(err, &ke) || ke.MessageID != id {
		t.Fatalf("same key while in flight: want ErrInFlight naming %s, got %v", id, err)
	}
	// Different payload: 422, whatever the state.
	if _, err := s.Accept(ctx, "r", &Submission{Body: []byte("b"), IdempotencyKey: "K"}); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("same key, other payload: want ErrKeyReused, got %v", err)
	}
	// The same key on another route is another key.
	accept(t, s, "other", "b", key("K"))

	b := newBackend()
	if _, err := s.StartWorker(ctx, "r", fastRetry, b); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, id, Delivered, 5*time.Second)
	_, err = s.Accept(ctx, "r", &Submission{Body: []byte("a"), IdempotencyKey: "K"})
	var dup *DuplicateError
	if !errors.Is(err, ErrDuplicate) || !errors.As(err, &dup) || dup.MessageID != id || string(dup.Status.Reply) != "ok:a" {
		t.Fatalf("same key after delivery: want the first outcome, got %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := b.callsOf(id); n != 1 {
		t.Fatalf("want one call, got %d", n)
	}
	b.mu.Lock()
	if len(b.got) != 1 {
		t.Fatalf("the backend got %d messages: %v", len(b.got), b.got)
	}
	b.mu.Unlock()

	// Sync routes: reserve before the call, record the outcome after.
	h := PayloadHash([]byte("sync-body"))
	r, err := s.Reserve(ctx, "sync", "S1", h, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "sync", "S1", h, time.Minute); !errors.Is(err, ErrInFlight) {
		t.Fatalf("sync, in flight: want ErrInFlight, got %v", err)
	}
	if err := r.Finish(ctx, Outcome{Status: 201, ContentType: "application/json", Reply: []byte(`{"doc":"42"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Reserve(ctx, "sync", "S1", h, time.Minute)
	if !errors.As(err, &dup) || dup.Outcome == nil || dup.Outcome.Status != 201 || string(dup.Outcome.Reply) != `{"doc":"42"}` {
		t.Fatalf("sync, finished: want the recorded outcome, got %v", err)
	}
	if _, err := s.Reserve(ctx, "sync", "S1", PayloadHash([]byte("other")), time.Minute); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("sync, other payload: want ErrKeyReused, got %v", err)
	}
	// A failed sync call releases its key: the caller may try again.
	r, err = s.Reserve(ctx, "sync", "S2", h, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "sync", "S2", h, time.Minute); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	// A holder that died: after its lease the key is taken over.
	if _, err := s.Reserve(ctx, "sync", "S3", h, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	if _, err := s.Reserve(ctx, "sync", "S3", h, time.Minute); err != nil {
		t.Fatalf("after the lease ran out: %v", err)
	}
}

func TestIdempotencyConcurrentFirstWins(t *testing.T) {
	s := openTest(t, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, inflight := 0, 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Accept(context.Background(), "r", &Submission{Body: []byte("same"), IdempotencyKey: "K"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrInFlight):
				inflight++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || inflight != 19 {
		t.Fatalf("20 concurrent submissions of one key: want 1 accepted, 19 in flight; got %d, %d", ok, inflight)
	}
}

func TestPoisonMessageDoesNotBlockOthers(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	b.setFail(func(env *Envelope) error {
		if string(env.Body) == "poison" {
			panic("mapping blew up")
		}
		return nil
	})
	cfg := fastRetry
	cfg.Concurrency = 2
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	poison := accept(t, s, "r", "poison")
	var ids []string
	for i := range 20 {
		ids = append(ids, accept(t, s, "r", fmt.Sprint("good-", i)))
	}
	for _, id := range ids {
		waitState(t, s, id, Delivered, 5*time.Second)
	}
	st := waitState(t, s, poison, Dead, 5*time.Second)
	if st.Tried != 3 || st.Attempts[0].Error == "" {
		t.Fatalf("poison: %+v", st)
	}
}

func TestPerKeyOrder(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	// Every voucher's first message fails twice: order must hold anyway.
	var mu sync.Mutex
	fails := map[string]int{}
	b.setFail(func(env *Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		if env.Body[len(env.Body)-1] == '0' && fails[env.ID] < 2 {
			fails[env.ID]++
			return errors.New("try again")
		}
		return nil
	})
	cfg := fastRetry
	cfg.Partitions = 4
	cfg.MaxAttempts = 5
	s.ConfigureRoute("r", cfg)
	const keys, per = 6, 5
	var last string
	for i := range per {
		for k := range keys {
			last = accept(t, s, "r", fmt.Sprintf("v%d-%d", k, i), func(sub *Submission) { sub.OrderingKey = fmt.Sprint("v", k) })
		}
	}
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, last, Delivered, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.bodies)
		b.mu.Unlock()
		if n == keys*per {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d", n, keys*per)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	next := map[string]int{}
	for _, body := range b.bodies {
		var k, i int
		fmt.Sscanf(body, "v%d-%d", &k, &i)
		kk := fmt.Sprint(k)
		if i != next[kk] {
			t.Fatalf("key v%s: got message %d, want %d (order %v)", kk, i, next[kk], b.bodies)
		}
		next[kk]++
	}
}

func TestRestartKeepsMessagesAndStatuses(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	b := newBackend()
	b.setFail(func(*Envelope) error { return errors.New("down") })
	cfg := fastRetry
	cfg.MaxAttempts = 1
	w, err := s.StartWorker(context.Background(), "dead", cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	dead := accept(t, s, "dead", "d")
	waitState(t, s, dead, Dead, 5*time.Second)
	w.Stop()
	var queued []string
	for i := range 10 {
		queued = append(queued, accept(t, s, "q", fmt.Sprint(i), func(sub *Submission) { sub.IdempotencyKey = fmt.Sprint("k", i) }))
	}
	s.Close()

	s2 := openTest(t, dir)
	if st, err := s2.Get(context.Background(), dead); err != nil || st.State != Dead || len(st.Attempts) != 1 {
		t.Fatalf("after a restart the dead letter is %+v, %v", st, err)
	}
	if _, err := s2.Accept(context.Background(), "q", &Submission{Body: []byte("0"), IdempotencyKey: "k0"}); !errors.Is(err, ErrInFlight) {
		t.Fatalf("after a restart the key is forgotten: %v", err)
	}
	b2 := newBackend()
	if _, err := s2.StartWorker(context.Background(), "q", fastRetry, b2); err != nil {
		t.Fatal(err)
	}
	for _, id := range queued {
		waitState(t, s2, id, Delivered, 5*time.Second)
	}
}

func TestDiscard(t *testing.T) {
	s := openTest(t, "")
	id := accept(t, s, "r", "x")
	if err := s.Discard(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	other := accept(t, s, "r", "y")
	b := newBackend()
	if _, err := s.StartWorker(context.Background(), "r", fastRetry, b); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, other, Delivered, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := b.callsOf(id); n != 0 {
		t.Fatalf("a discarded message was delivered %d times", n)
	}
	if err := s.Discard(context.Background(), other); !errors.Is(err, ErrNotDiscardable) {
		t.Fatalf("discarding a delivered message: want ErrNotDiscardable, got %v", err)
	}
	if _, err := s.Get(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: want ErrNotFound, got %v", err)
	}
	if err := s.Replay(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, id, Delivered, 5*time.Second)
}

func TestListFilters(t *testing.T) {
	s := openTest(t, "")
	t0 := time.Now()
	a := accept(t, s, "r1", "a", func(sub *Submission) { sub.BusinessKey = "V-1" })
	time.Sleep(20 * time.Millisecond)
	t1 := time.Now()
	accept(t, s, "r1", "b", func(sub *Submission) { sub.BusinessKey = "V-2" })
	accept(t, s, "r2", "c", func(sub *Submission) { sub.BusinessKey = "V-1" })
	ctx := context.Background()
	cases := []struct {
		f    Filter
		want int
	}{
		{Filter{}, 3},
		{Filter{Route: "r1"}, 2},
		{Filter{BusinessKey: "V-1"}, 2},
		{Filter{Route: "r1", BusinessKey: "V-1"}, 1},
		{Filter{Since: t1}, 2},
		{Filter{Since: t0, Until: t1}, 1},
		{Filter{State: Delivered}, 0},
		{Filter{State: Queued, Limit: 2}, 2},
		{Filter{Route: "none"}, 0},
	}
	for i, c := range cases {
		got, err := s.List(ctx, c.f)
		if err != nil || len(got) != c.want {
			t.Errorf("case %d (%+v): want %d, got %d (%v)", i, c.f, c.want, len(got), err)
		}
	}
	got, _ := s.List(ctx, Filter{Since: t0, Until: t1})
	if len(got) == 1 && got[0].ID != a {
		t.Errorf("time range: want %s, got %s", a, got[0].ID)
	}
}

func TestStopMidCallIsNotCounted(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	started := make(chan struct{})
	// A message in flight when its node stops comes back after the ack
	// wait (JetStream keeps it pending across the restart).
	cfg := fastRetry
	cfg.AckWait = time.Second
	if _, err := s.StartWorker(context.Background(), "r", cfg, DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		close(started)
		<-ctx.Done() // the node stops during the call
		return nil, "", ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "r", "x")
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never started")
	}
	s.Close()
	s2 := openTest(t, dir)
	st, err := s2.Get(context.Background(), id)
	if err != nil || st.State != Queued || st.Tried != 0 || len(st.Attempts) != 1 || st.Attempts[0].Outcome != OutcomeInterrupted {
		t.Fatalf("after a stop mid-call: want queued, nothing counted, one interrupted attempt; got %+v, %v", st, err)
	}
	if _, err := s2.StartWorker(context.Background(), "r", cfg, newBackend()); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, s2, id, Delivered, 5*time.Second); st.Tried != 1 || len(st.Attempts) != 2 {
		t.Fatalf("want one counted attempt after the interrupted one, got %+v", st)
	}
}

func TestReplayAllByFilter(t *testing.T) {
	s := openTest(t, "")
	b := newBackend()
	b.setFail(func(env *Envelope) error { return errors.New("down") })
	cfg := fastRetry
	cfg.MaxAttempts = 1
	if _, err := s.StartWorker(context.Background(), "r", cfg, b); err != nil {
		t.Fatal(err)
	}
	var v1 []string
	for i := range 3 {
		v1 = append(v1, accept(t, s, "r", fmt.Sprint(i), func(sub *Submission) { sub.BusinessKey = "V-1" }))
	}
	other := accept(t, s, "r", "o", func(sub *Submission) { sub.BusinessKey = "V-2" })
	for _, id := range append(v1, other) {
		waitState(t, s, id, Dead, 5*time.Second)
	}
	b.setFail(nil)
	done, err := s.ReplayAll(context.Background(), Filter{Route: "r", BusinessKey: "V-1"})
	if err != nil || len(done) != 3 {
		t.Fatalf("replayed %v, %v", done, err)
	}
	for _, id := range v1 {
		waitState(t, s, id, Delivered, 5*time.Second)
	}
	if st, _ := s.Get(context.Background(), other); st.State != Dead {
		t.Fatalf("a message outside the filter was replayed: %s", st.State)
	}
}

func TestAsyncReservationWithoutMessageIsTakenOver(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	// An accept that reserved its key and died before storing its message.
	if _, err := s.reserve(ctx, "r", "K", PayloadHash([]byte("x")), newID(), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(ctx, "r", &Submission{Body: []byte("x"), IdempotencyKey: "K"}); !errors.Is(err, ErrInFlight) {
		t.Fatalf("within the lease: want ErrInFlight, got %v", err)
	}
	time.Sleep(80 * time.Millisecond)
	id, err := s.Accept(ctx, "r", &Submission{Body: []byte("x"), IdempotencyKey: "K"})
	if err != nil {
		t.Fatalf("after the lease: %v", err)
	}
	if st, err := s.Get(ctx, id); err != nil || st.State != Queued {
		t.Fatalf("the new message: %+v, %v", st, err)
	}
}
