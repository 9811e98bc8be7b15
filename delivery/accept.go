package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
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
// Concurrent accepts share fsyncs: they queue for a few committers, which
// store whatever has queued meanwhile as one atomic batch (one fsync for
// up to Config.MaxBatch messages). A lone accept is published as it is.
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
	p := &pending{msg: env.encode(partitionOf(sub, id, s.routeConfig(route).Partitions)), done: make(chan error, 1)}
	select {
	case s.pubq <- p:
	case <-s.closing:
		return "", ErrClosed
	case <-ctx.Done():
		s.releaseQuietly(res)
		return "", fmt.Errorf("delivery: route %q: accept: %w", route, ctx.Err())
	}
	select {
	case err := <-p.done:
		if err != nil {
			// The store said no: nothing was stored, the key may be used again.
			s.releaseQuietly(res)
			return "", fmt.Errorf("delivery: route %q: message %q: persist: %w", route, id, err)
		}
		return id, nil
	case <-ctx.Done():
		// Unknown whether it was stored: the key stays reserved until its
		// lease ends; a retry then finds the message (or takes the key over).
		return "", fmt.Errorf("delivery: route %q: message %q: accept: %w", route, id, ctx.Err())
	case <-s.closing:
		return "", ErrClosed
	}
}

// acceptLease is how long an async reservation whose message cannot be
// found blocks the key: longer than any accept can take.
const acceptLease = time.Minute

// pending is one accept waiting for its fsync.
type pending struct {
	msg  *nats.Msg
	done chan error
}

// commitLoop is one committer: it takes the accepts that queued while the
// previous commit ran and stores them together. Several committers run so
// that one batch is staged while another is being synced.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*pending, 0, s.cfg.MaxBatch)
	for {
		select {
		case <-s.closing:
			return
		case p := <-s.pubq:
			batch = append(batch[:0], p)
		fill:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case p := <-s.pubq:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			s.commit(batch)
		}
	}
}

// commit stores a batch: one message as a plain publish, more as an atomic
// batch. An atomic batch is all or nothing; if it fails (a server limit,
// a lost reply) each message is published on its own, and Nats-Msg-Id
// keeps one that did get stored from being stored twice.
func (s *Store) commit(batch []*pending) {
	s.committed.Add(int64(len(batch)))
	if len(batch) > 1 {
		err := s.publishAtomic(batch)
		if err == nil {
			s.commits.Add(1)
			for _, p := range batch {
				p.done <- nil
			}
			return
		}
		s.log.Warn("delivery: atomic batch failed, publishing one by one", "size", len(batch), "error", err)
	}
	for _, p := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), defaultOpTimeout)
		_, err := s.js.PublishMsg(ctx, p.msg)
		cancel()
		s.commits.Add(1)
		p.done <- err
	}
}

// Headers of JetStream's atomic batch publish (ADR-50; nats.go v1.56 has
// no client API for it).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// publishAtomic sends the batch as one atomic batch: every message but the
// last without a reply subject, the last one with the commit header as a
// request. The server stages them, then stores them all with one sync
// (stream.go, processJetStreamAtomicBatchMsg: "coalesceSync") and answers
// the commit once they are on disk.
func (s *Store) publishAtomic(batch []*pending) error {
	id := nuid.Next()
	defer func() {
		for _, p := range batch {
			delete(p.msg.Header, hdrBatchID)
			delete(p.msg.Header, hdrBatchSeq)
			delete(p.msg.Header, hdrBatchCommit)
		}
	}()
	for i, p := range batch {
		p.msg.Header[hdrBatchID] = []string{id}
		p.msg.Header[hdrBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i < len(batch)-1 {
			if err := s.nc.PublishMsg(p.msg); err != nil {
				return err
			}
			continue
		}
		p.msg.Header[hdrBatchCommit] = []string{"1"}
		reply, err := s.nc.RequestMsg(p.msg, defaultOpTimeout)
		if err != nil {
			return err
		}
		var ack struct {
			Seq   uint64 `json:"seq"`
			Count int    `json:"count"`
			Error *struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return fmt.Errorf("batch reply %q: %w", reply.Data, err)
		}
		if ack.Error != nil {
			return fmt.Errorf("batch refused: %s (%d)", ack.Error.Description, ack.Error.ErrCode)
		}
		if ack.Count != len(batch) {
			return fmt.Errorf("batch of %d committed %d", len(batch), ack.Count)
		}
	}
	return nil
}
