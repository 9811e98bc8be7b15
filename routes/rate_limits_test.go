package routes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busbar/busbar/connectors"
)

func writeRateRoute(t *testing.T, dir, name, rateLimit string) {
	t.Helper()
	src := fmt.Sprintf("route: %s\nfrom:\n  rest: { method: POST, path: /%s }\nrate-limit: %s\nrespond:\n  - status: 204\n", name, name, rateLimit)
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func statusOf(h http.Handler, path string) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader("{}")))
	return w.Code
}

// A reload keeps the buckets of a route whose rate-limit did not change (a
// caller that used its allowance does not get it back by someone editing
// another file), starts a changed route afresh, and forgets a route gone.
func TestRateLimitKeptAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"same", "changed", "gone"} {
		writeRateRoute(t, dir, name, "{ rate: 1/h, burst: 1 }")
	}
	kept := NewRateLimits()
	cfg, err := Load(dir, WithRateLimits(kept))
	if err != nil {
		t.Fatal(err)
	}
	srv := connectors.NewServer(connectors.ServerConfig{})
	srv.Swap(cfg.Endpoints())
	for _, path := range []string{"/same", "/changed"} {
		if a, b := statusOf(srv.Handler(), path), statusOf(srv.Handler(), path); a != 204 || b != 429 {
			t.Fatalf("%s: want 204 then 429, got %d then %d", path, a, b)
		}
	}
	writeRateRoute(t, dir, "changed", "{ rate: 2/h, burst: 1 }")
	os.Remove(filepath.Join(dir, "gone.yaml"))
	// A broken load keeps nothing of its own.
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("route: broken\nrate-limit: { rate: 1 }\n"), 0o644)
	if _, err := Load(dir, WithRateLimits(kept)); err == nil {
		t.Fatal("the broken file loaded")
	}
	if kept.get("gone") == nil {
		t.Error("a failed load changed what is kept")
	}
	os.Remove(filepath.Join(dir, "broken.yaml"))
	next, err := Load(dir, WithRateLimits(kept))
	if err != nil {
		t.Fatal(err)
	}
	srv.Swap(next.Endpoints())
	if s := statusOf(srv.Handler(), "/same"); s != 429 {
		t.Errorf("/same after the reload: %d, want 429 (its bucket kept)", s)
	}
	if s := statusOf(srv.Handler(), "/changed"); s != 204 {
		t.Errorf("/changed after the reload: %d, want 204 (a new bucket)", s)
	}
	if kept.get("gone") != nil {
		t.Error("the removed route's limiter is still kept")
	}
	// Without WithRateLimits every load starts afresh.
	fresh, _ := Load(dir)
	srv.Swap(fresh.Endpoints())
	if s := statusOf(srv.Handler(), "/same"); s != 204 {
		t.Errorf("/same after a load without WithRateLimits: %d, want 204", s)
	}
}

// Watch hands its options to every load, so `busbar serve`'s reloads keep
// rate limiters.
func TestWatchKeepsRateLimits(t *testing.T) {
	dir := t.TempDir()
	writeRateRoute(t, dir, "same", "{ rate: 1/h, burst: 1, per: caller }")
	kept := NewRateLimits()
	cfg, err := Load(dir, WithRateLimits(kept))
	if err != nil {
		t.Fatal(err)
	}
	before := kept.get("same")
	ctx, cancel := context.WithCancel(context.Background())
	var reloaded atomic.Pointer[Config]
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, cfg, func(c *Config) { reloaded.Store(c) }, func(err error) { t.Error(err) }, WithRateLimits(kept))
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // let the watcher register the folder
	writeRateRoute(t, dir, "other", "{ rate: 1/h }")
	eventually(t, "the new file is loaded", func() bool { return reloaded.Load() != nil })
	if kept.get("same") != before || kept.get("other") == nil {
		t.Error("the reload did not keep the unchanged route's limiter")
	}
}
