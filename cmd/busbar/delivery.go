package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/routes"
)

// asyncDelivery is serve's message store for async routes and for the
// idempotency keys of sync routes. It is opened by the first load that
// finds either (routes.WithStore decides when), not before: a
// configuration without them needs no data directory and no NATS.
// Reloads keep it; the routes package starts and stops the workers.
type asyncDelivery struct {
	cfg delivery.Config

	mu    sync.Mutex
	store *delivery.Store
}

// newAsyncDelivery is the store `serve --data-dir --nats-url
// --nats-replicas` describes.
func newAsyncDelivery(dataDir, natsURL string, replicas int, log *slog.Logger) *asyncDelivery {
	return &asyncDelivery{cfg: delivery.Config{DataDir: dataDir, NATSURL: natsURL, Replicas: replicas, Logger: log}}
}

// option is what Load and Watch need to reach the store.
func (d *asyncDelivery) option() routes.Option { return routes.WithStore(d.open) }

func (d *asyncDelivery) open() (*delivery.Store, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store != nil {
		return d.store, nil
	}
	s, err := delivery.Open(context.Background(), d.cfg)
	if err != nil {
		return nil, err
	}
	where := "embedded, data in " + d.cfg.DataDir
	if d.cfg.NATSURL != "" {
		where = d.cfg.NATSURL
	}
	d.cfg.Logger.Info("message store open", slog.String("store", where))
	d.store = s
	return s, nil
}

// Close closes the store, if it was opened: after the server drained, so
// no accept is cut short; the workers' attempts in progress are put back
// and delivered after the next start.
func (d *asyncDelivery) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store != nil {
		d.store.Close()
	}
}
