package routes

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
)

// compileMatch compiles from.match into rc.match, with its canonical form
// in rc.matchKey (two routes of one path with the same key could never be
// told apart).
func (rc *routeCompiler) compileMatch() {
	mc := rc.spec.From.Match
	if mc == nil || rc.spec.From.SOAP != nil { // a facade's match is an error of its own
		return
	}
	keys := []string{"from", "match"}
	mt := &connectors.Match{SOAPAction: mc.SOAPAction}
	var key strings.Builder
	seen := map[string]string{}
	for _, name := range sortedKeys(mc.Headers) {
		canonical := http.CanonicalHeaderKey(strings.TrimSpace(name))
		if !validHeaderName(canonical) {
			rc.fail(append(keys, "headers", name), "%q is not an HTTP header name", name)
			continue
		}
		if prev, dup := seen[canonical]; dup {
			rc.fail(append(keys, "headers", name), "header %q is listed twice (as %q and %q; names are case-insensitive)", canonical, prev, name)
			continue
		}
		seen[canonical] = name
		mt.Headers = append(mt.Headers, connectors.HeaderMatch{Name: canonical, Value: mc.Headers[name]})
		fmt.Fprintf(&key, "header %s=%q\n", canonical, mc.Headers[name])
	}
	if mc.SOAPAction != "" {
		fmt.Fprintf(&key, "soap-action %q\n", mc.SOAPAction)
	}
	if mc.SOAPHeader != "" {
		if e := rc.expr(append(keys, "soap-header"), mc.SOAPHeader); e != nil {
			mt.SOAPHeader = e.BoolIn
			mt.SOAPHeaderField = connectors.ParseHeaderField(mc.SOAPHeader, rc.spec.Namespaces)
		}
		fmt.Fprintf(&key, "soap-header %q\n", strings.TrimSpace(mc.SOAPHeader))
	}
	if mc.Body != "" {
		if e := rc.expr(append(keys, "body"), mc.Body); e != nil {
			mt.Body = e.Bool
		}
		fmt.Fprintf(&key, "body %q\n", strings.TrimSpace(mc.Body))
	}
	if len(mc.Headers) == 0 && mc.SOAPAction == "" && mc.SOAPHeader == "" && mc.Body == "" {
		rc.fail(keys, "`match` needs at least one of headers, soap-action, soap-header, body")
		return
	}
	rc.match, rc.matchKey = mt, key.String()
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// readsRequest reports whether a step of the route looks inside the request
// body; a raw route parses it (once) only then.
func (rc *routeCompiler) readsRequest() bool {
	s := rc.spec
	if s.Request != nil && (!s.Request.Map.IsZero() || len(s.Request.Vars) > 0) {
		return true
	}
	for _, a := range s.Respond {
		if a.When != "" || !a.Map.IsZero() || (a.Fault != nil && (a.Fault.Detail != "" || !a.Fault.Map.IsZero())) {
			return true
		}
	}
	if s.To != nil && rc.l.connectorKind[s.To.Connector] == "soap" {
		return true // a SOAP connector sends the payload in its own envelope
	}
	return false
}

// parseRequest gives a raw request its parsed view, unless a body match
// has already done so: the body is parsed once per request.
func parseRequest(_ context.Context, m *bus.Message) (*bus.Message, error) {
	return m, connectors.ParseRawRequest(m)
}

// guardRawReply makes the response steps from index `from` on (fault-when,
// map) see a parsed reply, and lets a raw reply that is not a success pass
// through untouched: a pass-through does not interpret a backend's faults,
// and response maps apply to successful replies.
func (rc *routeCompiler) guardRawReply(from int) {
	if from >= len(rc.steps) {
		return
	}
	for i := from; i < len(rc.steps); i++ {
		step := rc.steps[i].Step
		rc.steps[i].Step = bus.StepFunc(func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
			if m.Format == bus.FormatRaw && (m.Status < 200 || m.Status > 299) {
				return m, nil
			}
			return step.Process(ctx, m)
		})
	}
	parse := bus.NamedStep{Name: "parse reply", Step: bus.StepFunc(func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		if m.Format == bus.FormatRaw && m.Status >= 200 && m.Status <= 299 {
			return m, connectors.ParseRawReply(m)
		}
		return m, nil
	})}
	rc.steps = append(rc.steps[:from], append([]bus.NamedStep{parse}, rc.steps[from:]...)...)
}

// rawHeaders returns how a pass-through call builds its headers: the
// caller's end-to-end headers, without those the route or the connector
// sets, then the route's. When neither sets any, the caller's headers are
// handed on as they are (the connector filters them), with no copy.
func (rc *routeCompiler) rawHeaders(connector string, route http.Header) func(in http.Header) http.Header {
	skip := map[string]bool{}
	for _, k := range rc.l.connectorHeaders[connector] {
		skip[k] = true
	}
	for k := range route {
		skip[k] = true
	}
	if len(skip) == 0 {
		return func(in http.Header) http.Header { return in }
	}
	return func(in http.Header) http.Header { return connectors.PassThroughHeaders(in, route, skip) }
}
