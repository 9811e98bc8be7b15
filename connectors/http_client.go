package connectors

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

func init() {
	bus.RegisterConnector(bus.ConnectorKind{
		Name:    "http",
		Summary: "calls a REST/JSON service over HTTP(S)",
		New:     func() bus.ConnectorConfig { return &HTTPConfig{} },
	})
}

// HTTPConfig configures an outbound REST connector (kind "http").
type HTTPConfig struct {
	// URL is the service's base URL; a route's `to.path` is appended to it.
	URL string `yaml:"url"`
	// URLs lists several base URLs of one service (SAP application
	// servers), instead of URL; each has its own breaker.
	URLs []string `yaml:"urls"`
	// Balance picks the URL a call goes to: failover (the first whose
	// breaker is closed, in order; the default) or round-robin.
	Balance string `yaml:"balance"`
	// Timeout bounds one attempt, connecting and reading the reply included. Default 30s.
	Timeout bus.Duration `yaml:"timeout"`
	// Headers are sent with every call (an API key, a tenant id…).
	Headers map[string]string `yaml:"headers"`
	// MaxConns caps connections to the service; idle ones are kept for reuse. Default 64.
	MaxConns int `yaml:"max-conns"`
	// MaxReply caps the reply body. Default 32MiB.
	MaxReply bus.ByteSize `yaml:"max-reply"`
	// Charset is the encoding of XML request bodies: utf-8 (default), gbk,
	// gb18030 or big5, declared in the XML declaration and the Content-Type.
	// JSON is always UTF-8.
	Charset string `yaml:"charset"`
	// Retry repeats failed calls with exponential backoff, where that is safe.
	Retry RetryConfig `yaml:"retry"`
	// Idempotent says every call of this connector may be repeated, POST
	// included: timeouts and 429/502/503/504 are then retried as for GET.
	Idempotent bool `yaml:"idempotent"`
	// Breaker stops calling a failing service for a while.
	Breaker BreakerConfig `yaml:"breaker"`
	// MaxInflight caps calls in progress; a call beyond it is refused at
	// once with 503. Default 0: no cap.
	MaxInflight int `yaml:"max-inflight"`
	// TLS sets the CAs to trust, a client certificate (mutual TLS) and the
	// expected server name for https URLs.
	TLS *TLSConfig `yaml:"tls"`
}

// Defaults for outbound calls.
const (
	defaultCallTimeout = 30 * time.Second
	defaultMaxConns    = 64
	defaultMaxReply    = 32 << 20
)

func (c *HTTPConfig) Validate() error {
	switch {
	case c.URL == "" && len(c.URLs) == 0:
		return errors.New(`field "url" is required (or "urls", for several endpoints)`)
	case c.URL != "" && len(c.URLs) > 0:
		return errors.New(`field "urls": write either url or urls, not both`)
	case c.Balance != "" && c.Balance != balanceFailover && c.Balance != balanceRoundRobin:
		return fmt.Errorf(`field "balance": %q is not a balance: write %s or %s`, c.Balance, balanceFailover, balanceRoundRobin)
	case c.MaxConns < 0:
		return errors.New(`field "max-conns" must not be negative`)
	case c.MaxInflight < 0:
		return errors.New(`field "max-inflight" must not be negative`)
	}
	field := "url"
	if len(c.URLs) > 0 {
		field = "urls"
	}
	for _, raw := range c.urls() {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return fmt.Errorf(`field %q: %v`, field, err)
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf(`field %q: %q must start with http:// or https://`, field, raw)
		case u.Host == "":
			return fmt.Errorf(`field %q: %q has no host`, field, raw)
		case c.TLS != nil && u.Scheme != "https":
			return fmt.Errorf(`field "tls": %q is not an https:// URL`, raw)
		}
	}
	if _, err := transforms.CharsetName(c.Charset); err != nil {
		return fmt.Errorf(`field "charset": %v`, err)
	}
	if err := c.Retry.validate(); err != nil {
		return err
	}
	if err := c.Breaker.validate(); err != nil {
		return err
	}
	return c.TLS.validate()
}

// encodeXML writes an XML payload in the connector's charset, with the
// declaration that names it, and returns the charset for the Content-Type.
// A character the charset lacks is the caller's data: a 422 naming it.
func (o *outbound) encodeXML(doc []byte) ([]byte, string, error) {
	name, _ := transforms.CharsetName(o.cfg.Charset) // checked by Validate
	if name == "UTF-8" && bytes.HasPrefix(doc, []byte(utf8Declaration)) && utf8.Valid(doc) {
		return doc, "utf-8", nil // what EncodeXML would return, without the copy
	}
	out, err := transforms.EncodeXMLStrict(doc, name)
	if err != nil {
		return nil, "", bus.ClientFault(http.StatusUnprocessableEntity, "Cannot encode request",
			fmt.Sprintf("connector %q: %v", o.name, err))
	}
	if name == "UTF-8" {
		name = "utf-8" // as every reply and fault of Busbar writes it
	}
	return out, name, nil
}

// urls is url or urls, whichever is set.
func (c *HTTPConfig) urls() []string {
	if len(c.URLs) > 0 {
		return c.URLs
	}
	return []string{c.URL}
}

func (c *HTTPConfig) Build(name string) (bus.Connector, error) {
	o, err := newOutbound(name, c, func(u string) string { return strings.TrimSuffix(u, "/") })
	if err != nil {
		return nil, err
	}
	return &HTTPConnector{outbound: o}, nil
}

// outbound is what every HTTP-based connector shares: its name, settings,
// the one client whose idle pool serves all its calls, and the resilience
// wrappers around them (see resilience.go for their order).
type outbound struct {
	name     string
	cfg      HTTPConfig
	client   *http.Client
	log      *slog.Logger
	retry    *retryPolicy          // nil: one attempt
	retrying *retryablehttp.Client // set with retry
	headers  []fixedHeader         // cfg.Headers, ready to use
	// endpoints are the service's base URLs, in the order of url/urls.
	endpoints  []endpoint
	roundRobin bool
	next       atomic.Uint32 // round-robin: where the next call starts
	inflight   atomic.Int64
}

// endpoint is one base URL of a connector and its own breaker.
type endpoint struct {
	base    string
	breaker *breaker // nil: no breaker
}

// newOutbound builds what every HTTP-based connector shares; base turns a
// configured URL into the prefix of every call's URL.
func newOutbound(name string, c *HTTPConfig, base func(string) string) (*outbound, error) {
	log := slog.Default()
	tlsCfg, err := c.TLS.client(name, log)
	if err != nil {
		return nil, err
	}
	o := &outbound{name: name, cfg: *c, client: newHTTPClient(c, tlsCfg), log: log,
		retry: newRetryPolicy(c.Retry), headers: fixedHeaders(c.Headers), roundRobin: c.Balance == balanceRoundRobin}
	urls := c.urls()
	for i, u := range urls {
		// With one URL the breaker has the connector's name, as in every
		// log line before urls existed; with several, sap-ecc[1], [2]…
		bname := name
		if len(urls) > 1 {
			bname = fmt.Sprintf("%s[%d]", name, i+1)
		}
		o.endpoints = append(o.endpoints, endpoint{base: base(u), breaker: newBreaker(name, bname, c.Breaker, log)})
	}
	if o.retry != nil {
		o.retrying = newRetryingClient(o)
	}
	return o, nil
}

// Close drops idle connections; calls in flight finish.
func (o *outbound) Close() error {
	o.client.CloseIdleConnections()
	return nil
}

// exchange sends a request for path (appended to an endpoint's base URL)
// with the connector's headers (where the route set none of the same name)
// and the correlation id, through the in-flight cap, the endpoints'
// breakers and the retries, and reads the whole reply, bounded by max-reply.
// header becomes the request's header (exchange adds to it). body is nil
// for a call without one; it is revoked when exchange returns, so it may
// live in a pooled buffer (see lentBody). Failures come back as Faults.
//
// The call waits on the network without the request's work slot (see
// bus.WorkLimiter) and takes one again for the reply's parsing.
func (o *outbound) exchange(ctx context.Context, method, path string, header http.Header, body *lentBody, correlationID string) (*http.Response, []byte, error) {
	resume := bus.PauseWork(ctx)
	resp, data, err := o.callBackend(ctx, method, path, header, body, correlationID)
	if werr := resume(); werr != nil {
		return nil, nil, werr
	}
	return resp, data, err
}

// callBackend is exchange while the request holds no work slot.
func (o *outbound) callBackend(ctx context.Context, method, path string, header http.Header, body *lentBody, correlationID string) (*http.Response, []byte, error) {
	if body != nil {
		defer body.revoke()
	}
	// Canonical keys and shared value slices: Header.Set would canonicalise
	// and allocate a slice per header per call. The shared slices have
	// len == cap, so an append elsewhere copies instead of writing into them.
	header["User-Agent"] = userAgent
	for _, h := range o.headers {
		if len(header[h.key]) == 0 || header[h.key][0] == "" {
			header[h.key] = h.value
		}
	}
	if correlationID != "" {
		header["X-Correlation-Id"] = []string{correlationID}
	}
	if limit := int64(o.cfg.MaxInflight); limit > 0 {
		if o.inflight.Add(1) > limit {
			o.inflight.Add(-1)
			return nil, nil, o.busy()
		}
		defer o.inflight.Add(-1)
	}
	if len(o.endpoints) == 1 {
		resp, data, err, blocked := o.callEndpoint(ctx, &o.endpoints[0], method, path, header, body, false)
		if blocked != nil {
			return nil, nil, o.endpoints[0].breaker.rejected(o.name, blocked)
		}
		return resp, data, err
	}
	return o.callEndpoints(ctx, method, path, header, body)
}

// callEndpoint is one call to one endpoint through its breaker. blocked is
// the breaker's error when it did not let the call through. moveOn says
// another endpoint will be tried if nothing reaches this one, so a refused
// connection is not retried here.
func (o *outbound) callEndpoint(ctx context.Context, ep *endpoint, method, path string, header http.Header, body *lentBody, moveOn bool) (resp *http.Response, data []byte, err, blocked error) {
	if ep.breaker == nil {
		resp, data, err = o.send(ctx, method, ep.base+path, header, body, moveOn)
		return resp, data, err, nil
	}
	_, berr := ep.breaker.cb.Execute(func() (struct{}, error) {
		resp, data, err = o.send(ctx, method, ep.base+path, header, body, moveOn)
		return struct{}{}, verdict(resp, data, err)
	})
	if errors.Is(berr, gobreaker.ErrOpenState) || errors.Is(berr, gobreaker.ErrTooManyRequests) {
		return nil, nil, nil, berr
	}
	return resp, data, err, nil
}

var userAgent = []string{"busbar"}

// fixedHeader is one of a connector's `headers`, canonical, with the value
// slice every call shares.
type fixedHeader struct {
	key   string
	value []string
}

func fixedHeaders(h map[string]string) []fixedHeader {
	out := make([]fixedHeader, 0, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) { // sorted: of two names that differ in case, the same one wins every time
		out = append(out, fixedHeader{http.CanonicalHeaderKey(k), []string{h[k]}})
	}
	return out
}

// send makes the call, with retries when the connector has them. The body
// is already in memory, so each attempt rewinds it for free.
func (o *outbound) send(ctx context.Context, method, url string, header http.Header, body *lentBody, moveOn bool) (*http.Response, []byte, error) {
	idempotent := o.idempotent(ctx, method)
	var sent *sentMark
	if !idempotent {
		sent = markSent(&ctx)
	}
	var call *retryCall
	if o.retry != nil {
		call = &retryCall{Context: ctx, idempotent: idempotent, moveOn: moveOn}
		ctx = call
	}
	// The first attempt goes straight to the transport (see roundTrip),
	// with the connector's timeout as a deadline on its context — unless
	// the route's own comes first, which then bounds the attempt alone.
	first := ctx
	if d := o.client.Timeout; d > 0 {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d {
			var cancel context.CancelFunc
			first, cancel = context.WithTimeout(ctx, d)
			defer cancel() // after readReply: the deadline bounds reading the reply too
		}
	}
	hr, err := http.NewRequestWithContext(first, method, url, nil)
	if err != nil {
		return nil, nil, bus.ServerFault(0, "Cannot build backend request", fmt.Sprintf("connector %q: %v", o.name, err)).
			Hide(fmt.Sprintf("connector %q: the request could not be built", o.name))
	}
	hr.Header = header
	if body != nil {
		hr.Body, hr.ContentLength = body.reader(), int64(body.size)
		// The transport resends on a pooled connection the backend had
		// closed before reading anything, and retries start over (see
		// rewindBody); both need GetBody.
		hr.GetBody = body.getBody
	}
	resp, err := o.roundTrip(hr)
	attempts := 1
	if call != nil {
		resp, err = o.retryFirst(call, hr, resp, err)
		attempts = call.attempts
	}
	if err != nil {
		if sent.wasSent(err) {
			return nil, nil, outcomeUnknown(o.name, err, header)
		}
		f := transportFault(o.name, err)
		if attempts > 1 {
			f.AddDetail(fmt.Sprintf(" (%d attempts)", attempts))
		}
		return nil, nil, f
	}
	defer resp.Body.Close()
	data, err := readReply(resp, o.cfg.MaxReply)
	if err != nil {
		// The backend answered, so it took the request; what it said is lost.
		if sent != nil && !errors.Is(err, errReplyTooLarge) {
			return nil, nil, outcomeUnknown(o.name, err, header)
		}
		return nil, nil, transportFault(o.name, err)
	}
	return resp, data, nil
}

// roundTrip is http.Client.Do for a connector's one-attempt calls, without
// what Client.Do costs per request and a connector never uses: a copy of
// every header (kept for redirects, which a connector does not follow), a
// second deadline and timer (send puts the timeout on the context), cookies.
// Errors read as Client.Do's do (`Post "URL": cause`), and a redirect comes
// back as the reply, as CheckRedirect's ErrUseLastResponse makes it.
func (o *outbound) roundTrip(hr *http.Request) (*http.Response, error) {
	resp, err := o.client.Transport.RoundTrip(hr)
	if err != nil {
		op := "Get"
		if hr.Method != "" {
			op = hr.Method[:1] + strings.ToLower(hr.Method[1:])
		}
		return nil, &url.Error{Op: op, URL: stripPassword(hr.URL), Err: err}
	}
	return resp, nil
}

// stripPassword is how net/http's Client shows a URL in an error.
func stripPassword(u *url.URL) string {
	if _, set := u.User.Password(); set {
		return strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1)
	}
	return u.String()
}

// newHTTPClient makes the one client (and transport) of a connector, with
// its idle pool sized for its connection cap so bursts reuse connections.
func newHTTPClient(c *HTTPConfig, tlsCfg *tls.Config) *http.Client {
	conns := c.MaxConns
	if conns == 0 {
		conns = defaultMaxConns
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = defaultCallTimeout
	}
	tr := &http.Transport{
		Proxy:                 nil, // a bus must not route finance traffic through an ambient proxy setting
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       tlsCfg,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Both outbound connectors report their breakers to async delivery (the
// shape of delivery.Gate; this package does not import delivery).
var (
	_ interface{ Ready() (bool, time.Duration) } = (*HTTPConnector)(nil)
	_ interface{ Ready() (bool, time.Duration) } = (*SOAPConnector)(nil)
)

// HTTPConnector calls a REST service.
type HTTPConnector struct {
	*outbound
}

var _ bus.Connector = (*HTTPConnector)(nil)

// Call sends req (JSON or XML) with req.Method (default POST) to the base URL
// plus req.Path, and returns the reply. A non-2xx reply is a Fault: 4xx keeps
// its status and blames the caller's data, 5xx becomes 502; a timeout is 504
// and an unreachable service 502. A raw request (bus.FormatRaw) is passed
// through instead, and so is its reply, whatever its status (see callRaw).
func (c *HTTPConnector) Call(ctx context.Context, req *bus.Message) (*bus.Message, error) {
	if req.Format == bus.FormatRaw {
		return c.callRaw(ctx, req)
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	var body []byte
	header := make(http.Header, len(req.Header)+len(c.headers)+5)
	switch req.Format {
	case bus.FormatJSON:
		body = req.Bytes()
		header["Content-Type"] = contentTypeJSON
	case bus.FormatXML:
		b, cs, err := c.encodeXML(req.Bytes())
		if err != nil {
			return nil, err
		}
		body = b
		header["Content-Type"] = []string{"application/xml; charset=" + cs}
	}
	header["Accept"] = acceptREST
	for k, v := range req.Header { // the route's headers win over the connector's
		header[k] = v
	}
	reply := req.Reply() // before the call: req (and its tree) need not live through it
	resp, data, err := c.exchange(ctx, method, req.Path, header, own(body), req.CorrelationID)
	if err != nil {
		return nil, err
	}
	reply.Status, reply.Header = resp.StatusCode, resp.Header
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, restStatusFault(c.name, resp, data)
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case len(bytes.TrimSpace(data)) == 0:
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if err := checkJSON(data); err != nil {
			return nil, bus.ServerFault(http.StatusBadGateway, "Backend sent malformed JSON",
				fmt.Sprintf("connector %q: %v", c.name, err))
		}
		reply.SetCheckedJSON(data)
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		payload, err := transforms.ParseXMLPayload(data, params["charset"])
		if err != nil {
			return nil, bus.ServerFault(http.StatusBadGateway, "Backend sent malformed XML",
				fmt.Sprintf("connector %q: %v", c.name, err))
		}
		keepDoc(ctx, payload.Doc)
		reply.SetXMLSource(payload)
	default:
		reply.Body = data
	}
	return reply, nil
}

// Header values every call of a kind sends; shared (see exchange).
var (
	contentTypeJSON = []string{"application/json"}
	acceptREST      = []string{"application/json, application/problem+json, application/xml;q=0.9"}
	acceptSOAP      = []string{"text/xml, application/soap+xml"}
)

func readReply(resp *http.Response, max bus.ByteSize) ([]byte, error) {
	limit := int64(max)
	if limit == 0 {
		limit = defaultMaxReply
	}
	// A reply to a raw inbound request is read into a buffer of the
	// request's pool (see replyBuffer); other replies are allocated.
	buf := replyBufferFor(resp)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		// Room for the announced size and the EOF: growing as it reads
		// would copy the reply each time the buffer doubles.
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%w than %d bytes", errReplyTooLarge, limit)
	}
	return buf.Bytes(), nil
}

var errReplyTooLarge = errors.New("reply larger")

// transportFault classifies a failed call: a timeout is 504, anything else
// (refused, reset, DNS) 502. Both are the server side's fault. A call that
// could not connect says so: the caller then knows nothing was sent. The Go
// error names the backend's URL and socket addresses: it is for the log only.
func transportFault(connector string, err error) *bus.Fault {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		f := bus.ServerFault(http.StatusGatewayTimeout, "Backend timeout",
			fmt.Sprintf("connector %q: no reply in time", connector))
		f.Cause = err
		return f
	}
	if errors.Is(err, context.Canceled) {
		f := bus.ServerFault(http.StatusServiceUnavailable, "Request cancelled", fmt.Sprintf("connector %q: %v", connector, err)).
			Hide(fmt.Sprintf("connector %q: the call was cancelled", connector))
		f.Cause = err
		return f
	}
	title, public := "Backend unavailable", "no reply could be had from the backend"
	switch {
	case dialFailed(err):
		title, public = titleUnreachable, "the backend could not be reached; nothing was sent"
	case errors.Is(err, errReplyTooLarge):
		title, public = "Backend reply too large", "the backend's reply is larger than the connector accepts"
	}
	f := bus.ServerFault(http.StatusBadGateway, title, fmt.Sprintf("connector %q: %v", connector, err)).
		Hide(fmt.Sprintf("connector %q: %s", connector, public))
	f.Cause = err
	return f
}

// restStatusFault turns a non-2xx REST reply into a Fault, keeping the
// backend's own words (problem+json title/detail, or the start of the body).
func restStatusFault(connector string, resp *http.Response, data []byte) *bus.Fault {
	var f *bus.Fault
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		f = bus.ClientFault(resp.StatusCode, "Backend rejected the request", "")
	} else {
		f = bus.ServerFault(http.StatusBadGateway, "Backend error", "")
	}
	reason := backendReason(resp.Header.Get("Content-Type"), data)
	f.Detail = fmt.Sprintf("connector %q: HTTP %d", connector, resp.StatusCode)
	if reason != "" {
		f.Detail += ": " + reason
	}
	f.Extra = map[string]any{"backendStatus": resp.StatusCode}
	// A 429 reaches the caller as a 429: when to come back is the backend's to say.
	if ra := resp.Header.Get("Retry-After"); ra != "" && resp.StatusCode == http.StatusTooManyRequests {
		f.Header = http.Header{"Retry-After": {ra}}
	}
	return f
}

func backendReason(contentType string, data []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/problem+json" || mt == "application/json" {
		var p struct {
			Title   string `json:"title"`
			Detail  string `json:"detail"`
			Message string `json:"message"`
			Error   any    `json:"error"`
		}
		if json.Unmarshal(data, &p) == nil {
			parts := []string{}
			for _, s := range []string{p.Title, p.Detail, p.Message} {
				if s != "" {
					parts = append(parts, s)
				}
			}
			if s, ok := p.Error.(string); ok && s != "" {
				parts = append(parts, s)
			}
			if len(parts) > 0 {
				return strings.Join(parts, ": ")
			}
		}
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
