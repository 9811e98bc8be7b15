package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/busbar/busbar/delivery"
)

// claimsBackend is the expense platform (GET /claims?since=) and the
// target (POST /post) of a scheduled route, counting what it sees.
type claimsBackend struct {
	*httptest.Server
	mu      sync.Mutex
	claims  []claim
	since   []string       // each source call's since, in order
	posted  map[string]int // claimNo -> posts
	keys    map[string]int // Idempotency-Key -> posts
	failNo  string         // a claim whose post gets a 500
	hold    time.Duration  // the source call takes this long
	inCalls atomic.Int32
	overlap atomic.Bool // two source calls were in flight at once
}

type claim struct {
	ClaimNo    string `json:"claimNo"`
	Amount     string `json:"amount"`
	ApprovedAt string `json:"approvedAt"`
}

func newClaimsBackend(t *testing.T, claims ...claim) *claimsBackend {
	b := &claimsBackend{claims: claims, posted: map[string]int{}, keys: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/claims":
			if b.inCalls.Add(1) > 1 {
				b.overlap.Store(true)
			}
			defer b.inCalls.Add(-1)
			since := r.URL.Query().Get("since")
			b.mu.Lock()
			b.since = append(b.since, since)
			hold := b.hold
			var out []claim
			st, _ := time.Parse(time.RFC3339, since)
			for _, c := range b.claims {
				if at, _ := time.Parse(time.RFC3339, c.ApprovedAt); at.After(st) {
					out = append(out, c)
				}
			}
			b.mu.Unlock()
			time.Sleep(hold)
			json.NewEncoder(w).Encode(map[string]any{"claims": out})
		case "/post":
			var c claim
			body, _ := io.ReadAll(r.Body)
			json.Unmarshal(body, &c)
			b.mu.Lock()
			if c.ClaimNo == "" { // an XML record, converted: {"item": {…}}
				var wrapped struct{ Item claim }
				json.Unmarshal(body, &wrapped)
				c = wrapped.Item
			}
			fail := b.failNo != "" && c.ClaimNo == b.failNo
			if !fail {
				b.posted[c.ClaimNo]++
				if k := r.Header.Get("Idempotency-Key"); k != "" {
					b.keys[k]++
				}
			}
			b.mu.Unlock()
			if fail {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"error":"cannot post"}`))
				return
			}
			w.Write([]byte(`{"docNo":"4711"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *claimsBackend) sinces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.since...)
}

func (b *claimsBackend) posts() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string]int{}
	for k, v := range b.posted {
		m[k] = v
	}
	return m
}

const scheduledClaimsRoute = `route: claims-pull
from:
  schedule:
    every: 100ms
    timeout: 5s
    source:
      connector: backend
      path: /claims?since={changedSince}
    split: $.claims
    checkpoint: {from: $.approvedAt}
to: {connector: backend, path: /post}
`

var threeClaims = []claim{
	{"C1", "10.00", "2026-12-01T10:00:00Z"},
	{"C2", "20.00", "2026-12-01T11:00:00Z"},
	{"C3", "30.00", "2026-12-01T09:00:00Z"},
}

// loadScheduled loads dir with store, the way serve does.
func loadScheduled(t *testing.T, dir string, store *delivery.Store) *Config {
	t.Helper()
	cfg, err := Load(dir, WithStore(func() (*delivery.Store, error) { return store, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Close)
	return cfg
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkpointOf(t *testing.T, store *delivery.Store, route string) string {
	t.Helper()
	st, err := store.ScheduleState(context.Background(), route)
	if err != nil {
		t.Fatal(err)
	}
	return st.Checkpoint
}

func TestScheduleSplitsPostsAndAdvances(t *testing.T) {
	b := newClaimsBackend(t, threeClaims...)
	store := openStore(t)
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": scheduledClaimsRoute})
	loadScheduled(t, dir, store)
	const latest = "2026-12-01T11:00:00Z"
	waitFor(t, "the checkpoint to advance", func() bool { return checkpointOf(t, store, "claims-pull") == latest })
	// The run after it asks from the checkpoint on, and gets nothing new.
	waitFor(t, "a run from the checkpoint", func() bool {
		s := b.sinces()
		return len(s) >= 2 && s[len(s)-1] == latest
	})
	if s := b.sinces(); s[0] != defaultCheckpoint {
		t.Errorf("first run: want since=%s, got %s", defaultCheckpoint, s[0])
	}
	want := map[string]int{"C1": 1, "C2": 1, "C3": 1}
	if got := b.posts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("posts: want %v, got %v", want, got)
	}
}

func TestScheduleFailedRecordKeepsCheckpoint(t *testing.T) {
	b := newClaimsBackend(t, threeClaims...)
	b.failNo = "C2"
	store := openStore(t)
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": scheduledClaimsRoute})
	loadScheduled(t, dir, store)
	waitFor(t, "three runs", func() bool { return len(b.sinces()) >= 3 })
	for i, s := range b.sinces() {
		if s != defaultCheckpoint {
			t.Fatalf("run %d: want since=%s while C2 fails, got %s", i+1, defaultCheckpoint, s)
		}
	}
	if got := checkpointOf(t, store, "claims-pull"); got != "" {
		t.Fatalf("checkpoint advanced past a failed record: %q", got)
	}
	st, _ := store.ScheduleState(context.Background(), "claims-pull")
	if st.Run == nil || st.Run.Failed != 1 || st.Run.Records != 3 {
		t.Errorf("last run: want 1 of 3 failed, got %+v", st.Run)
	}
	b.mu.Lock()
	b.failNo = ""
	b.mu.Unlock()
	waitFor(t, "the checkpoint to advance once C2 goes through", func() bool {
		return checkpointOf(t, store, "claims-pull") == "2026-12-01T11:00:00Z"
	})
}

// Two Busbar nodes in one process share the store: every tick runs once,
// and runs never overlap.
func TestScheduleTwoNodesRunEachTickOnce(t *testing.T) {
	b := newClaimsBackend(t)
	b.hold = 40 * time.Millisecond // a run takes a good part of the interval
	store := openStore(t)
	route := strings.Replace(scheduledClaimsRoute, "    checkpoint: {from: $.approvedAt}\n", "", 1)
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": route})
	loadScheduled(t, dir, store)
	loadScheduled(t, dir, store)
	time.Sleep(100 * time.Millisecond)
	n0, start := len(b.sinces()), time.Now()
	time.Sleep(2 * time.Second)
	runs, ticks := len(b.sinces())-n0, int(time.Since(start)/(100*time.Millisecond))
	if runs > ticks+1 {
		t.Errorf("%d ticks ran %d times across two nodes", ticks, runs)
	}
	if runs < 3 { // a loaded machine skips ticks (a run overrunning its interval), never all
		t.Errorf("%d ticks ran only %d times", ticks, runs)
	}
	if b.overlap.Load() {
		t.Error("two runs of the route overlapped")
	}
	// Each run's checkpoint is its start time: no two runs share one.
	seen := map[string]bool{}
	for _, s := range b.sinces() {
		if seen[s] {
			t.Errorf("two runs started from checkpoint %s", s)
		}
		seen[s] = true
	}
}

func TestScheduleResumesFromCheckpointAfterRestart(t *testing.T) {
	b := newClaimsBackend(t, threeClaims...)
	dataDir := t.TempDir()
	open := func() *delivery.Store {
		s, err := delivery.Open(context.Background(), delivery.Config{DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": scheduledClaimsRoute})
	store := open()
	cfg, err := Load(dir, WithStore(func() (*delivery.Store, error) { return store, nil }))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the checkpoint to advance", func() bool { return checkpointOf(t, store, "claims-pull") == "2026-12-01T11:00:00Z" })
	cfg.Close()
	store.Close()
	n := len(b.sinces())

	store = open()
	defer store.Close()
	cfg, err = Load(dir, WithStore(func() (*delivery.Store, error) { return store, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	waitFor(t, "a run after the restart", func() bool { return len(b.sinces()) > n })
	if s := b.sinces()[n]; s != "2026-12-01T11:00:00Z" {
		t.Errorf("first run after restart: want since=2026-12-01T11:00:00Z, got %s", s)
	}
	for k, v := range b.posts() {
		if v != 1 {
			t.Errorf("claim %s posted %d times", k, v)
		}
	}
}

// An async scheduled route accepts each record into the store; the
// worker delivers them, each once, with the record's key downstream.
func TestScheduleAsyncAcceptsRecords(t *testing.T) {
	b := newClaimsBackend(t, threeClaims...)
	store := openStore(t)
	route := scheduledClaimsRoute + "delivery: {mode: async, idempotency-key: $.claimNo, backoff: 20ms}\n"
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": route})
	loadScheduled(t, dir, store)
	waitFor(t, "the checkpoint to advance", func() bool { return checkpointOf(t, store, "claims-pull") == "2026-12-01T11:00:00Z" })
	waitFor(t, "three deliveries", func() bool { return len(b.posts()) == 3 })
	time.Sleep(300 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]int{"C1": 1, "C2": 1, "C3": 1}
	if fmt.Sprint(b.keys) != fmt.Sprint(want) {
		t.Errorf("posts by Idempotency-Key: want %v, got %v", want, b.keys)
	}
}

func TestScheduleConfigErrors(t *testing.T) {
	cases := []struct {
		route, want string
	}{
		{`route: bad-cron
from:
  schedule:
    cron: "*/5 * * *"
    source: {connector: backend, path: /claims}
to: {connector: backend}
`, `claims.yaml:4:11: route "bad-cron": cron "*/5 * * *": expected exactly 5 fields, found 4`},
		{`route: unknown-key
from:
  schedule:
    every: 5m
    sorce: {connector: backend, path: /claims}
to: {connector: backend}
`, `claims.yaml:5:5: route "unknown-key": unknown field "sorce"`},
		{`route: no-source
from:
  schedule: {every: 5m}
to: {connector: backend}
`, `claims.yaml:3:13: route "no-source": a schedule needs ` + "`source`"},
		{`route: bad-tz
from:
  schedule:
    cron: "0 * * * *"
    tz: Mars/Olympus
    source: {connector: backend, path: /claims}
to: {connector: backend}
`, `claims.yaml:5:9: route "bad-tz": tz "Mars/Olympus": not an IANA time zone`},
		{`route: bad-split
from:
  schedule:
    every: 5m
    source: {connector: backend, path: /claims}
    split: claims
to: {connector: backend}
`, `claims.yaml:6:12: route "bad-split": split "claims": write a JSON path`},
	}
	for i, c := range cases {
		dir := asyncConfig(t, "http://127.0.0.1:1", map[string]string{"claims.yaml": c.route})
		_, err := Load(dir)
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("case %d: want errors, got %v", i+1, err)
		}
		got := strings.ReplaceAll(err.Error(), filepath.Join(dir, ""), "")
		got = strings.ReplaceAll(got, string(os.PathSeparator)+"claims.yaml", "claims.yaml")
		if !strings.Contains(got, c.want) {
			t.Errorf("case %d: want …%s…, got %s", i+1, c.want, got)
		}
	}
}

// A node whose timer fires late, after another node ran the tick and let
// the lease go, must not run it again; a current lease of another node
// holds a run back, a lapsed one (its node died) does not.
func TestScheduleTickAndLease(t *testing.T) {
	b := newClaimsBackend(t, threeClaims...)
	store := openStore(t)
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": scheduledClaimsRoute})
	cfg, err := Load(dir) // compiled, not started: the test drives the ticks
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	sr := cfg.schedules[0]
	sr.log = slog.Default()
	ctx := context.Background()
	tick := time.Now().Truncate(time.Second)
	sr.run(ctx, store, "node-a", tick)
	sr.run(ctx, store, "node-b", tick)
	if n := len(b.sinces()); n != 1 {
		t.Fatalf("one tick on two nodes: want 1 run, got %d", n)
	}
	tick = tick.Add(time.Second)
	held, err := store.AcquireLease(ctx, "claims-pull", "node-c", tick, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sr.run(ctx, store, "node-a", tick)
	if n := len(b.sinces()); n != 1 {
		t.Fatalf("a run while node-c holds the lease: want no source call, got %d in all", n)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AcquireLease(ctx, "claims-pull", "node-dies", tick, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	sr.run(ctx, store, "node-a", tick)
	if n := len(b.sinces()); n != 2 {
		t.Fatalf("a lapsed lease: want it taken over and the tick run, got %d runs in all", n)
	}
}

// A SOAP source: the request map reads the checkpoint, the reply is split
// by XPath, and each XML record goes to a REST target as JSON.
func TestScheduleSOAPSourceXPathSplit(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	soapSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests = append(requests, r.Header.Get("SOAPAction")+" "+string(body))
		mu.Unlock()
		items := "" // changed since the epoch: two; since a later run: none
		if strings.Contains(string(body), "<Since>"+defaultCheckpoint+"</Since>") {
			items = `<item><claimNo>S1</claimNo></item><item><claimNo>S2</claimNo></item>`
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
			`<GetChangedResponse>` + items + `</GetChangedResponse></soapenv:Body></soapenv:Envelope>`))
	}))
	defer soapSrv.Close()
	b := newClaimsBackend(t)
	store := openStore(t)
	dir := asyncConfig(t, b.URL, map[string]string{
		"erp.yaml": "connector: erp\ntype: soap\nversion: \"1.1\"\nurl: " + soapSrv.URL + "\ntimeout: 2s\n",
		"claims.yaml": `route: soap-pull
from:
  schedule:
    every: 100ms
    source:
      connector: erp
      action: urn:GetChanged
      map:
        output: xml
        body:
          GetChanged:
            Since: var("changedSince")
    split: /*/item
to: {connector: backend, path: /post}
`})
	loadScheduled(t, dir, store)
	waitFor(t, "two posts", func() bool { return len(b.posts()) == 2 })
	waitFor(t, "a second run", func() bool { mu.Lock(); defer mu.Unlock(); return len(requests) >= 2 })
	mu.Lock()
	first, second := requests[0], requests[1]
	mu.Unlock()
	if !strings.Contains(first, "urn:GetChanged") || !strings.Contains(first, "<Since>"+defaultCheckpoint+"</Since>") {
		t.Errorf("first source request: want the action and <Since>%s</Since>, got %s", defaultCheckpoint, first)
	}
	if strings.Contains(second, "<Since>"+defaultCheckpoint+"</Since>") {
		t.Errorf("second source request: the checkpoint did not advance to the first run's start: %s", second)
	}
	if got := b.posts(); got["S1"] != 1 || got["S2"] != 1 {
		t.Errorf("posts: want S1 and S2 once each, got %v", got)
	}
}

// The example: the demo expense platform's approved claims booked in the
// demo SAP, each once, the checkpoint at the latest claim's approval.
func TestScheduleExampleClaimsToSAP(t *testing.T) {
	store := openStore(t)
	b := startAsync(t, examples, store)
	var sr *scheduledRoute
	for _, s := range b.cfg.schedules {
		if s.name == "expense-claims-to-sap" {
			sr = s
		}
	}
	if sr == nil {
		t.Fatal("examples: no scheduled route expense-claims-to-sap")
	}
	ctx := context.Background()
	tick := time.Now().Add(-time.Hour).Truncate(time.Second) // not a tick the route's own timer makes
	sr.run(ctx, store, "test", tick)
	if got := checkpointOf(t, store, sr.name); got != "2026-12-01T08:00:00Z" {
		t.Fatalf("checkpoint: want 2026-12-01T08:00:00Z, got %q", got)
	}
	var delivered []*delivery.Status
	waitFor(t, "three vouchers delivered", func() bool {
		delivered, _ = store.List(ctx, delivery.Filter{Route: sr.name, State: delivery.Delivered})
		return len(delivered) == 3
	})
	sr.run(ctx, store, "test", tick.Add(time.Second)) // nothing new since the checkpoint
	all, _ := store.List(ctx, delivery.Filter{Route: sr.name})
	if len(all) != 3 {
		t.Errorf("after a second run: want 3 messages, got %d", len(all))
	}
	keys := map[string]bool{}
	for _, st := range delivered {
		keys[st.BusinessKey] = true
	}
	if len(keys) != 3 || !keys["EC-2026-0101"] || !keys["EC-2026-0103"] {
		t.Errorf("delivered claims: %v", keys)
	}
}

func TestScheduleNextTick(t *testing.T) {
	at := time.Date(2026, 12, 8, 3, 7, 30, 0, time.UTC)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	daily, _ := cronParse("0 9 * * *")
	five, _ := cronParse("*/5 * * * *")
	cases := []struct {
		sr   scheduledRoute
		want time.Time
	}{
		{scheduledRoute{every: 5 * time.Minute}, time.Date(2026, 12, 8, 3, 10, 0, 0, time.UTC)},
		{scheduledRoute{cron: five, loc: time.UTC}, time.Date(2026, 12, 8, 3, 10, 0, 0, time.UTC)},
		{scheduledRoute{cron: daily, loc: time.UTC}, time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)},
		// 09:00 in Shanghai is 01:00 UTC: the next is tomorrow's.
		{scheduledRoute{cron: daily, loc: sh}, time.Date(2026, 12, 9, 1, 0, 0, 0, time.UTC)},
	}
	for i, c := range cases {
		if got := c.sr.next(at); !got.Equal(c.want) {
			t.Errorf("case %d: want %s, got %s", i+1, c.want, got.UTC())
		}
	}
}

func TestScheduleExpandPath(t *testing.T) {
	vars := map[string]string{"changedSince": "2026-12-08T03:00:00+08:00", "co": "10 00"}
	cases := []struct{ path, want string }{
		{"/claims/{changedSince}", "/claims/2026-12-08T03:00:00+08:00"},
		{"/c/{co}/claims?since={changedSince}", "/c/10%2000/claims?since=2026-12-08T03%3A00%3A00%2B08%3A00"},
		{"/claims", "/claims"},
	}
	for i, c := range cases {
		if got := expandPath(c.path, vars); got != c.want {
			t.Errorf("case %d: want %s, got %s", i+1, c.want, got)
		}
	}
}

func cronParse(spec string) (cron.Schedule, error) { return cron.ParseStandard(spec) }

// A run whose lease lapsed and was taken over must not set back the
// checkpoint the newer run saved.
func TestScheduleStaleSaveRefused(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	tick := time.Now()
	old, err := store.AcquireLease(ctx, "r", "stalled", tick, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := store.ScheduleState(ctx, "r")
	time.Sleep(5 * time.Millisecond)
	newer, err := store.AcquireLease(ctx, "r", "other", tick, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := store.ScheduleState(ctx, "r")
	st.Checkpoint, st.Tick = "2026-12-02T00:00:00Z", tick
	if err := newer.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	stale.Checkpoint, stale.Tick = "2026-12-01T00:00:00Z", tick
	if err := old.Save(ctx, stale); err == nil {
		t.Error("the stalled run's save went through")
	}
	if got := checkpointOf(t, store, "r"); got != "2026-12-02T00:00:00Z" {
		t.Errorf("checkpoint: want the newer run's 2026-12-02T00:00:00Z, got %s", got)
	}
}

// A run longer than its lease renews it: another node asking after the
// first lease would have lapsed still finds it held.
func TestScheduleRenewsLease(t *testing.T) {
	defer func(m time.Duration) { leaseMargin = m }(leaseMargin)
	leaseMargin = -450 * time.Millisecond // timeout 600ms: a 150ms lease, renewed every 50ms
	b := newClaimsBackend(t)
	b.hold = 400 * time.Millisecond
	store := openStore(t)
	route := strings.Replace(scheduledClaimsRoute, "timeout: 5s", "timeout: 600ms", 1)
	dir := asyncConfig(t, b.URL, map[string]string{"claims.yaml": route})
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	sr := cfg.schedules[0]
	sr.log = slog.Default()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sr.run(context.Background(), store, "node-a", time.Now())
	}()
	time.Sleep(300 * time.Millisecond) // the run waits for the source
	if _, err := store.AcquireLease(context.Background(), "claims-pull", "node-b", time.Now(), time.Minute); !errors.Is(err, delivery.ErrLeaseHeld) {
		t.Errorf("during a renewed run: want the lease held, got %v", err)
	}
	<-done
	if _, err := store.AcquireLease(context.Background(), "claims-pull", "node-b", time.Now(), time.Minute); err != nil {
		t.Errorf("after the run: want the lease released, got %v", err)
	}
}
