package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Group commit. With SyncAlways every write JetStream acknowledges is
// fsynced; a plain publish is one fsync, whatever the concurrency (the
// file store syncs each write in turn; async publishing only keeps more in
// flight). The one place JetStream shares a sync is the atomic batch
// (stream.go, processJetStreamAtomicBatchMsg, "coalesceSync": the staged
// messages are written with SyncOnFlush and synced once, and the commit's
// reply comes after that sync). So concurrent writers queue here, and a
// committer stores whatever queued while the previous batch was on its way:
// as one atomic batch when there are enough of them to pay for the batch's
// own overhead (minAtomicBatch), else as plain writes all in flight.

// pending is one write waiting for its fsync.
type pending struct {
	msg *nats.Msg
	// one stores msg alone (a lone write, or the fallback of a failed
	// batch) and returns its stream sequence.
	one  func(ctx context.Context) (uint64, error)
	seq  uint64 // the stream sequence it got (for a KV key: its revision)
	done chan error
}

// batcher groups the writes to one stream.
type batcher struct {
	s   *Store
	q   chan *pending
	max int
	// commits and committed count the store writes and the messages in
	// them: committed/commits is how many writes share one fsync.
	commits, committed atomic.Int64
	failed             atomic.Int64 // atomic batches refused
}

func newBatcher(s *Store, max, committers int) *batcher {
	b := &batcher{s: s, q: make(chan *pending, 4096), max: max}
	for range committers {
		s.wg.Add(1)
		go b.loop()
	}
	return b
}

// write queues p and waits for its fsync.
func (b *batcher) write(ctx context.Context, p *pending) error {
	p.done = make(chan error, 1)
	select {
	case b.q <- p:
	case <-b.s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-b.s.closing:
		return ErrClosed
	}
}

// loop is one committer: it takes what queued while the previous commit
// ran and stores it together. Several committers run so that one batch is
// staged while another is being synced.
func (b *batcher) loop() {
	defer b.s.wg.Done()
	batch := make([]*pending, 0, b.max)
	for {
		select {
		case <-b.s.closing:
			return
		case p := <-b.q:
			batch = append(batch[:0], p)
		fill:
			for len(batch) < b.max {
				select {
				case p := <-b.q:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			b.commit(batch)
		}
	}
}

// commit stores a batch: one write as a plain publish, more as an atomic
// batch. An atomic batch is all or nothing; if it fails (a key taken, a
// server limit, a lost reply) each write is done on its own, and what it
// says is each one's answer (Nats-Msg-Id keeps a message that did get
// stored from being stored twice; a key's Create fails as it should).
func (b *batcher) commit(batch []*pending) {
	b.committed.Add(int64(len(batch)))
	if len(batch) >= minAtomicBatch {
		last, err := b.s.publishAtomic(batch)
		if err == nil {
			b.commits.Add(1)
			for i, p := range batch {
				p.seq = last - uint64(len(batch)-1-i)
				p.done <- nil
			}
			return
		}
		b.failed.Add(1)
		b.s.log.Debug("delivery: atomic batch failed, writing one by one", "size", len(batch), "error", err)
	}
	// One by one, all in flight at once: the server still syncs each, but
	// no write waits for another's round trip.
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), defaultOpTimeout)
			seq, err := p.one(ctx)
			cancel()
			b.commits.Add(1)
			p.seq = seq
			p.done <- err
		}()
	}
	wg.Wait()
}

// minAtomicBatch is the smallest batch worth an atomic batch. The server
// stages every atomic batch in a file store of its own, made and removed
// for it (directory, metadata file, both synced: newBatchStore,
// writeStreamMeta), which costs a few fsyncs before the one it shares;
// below this size plain writes in flight together cost less.
var minAtomicBatch = 8

// Headers of JetStream's atomic batch publish (ADR-50; nats.go v1.56 has
// no client API for it).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// publishAtomic sends the batch as one atomic batch: every message but the
// last without a reply subject, the last one with the commit header as a
// request, answered once all of them are on disk. It returns the stream
// sequence of the last message (the others precede it in order).
func (s *Store) publishAtomic(batch []*pending) (uint64, error) {
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
				return 0, err
			}
			continue
		}
		p.msg.Header[hdrBatchCommit] = []string{"1"}
		reply, err := s.nc.RequestMsg(p.msg, defaultOpTimeout)
		if err != nil {
			return 0, err
		}
		var ack struct {
			Seq   uint64 `json:"seq"`
			Count int    `json:"count"`
			Error *struct {
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return 0, fmt.Errorf("batch reply %q: %w", reply.Data, err)
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("batch refused: %s (%d)", ack.Error.Description, ack.Error.ErrCode)
		}
		if ack.Count != len(batch) {
			return 0, fmt.Errorf("batch of %d committed %d", len(batch), ack.Count)
		}
		return ack.Seq, nil
	}
	return 0, nil
}
