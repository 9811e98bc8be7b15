package bus

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// waitFor polls cond (bounded): the limiter's counters say when a
// goroutine has reached its wait, no sleep guesses how long that takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestWorkLimiterFIFO(t *testing.T) {
	l := NewWorkLimiter(1)
	_, first, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	release := make(chan struct{})
	for i := 1; i <= 3; i++ {
		go func() {
			_, w, err := l.Begin(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			<-release
			w.End()
		}()
		waitFor(t, "waiter "+string(rune('0'+i))+" queues", func() bool { return l.Stats().Waiting == int64(i) })
	}
	first.End()
	for want := 1; want <= 3; want++ {
		if got := <-order; got != want {
			t.Fatalf("want waiter %d served next, got %d", want, got)
		}
		if s := l.Stats(); s.Busy != 1 {
			t.Fatalf("waiter %d: want 1 slot busy, got %+v", want, s)
		}
		release <- struct{}{}
	}
	waitFor(t, "every slot is back", func() bool { return l.Stats().Busy == 0 })
	if s := l.Stats(); s.Peak != 1 || s.Waiting != 0 || s.Slots != 1 {
		t.Errorf("want peak 1, nobody waiting; got %+v", s)
	}
}

func TestWorkLimiterCancelledWait(t *testing.T) {
	l := NewWorkLimiter(1)
	_, holder, _ := l.Begin(context.Background())
	cases := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		status int
		title  string
	}{
		{"caller gone", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			http.StatusServiceUnavailable, "Request cancelled"},
		{"route time limit", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, http.StatusGatewayTimeout, "Timeout"},
	}
	for _, c := range cases {
		ctx, cancel := c.ctx()
		done := make(chan error, 1)
		go func() {
			_, w, err := l.Begin(ctx)
			w.End()
			done <- err
		}()
		if c.status == http.StatusServiceUnavailable {
			waitFor(t, c.name+": the request queues", func() bool { return l.Stats().Waiting == 1 })
			cancel()
		}
		err := <-done
		cancel()
		var f *Fault
		if !errors.As(err, &f) || f.Status != c.status || f.Title != c.title {
			t.Errorf("%s: want a %d %q fault, got %v", c.name, c.status, c.title, err)
		}
	}
	if s := l.Stats(); s.Busy != 1 || s.Waiting != 0 {
		t.Errorf("cancelled waits must take no slot and leave the queue: %+v", s)
	}
	holder.End()
	// The slot the cancelled waiters gave up is usable at once.
	_, w, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.End()
}

// A request that panics gives its slot back through its deferred End, and
// End twice gives back one slot only.
func TestWorkLimiterReleaseOnPanicAndError(t *testing.T) {
	l := NewWorkLimiter(2)
	func() {
		defer func() { recover() }()
		_, w, _ := l.Begin(context.Background())
		defer w.End()
		panic("mapping bug")
	}()
	_, w, _ := l.Begin(context.Background())
	w.End()
	w.End()
	if s := l.Stats(); s.Busy != 0 {
		t.Fatalf("want every slot back, got %+v", s)
	}
	// Both slots are still there: End twice did not free a slot twice
	// (semaphore.Release would panic) nor lose one.
	_, a, _ := l.Begin(context.Background())
	_, b, _ := l.Begin(context.Background())
	if s := l.Stats(); s.Busy != 2 {
		t.Fatalf("want 2 busy, got %+v", s)
	}
	a.End()
	b.End()
}

func TestPauseWork(t *testing.T) {
	l := NewWorkLimiter(1)
	ctx, w, _ := l.Begin(context.Background())
	resume := PauseWork(ctx)
	if s := l.Stats(); s.Busy != 0 {
		t.Fatalf("paused: want the slot free, got %+v", s)
	}
	// Another request computes while this one waits on the network.
	_, ow, _ := l.Begin(context.Background())
	if PauseWork(ctx)() != nil { // pausing again holds nothing: a no-op
		t.Fatal("a second pause must do nothing")
	}
	done := make(chan error, 1)
	go func() { done <- resume() }()
	waitFor(t, "the resume queues behind the other request", func() bool { return l.Stats().Waiting == 1 })
	ow.End()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Busy != 1 || s.Peak != 1 {
		t.Fatalf("resumed: want exactly one slot held and never two, got %+v", s)
	}
	w.End()
	if PauseWork(ctx)() != nil || l.Stats().Busy != 0 {
		t.Fatalf("after End, pausing must do nothing: %+v", l.Stats())
	}

	// A resume whose request is cancelled while it waits fails with a fault
	// and holds nothing.
	ctx, cancel := context.WithCancel(context.Background())
	ctx, w, _ = l.Begin(ctx)
	resume = PauseWork(ctx)
	_, blocker, _ := l.Begin(context.Background())
	go func() { done <- resume() }()
	waitFor(t, "the resume queues", func() bool { return l.Stats().Waiting == 1 })
	cancel()
	var f *Fault
	if err := <-done; !errors.As(err, &f) || f.Status != http.StatusServiceUnavailable {
		t.Fatalf("want a 503 fault, got %v", err)
	}
	w.End() // holds nothing: must not free the blocker's slot
	if s := l.Stats(); s.Busy != 1 {
		t.Fatalf("want the blocker's slot only, got %+v", s)
	}
	blocker.End()
}

func TestNoWorkLimiter(t *testing.T) {
	var l *WorkLimiter = NewWorkLimiter(0)
	ctx := context.Background()
	got, w, err := l.Begin(ctx)
	if err != nil || w != nil || got != ctx {
		t.Fatalf("a nil limiter must change nothing: %v %v", w, err)
	}
	w.End()
	if err := PauseWork(ctx)(); err != nil {
		t.Fatal(err)
	}
	if l.Stats() != (WorkStats{}) {
		t.Fatal("a nil limiter has no counters")
	}
}

func BenchmarkWorkUncontended(b *testing.B) {
	l := NewWorkLimiter(4)
	ctx := context.Background()
	for b.Loop() {
		c, w, _ := l.Begin(ctx)
		PauseWork(c)()
		w.End()
	}
}
