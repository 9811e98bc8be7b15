package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Accept persists a submission for route and returns its message id once
// the store has acknowledged it, which (with SyncAlways, or a cluster's
// replicated log) means it is on disk: the route may then answer 202.
//
// With an idempotency key, the key is reserved first (see Reserve): a
// repeated submission returns a *DuplicateError (errors.Is ErrDuplicate)
// carrying the first message's status, a different payload under the same
// key ErrKeyReused (422), and a submission while the first is still being
// accepted ErrInFlight (409).
//
// Concurrent accepts share fsyncs (batch.go): the messages that queue
// while a write is on its way are stored as one atomic batch, one fsync
// for up to Config.MaxBatch of them; so are the idempotency keys.
func (s *Store) Accept(ctx context.Context, route string, sub *Submission) (string, error) {
	select {
	case <-s.closing:
		return "", ErrClosed
	default:
	}
	if route == "" {
		return "", errors.New("delivery: accept: empty route name")
	}
	id := newID()
	var res *Reservation
	if sub.IdempotencyKey != "" {
		var err error
		res, err = s.reserve(ctx, route, sub.IdempotencyKey, payloadHash(sub), id, acceptLease)
		if err != nil {
			return "", err
		}
	}
	env := &Envelope{ID: id, Route: route, Submission: *sub, Accepted: time.Now().UTC()}
	// The message waits in a batch; an inbound body may be a pooled
	// buffer that the route reuses as soon as it gives up waiting.
	env.Body = append([]byte(nil), sub.Body...)
	msg := env.encode(partitionOf(sub, id, s.routeConfig(route).Partitions))
	err := s.msgBatch.write(ctx, &pending{msg: msg, one: func(ctx context.Context) (uint64, error) {
		ack, err := s.js.PublishMsg(ctx, msg)
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}})
	switch {
	case err == nil:
		return id, nil
	case ctx.Err() != nil || errors.Is(err, ErrClosed):
		// Unknown whether it was stored: the key stays reserved until its
		// lease ends; a retry then finds the message (or takes the key over).
		return "", fmt.Errorf("delivery: route %q: message %q: accept: %w", route, id, err)
	default:
		// The store said no: nothing was stored, the key may be used again.
		s.releaseQuietly(res)
		return "", fmt.Errorf("delivery: route %q: message %q: persist: %w", route, id, err)
	}
}

// acceptLease is how long an async reservation whose message cannot be
// found blocks the key: longer than any accept can take.
const acceptLease = time.Minute
