package routes

import (
	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/delivery"
)

// Option changes how Load builds a configuration.
type Option func(*options)

type options struct {
	connector  ConnectorBuilder
	rateLimits *RateLimits
	reuse      *Config                         // see Reusing
	openStore  func() (*delivery.Store, error) // see WithStore
}

// ConnectorBuilder builds the connector named name, of kind kind, from its
// decoded and validated configuration. Returning (nil, nil) builds it the
// usual way.
type ConnectorBuilder func(name, kind string, cfg bus.ConnectorConfig) (bus.Connector, error)

// WithConnectors substitutes connectors by name: every connector file is
// decoded and validated as usual, then handed to build, which may return a
// replacement (a mock in route tests, a recorder). Routes are compiled
// against whatever it returns, so they run unchanged.
func WithConnectors(build ConnectorBuilder) Option {
	return func(o *options) { o.connector = build }
}

// buildConnector is the one place a connector is built from its config.
func (l *loader) buildConnector(name, kind string, cfg bus.ConnectorConfig) (bus.Connector, error) {
	if l.opts.connector != nil {
		c, err := l.opts.connector(name, kind, cfg)
		if c != nil || err != nil {
			return c, err
		}
	}
	return cfg.Build(name)
}
