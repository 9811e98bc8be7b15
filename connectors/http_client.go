package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

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
	// Timeout bounds one call, connecting and reading the reply included. Default 30s.
	Timeout bus.Duration `yaml:"timeout"`
	// Headers are sent with every call (an API key, a tenant id…).
	Headers map[string]string `yaml:"headers"`
	// MaxConns caps connections to the service; idle ones are kept for reuse. Default 64.
	MaxConns int `yaml:"max-conns"`
	// MaxReply caps the reply body. Default 32MiB.
	MaxReply bus.ByteSize `yaml:"max-reply"`
}

// Defaults for outbound calls.
const (
	defaultCallTimeout = 30 * time.Second
	defaultMaxConns    = 64
	defaultMaxReply    = 32 << 20
)

func (c *HTTPConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New(`field "url" is required`)
	case err != nil:
		return fmt.Errorf(`field "url": %v`, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf(`field "url": %q must start with http:// or https://`, c.URL)
	case u.Host == "":
		return fmt.Errorf(`field "url": %q has no host`, c.URL)
	case c.MaxConns < 0:
		return errors.New(`field "max-conns" must not be negative`)
	}
	return nil
}

func (c *HTTPConfig) Build(name string) (bus.Connector, error) {
	return &HTTPConnector{outbound: newOutbound(name, c), base: strings.TrimSuffix(c.URL, "/")}, nil
}

// outbound is what every HTTP-based connector shares: its name, settings
// and the one client whose idle pool serves all its calls.
type outbound struct {
	name   string
	cfg    HTTPConfig
	client *http.Client
}

func newOutbound(name string, c *HTTPConfig) outbound {
	return outbound{name: name, cfg: *c, client: newHTTPClient(c)}
}

// Close drops idle connections; calls in flight finish.
func (o *outbound) Close() error {
	o.client.CloseIdleConnections()
	return nil
}

// exchange sends hr with the connector's headers (where the route set none
// of the same name) and the correlation id, and reads the whole reply, bounded by
// max-reply. Transport failures come back as Faults.
func (o *outbound) exchange(hr *http.Request, correlationID string) (*http.Response, []byte, error) {
	hr.Header.Set("User-Agent", "busbar")
	for k, v := range o.cfg.Headers {
		if hr.Header.Get(k) == "" {
			hr.Header.Set(k, v)
		}
	}
	if correlationID != "" {
		hr.Header.Set("X-Correlation-ID", correlationID)
	}
	resp, err := o.client.Do(hr)
	if err != nil {
		return nil, nil, transportFault(o.name, err)
	}
	defer resp.Body.Close()
	data, err := readReply(resp, o.cfg.MaxReply)
	if err != nil {
		return nil, nil, transportFault(o.name, err)
	}
	return resp, data, nil
}

// newHTTPClient makes the one client (and transport) of a connector, with
// its idle pool sized for its connection cap so bursts reuse connections.
func newHTTPClient(c *HTTPConfig) *http.Client {
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
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// HTTPConnector calls a REST service.
type HTTPConnector struct {
	outbound
	base string
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
	var body io.Reader
	contentType := ""
	switch req.Format {
	case bus.FormatJSON:
		body, contentType = bytes.NewReader(req.Bytes()), "application/json"
	case bus.FormatXML:
		b := append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"), req.Bytes()...)
		body, contentType = bytes.NewReader(b), "application/xml; charset=utf-8"
	}
	hr, err := http.NewRequestWithContext(ctx, method, c.base+req.Path, body)
	if err != nil {
		return nil, bus.ServerFault(0, "Cannot build backend request", fmt.Sprintf("connector %q: %v", c.name, err))
	}
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	hr.Header.Set("Accept", "application/json, application/problem+json, application/xml;q=0.9")
	for k, v := range req.Header { // the route's headers win over the connector's
		hr.Header[k] = v
	}
	resp, data, err := c.exchange(hr, req.CorrelationID)
	if err != nil {
		return nil, err
	}
	reply := req.Reply()
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
		reply.SetJSON(data)
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		doc, err := transforms.ParseXML(data, params["charset"])
		if err != nil {
			return nil, bus.ServerFault(http.StatusBadGateway, "Backend sent malformed XML",
				fmt.Sprintf("connector %q: %v", c.name, err))
		}
		reply.SetXML(doc.Root())
	default:
		reply.Body = data
	}
	return reply, nil
}

func readReply(resp *http.Response, max bus.ByteSize) ([]byte, error) {
	limit := int64(max)
	if limit == 0 {
		limit = defaultMaxReply
	}
	var data []byte
	var err error
	// A reply to a raw inbound request is read into a buffer of the
	// request's pool (see replyBuffer); other replies are allocated.
	if buf := replyBufferFor(resp); buf != nil {
		if resp.ContentLength > 0 && resp.ContentLength <= limit {
			buf.Grow(int(resp.ContentLength) + bytes.MinRead)
		}
		_, err = buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
		data = buf.Bytes()
	} else {
		data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	}
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reply larger than %d bytes", limit)
	}
	return data, nil
}

// transportFault classifies a failed call: a timeout is 504, anything else
// (refused, reset, DNS) 502. Both are the server side's fault.
func transportFault(connector string, err error) *bus.Fault {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		f := bus.ServerFault(http.StatusGatewayTimeout, "Backend timeout",
			fmt.Sprintf("connector %q: no reply in time", connector))
		f.Cause = err
		return f
	}
	if errors.Is(err, context.Canceled) {
		f := bus.ServerFault(http.StatusServiceUnavailable, "Request cancelled", fmt.Sprintf("connector %q: %v", connector, err))
		f.Cause = err
		return f
	}
	f := bus.ServerFault(http.StatusBadGateway, "Backend unavailable", fmt.Sprintf("connector %q: %v", connector, err))
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
