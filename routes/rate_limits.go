package routes

import (
	"sync"

	"github.com/busbar/busbar/connectors"
)

// RateLimits carries routes' rate limiters from one load of a
// configuration directory to the next (see WithRateLimits), so that a
// reload does not hand every caller of every route a full bucket again.
// The zero value is not usable; make one with NewRateLimits.
type RateLimits struct {
	mu      sync.Mutex
	byRoute map[string]*connectors.RateLimit
}

// NewRateLimits returns an empty set.
func NewRateLimits() *RateLimits {
	return &RateLimits{byRoute: map[string]*connectors.RateLimit{}}
}

// WithRateLimits makes Load reuse a route's rate limiter, and the state of
// its buckets, when the last load kept in s had a route of that name with
// the same `rate-limit` settings; a changed route starts afresh. A load
// that succeeds then keeps its own limiters in s (a route gone is
// forgotten); one that fails leaves s as it was.
func WithRateLimits(s *RateLimits) Option {
	return func(o *options) { o.rateLimits = s }
}

// rateLimit builds a route's rate limit, or reuses the last load's (see
// WithRateLimits).
func (l *loader) rateLimit(route string, cfg connectors.RateLimitConfig) (*connectors.RateLimit, error) {
	rl := l.opts.rateLimits.get(route)
	if rl == nil || rl.Config() != cfg {
		var err error
		if rl, err = connectors.NewRateLimit(cfg); err != nil {
			return nil, err
		}
	}
	if l.rateLimits == nil {
		l.rateLimits = map[string]*connectors.RateLimit{}
	}
	l.rateLimits[route] = rl
	return rl, nil
}

func (s *RateLimits) get(route string) *connectors.RateLimit {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRoute[route]
}

// keep replaces the set with a successful load's limiters.
func (s *RateLimits) keep(byRoute map[string]*connectors.RateLimit) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byRoute = byRoute
}

// rateLimit compiles the route's `rate-limit`; nil without one.
func (rc *routeCompiler) rateLimit() *connectors.RateLimit {
	if rc.spec.RateLimit == nil {
		return nil
	}
	rl, err := rc.l.rateLimit(rc.spec.Route, *rc.spec.RateLimit)
	if err != nil {
		rc.fail(fieldOf(err), "%v", err)
		return nil
	}
	return rl
}
