package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestTwoNodesShareOneServer runs two stores ("nodes") against one
// external NATS server on loopback, as on a cluster: both accept, both
// work the same route, each message is delivered exactly once, and either
// node answers for any message.
func TestTwoNodesShareOneServer(t *testing.T) {
	url := loopbackServer(t)
	open := func() *Store {
		s, err := Open(context.Background(), Config{NATSURL: url, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()

	var mu sync.Mutex
	byNode := map[string]map[string]int{"a": {}, "b": {}}
	node := func(name string) Deliverer {
		return DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
			time.Sleep(2 * time.Millisecond) // long enough for both nodes to have work
			mu.Lock()
			byNode[name][env.ID]++
			mu.Unlock()
			return []byte(name), "text/plain", nil
		})
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		if _, err := s.StartWorker(context.Background(), "shared", fastRetry, node(name)); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	t0 := time.Now()
	for i := range 200 {
		s := a
		if i%2 == 1 {
			s = b
		}
		ids = append(ids, accept(t, s, "shared", fmt.Sprint(i)))
	}
	t.Logf("accepted in %s", time.Since(t0))
	for i, id := range ids {
		other := []*Store{b, a}[i%2] // the node that did not accept it
		waitState(t, other, id, Delivered, 10*time.Second)
	}
	t.Logf("delivered in %s", time.Since(t0))
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if n := byNode["a"][id] + byNode["b"][id]; n != 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
	if len(byNode["a"]) == 0 || len(byNode["b"]) == 0 {
		t.Fatalf("one node did all the work: a %d, b %d", len(byNode["a"]), len(byNode["b"]))
	}
	t.Logf("node a delivered %d, node b %d", len(byNode["a"]), len(byNode["b"]))
}

// loopbackServer runs a JetStream server on 127.0.0.1 (a random port),
// standing in for an external NATS, and returns its URL.
func loopbackServer(t *testing.T) string {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), SyncAlways: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown) // after the stores close (cleanups run last first)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	return ns.ClientURL()
}

// TestNodeDiesMidDelivery: node A takes a message and dies during the
// backend call (its connection drops; the call never returns). Node B gets
// it after the ack wait, records A's attempt as interrupted and delivers
// it again, with the same idempotency key for the backend to dedupe.
func TestNodeDiesMidDelivery(t *testing.T) {
	url := loopbackServer(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := Open(context.Background(), Config{NATSURL: url, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close() // after the hanging call returns (defers run last first)
	cfg := fastRetry
	cfg.AckWait = time.Second
	started := make(chan struct{})
	hang := make(chan struct{})
	defer close(hang)
	if _, err := a.StartWorker(context.Background(), "r", cfg, DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		close(started)
		<-hang // the node is gone: nothing comes back
		return nil, "", nil
	})); err != nil {
		t.Fatal(err)
	}
	id := accept(t, a, "r", "v", func(s *Submission) { s.IdempotencyKey = "V-1" })
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("node a never started the delivery")
	}
	a.nc.Close() // node a dies: no more acks, no more "in progress"

	b, err := Open(context.Background(), Config{NATSURL: url, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got *Envelope
	var mu sync.Mutex
	if _, err := b.StartWorker(context.Background(), "r", cfg, DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		mu.Lock()
		got = env
		mu.Unlock()
		return []byte("ok"), "text/plain", nil
	})); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, b, id, Delivered, 10*time.Second)
	if len(st.Attempts) != 2 || st.Attempts[0].Outcome != OutcomeInterrupted || st.Attempts[1].Outcome != OutcomeDelivered {
		t.Fatalf("want an interrupted attempt then a delivered one, got %+v", st.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Attempt != 2 || got.IdempotencyKey != "V-1" {
		t.Fatalf("the second delivery: attempt %d, key %q", got.Attempt, got.IdempotencyKey)
	}
}
