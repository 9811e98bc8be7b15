package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The operations behind `busbar messages list|show|replay|discard` and
// the admin JSON API. Any node answers them: the state is in JetStream.

// Get returns a message's status: its record, or, for a message no
// attempt has started on yet, "queued" from the stored message itself.
// Unknown ids give ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Status, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	st, _, err := s.current(ctx, id)
	return st, err
}

// current is a message's status and its record's revision (0: no record
// yet, the status is derived from the stored message).
func (s *Store) current(ctx context.Context, id string) (*Status, uint64, error) {
	st, rev, found, err := s.loadStatus(ctx, id)
	if err != nil || found {
		return st, rev, err
	}
	env, err := s.loadByID(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return statusFromEnvelope(env), 0, nil
}

// loadByID finds the last stored copy of a message by the id in its subject.
func (s *Store) loadByID(ctx context.Context, id string) (*Envelope, error) {
	if !validID(id) {
		return nil, fmt.Errorf("delivery: message %q: %w", id, ErrNotFound)
	}
	raw, err := s.msgs.GetLastMsgForSubject(ctx, subjectPrefix+".*.*."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("delivery: message %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("delivery: message %q: read: %w", id, err)
	}
	return decodeEnvelope(raw.Subject, raw.Header, raw.Data, raw.Sequence)
}

// validID: an id is one subject token (no wildcard, no dot, no space).
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Payload returns the original request of a message as it was accepted.
func (s *Store) Payload(ctx context.Context, id string) (*Envelope, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	return s.loadByID(ctx, id)
}

// Filter selects messages for List and ReplayAll. Zero fields match all.
type Filter struct {
	Route       string
	State       State
	Since       time.Time // accepted at or after
	Until       time.Time // accepted before
	BusinessKey string
	// Limit caps the result (the oldest first). Default 100; at most 10,000.
	Limit int
}

// List returns the statuses of the messages that match f, oldest first.
// It walks the stream's headers from f.Since (JetStream finds the start by
// time) and reads each message's record: fine for an operator's query, not
// meant for a request path.
func (s *Store) List(ctx context.Context, f Filter) ([]*Status, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 10_000)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	info, err := s.msgs.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("delivery: list: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	filter := subjectPrefix + ".>"
	if f.Route != "" {
		filter = subjectPrefix + "." + routeToken(f.Route) + ".>"
	}
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true}
	if !f.Since.IsZero() {
		since := f.Since
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.js.OrderedConsumer(ctx, MessageStream, cc)
	if err != nil {
		return nil, fmt.Errorf("delivery: list: %w", err)
	}
	var out []*Status
	index := map[string]int{} // id → position in out: a replayed message has several copies
	last := info.State.LastSeq
	want := 1 // the first fetch learns from its message how many are left
	for {
		// Fetch waits for the full count or the wait time: ask for what
		// the consumer has left, so a short list is not a slow one.
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("delivery: list: %w", err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			want = int(min(meta.NumPending, 256))
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				done = true
			}
			if !f.Until.IsZero() && !meta.Timestamp.Before(f.Until) {
				done = true
				continue
			}
			env, err := decodeEnvelope(m.Subject(), m.Headers(), nil, meta.Sequence.Stream)
			if err != nil || f.BusinessKey != "" && env.BusinessKey != f.BusinessKey {
				continue
			}
			if _, seen := index[env.ID]; seen {
				continue // the status record covers every copy
			}
			st, _, found, err := s.loadStatus(ctx, env.ID)
			if err != nil {
				return nil, err
			}
			if !found {
				st = statusFromEnvelope(env)
			}
			index[env.ID] = len(out)
			if f.State != "" && st.State != f.State {
				continue
			}
			out = append(out, st)
			if len(out) >= f.Limit {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("delivery: list: %w", err)
		}
		if done || n == 0 {
			return out, nil
		}
	}
}

// Replay errors.
var (
	// ErrNotReplayable: only dead and discarded messages are replayed.
	ErrNotReplayable = errors.New("only dead or discarded messages can be replayed")
	// ErrNotDiscardable: delivered messages and running attempts cannot be discarded.
	ErrNotDiscardable = errors.New("only queued or dead messages can be discarded")
)

// Replay puts a dead (or discarded) message back in its queue: a new copy
// of the original request, delivered with a fresh count of attempts; the
// history of the earlier ones is kept. It goes through the idempotency
// check again: if the key now belongs to another message, the replay is
// refused with a *DuplicateError.
func (s *Store) Replay(ctx context.Context, id string) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	st, rev, err := s.current(ctx, id)
	if err != nil {
		return err
	}
	if st.State != Dead && st.State != Discarded {
		return fmt.Errorf("delivery: route %q: message %q: replay: it is %s: %w", st.Route, id, st.State, ErrNotReplayable)
	}
	raw, err := s.msgs.GetMsg(ctx, st.Seq)
	if err != nil {
		return fmt.Errorf("delivery: route %q: message %q: replay: original request (sequence %d): %w", st.Route, id, st.Seq, err)
	}
	env, err := decodeEnvelope(raw.Subject, raw.Header, raw.Data, raw.Sequence)
	if err != nil {
		return err
	}
	if err := s.checkReplayKey(ctx, st, payloadHash(&env.Submission)); err != nil {
		return err
	}
	// Store the copy first, then the status: if we die in between, the
	// worker sees a copy newer than the record and delivers it anyway.
	env.Replay = st.Replays + 1
	msg := env.encode(0)
	msg.Subject = raw.Subject
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("delivery: route %q: message %q: replay: store: %w", st.Route, id, err)
	}
	for {
		st.State, st.Replays, st.Tried, st.Seq, st.LastError = Queued, env.Replay, 0, ack.Sequence, ""
		_, err := s.saveStatus(ctx, st, rev)
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		// A worker took the new copy before we got here: it has recorded
		// the replay itself.
		var found bool
		if st, rev, found, err = s.loadStatus(ctx, id); err != nil || !found {
			return fmt.Errorf("delivery: message %q: replay: status changed meanwhile: %v", id, err)
		}
		if st.Replays >= env.Replay {
			return nil
		}
	}
}

// ReplayAll replays every dead message that f selects (f.State is ignored)
// and returns the ids replayed; it stops at the first error.
func (s *Store) ReplayAll(ctx context.Context, f Filter) ([]string, error) {
	f.State = Dead
	list, err := s.List(ctx, f)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, st := range list {
		if err := s.Replay(ctx, st.ID); err != nil {
			return done, err
		}
		done = append(done, st.ID)
	}
	return done, nil
}

// Discard marks a queued or dead message as discarded: it will not be
// delivered (a worker that takes it acknowledges it and does nothing).
// Its payload and history stay for the retention period, and Replay can
// still bring it back. Its idempotency key stays taken: a resubmission
// gets the discarded status back.
func (s *Store) Discard(ctx context.Context, id string) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	st, rev, err := s.current(ctx, id)
	if err != nil {
		return err
	}
	if st.State != Queued && st.State != Dead {
		return fmt.Errorf("delivery: route %q: message %q: discard: it is %s: %w", st.Route, id, st.State, ErrNotDiscardable)
	}
	st.State = Discarded
	_, err = s.saveStatus(ctx, st, rev)
	return err
}
