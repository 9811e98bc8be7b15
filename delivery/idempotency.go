package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Idempotency errors, for the route layer to map to HTTP. Test them with
// errors.Is; the errors returned carry the route, the key and the message.
var (
	// ErrInFlight: the first submission with this key is still being
	// processed (accepted but its sync call not finished, or being
	// accepted). HTTP 409 Conflict.
	ErrInFlight = errors.New("idempotency key in use by a request still in flight")
	// ErrKeyReused: the key was used before with a different payload.
	// HTTP 422 Unprocessable Content.
	ErrKeyReused = errors.New("idempotency key reused with a different payload")
	// ErrDuplicate: the key was used before with the same payload; the
	// error is a *DuplicateError holding the first outcome, which the
	// route returns instead of posting again.
	ErrDuplicate = errors.New("duplicate submission")
)

// KeyError is ErrInFlight or ErrKeyReused with its context.
type KeyError struct {
	Route, Key string
	MessageID  string // the first submission's message (async routes)
	Err        error  // ErrInFlight or ErrKeyReused
}

func (e *KeyError) Error() string {
	s := fmt.Sprintf("delivery: route %q: idempotency key %q: %v", e.Route, e.Key, e.Err)
	if e.MessageID != "" {
		s += fmt.Sprintf(" (message %q)", e.MessageID)
	}
	return s
}
func (e *KeyError) Unwrap() error { return e.Err }

// DuplicateError is a repeated submission of a finished one: the first
// outcome, to be answered again.
type DuplicateError struct {
	Route, Key string
	// MessageID and Status: the first message of an async route, in
	// whatever state it is now (delivered with its reply, dead, ...).
	MessageID string
	Status    *Status
	// Outcome: the recorded result of a sync call (Reservation.Finish).
	Outcome *Outcome
}

func (e *DuplicateError) Error() string {
	if e.MessageID != "" {
		return fmt.Sprintf("delivery: route %q: idempotency key %q: duplicate of message %q", e.Route, e.Key, e.MessageID)
	}
	return fmt.Sprintf("delivery: route %q: idempotency key %q: duplicate of a finished call", e.Route, e.Key)
}
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Outcome is the result of a sync call recorded under its key.
type Outcome struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType,omitempty"`
	Reply       []byte `json:"reply,omitempty"`
}

// keyRecord is the value under an idempotency key. For an async route it
// points at the message: the message's own status says whether the first
// submission is finished, so the worker never writes the key again. For a
// sync route it holds the outcome once Finish recorded it.
type keyRecord struct {
	Key       string    `json:"key"`
	Route     string    `json:"route"`
	Hash      string    `json:"hash"`
	MessageID string    `json:"messageId,omitempty"`
	At        time.Time `json:"at"`
	// Lease: until then an unfinished reservation whose message cannot be
	// found (yet) holds the key; after it, a new submission takes it over
	// (the holder crashed between reserving and storing, or a sync call's
	// node died).
	Lease   time.Time `json:"lease"`
	Outcome *Outcome  `json:"outcome,omitempty"`
	// Holder is unique per reservation: a write that was stored although
	// its reply was lost is recognised as our own.
	Holder string `json:"holder"`
}

// Reservation is a key held by one submission.
type Reservation struct {
	s      *Store
	kvKey  string
	rev    uint64
	rec    keyRecord
	closed bool
}

func keyName(route, key string) string {
	h := sha256.Sum256([]byte(key))
	return routeToken(route) + "." + hex.EncodeToString(h[:])
}

// Reserve holds an idempotency key for a sync call: call it before the
// backend call with the payload's hash (PayloadHash of the submission) and
// a lease longer than the call can take; then Finish with the outcome, or
// Release when the call failed in a way the caller may retry. Errors are
// those of Accept: *DuplicateError with the recorded Outcome, ErrKeyReused,
// ErrInFlight.
func (s *Store) Reserve(ctx context.Context, route, key, hash string, lease time.Duration) (*Reservation, error) {
	if key == "" {
		return nil, fmt.Errorf("delivery: route %q: reserve: empty idempotency key", route)
	}
	return s.reserve(ctx, route, key, hash, "", lease)
}

// PayloadHash is the hash Accept uses for a body (SHA-256, hex).
func PayloadHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// reserve is first-wins: KV Create succeeds for one submission only.
func (s *Store) reserve(ctx context.Context, route, key, hash, msgID string, lease time.Duration) (*Reservation, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	now := time.Now().UTC()
	r := &Reservation{s: s, kvKey: keyName(route, key),
		rec: keyRecord{Key: key, Route: route, Hash: hash, MessageID: msgID, At: now, Lease: now.Add(lease), Holder: nuid.Next()}}
	val, err := json.Marshal(&r.rec)
	if err != nil {
		return nil, err
	}
	for try := 0; try < 5; try++ {
		if try == 0 {
			r.rev, err = s.createKey(ctx, r.kvKey, val)
		} else {
			r.rev, err = s.keys.Create(ctx, r.kvKey, val)
		}
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("delivery: route %q: idempotency key %q: reserve: %w", route, key, err)
		}
		e, err := s.keys.Get(ctx, r.kvKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released or expired meanwhile: try to create it again
		}
		if err != nil {
			return nil, fmt.Errorf("delivery: route %q: idempotency key %q: read: %w", route, key, err)
		}
		var old keyRecord
		if err := json.Unmarshal(e.Value(), &old); err != nil {
			return nil, fmt.Errorf("delivery: route %q: idempotency key %q: record: %w", route, key, err)
		}
		if old.Holder == r.rec.Holder {
			r.rev = e.Revision()
			return r, nil
		}
		if old.Hash != hash {
			return nil, &KeyError{Route: route, Key: key, MessageID: old.MessageID, Err: ErrKeyReused}
		}
		if old.Outcome != nil {
			return nil, &DuplicateError{Route: route, Key: key, Outcome: old.Outcome}
		}
		if old.MessageID != "" {
			st, err := s.Get(ctx, old.MessageID)
			switch {
			case err == nil && st.State.Finished():
				return nil, &DuplicateError{Route: route, Key: key, MessageID: old.MessageID, Status: st}
			case err == nil:
				return nil, &KeyError{Route: route, Key: key, MessageID: old.MessageID, Err: ErrInFlight}
			case !errors.Is(err, ErrNotFound):
				return nil, err
			}
		}
		if now.Before(old.Lease) {
			return nil, &KeyError{Route: route, Key: key, MessageID: old.MessageID, Err: ErrInFlight}
		}
		// The holder's lease ran out and its message was never stored: take over.
		r.rev, err = s.keys.Update(ctx, r.kvKey, val, e.Revision())
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("delivery: route %q: idempotency key %q: take over: %w", route, key, err)
		}
	}
	return nil, &KeyError{Route: route, Key: key, Err: ErrInFlight}
}

// createKey is the KV Create of a new key (an expected last subject
// sequence of 0, and its revision back), batched with concurrent ones.
func (s *Store) createKey(ctx context.Context, kvKey string, val []byte) (uint64, error) {
	m := nats.NewMsg("$KV." + KeysBucket + "." + kvKey)
	m.Data = val
	m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{"0"}
	p := &pending{msg: m, one: func(ctx context.Context) (uint64, error) {
		// Alone, through the KV API: it knows a key deleted by Release.
		return s.keys.Create(ctx, kvKey, val)
	}}
	if err := s.keyBatch.write(ctx, p); err != nil {
		return 0, err
	}
	return p.seq, nil
}

// Finish records a sync call's outcome under the key: a repeated call
// gets it back (a *DuplicateError) instead of calling the backend again.
func (r *Reservation) Finish(ctx context.Context, o Outcome) error {
	if r.closed {
		return fmt.Errorf("delivery: route %q: idempotency key %q: finished or released already", r.rec.Route, r.rec.Key)
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	r.rec.Outcome = &o
	val, err := json.Marshal(&r.rec)
	if err != nil {
		return err
	}
	if _, err := r.s.keys.Update(ctx, r.kvKey, val, r.rev); err != nil {
		return fmt.Errorf("delivery: route %q: idempotency key %q: record outcome: %w", r.rec.Route, r.rec.Key, err)
	}
	r.closed = true
	return nil
}

// Release gives the key up (the call failed before the backend could act
// on it, or the message could not be stored), so the caller may try again.
func (r *Reservation) Release(ctx context.Context) error {
	if r.closed {
		return nil
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if err := r.s.keys.Delete(ctx, r.kvKey, jetstream.LastRevision(r.rev)); err != nil {
		return fmt.Errorf("delivery: route %q: idempotency key %q: release: %w", r.rec.Route, r.rec.Key, err)
	}
	r.closed = true
	return nil
}

func (s *Store) releaseQuietly(r *Reservation) {
	if r == nil {
		return
	}
	if err := r.Release(context.Background()); err != nil {
		s.log.Warn("delivery: release idempotency key", "route", r.rec.Route, "error", err)
	}
}

// checkReplayKey runs a replay through the idempotency check: the key must
// still belong to this message (or have expired, in which case it is
// claimed again for it).
func (s *Store) checkReplayKey(ctx context.Context, st *Status, hash string) error {
	if st.IdempotencyKey == "" {
		return nil
	}
	kvKey := keyName(st.Route, st.IdempotencyKey)
	e, err := s.keys.Get(ctx, kvKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		now := time.Now().UTC()
		val, _ := json.Marshal(&keyRecord{Key: st.IdempotencyKey, Route: st.Route, Hash: hash, MessageID: st.ID, At: now, Lease: now.Add(acceptLease)})
		if _, err := s.keys.Create(ctx, kvKey, val); err != nil {
			return fmt.Errorf("delivery: route %q: message %q: replay: claim idempotency key: %w", st.Route, st.ID, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("delivery: route %q: message %q: replay: read idempotency key: %w", st.Route, st.ID, err)
	}
	var rec keyRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return fmt.Errorf("delivery: route %q: message %q: replay: idempotency record: %w", st.Route, st.ID, err)
	}
	if rec.MessageID != st.ID {
		return &DuplicateError{Route: st.Route, Key: st.IdempotencyKey, MessageID: rec.MessageID}
	}
	return nil
}
