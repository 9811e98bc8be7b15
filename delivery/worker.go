package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/busbar/busbar/bus"
)

// Deliverer delivers one stored message: the route layer implements it by
// running the route's request map and its connector call. It returns the
// backend's reply, or an error: a *bus.Fault that blames the caller (a 4xx,
// a SOAP Client/Sender fault) sends the message to the dead letters at
// once, because sending the same bytes again cannot succeed; a PauseError
// (see Pause) puts it back without counting an attempt; anything else is a
// failed attempt, retried with backoff.
//
// It must send Envelope.Key() downstream where the backend can
// deduplicate on it: delivery is at least once, and a node that dies after
// the backend accepted a message but before its status was recorded
// delivers it again.
type Deliverer interface {
	Deliver(ctx context.Context, env *Envelope) (reply []byte, contentType string, err error)
}

// DelivererFunc adapts a function to Deliverer.
type DelivererFunc func(ctx context.Context, env *Envelope) ([]byte, string, error)

func (f DelivererFunc) Deliver(ctx context.Context, env *Envelope) ([]byte, string, error) {
	return f(ctx, env)
}

// Gate is what the worker asks before each attempt: a connector's circuit
// breaker. An open breaker (ok false) pauses delivery for retryIn without
// counting an attempt, so a backend down for an hour does not send a
// month-end's vouchers to the dead letters.
type Gate interface {
	Ready() (ok bool, retryIn time.Duration)
}

// PauseError is a delivery that did not reach the backend for a reason
// that is not the message's (the breaker opened between Ready and the
// call, the node is overloaded): no attempt is counted.
type PauseError struct {
	RetryIn time.Duration
	Err     error
}

func (e *PauseError) Error() string {
	return fmt.Sprintf("delivery paused for %s: %v", e.RetryIn, e.Err)
}
func (e *PauseError) Unwrap() error { return e.Err }

// Pause wraps err as a PauseError.
func Pause(retryIn time.Duration, err error) error { return &PauseError{RetryIn: retryIn, Err: err} }

// RouteConfig is the delivery part of an async route's configuration.
type RouteConfig struct {
	// MaxAttempts is the number of attempts before a message goes to the
	// dead letters. Default 10.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; it doubles after
	// each further one up to MaxBackoff. Defaults 1s and 5m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one attempt. Default 60s.
	Timeout time.Duration
	// AckWait is how long a node may go silent on a message (it died)
	// before JetStream gives it to another node or to this one restarted.
	// A running attempt renews it. Default Timeout + 30s.
	AckWait time.Duration
	// Concurrency is how many messages one node delivers at once
	// (unordered routes). Default 4.
	Concurrency int
	// Partitions > 0 delivers in order per OrderingKey: messages are spread
	// over this many partitions by the key's hash, and each partition has
	// one message in flight at a time (across all nodes). A failing message
	// holds back the others of its partition until it is delivered or dead.
	// Changing the number moves keys between partitions: drain first.
	Partitions int
	// Gate is the connector's breaker; nil: always ready.
	Gate Gate
}

func (c RouteConfig) withDefaults() RouteConfig {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.AckWait <= 0 {
		c.AckWait = c.Timeout + 30*time.Second
	}
	return c
}

// ConfigureRoute records a route's delivery configuration; Accept uses it
// to place a message in its partition. StartWorker calls it too.
func (s *Store) ConfigureRoute(route string, cfg RouteConfig) {
	s.mu.Lock()
	s.routes[route] = cfg.withDefaults()
	s.mu.Unlock()
}

func (s *Store) routeConfig(route string) RouteConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.routes[route]; ok {
		return c
	}
	return RouteConfig{}.withDefaults()
}

// Worker delivers one route's messages.
type Worker struct {
	s      *Store
	route  string
	cfg    RouteConfig
	d      Deliverer
	node   string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// consumerName is the durable consumer of a route (or of one of its
// partitions). Every node uses the same names, so on a cluster the nodes
// share the consumers and each message goes to one of them.
func consumerName(route string, partition int) string {
	n := "busbar_" + routeToken(route)
	if partition >= 0 {
		n += "_p" + strconv.Itoa(partition)
	}
	return n
}

// StartWorker starts delivering route's messages with d until Stop or the
// store's Close.
func (s *Store) StartWorker(ctx context.Context, route string, cfg RouteConfig, d Deliverer) (*Worker, error) {
	select {
	case <-s.stopping:
		return nil, ErrClosed
	default:
	}
	cfg = cfg.withDefaults()
	s.ConfigureRoute(route, cfg)
	host, _ := os.Hostname()
	wctx, cancel := context.WithCancel(context.Background())
	w := &Worker{s: s, route: route, cfg: cfg, d: d, cancel: cancel, node: host + "/" + strconv.Itoa(os.Getpid())}
	type sub struct {
		filter  string
		name    string
		pending int
	}
	var subs []sub
	tok := routeToken(route)
	if cfg.Partitions > 0 {
		for p := range cfg.Partitions {
			subs = append(subs, sub{subjectPrefix + "." + tok + "." + strconv.Itoa(p) + ".>", consumerName(route, p), 1})
		}
	} else {
		subs = append(subs, sub{subjectPrefix + "." + tok + ".>", consumerName(route, -1), cfg.Concurrency})
	}
	var conss []jetstream.Consumer
	for _, sb := range subs {
		cctx, ccancel := opCtx(ctx)
		c, err := s.js.CreateOrUpdateConsumer(cctx, MessageStream, jetstream.ConsumerConfig{
			Durable:       sb.name,
			Description:   "Busbar worker of route " + route,
			FilterSubject: sb.filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			// Attempts are counted in the status record, not by JetStream:
			// a pause for an open breaker is a redelivery but no attempt.
			MaxDeliver:    -1,
			MaxAckPending: sb.pending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			Replicas:      s.cfg.Replicas,
		})
		ccancel()
		if err != nil {
			cancel()
			return nil, fmt.Errorf("delivery: route %q: consumer %s: %w", route, sb.name, err)
		}
		conss = append(conss, c)
	}
	s.workers.Add(1)
	go func() { // the store's Close stops every worker
		defer s.workers.Done()
		select {
		case <-s.stopping:
		case <-wctx.Done():
		}
		w.Stop()
	}()
	for i, c := range conss {
		// A pull request lives on the server that took it: when that
		// server dies, the consumer learns of it only when the pull
		// expires (30s by default), and deliveries stalled 20–25s in the
		// cluster test. A short expiry re-issues the pull to a live server.
		it, err := c.Messages(jetstream.PullMaxMessages(subs[i].pending), jetstream.PullExpiry(pullExpiry))
		if err != nil {
			w.Stop()
			return nil, fmt.Errorf("delivery: route %q: consume %s: %w", route, subs[i].name, err)
		}
		w.wg.Add(1)
		go w.loop(wctx, it, subs[i].pending)
	}
	return w, nil
}

// pullExpiry bounds how long a pull waits on one server (see StartWorker).
const pullExpiry = 4 * time.Second

// Stop stops pulling, cancels the attempts in progress (they are put back
// without counting) and waits for them. Safe to call twice.
func (w *Worker) Stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *Worker) loop(ctx context.Context, it jetstream.MessagesContext, inflight int) {
	defer w.wg.Done()
	go func() { <-ctx.Done(); it.Stop() }()
	sem := make(chan struct{}, inflight)
	var running sync.WaitGroup
	defer running.Wait()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		m, err := it.Next()
		if err != nil {
			<-sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return
			}
			w.s.log.Warn("delivery: pull", "route", w.route, "error", err)
			continue
		}
		running.Add(1)
		go func() {
			defer func() { <-sem; running.Done() }()
			w.handle(ctx, m)
		}()
	}
}

// handle runs one delivery attempt of one message, records its outcome
// and only then acknowledges (or puts back) the message: a node dying in
// between leaves a message that is delivered again, never one that is lost.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		w.s.log.Error("delivery: message metadata", "route", w.route, "error", err)
		_ = m.Term()
		return
	}
	env, err := decodeEnvelope(m.Subject(), m.Headers(), m.Data(), meta.Sequence.Stream)
	if err != nil {
		w.s.log.Error("delivery: undecodable message dropped", "route", w.route, "error", err)
		_ = m.TermWithReason("not a Busbar message")
		return
	}
	log := w.s.log.With("route", w.route, "message", env.ID)
	st, rev, found, err := w.s.loadStatus(ctx, env.ID)
	if err != nil {
		log.Warn("delivery: read status", "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if !found {
		st = statusFromEnvelope(env)
	} else {
		switch {
		case env.Replay < st.Replays: // an older copy: a replay has superseded it
			_ = m.Ack()
			return
		case env.Replay > st.Replays: // a replay whose status update was lost
			st.State, st.Replays, st.Tried = Queued, env.Replay, 0
		case st.State.Finished():
			_ = m.Ack() // recorded before a lost ack, or discarded
			return
		}
	}
	if n := len(st.Attempts); st.State == Delivering && n > 0 && st.Attempts[n-1].Outcome == "" {
		// The node running the last attempt died (or its ack was lost):
		// the backend may have the message; the key it got lets it dedupe.
		st.Attempts[n-1].Outcome = OutcomeInterrupted
		if st.Tried >= w.cfg.MaxAttempts {
			st.State, st.LastError = Dead, "interrupted during the last attempt"
			w.finish(ctx, m, st, rev, log)
			return
		}
	}
	if w.cfg.Gate != nil {
		if ok, retryIn := w.cfg.Gate.Ready(); !ok {
			// Not an attempt: nothing is written, the message waits.
			_ = m.NakWithDelay(max(retryIn, 10*time.Millisecond))
			return
		}
	}
	st.State, st.Seq = Delivering, env.seq
	st.Tried++
	st.Attempts = append(st.Attempts, Attempt{At: time.Now().UTC(), Node: w.node})
	if rev, err = w.s.saveStatus(ctx, st, rev); err != nil {
		// Another node or an operator changed it meanwhile: look again later.
		log.Warn("delivery: start attempt", "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	env.Attempt = st.Tried

	start := time.Now()
	reply, ctype, derr := w.deliver(ctx, m, env)
	a := &st.Attempts[len(st.Attempts)-1]
	a.Duration = time.Since(start)
	var pause *PauseError
	switch {
	case derr == nil:
		a.Outcome, st.State, st.LastError = OutcomeDelivered, Delivered, ""
		st.setReply(reply, ctype)
	case errors.As(derr, &pause):
		// The backend was not reached, and not for the message's fault:
		// take the attempt back.
		st.Attempts, st.Tried, st.State = st.Attempts[:len(st.Attempts)-1], st.Tried-1, Queued
		st.Pauses++
		w.record(ctx, m, st, rev, log, max(pause.RetryIn, 10*time.Millisecond))
		return
	case ctx.Err() != nil:
		// This node is stopping: the call was cut short (the backend may
		// have it), which is no reason to count it against the message.
		a.Outcome, a.Error = OutcomeInterrupted, "the node stopped during the call"
		st.Tried, st.State = st.Tried-1, Queued
		st.Pauses++
		w.record(ctx, m, st, rev, log, 0)
		return
	case blamesCaller(derr):
		msg := errorText(derr)
		a.Outcome, a.Error, st.State, st.LastError = OutcomeRejected, msg, Dead, msg
	default:
		msg := errorText(derr)
		a.Outcome, a.Error, st.LastError = OutcomeFailed, msg, msg
		if st.Tried >= w.cfg.MaxAttempts {
			st.State = Dead
		} else {
			st.State = Queued
			w.record(ctx, m, st, rev, log, w.backoff(st.Tried))
			return
		}
	}
	w.finish(ctx, m, st, rev, log)
}

// deliver runs the Deliverer under the attempt's timeout, telling
// JetStream the message is still being worked on while it runs, and turns
// a panic into a failed attempt (a poison message must not kill the node).
func (w *Worker) deliver(ctx context.Context, m jetstream.Msg, env *Envelope) (reply []byte, ctype string, err error) {
	dctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(max(w.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("delivery: route %q: message %q: deliverer panicked: %v", env.Route, env.ID, p)
		}
	}()
	return w.d.Deliver(dctx, env)
}

// errorText is an error as the status keeps it: at most 2 KiB (a backend's
// error page can be large, and every attempt keeps its own).
func errorText(err error) string {
	const max = 2 << 10
	s := err.Error()
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// blamesCaller reports a fault that retrying cannot fix: the backend (or
// the route's own mapping) refused the request itself. 408 and 429 blame
// the caller in HTTP but are worth retrying.
func blamesCaller(err error) bool {
	var f *bus.Fault
	if !errors.As(err, &f) || f.Blame != bus.BlameClient {
		return false
	}
	return f.Status != http.StatusRequestTimeout && f.Status != http.StatusTooManyRequests
}

// backoff is the wait after failed attempt n (1-based): Backoff doubled
// n-1 times, capped, with up to 10 % jitter so messages failed together do
// not all come back together.
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.Backoff
	for i := 1; i < n && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// record saves a not-finished status and puts the message back for delay.
func (w *Worker) record(ctx context.Context, m jetstream.Msg, st *Status, rev uint64, log interface {
	Warn(string, ...any)
}, delay time.Duration) {
	if _, err := w.s.saveStatus(context.WithoutCancel(ctx), st, rev); err != nil {
		log.Warn("delivery: record attempt", "error", err)
	}
	_ = m.NakWithDelay(delay)
}

// finish saves a final status (delivered or dead), then acknowledges.
func (w *Worker) finish(ctx context.Context, m jetstream.Msg, st *Status, rev uint64, log interface {
	Warn(string, ...any)
}) {
	if _, err := w.s.saveStatus(context.WithoutCancel(ctx), st, rev); err != nil {
		// Not recorded: do not ack; the redelivery finds the attempt
		// unfinished and goes on from there.
		log.Warn("delivery: record outcome", "state", st.State, "error", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if st.State == Dead {
		log.Warn("delivery: message dead", "attempts", st.Tried, "error", st.LastError)
	}
	_ = m.Ack()
}
