package connectors

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/busbar/busbar/bus"
)

// RateLimitConfig is a route's `rate-limit:` block.
type RateLimitConfig struct {
	// Rate is how many requests the route admits over a period: 50/s,
	// 600/min, 1000/h, or a count over any duration, 5/10s.
	Rate string `yaml:"rate"`
	// Burst is how many requests may arrive at once on top of the steady
	// rate. Default: the rate over one second, rounded up, at least 1.
	Burst int `yaml:"burst"`
	// Per is route (one allowance for every caller of the route, the
	// default) or caller (one allowance per caller).
	Per string `yaml:"per"`
	// Key tells callers apart with per caller: ip (the default; an IPv6
	// caller's /64) or header:NAME (a header's value, e.g. an API key;
	// a request without it falls back to its IP).
	Key string `yaml:"key"`
}

// Validate checks the block; NewRateLimit runs it.
func (c *RateLimitConfig) Validate() error {
	if _, _, err := parseRate(c.Rate); err != nil {
		return fmt.Errorf("field \"rate-limit.rate\": %w", err)
	}
	if c.Burst < 0 {
		return fmt.Errorf("field \"rate-limit.burst\" must not be negative")
	}
	switch c.Per {
	case "", "route":
		if c.Key != "" {
			return fmt.Errorf("field \"rate-limit.key\": callers are told apart only with `per: caller`")
		}
	case "caller":
		if _, err := callerKeys(c.Key); err != nil {
			return fmt.Errorf("field \"rate-limit.key\": %w", err)
		}
	default:
		return fmt.Errorf("field \"rate-limit.per\": %q: write route or caller", c.Per)
	}
	return nil
}

// parseRate reads "COUNT/PERIOD" into a rate per second and the count.
func parseRate(s string) (rate.Limit, int, error) {
	n, period, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 {
		return 0, 0, fmt.Errorf("%q: write a whole number of requests over a period, e.g. 50/s, 600/min, 5/10s", s)
	}
	var d time.Duration
	switch p := strings.TrimSpace(period); p {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hour":
		d = time.Hour
	default:
		if d, err = time.ParseDuration(p); err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("%q: the period %q is not s, min, h or a duration such as 10s", s, p)
		}
	}
	return rate.Limit(float64(count) / d.Seconds()), count, nil
}

// CallerKey tells callers apart for per-caller rate limits: the key of the
// request's caller, or false when the request carries no key of its kind.
// Authenticated identities will be one more kind.
type CallerKey func(r *http.Request) (key string, ok bool)

// CallerIP keys a caller by its IP address, the connection's peer (no
// forwarding header is trusted). An IPv6 caller is keyed by its /64: one
// host usually holds a whole /64, and per-address buckets would let it
// take 2^64 of them.
func CallerIP(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "", false
	}
	if !strings.Contains(host, ":") {
		return host, true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host, true
	}
	p, _ := a.Prefix(64)
	return p.Addr().String(), true
}

// CallerHeader keys a caller by the value of a request header, e.g. an API key.
func CallerHeader(name string) CallerKey {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, bool) {
		v := r.Header[name]
		if len(v) == 0 || v[0] == "" {
			return "", false
		}
		return v[0], true
	}
}

// callerKeys reads `key`: the kinds of key to try, in order.
func callerKeys(spec string) ([]CallerKey, error) {
	switch {
	case spec == "" || spec == "ip":
		return []CallerKey{CallerIP}, nil
	case strings.HasPrefix(spec, "header:"):
		name := strings.TrimSpace(strings.TrimPrefix(spec, "header:"))
		if name == "" || strings.ContainsAny(name, " \t:()<>@,;\\\"/[]?={}") {
			return nil, fmt.Errorf("%q: write header:NAME with a header name, e.g. header:X-Api-Key", spec)
		}
		return []CallerKey{CallerHeader(name), CallerIP}, nil
	}
	return nil, fmt.Errorf("%q: write ip or header:NAME", spec)
}

// RateLimit admits a route's requests at a steady rate with bursts (a token
// bucket, golang.org/x/time/rate), for the whole route or per caller. It is
// safe for concurrent use; a nil *RateLimit admits everything.
type RateLimit struct {
	cfg     RateLimitConfig
	limit   rate.Limit
	route   *rate.Limiter  // per route
	callers *callerBuckets // per caller
	keys    []CallerKey
}

// maxCallers bounds the callers a per-caller limit remembers (~150 bytes
// each): past it the least recently seen are forgotten sooner.
const maxCallers = 20000

// NewRateLimit validates cfg and builds its limiter.
func NewRateLimit(cfg RateLimitConfig) (*RateLimit, error) {
	return newRateLimit(cfg, maxCallers)
}

func newRateLimit(cfg RateLimitConfig, callers int) (*RateLimit, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	limit, count, _ := parseRate(cfg.Rate)
	burst := cfg.Burst
	if burst == 0 {
		burst = max(1, min(count, int(math.Ceil(float64(limit)))))
	}
	l := &RateLimit{cfg: cfg, limit: limit}
	if cfg.Per != "caller" {
		l.route = rate.NewLimiter(limit, burst)
		return l, nil
	}
	l.keys, _ = callerKeys(cfg.Key)
	// A caller unseen for as long as its bucket takes to fill loses
	// nothing by being forgotten: it would come back to a full bucket.
	refill := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	l.callers = &callerBuckets{limit: limit, burst: burst, idle: max(refill, 10*time.Second),
		half: max(1, callers/2), cur: map[callerID]*rate.Limiter{}, prev: map[callerID]*rate.Limiter{}}
	return l, nil
}

// Config is the block the limit was built from; a reload keeps a route's
// limiter (and the state of its buckets) when this did not change.
func (l *RateLimit) Config() RateLimitConfig { return l.cfg }

// admit takes one request's token, or returns the 429 fault that says
// when to come back.
func (l *RateLimit) admit(r *http.Request) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	lim := l.route
	if lim == nil {
		lim = l.callers.get(l.callerOf(r), now)
	}
	if lim.AllowN(now, 1) {
		return nil
	}
	wait := (1 - lim.TokensAt(now)) / float64(l.limit)
	per := "for all its callers"
	if l.callers != nil {
		per = "per caller"
	}
	// A Server fault to SOAP callers: the same request may succeed later.
	f := bus.ServerFault(http.StatusTooManyRequests, "Too many requests",
		fmt.Sprintf("the route admits %s %s", l.cfg.Rate, per))
	// Connection: close, since the body is not read (see refuseBody).
	f.Header = http.Header{"Retry-After": {strconv.Itoa(max(1, int(math.Ceil(wait))))}, "Connection": {"close"}}
	return f
}

func (l *RateLimit) callerOf(r *http.Request) callerID {
	for i, k := range l.keys {
		if key, ok := k(r); ok {
			return callerID{kind: uint8(i), key: key}
		}
	}
	return callerID{kind: uint8(len(l.keys))} // no key at all: these share one bucket
}

// callerID is a caller's key and the kind it came from, so that a header
// value cannot pose as an IP address.
type callerID struct {
	kind uint8
	key  string
}

// longKey is the length past which a key is kept as its hash: a header
// value may be kilobytes long, and twenty thousand of them would not be
// small.
const longKey = 64

// callerBuckets holds a bucket per caller in two generations: a caller
// seen in the current one is found there; one seen only in the previous
// one moves to the current; the previous is dropped whenever the current
// has lived `idle` or holds `half` callers. So a caller is remembered while
// it keeps coming back, at most 2×half callers are held whatever the number
// of addresses an attacker rotates through, and no per-entry clock or list
// is kept.
type callerBuckets struct {
	mu        sync.Mutex
	cur, prev map[callerID]*rate.Limiter
	since     time.Time // cur's start
	idle      time.Duration
	half      int
	limit     rate.Limit
	burst     int
}

func (c *callerBuckets) get(id callerID, now time.Time) *rate.Limiter {
	if len(id.key) > longKey {
		sum := sha256.Sum256([]byte(id.key))
		id.key = string(sum[:])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lim := c.cur[id]; lim != nil {
		return lim
	}
	if now.Sub(c.since) >= c.idle || len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, c.prev
		clear(c.cur)
		c.since = now
	}
	lim := c.prev[id]
	if lim != nil {
		delete(c.prev, id)
	} else {
		lim = rate.NewLimiter(c.limit, c.burst)
	}
	c.cur[id] = lim
	return lim
}

// size is the number of callers held, for tests.
func (c *callerBuckets) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
