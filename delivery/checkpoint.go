package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ScheduleBucket holds what scheduled routes keep between runs, per route:
// key <route> the ScheduleState (checkpoint and last tick), key
// <route>.lock the lease of the node running it. No TTL: a checkpoint
// must outlive any pause of the schedule.
const ScheduleBucket = "BUSBAR_SCHEDULE"

// ScheduleState is a scheduled route's record: the checkpoint (watermark)
// the next run starts from, and the last tick any node ran, so that a node
// whose timer fires late does not run that tick again.
type ScheduleState struct {
	// Checkpoint is the value the next run's source call reads
	// (changedSince); "" before the first successful run.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Tick is the scheduled time of the last run, successful or not.
	Tick time.Time `json:"tick"`
	// Run records the last run's outcome, for operators.
	Run *RunRecord `json:"run,omitempty"`
	// Revision is the record's revision in the bucket when read (0: none
	// yet); Lease.Save writes only over that revision.
	Revision uint64 `json:"-"`
}

// RunRecord is what a run did.
type RunRecord struct {
	Node     string        `json:"node"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Records  int           `json:"records"`
	Failed   int           `json:"failed"`
	Error    string        `json:"error,omitempty"`
}

// lease is the lock record: who holds it and until when.
type lease struct {
	Node  string    `json:"node"`
	Tick  time.Time `json:"tick"`
	Until time.Time `json:"until"`
}

// ErrLeaseHeld is returned by AcquireLease when another run holds the route.
var ErrLeaseHeld = errors.New("delivery: schedule: another run holds the lease")

// scheduleKV opens (creating it the first time) the schedule bucket. It is
// made on first use, not by Open: a store without scheduled routes has no
// use for it.
func (s *Store) scheduleKV(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedule != nil {
		return s.schedule, nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ScheduleBucket,
		Description: "Busbar scheduled routes: checkpoints and run leases",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: bucket %s: %w", ScheduleBucket, err)
	}
	s.schedule = kv
	return kv, nil
}

// ScheduleState reads a route's state; a route that never ran has the
// zero state.
func (s *Store) ScheduleState(ctx context.Context, route string) (ScheduleState, error) {
	var st ScheduleState
	ctx, cancel := opCtx(ctx)
	defer cancel()
	kv, err := s.scheduleKV(ctx)
	if err != nil {
		return st, err
	}
	e, err := kv.Get(ctx, routeToken(route))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("delivery: schedule %q: read the checkpoint: %w", route, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, fmt.Errorf("delivery: schedule %q: checkpoint record: %w", route, err)
	}
	st.Revision = e.Revision()
	return st, nil
}

// Lease is a held run lock. Its holder renews it while running and
// releases it at the end; a holder that dies lets it lapse at Until.
type Lease struct {
	s     *Store
	kv    jetstream.KeyValue
	key   string
	route string
	l     lease
	rev   uint64
}

// AcquireLease takes the run lock of route for one tick, for d (longer
// than the run may take; Renew extends it). It fails with ErrLeaseHeld
// while another node's lease is current. A lapsed lease (its holder died)
// is taken over by compare-and-set on its revision, so of two nodes seeing
// it lapse only one gets it. Expiry is judged by the nodes' clocks: keep
// them in sync (NTP) to well under the lease.
func (s *Store) AcquireLease(ctx context.Context, route, node string, tick time.Time, d time.Duration) (*Lease, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	kv, err := s.scheduleKV(ctx)
	if err != nil {
		return nil, err
	}
	l := &Lease{s: s, kv: kv, key: routeToken(route) + ".lock", route: route,
		l: lease{Node: node, Tick: tick, Until: time.Now().Add(d)}}
	b, _ := json.Marshal(l.l)
	rev, err := kv.Create(ctx, l.key, b)
	if err == nil {
		l.rev = rev
		return l, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("delivery: schedule %q: take the lease: %w", route, err)
	}
	e, err := kv.Get(ctx, l.key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) { // released in between: next tick
			return nil, ErrLeaseHeld
		}
		return nil, fmt.Errorf("delivery: schedule %q: read the lease: %w", route, err)
	}
	var held lease
	if json.Unmarshal(e.Value(), &held) == nil && time.Now().Before(held.Until) {
		return nil, fmt.Errorf("%w (%s, tick %s)", ErrLeaseHeld, held.Node, held.Tick.Format(time.RFC3339Nano))
	}
	if rev, err = kv.Update(ctx, l.key, b, e.Revision()); err != nil {
		return nil, ErrLeaseHeld // another node took the lapsed lease first
	}
	l.rev = rev
	return l, nil
}

// Renew extends the lease to d from now. An error means the lease was lost
// (it lapsed and another node took it): the run must stop.
func (l *Lease) Renew(ctx context.Context, d time.Duration) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	next := l.l
	next.Until = time.Now().Add(d)
	b, _ := json.Marshal(next)
	rev, err := l.kv.Update(ctx, l.key, b, l.rev)
	if err != nil {
		return fmt.Errorf("delivery: schedule %q: renew the lease: %w", l.route, err)
	}
	l.l, l.rev = next, rev
	return nil
}

// Save writes the route's state while the lease is held: the checkpoint
// only moves under the lock, by the run that earned it. It writes over
// the revision st was read at, so a run whose lease lapsed (its node
// stalled) and was taken over cannot set back the newer run's checkpoint.
func (l *Lease) Save(ctx context.Context, st ScheduleState) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	key := routeToken(l.route)
	if st.Revision == 0 {
		_, err = l.kv.Create(ctx, key, b)
	} else {
		_, err = l.kv.Update(ctx, key, b, st.Revision)
	}
	if err != nil {
		return fmt.Errorf("delivery: schedule %q: save the checkpoint (another run saved since this one started?): %w", l.route, err)
	}
	return nil
}

// Release gives the lease up (only if still ours: a lapsed lease another
// node took is left alone). Safe to call twice.
func (l *Lease) Release(ctx context.Context) error {
	if l.rev == 0 {
		return nil
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	l.rev = 0
	if err != nil {
		return fmt.Errorf("delivery: schedule %q: release the lease: %w", l.route, err)
	}
	return nil
}
