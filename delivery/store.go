// Package delivery is Busbar's store-and-forward layer: async routes persist
// a request in NATS JetStream (fsynced before the caller hears 202), a worker
// delivers it at least once with backoff while honouring the connector's
// breaker, the last failure moves it to the dead letters, and an
// idempotency key keeps a repeated submission (or a sync call retried by its
// caller) from posting twice.
//
// It uses package bus (the message and the fault model) and small
// interfaces the connectors implement (Gate) and the route layer implements
// (Deliverer); package routes configures it. It never imports routes or
// connectors.
//
// Storage layout, created idempotently by Open:
//
//	stream BUSBAR_MSGS  subjects busbar.q.<route>.<partition>.<id>: the original requests
//	KV     BUSBAR_STATUS key <id>: the status and the history of attempts (absent = queued)
//	KV     BUSBAR_KEYS   key <route>.<sha256(idempotency key)>: first wins, kept IdempotencyTTL
package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of what the store creates in JetStream.
const (
	MessageStream = "BUSBAR_MSGS"
	StatusBucket  = "BUSBAR_STATUS"
	KeysBucket    = "BUSBAR_KEYS"
	subjectPrefix = "busbar.q"
)

// Defaults of Config.
const (
	DefaultDataDir        = "./data"
	DefaultIdempotencyTTL = 30 * 24 * time.Hour
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultMaxBatch       = 50

	defaultOpTimeout = 10 * time.Second
)

// Config is how a store is opened: plain data, decoded by the route layer
// from flags (`--data-dir`, `--nats-url`) or the config file.
type Config struct {
	// DataDir holds the embedded server's file store. Default ./data.
	// Ignored when NATSURL is set.
	DataDir string
	// NATSURL points at an external NATS server or cluster (JetStream
	// enabled, `sync_interval: always` in its jetstream block) instead of
	// starting one in the process. Several Busbar nodes on one cluster share
	// the work: each message is delivered by one of them.
	NATSURL string
	// NATSOptions are extra connection options for NATSURL (credentials, TLS).
	NATSOptions []nats.Option
	// Replicas of every stream and bucket on a cluster (1, 3 or 5). Default 1.
	Replicas int
	// IdempotencyTTL is how long an idempotency key is remembered; keep it
	// longer than any replay horizon. Default 30 days.
	IdempotencyTTL time.Duration
	// Retention is how long messages (original payloads, dead letters
	// included) and their statuses are kept. Default 30 days.
	Retention time.Duration
	// MaxBatch caps how many concurrent accepts share one fsync (one atomic
	// batch). 1 turns grouping off. Default 50.
	MaxBatch int
	// Logger receives the worker's and the store's logs. Default slog.Default().
	Logger *slog.Logger
}

// Store is an open delivery store: the JetStream connection, the streams
// and buckets, the accept batcher and the running workers. Its methods are
// safe for concurrent use. Close it once; a second Close does nothing.
type Store struct {
	cfg    Config
	ns     *server.Server // nil when connected to an external NATS
	lock   *os.File       // the data directory's lock (embedded server)
	nc     *nats.Conn
	js     jetstream.JetStream
	msgs   jetstream.Stream
	status jetstream.KeyValue
	keys   jetstream.KeyValue
	log    *slog.Logger
	// schedule is ScheduleBucket, opened on first use (checkpoint.go).
	schedule jetstream.KeyValue

	// msgBatch and keyBatch group the writes of concurrent accepts into
	// shared fsyncs (batch.go), statusBatch those of the workers.
	msgBatch, keyBatch, statusBatch *batcher
	// Close closes stopping first and waits for the workers (an attempt
	// cut short still records its status), then closing for the batchers.
	stopping, closing chan struct{}
	workers           sync.WaitGroup
	wg                sync.WaitGroup // committers
	closeOnce         sync.Once

	mu     sync.Mutex
	routes map[string]RouteConfig
}

// Open starts the embedded NATS server (or connects to Config.NATSURL) and
// creates the stream and the buckets if they are missing. A store opened on
// a data directory a previous process used finds its queued messages,
// statuses and keys again.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.IdempotencyTTL == 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatch > 1000 { // the server's limit on an atomic batch
		cfg.MaxBatch = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{cfg: cfg, log: cfg.Logger, stopping: make(chan struct{}), closing: make(chan struct{}),
		routes: map[string]RouteConfig{}}
	var err error
	if cfg.NATSURL != "" {
		s.nc, err = nats.Connect(cfg.NATSURL, append([]nats.Option{nats.Name("busbar"),
			nats.MaxReconnects(-1)}, cfg.NATSOptions...)...)
		if err != nil {
			return nil, fmt.Errorf("delivery: connect to %s: %w", cfg.NATSURL, err)
		}
	} else {
		if s.ns, s.lock, err = startEmbedded(cfg.DataDir); err != nil {
			return nil, err
		}
		s.nc, err = nats.Connect("", nats.InProcessServer(s.ns), nats.Name("busbar"))
		if err != nil {
			s.stopEmbedded()
			return nil, fmt.Errorf("delivery: in-process connection: %w", err)
		}
	}
	if err := s.setup(ctx); err != nil {
		s.nc.Close()
		s.stopEmbedded()
		return nil, err
	}
	s.msgBatch = newBatcher(s, cfg.MaxBatch, committers)
	s.keyBatch = newBatcher(s, cmp.Or(keyMaxBatch, cfg.MaxBatch), keyCommitters)
	s.statusBatch = newBatcher(s, cmp.Or(statusMaxBatch, cfg.MaxBatch), statusCommitters)
	return s, nil
}

// startEmbedded runs a JetStream server inside the process: no port is
// opened (DontListen; the connection is in-process), and SyncAlways makes
// the file store fsync every write before it acknowledges it. Without it
// JetStream syncs every two minutes, and a publish acknowledged in between
// is lost when the machine (not only the process) goes down.
func startEmbedded(dataDir string) (*server.Server, *os.File, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: data dir %q: %w", dataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("delivery: data dir %q: %w", dataDir, err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, nil, err
	}
	ns, err := newEmbedded(dir)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	return ns, lock, nil
}

func newEmbedded(dir string) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "busbar",
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		// Requests (and status records holding replies) up to 8 MiB; the
		// server's default is 1 MiB, small for a voucher with attachments.
		MaxPayload: 8 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("delivery: embedded NATS server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("delivery: embedded NATS server in %q did not start in 10s", dir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, fmt.Errorf("delivery: embedded NATS server in %q: JetStream did not start", dir)
	}
	return ns, nil
}

// setup creates (or updates to this configuration) the message stream and
// the two buckets.
func (s *Store) setup(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("delivery: JetStream: %w", err)
	}
	s.js = js
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.msgs, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        MessageStream,
		Description: "Busbar async route messages: original requests, kept for replay",
		Subjects:    []string{subjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy, // kept after delivery: dead letters and audit need the payload
		MaxAge:      s.cfg.Retention,
		Replicas:    s.cfg.Replicas,
		Duplicates:  2 * time.Minute, // Nats-Msg-Id: a batch retried after a lost ack stores once
		// Accepts share an fsync through atomic batches (accept.go).
		AllowAtomicPublish: true,
		AllowDirect:        true,
	})
	if err != nil {
		return fmt.Errorf("delivery: stream %s: %w", MessageStream, err)
	}
	s.status, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "Busbar message status and attempt history",
		TTL:         s.cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("delivery: bucket %s: %w", StatusBucket, err)
	}
	s.keys, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      KeysBucket,
		Description: "Busbar idempotency keys",
		TTL:         s.cfg.IdempotencyTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("delivery: bucket %s: %w", KeysBucket, err)
	}
	// Reservations and status records share fsyncs through atomic batches
	// too (batch.go); a KV bucket is a stream, and the bucket config has
	// no such switch.
	for _, bucket := range []string{KeysBucket, StatusBucket} {
		ks, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			return fmt.Errorf("delivery: bucket %s: %w", bucket, err)
		}
		if kc := ks.CachedInfo().Config; !kc.AllowAtomicPublish {
			kc.AllowAtomicPublish = true
			if _, err := js.UpdateStream(ctx, kc); err != nil {
				return fmt.Errorf("delivery: bucket %s: allow atomic batches: %w", bucket, err)
			}
		}
	}
	return nil
}

// Close stops the workers and the batcher, waits for the deliveries in
// progress (their contexts are cancelled; an interrupted delivery is
// redelivered later), and closes the connection and the embedded server.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopping)
		s.workers.Wait()
		close(s.closing)
		s.wg.Wait()
		_ = s.nc.FlushTimeout(time.Second) // the last acks and naks reach the server
		s.nc.Close()
		s.stopEmbedded()
	})
	return nil
}

// stopEmbedded shuts the embedded server down (if any) and unlocks the
// data directory.
func (s *Store) stopEmbedded() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("delivery: store closed")

// opCtx bounds one store operation when the caller's context has no deadline.
func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultOpTimeout)
}

// committers is how many atomic batches may be in flight at once (a
// variable so the benchmark can compare).
var committers = 4

var keyCommitters, keyMaxBatch, statusMaxBatch, statusCommitters = 4, 0, 0, 4
