package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// State is where a message is in its life.
type State string

const (
	Queued     State = "queued"     // persisted, waiting for (another) attempt
	Delivering State = "delivering" // an attempt is running (or its node died: it will be redelivered)
	Delivered  State = "delivered"  // the backend accepted it; Reply holds its answer
	Dead       State = "dead"       // given up: LastError says why; Replay can bring it back
	Discarded  State = "discarded"  // an operator discarded it; it will not be delivered
)

// Finished reports whether no more attempts will be made without an operator.
func (s State) Finished() bool { return s == Delivered || s == Dead || s == Discarded }

// Attempt is one delivery attempt in a message's history.
type Attempt struct {
	At       time.Time     `json:"at"`
	Outcome  string        `json:"outcome"` // delivered, failed, rejected (the caller's fault), interrupted
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
	Node     string        `json:"node,omitempty"`
}

// Attempt outcomes.
const (
	OutcomeDelivered   = "delivered"
	OutcomeFailed      = "failed"
	OutcomeRejected    = "rejected"    // a fault that blames the caller: dead at once
	OutcomeInterrupted = "interrupted" // the node stopped or died during the attempt
)

// Status is what Get, List and the status endpoint report about a message.
type Status struct {
	ID             string    `json:"id"`
	Route          string    `json:"route"`
	State          State     `json:"state"`
	Accepted       time.Time `json:"accepted"`
	Updated        time.Time `json:"updated"`
	BusinessKey    string    `json:"businessKey,omitempty"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	CorrelationID  string    `json:"correlationId,omitempty"`
	Attempts       []Attempt `json:"attempts,omitempty"`
	// Pauses counts the attempts not counted: a PauseError (the breaker
	// opened during the call; no attempt is listed), or the node stopping
	// mid-call (listed as interrupted). A breaker
	// found open before a call (Gate) holds the message back without any
	// write, so it is not counted.
	Pauses    int    `json:"pauses,omitempty"`
	Reply     []byte `json:"reply,omitempty"` // the backend's reply, when delivered
	ReplyType string `json:"replyType,omitempty"`
	// ReplySize is the reply's full size; a reply above MaxStoredReply
	// is not kept (Reply is empty), only its size and type.
	ReplySize int    `json:"replySize,omitempty"`
	LastError string `json:"lastError,omitempty"`
	Replays   int    `json:"replays,omitempty"`
	// Tried counts the attempts toward the route's MaxAttempts since the
	// message was accepted or last replayed.
	Tried int `json:"tried"`
	// Seq is the stream sequence of the copy being worked on (a replay
	// stores a new copy).
	Seq uint64 `json:"seq"`
}

// MaxStoredReply caps the backend reply a status keeps. A status record
// must fit in one NATS message (1 MiB by default on a server Busbar does
// not configure), and a record that cannot be written would have the
// message delivered again.
const MaxStoredReply = 256 << 10

// setReply records a delivered message's reply, if it is small enough.
func (st *Status) setReply(reply []byte, contentType string) {
	st.ReplySize, st.ReplyType, st.Reply = len(reply), contentType, nil
	if len(reply) <= MaxStoredReply {
		st.Reply = reply
	}
}

// ErrNotFound is returned for a message id the store does not know.
var ErrNotFound = errors.New("no such message")

// loadStatus reads a message's status record; ok is false when there is
// none yet (the message is queued and no attempt has started).
func (s *Store) loadStatus(ctx context.Context, id string) (st *Status, rev uint64, ok bool, err error) {
	e, err := s.status.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("delivery: message %q: read status: %w", id, err)
	}
	st = &Status{}
	if err := json.Unmarshal(e.Value(), st); err != nil {
		return nil, 0, false, fmt.Errorf("delivery: message %q: status record: %w", id, err)
	}
	return st, e.Revision(), true, nil
}

// saveStatus writes a status record. rev is the revision read before (0:
// the record must not exist yet), so two writers never overwrite each
// other's history unnoticed; a conflict comes back as an error.
func (s *Store) saveStatus(ctx context.Context, st *Status, rev uint64) (uint64, error) {
	st.Updated = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("delivery: route %q: message %q: encode status: %w", st.Route, st.ID, err)
	}
	// The workers' writes share fsyncs like accepts do (batch.go): a
	// conditional write of the key (expected revision; 0: a new key).
	m := nats.NewMsg("$KV." + StatusBucket + "." + st.ID)
	m.Data = b
	m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(rev, 10)}
	p := &pending{msg: m, one: func(ctx context.Context) (uint64, error) {
		if rev == 0 {
			return s.status.Create(ctx, st.ID, b)
		}
		return s.status.Update(ctx, st.ID, b, rev)
	}}
	if err := s.statusBatch.write(ctx, p); err != nil {
		return 0, fmt.Errorf("delivery: route %q: message %q: record status %s: %w", st.Route, st.ID, st.State, err)
	}
	return p.seq, nil
}

// statusFromEnvelope is the status of a message that has no record yet.
func statusFromEnvelope(e *Envelope) *Status {
	return &Status{ID: e.ID, Route: e.Route, State: Queued, Accepted: e.Accepted, Updated: e.Accepted,
		BusinessKey: e.BusinessKey, IdempotencyKey: e.IdempotencyKey, CorrelationID: e.CorrelationID,
		Seq: e.seq, Replays: e.Replay}
}
