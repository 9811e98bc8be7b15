package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/transforms"
)

// DeliverySpec is a route's `delivery:`: `sync` (the default), `async`, or
// a block with `mode: async` and the options below. docs/delivery.md says
// what each mode promises.
type DeliverySpec struct {
	// Mode is sync (the caller waits for the backend) or async (Busbar
	// stores the request, answers 202 and delivers it with retries).
	Mode string `yaml:"mode"`
	// IdempotencyKey is where a submission's key comes from: `header` (the
	// caller's Idempotency-Key header; the default) or an expression over
	// the request, e.g. concat($.companyCode, '-', $.voucherNo).
	IdempotencyKey string `yaml:"idempotency-key"`
	// KeyHeader is the header the key (or, without one, the message id) is
	// sent downstream in, for a backend that deduplicates. Default
	// Idempotency-Key.
	KeyHeader string `yaml:"key-header"`
	// BusinessKey is an expression giving what operators search messages
	// by (e.g. the voucher number).
	BusinessKey string `yaml:"business-key"`
	// OrderingKey is an expression; messages with the same value are
	// delivered one at a time, in the order they were accepted. Needs
	// Partitions.
	OrderingKey string `yaml:"ordering-key"`
	// Partitions spreads ordered messages by their key's hash; each
	// partition has one message in flight. Default 8 with an ordering-key.
	Partitions int `yaml:"partitions"`
	// Attempts is how many times a message is tried before it goes to the
	// dead letters. Default 10.
	Attempts int `yaml:"attempts"`
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff. Defaults 1s and 5m.
	Backoff    bus.Duration `yaml:"backoff"`
	MaxBackoff bus.Duration `yaml:"max-backoff"`
	// Timeout bounds one delivery attempt. Default: the route's limits.timeout.
	Timeout bus.Duration `yaml:"timeout"`
	// Concurrency is how many messages one node delivers at once
	// (unordered routes). Default 4.
	Concurrency int `yaml:"concurrency"`
}

// Delivery modes.
const (
	ModeSync  = "sync"
	ModeAsync = "async"
)

// UnmarshalYAML takes `sync`, `async`, or the block form, strictly.
func (d *DeliverySpec) UnmarshalYAML(n ast.Node) error {
	switch v := unwrapNode(n).(type) {
	case *ast.StringNode:
		d.Mode = v.Value
		return nil
	case *ast.NullNode:
		return nil
	case *ast.MappingNode, *ast.MappingValueNode:
		// Unknown keys are left to unknownDeliveryKeys: reported like
		// every other unknown key, they do not stop the rest of the file
		// from being checked.
		return yaml.NodeToValue(n, d.block())
	}
	return NodeError(n, "field \"delivery\": write sync, async, or a block such as {mode: async, idempotency-key: header}")
}

// deliveryBlock is DeliverySpec without its decoder: the block form.
type deliveryBlock DeliverySpec

func (d *DeliverySpec) block() any { return (*deliveryBlock)(d) }

// Async reports whether the route stores and forwards.
func (d *DeliverySpec) Async() bool { return d != nil && d.Mode == ModeAsync }

// WithStore gives async routes their message store. open is called once
// the first time a load finds an async route (so a configuration without
// any needs no store and no data directory); a store a previous
// configuration had (Reusing) is kept without asking again. Workers for
// the async routes start when the load succeeds: those of routes whose
// delivery settings did not change are taken over from the previous
// configuration, still running; Close stops a configuration's own.
//
// Without WithStore (busbar validate, route tests) async routes compile,
// and answer 503 if called.
func WithStore(open func() (*delivery.Store, error)) Option {
	return func(o *options) { o.openStore = open }
}

// KeyVar is the route variable that holds, during a delivery, the key
// sent downstream (the idempotency key, else the message id).
const KeyVar = "idempotencyKey"

// StatusPath is where Busbar serves a message's status: GET
// StatusPath + id. The 202 of an async route points there (Location).
const StatusPath = "/busbar/messages/"

// asyncRoute is a compiled async route: what its accept step and its
// worker need.
type asyncRoute struct {
	name      string
	soap      bool
	method    string
	fromKey   *transforms.Expr // nil: the caller's Idempotency-Key header
	business  *transforms.Expr
	ordering  *transforms.Expr
	keyHeader string
	cfg       delivery.RouteConfig // Gate unset: the worker's handle is the gate
	gate      delivery.Gate        // the connector's breaker; nil: none
	deliver   *bus.Pipeline        // request map, call, response stage
	store     *atomic.Pointer[delivery.Store]
}

// compileDelivery checks `delivery:` and, for an async route, splits the
// compiled steps: those before acceptAt (checks of the request) run while
// the caller waits, the rest at each delivery attempt.
func (rc *routeCompiler) compileDelivery(acceptAt int) {
	d := rc.spec.Delivery
	if d == nil {
		return
	}
	keys := []string{"delivery"} // the shorthand `delivery: async`
	if _, short := unwrapNode(nodeAt(rc.f.root, "delivery")).(*ast.StringNode); !short {
		keys = []string{"delivery", "mode"}
	}
	rc.unknownDeliveryKeys()
	switch d.Mode {
	case ModeSync, "":
		rc.compileSyncKey(acceptAt)
		return
	case ModeAsync:
	default:
		rc.fail(keys, "delivery %q: write sync or async", d.Mode)
		return
	}
	s := rc.spec
	switch {
	case s.From.HTTP != nil:
		rc.fail(keys, "async delivery is for from.rest and from.soap routes; a from.http route passes bytes through while its caller waits")
	case s.To == nil:
		rc.fail(keys, "an async route delivers to a connector: it needs `to`")
	}
	a := &asyncRoute{name: s.Route, soap: s.From.SOAP != nil, keyHeader: d.KeyHeader, store: &rc.l.cfg.store}
	if a.keyHeader == "" {
		a.keyHeader = "Idempotency-Key"
	}
	if s.From.REST != nil {
		a.method = strings.ToUpper(s.From.REST.Method)
	}
	if d.IdempotencyKey != "" && d.IdempotencyKey != "header" {
		a.fromKey = rc.expr([]string{"delivery", "idempotency-key"}, d.IdempotencyKey)
	}
	if d.BusinessKey != "" {
		a.business = rc.expr([]string{"delivery", "business-key"}, d.BusinessKey)
	}
	if d.OrderingKey != "" {
		a.ordering = rc.expr([]string{"delivery", "ordering-key"}, d.OrderingKey)
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"attempts", d.Attempts}, {"partitions", d.Partitions}, {"concurrency", d.Concurrency}} {
		if n.v < 0 || n.v > 1000 {
			rc.fail([]string{"delivery", n.key}, "%s %d: write a number from 1 to 1000", n.key, n.v)
		}
	}
	for _, t := range []struct {
		key string
		v   bus.Duration
	}{{"backoff", d.Backoff}, {"max-backoff", d.MaxBackoff}, {"timeout", d.Timeout}} {
		if t.v < 0 {
			rc.fail([]string{"delivery", t.key}, "%s %s: write a positive duration such as 30s", t.key, t.v.Std())
		}
	}
	if d.MaxBackoff > 0 && d.Backoff > d.MaxBackoff {
		rc.fail([]string{"delivery", "max-backoff"}, "max-backoff %s is shorter than backoff %s", d.MaxBackoff.Std(), d.Backoff.Std())
	}
	if d.Partitions > 0 && d.OrderingKey == "" {
		rc.fail([]string{"delivery", "partitions"}, "partitions order the messages of one ordering-key: set `ordering-key` too")
	}
	a.cfg = delivery.RouteConfig{MaxAttempts: d.Attempts, Backoff: d.Backoff.Std(), MaxBackoff: d.MaxBackoff.Std(),
		Timeout: d.Timeout.Std(), Concurrency: d.Concurrency, Partitions: d.Partitions}
	if a.cfg.Timeout == 0 {
		a.cfg.Timeout = s.Limits.Timeout.Std() // 0 too: the store's default
	}
	if a.ordering != nil && a.cfg.Partitions == 0 {
		a.cfg.Partitions = 8
	}
	if s.To != nil {
		if g, ok := rc.l.cfg.Connectors[s.To.Connector].(delivery.Gate); ok {
			a.gate = g
		}
	}
	if len(rc.errs) > 0 {
		return
	}
	a.deliver = &bus.Pipeline{Route: s.Route, Steps: append([]bus.NamedStep(nil), rc.steps[acceptAt:]...)}
	rc.steps = append(rc.steps[:acceptAt:acceptAt], bus.NamedStep{Name: "accept", Step: bus.StepFunc(a.accept)})
	rc.async = a
	rc.l.cfg.async = append(rc.l.cfg.async, a)
}

// unknownDeliveryKeys reports the keys of a `delivery` block that are
// not options, unless the decoder's walk reported them already.
func (rc *routeCompiler) unknownDeliveryKeys() {
	values, ok := mappingValues(unwrapNode(nodeAt(rc.f.root, "delivery")))
	if !ok {
		return
	}
	fields := yamlFields(reflect.TypeOf(deliveryBlock{}), map[string]reflect.Type{})
	for _, mv := range values {
		key := mv.Key.String()
		if _, known := fields[key]; known {
			continue
		}
		line, col := posOf(mv.Key)
		if !slices.ContainsFunc(rc.errs, func(e *Error) bool { return e.Line == line && e.Col == col }) {
			rc.errs = append(rc.errs, &Error{File: rc.f.path, Line: line, Col: col, Kind: "route", Name: rc.spec.Route,
				Msg: fmt.Sprintf("unknown field %q", key), unknownKey: true})
		}
	}
}

// accept stores the request as received and answers 202 with the
// message's id and where to read its status; a repeated submission (same
// idempotency key and payload) gets the first message's id instead.
func (a *asyncRoute) accept(ctx context.Context, m *bus.Message) (*bus.Message, error) {
	store := a.store.Load()
	if store == nil {
		return nil, bus.ServerFault(http.StatusServiceUnavailable, "No message store",
			fmt.Sprintf("route %q is async and this Busbar runs without a message store", a.name))
	}
	sub := delivery.SubmissionFrom(m)
	if raw := connectors.RequestBody(ctx); raw != nil {
		sub.Body = raw // as received: a SOAP caller's whole envelope, in its charset
	}
	if m.Header != nil {
		sub.ContentType = m.Header.Get("Content-Type")
	}
	var err error
	if a.fromKey != nil {
		if sub.IdempotencyKey, err = a.fromKey.String(m); err != nil {
			return nil, err
		}
		if sub.IdempotencyKey == "" {
			return nil, bus.ClientFault(http.StatusBadRequest, "No idempotency key",
				fmt.Sprintf("route %q takes its idempotency key from the request, and it is empty", a.name))
		}
	}
	if a.business != nil {
		if sub.BusinessKey, err = a.business.String(m); err != nil {
			return nil, err
		}
	}
	if a.ordering != nil {
		if sub.OrderingKey, err = a.ordering.String(m); err != nil {
			return nil, err
		}
	}
	id, err := store.Accept(ctx, a.name, sub)
	status, state := http.StatusAccepted, delivery.Queued
	var dup *delivery.DuplicateError
	switch {
	case errors.As(err, &dup):
		id = dup.MessageID
		if dup.Status != nil {
			state = dup.Status.State
		}
		if state.Finished() {
			status = http.StatusOK
		}
	case err != nil:
		f := delivery.AsFault(err)
		var ke *delivery.KeyError
		if errors.As(err, &ke) && ke.MessageID != "" && errors.Is(err, delivery.ErrInFlight) {
			// Where the first submission's outcome will be: the caller
			// need not resubmit to learn it.
			f.Header.Set("Location", StatusPath+ke.MessageID)
			f.Extra = map[string]any{"messageId": ke.MessageID}
		}
		return nil, f
	}
	out := m.Reply()
	out.Status = status
	out.Header = http.Header{"Location": {StatusPath + id}}
	if a.soap {
		// A SOAP caller gets the first outcome as a sync call would have:
		// the delivered reply, made the operation's response element by
		// the facade. Anything else is the one-way 202 with no envelope.
		if dup != nil && !setReply(out, dup.Status) {
			out.Status = http.StatusAccepted
		}
		return out, nil
	}
	b, _ := json.Marshal(accepted{MessageID: id, Status: state, Location: StatusPath + id})
	out.SetCheckedJSON(b)
	return out, nil
}

// setReply puts a delivered message's kept reply into out; false when
// there is none to give.
func setReply(out *bus.Message, st *delivery.Status) bool {
	if st == nil || st.State != delivery.Delivered || len(st.Reply) == 0 {
		return false
	}
	mt, _, _ := mime.ParseMediaType(st.ReplyType)
	switch {
	case (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(st.Reply):
		out.SetCheckedJSON(st.Reply)
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		out.SetXMLBytes(st.Reply) // stored from the route's own UTF-8 payload
	default:
		return false
	}
	return true
}

// accepted is the body of an async route's answer.
type accepted struct {
	MessageID string         `json:"messageId"`
	Status    delivery.State `json:"status"`
	Location  string         `json:"location"`
}

// deliveryKeyCtx carries the header name and the key a delivery sends
// downstream, from the Deliverer to the route's call step.
type deliveryKeyCtx struct{}

type deliveryKey struct{ header, value string }

// Deliver runs the route's request map, call and response stage on a
// stored message, rebuilt as the listener built it from the wire.
func (a *asyncRoute) Deliver(ctx context.Context, env *delivery.Envelope) ([]byte, string, error) {
	m := &bus.Message{ID: env.ID, CorrelationID: env.CorrelationID, Method: a.method, Path: env.Path,
		SOAPAction: env.SOAPAction, Header: http.Header{}}
	for k, v := range env.Vars {
		m.SetVar(k, v)
	}
	// For a request map that sends the key in the body (a BAPI's
	// reference number) rather than, or besides, the header.
	m.SetVar(KeyVar, env.Key())
	if env.ContentType != "" {
		m.Header.Set("Content-Type", env.ContentType)
	}
	if env.IdempotencyKey != "" {
		m.Header.Set("Idempotency-Key", env.IdempotencyKey)
	}
	if env.Query != "" {
		m.Query, _ = url.ParseQuery(env.Query) // encoded by Busbar when stored
	}
	var err error
	if a.soap {
		err = connectors.DecodeSOAP(env.Body, env.ContentType, m)
	} else {
		err = connectors.DecodeREST(env.Body, env.ContentType, m)
	}
	if err != nil {
		return nil, "", fmt.Errorf("route %q: delivery: stored request: %w", a.name, err)
	}
	ctx = context.WithValue(ctx, deliveryKeyCtx{}, deliveryKey{a.keyHeader, env.Key()})
	out, err := a.deliver.Run(ctx, m)
	if err != nil {
		if errors.Is(err, connectors.ErrBreakerOpen) || errors.Is(err, connectors.ErrBusy) {
			// The request never left: the breaker opened between the
			// worker's look at it and the call, or the connector's
			// max-inflight was reached (sync callers come first).
			wait := time.Second
			if a.gate != nil {
				if ok, in := a.gate.Ready(); !ok {
					wait = in
				}
			}
			return nil, "", delivery.Pause(wait, err)
		}
		// The status keeps what a sync caller would have been told; the
		// whole account (backend URLs, mapping file:line:col) goes to the
		// log only, as for a sync request.
		f := bus.AsFault(err)
		if ctx.Err() != nil { // the node is stopping: the attempt is put back, not failed
			return nil, "", publicFault{f}
		}
		slog.Default().LogAttrs(ctx, slog.LevelWarn, "delivery attempt failed",
			slog.String("route", a.name), slog.String("message_id", env.ID),
			slog.String("correlation_id", env.CorrelationID), slog.Int("attempt", env.Attempt),
			slog.Int("status", f.Status), slog.String("error", f.Error()))
		return nil, "", publicFault{f}
	}
	if out.Format == bus.FormatXML {
		// Kept to answer a repeat through a facade later: the element
		// must carry the declarations it inherited from the reply's envelope.
		b, err := connectors.StandaloneXML(out)
		if err != nil {
			return nil, "", fmt.Errorf("route %q: delivery: keep the reply: %w", a.name, err)
		}
		return b, replyType(out), nil
	}
	return out.Bytes(), replyType(out), nil
}

// publicFault is a delivery's fault as the message's status shows it: its
// public account only. It unwraps to the fault, whose blame decides
// between a retry and the dead letters.
type publicFault struct{ f *bus.Fault }

func (e publicFault) Unwrap() error { return e.f }

func (e publicFault) Error() string {
	f := e.f
	s := fmt.Sprintf("%d %s", f.Status, f.Title)
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	if f.FaultString != "" && f.FaultString != f.Detail {
		s += " (" + strings.TrimSpace(f.FaultCode+" "+f.FaultString) + ")"
	}
	return s
}

func replyType(m *bus.Message) string {
	switch m.Format {
	case bus.FormatJSON:
		return "application/json"
	case bus.FormatXML:
		return "application/xml; charset=utf-8"
	}
	return m.ContentType
}

// withDeliveryKey adds the delivery's key header to a call's headers (a
// copy: the route's own are shared by every call).
func withDeliveryKey(ctx context.Context, h http.Header) http.Header {
	k, ok := ctx.Value(deliveryKeyCtx{}).(deliveryKey)
	if !ok {
		return h
	}
	c := h.Clone()
	if c == nil {
		c = http.Header{}
	}
	c.Set(k.header, k.value)
	return c
}

// routeWorker is a running worker and the route it delivers for. The
// worker calls through the handle, so a reload that leaves the route's
// delivery settings alone swaps in the newly compiled route (a fixed map,
// a rebuilt connector) without stopping it.
type routeWorker struct {
	w     *delivery.Worker
	cfg   delivery.RouteConfig
	route atomic.Pointer[asyncRoute]
}

func (h *routeWorker) Deliver(ctx context.Context, env *delivery.Envelope) ([]byte, string, error) {
	return h.route.Load().Deliver(ctx, env)
}

// Ready is the current route's connector's breaker.
func (h *routeWorker) Ready() (bool, time.Duration) {
	if g := h.route.Load().gate; g != nil {
		return g.Ready()
	}
	return true, 0
}

// workers are a Config's running workers, by route.
type workers struct {
	mu sync.Mutex
	m  map[string]*routeWorker
}

// take removes and returns the worker of route if it runs with cfg; a
// worker with other settings is stopped (the route's new one replaces it
// on the same durable consumer).
func (ws *workers) take(route string, cfg delivery.RouteConfig) *routeWorker {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	h := ws.m[route]
	if h == nil {
		return nil
	}
	delete(ws.m, route)
	if reflect.DeepEqual(h.cfg, cfg) {
		return h
	}
	h.w.Stop()
	return nil
}

func (ws *workers) put(route string, h *routeWorker) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*routeWorker{}
	}
	ws.m[route] = h
}

// stop stops every worker left (not taken over by a newer Config).
func (ws *workers) stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for name, h := range ws.m {
		h.w.Stop()
		delete(ws.m, name)
	}
}

// startDelivery completes a successful load: it opens (or keeps) the
// store — for async routes and for sync routes with idempotency keys — and
// starts or takes over the async routes' workers.
func (l *loader) startDelivery() Errors {
	prev := l.opts.reuse
	if prev != nil {
		if s := prev.store.Load(); s != nil {
			l.cfg.store.Store(s)
		}
	}
	if len(l.cfg.async)+len(l.cfg.schedules)+len(l.cfg.keyed) == 0 || l.opts.openStore == nil {
		return nil
	}
	store := l.cfg.store.Load()
	if store == nil {
		s, err := l.opts.openStore()
		if err != nil {
			name := l.storeUser()
			return Errors{&Error{File: l.routeFile(name), Kind: "route", Name: name,
				Msg: fmt.Sprintf("delivery: open the message store: %v", err)}}
		}
		store = s
		l.cfg.store.Store(s)
	}
	var errs Errors
	type takenOver struct {
		h   *routeWorker
		was *asyncRoute
	}
	var taken []takenOver
	for _, a := range l.cfg.async {
		var h *routeWorker
		if prev != nil {
			h = prev.workers.take(a.name, a.cfg)
		}
		if h != nil {
			taken = append(taken, takenOver{h, h.route.Load()})
		} else {
			h = &routeWorker{cfg: a.cfg}
			h.route.Store(a)
			cfg := a.cfg
			cfg.Gate = h
			w, err := store.StartWorker(context.Background(), a.name, cfg, h)
			if err != nil {
				errs = append(errs, &Error{File: l.routeFile(a.name), Kind: "route", Name: a.name,
					Msg: fmt.Sprintf("delivery: start the worker: %v", err)})
				continue
			}
			h.w = w
		}
		h.route.Store(a)
		l.cfg.workers.put(a.name, h)
	}
	if len(errs) == 0 {
		l.startSchedules(store)
	}
	if len(errs) > 0 {
		// The load fails and the previous configuration keeps serving:
		// it gets back the workers it lent, delivering its routes again.
		for _, t := range taken {
			l.cfg.workers.take(t.was.name, t.h.cfg) // not ours to stop
			t.h.route.Store(t.was)
			prev.workers.put(t.was.name, t.h)
		}
	}
	return errs
}

func (l *loader) routeFile(name string) string {
	for _, r := range l.cfg.Routes {
		if r.Name == name {
			return r.File
		}
	}
	return l.dir
}

// statusEndpoint serves GET StatusPath{id}: a message's delivery.Status
// as JSON (a JSON reply inline, any other as text).
func (c *Config) statusEndpoint() connectors.RESTEndpoint {
	return connectors.RESTEndpoint{Route: "busbar-messages", Method: http.MethodGet, Path: StatusPath + "{id}",
		Handle: func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
			store := c.store.Load()
			if store == nil {
				return nil, bus.ServerFault(http.StatusServiceUnavailable, "No message store", "this Busbar runs without a message store")
			}
			st, err := store.Get(ctx, m.Vars["id"])
			if err != nil {
				return nil, delivery.AsFault(err)
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // an XML reply reads as XML, not \u003c
			if err := enc.Encode(statusView{Status: st, Reply: replyValue(st)}); err != nil {
				return nil, err
			}
			out := m.Reply()
			out.SetCheckedJSON(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
			return out, nil
		}}
}

// statusView is a status as the endpoint shows it: the reply readable.
type statusView struct {
	*delivery.Status
	Reply any `json:"reply,omitempty"`
}

func replyValue(st *delivery.Status) any {
	if len(st.Reply) == 0 {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(st.ReplyType); (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(st.Reply) {
		return json.RawMessage(st.Reply)
	}
	return string(st.Reply)
}
