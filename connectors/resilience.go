package connectors

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"

	"github.com/busbar/busbar/bus"
)

// Every outbound call goes through the same wrappers, in this order:
//
//	max-inflight → endpoint (its breaker) → retry (backoff) → timeout → call
//
// The in-flight cap is outermost so a refused call costs nothing and counts
// for nothing. Each endpoint (url, or one of urls) has its own breaker, so
// choosing the endpoint and passing its breaker are one step (see
// callEndpoints). The breaker sits outside the retries: one call that failed
// after all its attempts is one failure, and an open breaker stops the
// retries of every caller at once. The connector's timeout bounds each
// attempt; the route's deadline (the context) bounds them all.

// RetryConfig is a connector's `retry:` block.
type RetryConfig struct {
	// Attempts is the number of tries, the first included; 1 turns retries off. Default 3.
	Attempts int `yaml:"attempts"`
	// Backoff is the wait before the first retry; it doubles for each further one. Default 200ms.
	Backoff bus.Duration `yaml:"backoff"`
	// MaxBackoff caps one wait; a backend's Retry-After asking for longer ends the retries. Default 5s.
	MaxBackoff bus.Duration `yaml:"max-backoff"`
	// On lists what is retried: connect, timeout, reset, 429, 502, 503, 504. Default all of them.
	On []string `yaml:"on"`
}

// BreakerConfig is a connector's `breaker:` block.
type BreakerConfig struct {
	// Failures is how many calls in a row must fail to open the breaker. Default 5.
	Failures int `yaml:"failures"`
	// Window is how long a failure is remembered. Default 60s.
	Window bus.Duration `yaml:"window"`
	// OpenFor is how long an open breaker refuses calls before it lets trial calls through. Default 30s.
	OpenFor bus.Duration `yaml:"open-for"`
	// HalfOpenCalls is how many trial calls may run at once, and how many
	// must succeed to close the breaker again. Default 1.
	HalfOpenCalls int `yaml:"half-open-calls"`
	// Disabled turns the breaker off.
	Disabled bool `yaml:"disabled"`
}

// Defaults of the resilience settings.
const (
	defaultAttempts      = 3
	defaultBackoff       = 200 * time.Millisecond
	defaultMaxBackoff    = 5 * time.Second
	defaultFailures      = 5
	defaultWindow        = 60 * time.Second
	defaultOpenFor       = 30 * time.Second
	defaultHalfOpenCalls = 1
)

// retryCond is one kind of failure a connector may retry.
type retryCond uint8

const (
	condNone    retryCond = iota
	condConnect           // no connection: nothing reached the backend, always safe to retry
	condTimeout           // no reply in time after the request was sent
	condReset             // the connection broke after the request was sent
	cond429
	cond502
	cond503
	cond504
)

var condNames = []string{condConnect: "connect", condTimeout: "timeout", condReset: "reset",
	cond429: "429", cond502: "502", cond503: "503", cond504: "504"}

func (c retryCond) bit() uint16 { return 1 << c }

func (c *RetryConfig) validate() error {
	switch {
	case c.Attempts < 0:
		return errors.New(`field "retry.attempts" must be at least 1 (1 turns retries off)`)
	case c.Attempts > 10:
		return fmt.Errorf(`field "retry.attempts": %d tries multiply the load on a failing backend; at most 10`, c.Attempts)
	case c.MaxBackoff != 0 && c.Backoff > c.MaxBackoff:
		return fmt.Errorf(`field "retry.backoff": %s is longer than max-backoff %s`, c.Backoff.Std(), c.MaxBackoff.Std())
	}
	for _, s := range c.On {
		if condByName(s) == condNone {
			return fmt.Errorf(`field "retry.on": %q is not retryable: use %s`, s, strings.Join(condNames[1:], ", "))
		}
	}
	return nil
}

func condByName(s string) retryCond {
	for i, n := range condNames {
		if i > 0 && n == s {
			return retryCond(i)
		}
	}
	return condNone
}

func (c *BreakerConfig) validate() error {
	switch {
	case c.Failures < 0:
		return errors.New(`field "breaker.failures" must not be negative`)
	case c.HalfOpenCalls < 0:
		return errors.New(`field "breaker.half-open-calls" must not be negative`)
	}
	return nil
}

// retryPolicy is a RetryConfig with its defaults applied.
type retryPolicy struct {
	attempts            int
	backoff, maxBackoff time.Duration
	on                  uint16
}

func newRetryPolicy(c RetryConfig) *retryPolicy {
	p := &retryPolicy{attempts: c.Attempts, backoff: c.Backoff.Std(), maxBackoff: c.MaxBackoff.Std()}
	if p.attempts == 0 {
		p.attempts = defaultAttempts
	}
	if p.attempts == 1 {
		return nil
	}
	if p.backoff == 0 {
		// A max-backoff set below the default backoff caps it; unset, it
		// does not (it is 0 here, and would have made the default 1ms).
		p.backoff = defaultBackoff
		if p.maxBackoff > 0 {
			p.backoff = min(defaultBackoff, p.maxBackoff)
		}
	}
	if p.maxBackoff == 0 {
		p.maxBackoff = max(defaultMaxBackoff, p.backoff)
	}
	if len(c.On) == 0 {
		c.On = condNames[1:]
	}
	for _, s := range c.On {
		p.on |= condByName(s).bit()
	}
	return p
}

// wait is the pause before retry number n (0 for the first retry): the
// backend's Retry-After on a 429 or 503, else the exponential backoff. ok is
// false when the backend asks for a longer pause than max-backoff allows.
func (p *retryPolicy) wait(n int, resp *http.Response) (d time.Duration, retryAfter, ok bool) {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, found := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); found {
			return d, true, d <= p.maxBackoff
		}
	}
	d = p.backoff
	for i := 0; i < n && d < p.maxBackoff; i++ {
		d *= 2
	}
	return min(d, p.maxBackoff), false, true
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 || s > 1<<31 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryCall is the context of one call while retries are possible: the
// route's context plus what the retry policy needs to know about this call.
// Being the request's context, it reaches CheckRetry without a context.WithValue.
type retryCall struct {
	context.Context
	idempotent bool
	moveOn     bool // another endpoint takes a call that reached nobody here
	attempts   int
}

// idempotentKey marks a context whose calls the route declared idempotent.
type idempotentKey struct{}

// WithIdempotent marks the calls made with ctx as safe to repeat (a route's
// `to.idempotent`): timeouts and 429/502/503/504 replies are then retried
// even for POST.
func WithIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func (o *outbound) idempotent(ctx context.Context, method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return o.cfg.Idempotent || ctx.Value(idempotentKey{}) != nil
}

// checkRetry is the connector's retry policy (go-retryablehttp's default
// would repeat a POST that reached the backend). A failure that happened
// before anything was sent is always retried; a timeout, a broken connection
// or a 429/502/503/504 only when the call is idempotent. Nothing is retried
// when the next attempt could not start before the route's deadline.
func (o *outbound) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	call, ok := ctx.(*retryCall)
	if !ok { // not a call of ours; never happens, but never retry blindly either
		return false, nil
	}
	call.attempts++
	if call.attempts >= o.retry.attempts || ctx.Err() != nil {
		return false, nil
	}
	cond := condNone
	if err != nil {
		cond = classifyError(err)
	} else {
		cond = classifyStatus(resp.StatusCode)
	}
	if cond == condNone || o.retry.on&cond.bit() == 0 || (cond != condConnect && !call.idempotent) ||
		(cond == condConnect && call.moveOn) {
		return false, nil
	}
	d, _, ok := o.retry.wait(call.attempts-1, resp)
	if !ok {
		return false, nil
	}
	if deadline, has := ctx.Deadline(); has && time.Until(deadline) <= d {
		return false, nil
	}
	o.log.LogAttrs(ctx, slog.LevelDebug, "retrying backend call", slog.String("connector", o.name),
		slog.Int("attempt", call.attempts), slog.String("reason", condNames[cond]), slog.Duration("wait", d))
	return true, nil
}

// backoff is the pause go-retryablehttp takes before retry n. The
// exponential part is jittered (half fixed, half random) so callers hit by
// the same outage do not come back in step; a Retry-After is taken as given.
func (o *outbound) backoff(_, _ time.Duration, n int, resp *http.Response) time.Duration {
	d, retryAfter, _ := o.retry.wait(n, resp)
	if retryAfter || d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// lastAnswer hands back the last reply when the attempts are used up, so the
// caller sees the backend's own status and words rather than "giving up".
func lastAnswer(resp *http.Response, err error, _ int) (*http.Response, error) {
	if resp != nil {
		return resp, nil
	}
	return nil, err
}

func classifyStatus(status int) retryCond {
	switch status {
	case http.StatusTooManyRequests:
		return cond429
	case http.StatusBadGateway:
		return cond502
	case http.StatusServiceUnavailable:
		return cond503
	case http.StatusGatewayTimeout:
		return cond504
	}
	return condNone // a 500 is an answer (a SOAP Fault is a business answer): never repeated
}

// classifyError sorts a transport error. Certificate and TLS alert errors
// will not go away by trying again; dial errors mean nothing was sent.
func classifyError(err error) retryCond {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return condNone
	}
	var op *net.OpError
	if errors.As(err, &op) {
		switch op.Op {
		case "dial":
			var dns *net.DNSError
			if errors.As(err, &dns) && dns.IsNotFound {
				return condNone
			}
			return condConnect
		case "remote error": // a TLS alert: the backend refused our certificate or protocol
			return condNone
		}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return condTimeout
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return condReset
	}
	return condNone
}

// retryFirst decides on the outcome of a call's first attempt, which send
// made itself, and makes the retries go-retryablehttp's way when the retry
// policy asks for them. Calls that succeed (nearly all) thus cost no more
// than without retries; go-retryablehttp, through http.Client, would add a
// copy of the headers, a second deadline and its request wrapping to each.
// What follows the first attempt is what go-retryablehttp does after one:
// on giving up after a transport error the idle connections are dropped;
// before a retry the reply is drained and the backoff waited, unless the
// route's context ends first. o.retrying then makes the remaining attempts.
func (o *outbound) retryFirst(call *retryCall, hr *http.Request, resp *http.Response, err error) (*http.Response, error) {
	retry, _ := o.checkRetry(call, resp, err)
	if !retry {
		if err != nil {
			o.client.CloseIdleConnections()
		}
		return resp, err
	}
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // go-retryablehttp's drain: reuse the connection
		resp.Body.Close()
	}
	timer := time.NewTimer(o.backoff(0, 0, 0, resp))
	select {
	case <-call.Done():
		timer.Stop()
		o.client.CloseIdleConnections()
		return nil, call.Err()
	case <-timer.C:
	}
	// The further attempts run under the connector's client: its timeout
	// bounds each, and the context is the call's, which checkRetry reads.
	next := hr.WithContext(call)
	if err := rewindBody(next); err != nil {
		return nil, err
	}
	return o.retrying.Do(&retryablehttp.Request{Request: next})
}

// newRetryingClient wraps the connector's own client. go-retryablehttp drops
// the idle connections when a call gives up after a transport error; hiding
// that behind a RoundTripper wrapper would cost more on every call (net/http
// cancels timeouts of unknown transports with a goroutine and a timer per
// request) than re-dialling after an outage, so the client is used as is.
func newRetryingClient(o *outbound) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   o.client,
		Logger:       nil, // checkRetry logs what matters, at debug level; the library would log every call
		RetryWaitMin: o.retry.backoff,
		RetryWaitMax: o.retry.maxBackoff,
		RetryMax:     o.retry.attempts - 2, // the first attempt is send's (see retryFirst)
		CheckRetry:   o.checkRetry,
		Backoff: func(min, max time.Duration, n int, resp *http.Response) time.Duration {
			return o.backoff(min, max, n+1, resp) // its first wait is the call's second
		},
		ErrorHandler: lastAnswer,
		PrepareRetry: rewindBody,
	}
}

// rewindBody starts a retry's body over (send sets GetBody on every
// request with a body, and gives retryablehttp none to rewind itself).
func rewindBody(r *http.Request) error {
	if r.GetBody == nil {
		return nil
	}
	b, err := r.GetBody()
	r.Body = b
	return err
}

// sentMark records whether a call's request started to go out, so that a
// failure after it can say the backend may have acted on it. Only calls that
// must not be repeated carry one: the trace costs a few allocations.
type sentMark struct {
	trace httptrace.ClientTrace
	sent  atomic.Bool
}

// markSent puts a new sentMark's trace on *ctx. WroteHeaders, not
// WroteRequest: once the headers are out, a backend may already be acting
// on a request whose body it is still reading. The transport's own resend of
// a request that found a pooled connection closed happens only when no byte
// was written, and fires the hook again, so the mark errs towards "sent".
func markSent(ctx *context.Context) *sentMark {
	m := &sentMark{}
	m.trace.WroteHeaders = func() { m.sent.Store(true) }
	*ctx = httptrace.WithClientTrace(*ctx, &m.trace)
	return m
}

// wasSent tells whether a failed call's request may have reached the
// backend's application. A TLS alert came from the backend's TLS layer,
// which refused the connection before handing anything on (TLS 1.3 servers
// check a client certificate after the client has started writing).
func (m *sentMark) wasSent(err error) bool {
	return m != nil && m.sent.Load() && !tlsAlert(err)
}

func tlsAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// outcomeUnknown is the fault for a call that must not be repeated and
// failed after its request went out: it may have been carried out (a
// voucher posted). It must not read like a plain failure, which callers
// resend. A caller that hung up gets the usual fault: it reads nothing.
func outcomeUnknown(connector string, err error, header http.Header) *bus.Fault {
	if errors.Is(err, context.Canceled) {
		return transportFault(connector, err)
	}
	what := "the connection broke before the reply was complete"
	if classifyError(err) == condTimeout {
		what = "no reply in time"
	}
	id := ""
	if v := header["X-Correlation-Id"]; len(v) > 0 {
		id = " (correlation id " + v[0] + ")"
	}
	f := bus.ServerFault(http.StatusGatewayTimeout, "Backend outcome unknown", fmt.Sprintf(
		"connector %q: %s after the request was sent; the backend may have processed the request; check before resending%s",
		connector, what, id))
	f.Internal = f.Detail + ": " + err.Error() // the log's account names the socket
	f.Cause = err
	return f
}

// breaker is a connector's circuit breaker and what its faults need to say.
type breaker struct {
	cb        *gobreaker.CircuitBreaker[struct{}]
	failures  int
	openUntil atomic.Int64 // unix nanoseconds; when an open breaker lets a trial call through
}

// errBackendFailed is what the breaker counts for a 5xx reply that is not a
// business answer.
var errBackendFailed = errors.New("backend failed")

// newBreaker makes the breaker called name of a connector's endpoint.
func newBreaker(connector, name string, c BreakerConfig, log *slog.Logger) *breaker {
	if c.Disabled {
		return nil
	}
	b := &breaker{failures: c.Failures}
	if b.failures == 0 {
		b.failures = defaultFailures
	}
	window, openFor, halfOpen := c.Window.Std(), c.OpenFor.Std(), c.HalfOpenCalls
	if window == 0 {
		window = defaultWindow
	}
	if openFor == 0 {
		openFor = defaultOpenFor
	}
	if halfOpen == 0 {
		halfOpen = defaultHalfOpenCalls
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  uint32(halfOpen),
		Interval:     window,
		BucketPeriod: window / 10, // a rolling window: failures age out a tenth at a time
		Timeout:      openFor,
		ReadyToTrip:  func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(b.failures) },
		// A caller that hung up says nothing about the backend.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			level := slog.LevelInfo
			if to == gobreaker.StateOpen {
				b.openUntil.Store(time.Now().Add(openFor).UnixNano())
				level = slog.LevelWarn
			}
			log.LogAttrs(context.Background(), level, "circuit breaker "+to.String(),
				slog.String("connector", connector), slog.String("breaker", name), slog.String("from", from.String()))
		},
	})
	return b
}

// verdict tells the breaker whether a finished call counts against the
// backend: transport errors, timeouts and 5xx replies do. A reply that
// blames the caller never does — a 4xx, or a SOAP Client/Sender fault
// whatever its status (SOAP 1.1 sends every fault with 500) — or a few bad
// callers would lock every good one out for open-for. A SOAP Server/Receiver
// fault on a 5xx counts: the backend says it is the one failing.
func verdict(resp *http.Response, data []byte, err error) error {
	switch {
	case err != nil:
		return err
	case resp.StatusCode >= 500 && !faultBlamesCaller(resp.Header.Get("Content-Type"), data):
		return errBackendFailed
	}
	return nil
}

// faultBlamesCaller tells whether a reply is a SOAP fault whose code blames
// the caller. It runs on 5xx replies only, and sniffs the code from the
// bytes instead of parsing the envelope: the SOAP connector parses the reply
// once anyway, and a pass-through never needs to.
func faultBlamesCaller(contentType string, data []byte) bool {
	if !xmlReply(contentType, data) {
		return false
	}
	code := soapFaultCode(data)
	if i := bytes.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:]
	}
	if i := bytes.IndexByte(code, '.'); i >= 0 { // SOAP 1.1 subcodes: Client.Authentication
		code = code[:i]
	}
	switch string(code) {
	// VersionMismatch, MustUnderstand and DataEncodingUnknown are about the
	// request's envelope too: a healthy backend refusing it.
	case "Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown":
		return true
	}
	return false
}

// xmlReply: an XML media type, or (backends mislabel their faults as
// text/html, or send no Content-Type) a body that starts like XML.
func xmlReply(contentType string, data []byte) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "text/xml" || mt == "application/soap+xml" || mt == "application/xml" ||
		strings.HasSuffix(mt, "+xml") || looksLikeXML(data)
}

// soapFaultCode is the text of a fault's code: SOAP 1.1's faultcode, or
// SOAP 1.2's first Value inside Fault (Code/Value; Subcode comes after it).
// nil when the body holds no Fault. The tag names are ASCII in every
// charset a SOAP backend uses, so the raw bytes are searched.
func soapFaultCode(data []byte) []byte {
	i := bytes.Index(data, []byte("Fault"))
	if i < 0 {
		return nil
	}
	rest := data[i:]
	j := bytes.Index(rest, []byte("faultcode"))
	if j < 0 {
		j = bytes.Index(rest, []byte("Value"))
	}
	if j < 0 {
		return nil
	}
	rest = rest[j:]
	start := bytes.IndexByte(rest, '>')
	if start < 0 {
		return nil
	}
	rest = rest[start+1:]
	end := bytes.IndexByte(rest, '<')
	if end < 0 {
		return nil
	}
	return bytes.TrimSpace(rest[:end])
}

// reopens is when a breaker that refused a call with err lets calls through
// again: at the end of open-for, or in a moment while trial calls run.
func (b *breaker) reopens(err error) time.Time {
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		return time.Now().Add(time.Second)
	}
	return time.Unix(0, b.openUntil.Load())
}

// secondsUntil is a Retry-After for t: whole seconds, at least 1.
func secondsUntil(t time.Time) int {
	return max(int(time.Until(t).Round(time.Second)/time.Second), 1)
}

// rejected is the fault for a call the breaker did not let through.
func (b *breaker) rejected(connector string, err error) *bus.Fault {
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		return unavailable(connector, "Backend recovering", 1,
			"trial calls are testing whether the backend is back; try again in a moment")
	}
	until := b.reopens(err)
	secs := secondsUntil(until)
	why := fmt.Sprintf("%d calls in a row failed", b.failures)
	if b.failures == 1 {
		why = "a call failed"
	}
	f := unavailable(connector, "Backend circuit open", secs, fmt.Sprintf(
		"%s; calls are refused until %s (in %ds)", why, until.UTC().Format(time.RFC3339), secs))
	f.Cause = ErrBreakerOpen
	return f
}

// ErrBreakerOpen is the cause (errors.Is) of the fault of a call that a
// circuit breaker did not let through: the request never left Busbar. An
// async route's worker waits for the breaker instead of counting an attempt.
var ErrBreakerOpen = errors.New("circuit breaker open")

// Ready reports whether a call could go out now: some endpoint's breaker
// is closed or half-open (or it has none). With every breaker open it
// says when the first one lets a trial call through. An async route's
// worker asks it before each attempt (it is a delivery.Gate), so a backend
// that is down pauses delivery instead of burning attempts.
func (o *outbound) Ready() (bool, time.Duration) {
	var soonest time.Time
	for i := range o.endpoints {
		b := o.endpoints[i].breaker
		if b == nil || b.cb.State() != gobreaker.StateOpen {
			return true, 0
		}
		if t := time.Unix(0, b.openUntil.Load()); soonest.IsZero() || t.Before(soonest) {
			soonest = t
		}
	}
	if len(o.endpoints) == 0 {
		return true, 0
	}
	return false, max(time.Until(soonest), 0)
}

// Values of a connector's `balance`.
const (
	balanceFailover   = "failover"
	balanceRoundRobin = "round-robin"
)

// titleUnreachable is the title of a call that reached no backend: its
// request was never sent.
const titleUnreachable = "Backend unreachable"

// callEndpoints is a call to a connector with several endpoints. It tries
// them in order — from the first (failover) or from the next in turn
// (round-robin) — skipping those whose breaker refuses the call.
//
// A call moves on to the next endpoint only when it reached nobody (the
// connection was refused or never made): then nothing was sent, and trying
// elsewhere is as safe as a retry. A call whose request went out never
// moves, whatever came of it: the endpoint may have posted the voucher, and
// another endpoint of the same system would post it again. Retries within
// an endpoint follow the retry policy as with one URL, except that a
// refused connection moves on instead of waiting to try the same one again.
func (o *outbound) callEndpoints(ctx context.Context, method, path string, header http.Header, body *lentBody) (*http.Response, []byte, error) {
	n := len(o.endpoints)
	start := 0
	if o.roundRobin {
		start = int((o.next.Add(1) - 1) % uint32(n))
	}
	var soonest time.Time
	var unreachable error
	for i := range n {
		ep := &o.endpoints[(start+i)%n]
		resp, data, err, blocked := o.callEndpoint(ctx, ep, method, path, header, body, i < n-1)
		if blocked != nil {
			if t := ep.breaker.reopens(blocked); soonest.IsZero() || t.Before(soonest) {
				soonest = t
			}
			continue
		}
		if err != nil && i < n-1 && neverSent(err) && ctx.Err() == nil {
			o.log.LogAttrs(ctx, slog.LevelDebug, "endpoint unreachable, trying the next", slog.String("connector", o.name),
				slog.String("breaker", ep.breaker.name()), slog.String("error", err.Error()))
			unreachable = err
			continue
		}
		return resp, data, err
	}
	if unreachable != nil {
		return nil, nil, unreachable
	}
	secs := secondsUntil(soonest)
	f := unavailable(o.name, "Backend circuit open", secs, fmt.Sprintf(
		"the breakers of all %d endpoints are open; the first lets calls through at %s (in %ds)",
		n, soonest.UTC().Format(time.RFC3339), secs))
	f.Cause = ErrBreakerOpen
	return nil, nil, f
}

// dialFailed tells an error of a call that never had a connection: refused,
// timed out connecting, or a name that does not resolve.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// neverSent tells a failed call that reached no endpoint.
func neverSent(err error) bool {
	var f *bus.Fault
	return errors.As(err, &f) && f.Title == titleUnreachable
}

func (b *breaker) name() string {
	if b == nil {
		return ""
	}
	return b.cb.Name()
}

// busy is the fault for a call beyond max-inflight.
func (o *outbound) busy() *bus.Fault {
	f := unavailable(o.name, "Backend busy", 1,
		fmt.Sprintf("%d calls are in progress, the most max-inflight allows; try again in a moment", o.cfg.MaxInflight))
	f.Cause = ErrBusy
	return f
}

// ErrBusy is the cause (errors.Is) of the fault of a call refused by the
// connector's max-inflight: the request never left Busbar, and nothing is
// wrong with it or the backend.
var ErrBusy = errors.New("connector busy")

// unavailable is a 503 that tells REST callers when to come back.
func unavailable(connector, title string, retryAfter int, detail string) *bus.Fault {
	f := bus.ServerFault(http.StatusServiceUnavailable, title, fmt.Sprintf("connector %q: %s", connector, detail))
	f.Header = http.Header{"Retry-After": {strconv.Itoa(retryAfter)}}
	return f
}
