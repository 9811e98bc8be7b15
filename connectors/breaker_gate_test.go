package connectors

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

// Ready is what an async route's worker asks before each delivery: an
// open breaker (on every endpoint) says not now, and for how long; a call
// it refuses carries ErrBreakerOpen.
func TestBreakerReady(t *testing.T) {
	down := newBackend(t, status(http.StatusServiceUnavailable))
	up := newBackend(t, status(http.StatusOK))
	openFor := bus.Duration(300 * time.Millisecond)
	k := build(t, HTTPConfig{URLs: []string{down.URL, up.URL}, Retry: RetryConfig{Attempts: 1},
		Breaker: BreakerConfig{Failures: 1, OpenFor: openFor}})
	call := func() error {
		_, err := k.Call(context.Background(), &bus.Message{Method: http.MethodGet})
		return err
	}
	if ok, _ := k.Ready(); !ok {
		t.Fatal("a fresh connector is not ready")
	}
	call() // the first endpoint fails: its breaker opens, the second is still closed
	if ok, _ := k.Ready(); !ok {
		t.Fatal("one endpoint's breaker open: the other can take the call, want ready")
	}
	up.Close() // refused connections count against the second one's breaker too
	call()
	ok, in := k.Ready()
	if ok || in <= 0 || in > time.Duration(openFor) {
		t.Fatalf("both breakers open: want not ready for up to %v, got %v, %v", openFor.Std(), ok, in)
	}
	if err := call(); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("a refused call: want ErrBreakerOpen, got %v", err)
	}
	time.Sleep(in + 20*time.Millisecond)
	if ok, _ := k.Ready(); !ok {
		t.Error("after open-for: want ready (half-open lets a trial call through)")
	}
	one := build(t, HTTPConfig{URL: down.URL, Retry: RetryConfig{Attempts: 1}, Breaker: BreakerConfig{Failures: 1, OpenFor: openFor}})
	one.Call(context.Background(), &bus.Message{Method: http.MethodGet})
	if ok, _ := one.Ready(); ok {
		t.Error("one endpoint, breaker open: want not ready")
	}
	if _, err := one.Call(context.Background(), &bus.Message{Method: http.MethodGet}); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("one endpoint, a refused call: want ErrBreakerOpen, got %v", err)
	}
}
