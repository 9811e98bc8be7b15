package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/transforms"
)

// ReplayedHeader marks an answer given from an idempotency record: the
// caller repeated a call whose outcome was recorded, and the backend was
// not called again.
const ReplayedHeader = "Idempotent-Replayed"

// faultOutcome is the content type of a recorded failure: the Reply holds
// the fault's public account (syncFault), rendered again for a repeat in
// the caller's format.
const faultOutcome = "application/vnd.busbar.fault+json"

// maxKeptReply is the largest reply recorded under a key, as for async
// messages: a KV value is one NATS message (1 MiB by default).
const maxKeptReply = 256 << 10

// syncKeyed is a sync route that takes an idempotency key: its calls are
// reserved under the key before the backend call and their outcome
// recorded after it (docs/delivery.md, "Sync routes").
type syncKeyed struct {
	name      string
	fromKey   *transforms.Expr // nil: the caller's Idempotency-Key header
	keyHeader string
	lease     time.Duration
	call      *bus.Pipeline // vars, request map, call, response stage
	store     *atomic.Pointer[delivery.Store]
}

// calledMark tells the keyed step whether the route's call step handed the
// request to the connector: a failure before that sent nothing.
type calledMark struct{}

func markCalled(ctx context.Context) {
	if c, ok := ctx.Value(calledMark{}).(*atomic.Bool); ok {
		c.Store(true)
	}
}

// compileSyncKey checks a sync route's `delivery` block: only the key and
// the header it goes downstream in apply. With a key, the steps from
// acceptAt on run inside its reservation.
func (rc *routeCompiler) compileSyncKey(acceptAt int) {
	d, s := rc.spec.Delivery, rc.spec
	for _, o := range []struct {
		key string
		set bool
	}{{"business-key", d.BusinessKey != ""}, {"ordering-key", d.OrderingKey != ""}, {"partitions", d.Partitions != 0},
		{"attempts", d.Attempts != 0}, {"backoff", d.Backoff != 0}, {"max-backoff", d.MaxBackoff != 0},
		{"timeout", d.Timeout != 0}, {"concurrency", d.Concurrency != 0}} {
		if o.set {
			rc.fail([]string{"delivery", o.key}, "%s is for `mode: async`; a sync route takes idempotency-key and key-header", o.key)
		}
	}
	if d.IdempotencyKey == "" {
		if d.KeyHeader != "" {
			rc.fail([]string{"delivery", "key-header"}, "key-header sends the idempotency key downstream: set `idempotency-key` (header, or an expression) too")
		}
		return
	}
	switch {
	case s.From.HTTP != nil:
		rc.fail([]string{"delivery", "idempotency-key"}, "idempotency keys are for from.rest and from.soap routes; a from.http route passes bytes through")
	case s.To == nil:
		rc.fail([]string{"delivery", "idempotency-key"}, "an idempotency key guards a call to a connector: the route needs `to`")
	}
	k := &syncKeyed{name: s.Route, keyHeader: d.KeyHeader, store: &rc.l.cfg.store}
	if k.keyHeader == "" {
		k.keyHeader = "Idempotency-Key"
	}
	if d.IdempotencyKey != "header" {
		k.fromKey = rc.expr([]string{"delivery", "idempotency-key"}, d.IdempotencyKey)
	}
	// Longer than the call can take: a repeat meanwhile is told the first
	// is in flight, not let through to post again.
	k.lease = s.Limits.Timeout.Std()
	if k.lease <= 0 {
		k.lease = connectors.DefaultTimeout
	}
	k.lease += 10 * time.Second
	if len(rc.errs) > 0 {
		return
	}
	k.call = &bus.Pipeline{Route: s.Route, Steps: append([]bus.NamedStep(nil), rc.steps[acceptAt:]...)}
	rc.steps = append(rc.steps[:acceptAt:acceptAt], bus.NamedStep{Name: "idempotency key", Step: bus.StepFunc(k.run)})
	rc.l.cfg.keyed = append(rc.l.cfg.keyed, k)
}

// syncKeyed reports whether a sync route declares an idempotency key.
func (d *DeliverySpec) syncKeyed() bool {
	return d != nil && (d.Mode == ModeSync || d.Mode == "") && d.IdempotencyKey != ""
}

// run reserves the call's key, runs the call and settles the key by what
// came of it (see settle); a repeat gets the recorded outcome.
func (k *syncKeyed) run(ctx context.Context, m *bus.Message) (*bus.Message, error) {
	store := k.store.Load()
	if store == nil {
		return nil, bus.ServerFault(http.StatusServiceUnavailable, "No message store",
			fmt.Sprintf("route %q takes idempotency keys and this Busbar runs without a message store", k.name))
	}
	key, err := k.key(m)
	if err != nil {
		return nil, err
	}
	res, err := store.Reserve(ctx, k.name, key, requestHash(m), k.lease)
	var dup *delivery.DuplicateError
	switch {
	case errors.As(err, &dup):
		return k.replay(m, dup)
	case err != nil:
		return nil, delivery.AsFault(err)
	}
	// For a request map that puts the key where the backend deduplicates
	// (a BAPI's reference document number).
	m.SetVar(KeyVar, key)
	var called atomic.Bool
	ctx = context.WithValue(ctx, calledMark{}, &called)
	ctx = context.WithValue(ctx, deliveryKeyCtx{}, deliveryKey{k.keyHeader, key})
	out, err := k.call.Run(ctx, m)
	if out != nil && out.Header != nil {
		out.Header.Del(ReplayedHeader) // a backend's, not ours
	}
	k.settle(ctx, res, key, out, err, called.Load())
	return out, err
}

// key is the call's idempotency key; a route that declares one refuses a
// call without it rather than let it through unguarded.
func (k *syncKeyed) key(m *bus.Message) (string, error) {
	if k.fromKey == nil {
		key := m.Header.Get("Idempotency-Key")
		if key == "" {
			return "", bus.ClientFault(http.StatusBadRequest, "Idempotency-Key header required",
				fmt.Sprintf("route %q deduplicates calls by their Idempotency-Key header: send one, the same for every retry of this request", k.name))
		}
		return key, nil
	}
	key, err := k.fromKey.String(m)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", bus.ClientFault(http.StatusBadRequest, "No idempotency key",
			fmt.Sprintf("route %q takes its idempotency key from the request, and it is empty", k.name))
	}
	return key, nil
}

// requestHash is what "the same payload" means for a sync call: the path
// (its variables), the query and the payload as parsed — for a SOAP facade
// the Body's element, so a WS-Security header that changes with every
// send does not make a retry look like another request.
func requestHash(m *bus.Message) string {
	b := []byte(m.Path + "\n" + m.Query.Encode() + "\n")
	return delivery.PayloadHash(append(b, m.Bytes()...))
}

// settle records the outcome under the key, or releases the key when the
// backend cannot have acted on the request:
//
//   - success: recorded; a repeat gets the same reply;
//   - nothing sent (a failure before the call, the backend unreachable,
//     its breaker open, the connector busy): released, the caller retries;
//   - the backend refused the request (a fault blaming the caller: a 4xx,
//     a SOAP Client fault, a fault-when business error): released —
//     nothing was posted, and a key made of the voucher's number must stay
//     usable once the caller (or the backend's master data) is fixed;
//   - anything else after the request went out (outcome unknown, a 5xx,
//     the caller gone mid-call, a response stage that failed): recorded —
//     the backend may have posted, and a repeat must not post again.
func (k *syncKeyed) settle(ctx context.Context, res *delivery.Reservation, key string, out *bus.Message, err error, called bool) {
	ctx = context.WithoutCancel(ctx) // a caller that hung up still settles its key
	log := func(what string, err error) {
		slog.Default().LogAttrs(ctx, slog.LevelError, "idempotency key: "+what,
			slog.String("route", k.name), slog.String("key", key), slog.String("error", err.Error()))
	}
	if err == nil {
		if ferr := res.Finish(ctx, successOutcome(out)); ferr != nil {
			// The backend acted and the record is missing: a repeat after
			// the lease calls it again. The key sent downstream is what
			// still protects the posting.
			log("record outcome", ferr)
		}
		return
	}
	f := bus.AsFault(err)
	if !called || neverSent(err) || f.Blame == bus.BlameClient {
		if rerr := res.Release(ctx); rerr != nil {
			log("release", rerr) // held until the lease ends; nothing was sent
		}
		return
	}
	if errors.Is(err, context.Canceled) || f.Status == http.StatusServiceUnavailable && f.Title == "Request cancelled" {
		f = bus.ServerFault(http.StatusGatewayTimeout, "Backend outcome unknown",
			"the call was cancelled after the request was sent; the backend may have processed the request; check before resending")
	}
	if ferr := res.Finish(ctx, faultRecord(f)); ferr != nil {
		log("record failure", ferr)
	}
}

// neverSent tells the failures where the request did not leave Busbar.
func neverSent(err error) bool {
	var f *bus.Fault
	return errors.Is(err, connectors.ErrBreakerOpen) || errors.Is(err, connectors.ErrBusy) ||
		errors.As(err, &f) && f.Title == "Backend unreachable"
}

func successOutcome(out *bus.Message) delivery.Outcome {
	o := delivery.Outcome{Status: out.Status}
	switch out.Format {
	case bus.FormatJSON:
		o.ContentType, o.Reply = replyType(out), out.Bytes()
	case bus.FormatXML:
		b, err := connectors.StandaloneXML(out)
		if err != nil {
			// Answered all the same (the caller's reply is written from
			// the same tree); a repeat is told the call went through.
			return faultRecord(bus.ServerFault(http.StatusInternalServerError, "Reply not kept",
				fmt.Sprintf("a call with this idempotency key succeeded; its XML reply could not be kept: %v", err)))
		}
		o.ContentType, o.Reply = replyType(out), b
	}
	if len(o.Reply) > maxKeptReply {
		// Recorded as done all the same: the backend acted, and a repeat
		// must not post again; it is told so without the reply.
		f := bus.ClientFault(http.StatusConflict, "Already processed", fmt.Sprintf(
			"a call with this idempotency key succeeded; its reply, %d bytes, is larger than Busbar keeps (%d)", len(o.Reply), maxKeptReply))
		return faultRecord(f)
	}
	return o
}

// syncFault is the public account of a recorded failure: what the caller
// was told, never the log's (Internal).
type syncFault struct {
	Status      int            `json:"status"`
	Blame       bus.Blame      `json:"blame"`
	Type        string         `json:"type,omitempty"`
	Title       string         `json:"title"`
	Detail      string         `json:"detail,omitempty"`
	Code        string         `json:"code,omitempty"`
	FaultCode   string         `json:"faultCode,omitempty"`
	FaultString string         `json:"faultString,omitempty"`
	FaultDetail string         `json:"faultDetail,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
}

func faultRecord(f *bus.Fault) delivery.Outcome {
	b, err := json.Marshal(syncFault{Status: f.Status, Blame: f.Blame, Type: f.Type, Title: f.Title, Detail: f.Detail,
		Code: f.Code, FaultCode: f.FaultCode, FaultString: f.FaultString, FaultDetail: f.FaultDetail, Extra: f.Extra})
	if err != nil { // an Extra member that is not JSON: keep the rest
		b, _ = json.Marshal(syncFault{Status: f.Status, Blame: f.Blame, Title: f.Title, Detail: f.Detail})
	}
	return delivery.Outcome{Status: f.Status, ContentType: faultOutcome, Reply: b}
}

// replay answers a repeated call with the first call's recorded outcome.
func (k *syncKeyed) replay(m *bus.Message, dup *delivery.DuplicateError) (*bus.Message, error) {
	o := dup.Outcome
	if o == nil {
		// The key belongs to a message this route stored when it was
		// async: its outcome is that message's.
		f := bus.ClientFault(http.StatusConflict, "Idempotency key in use",
			fmt.Sprintf("route %q: idempotency key %q belongs to message %q", k.name, dup.Key, dup.MessageID))
		f.Header = http.Header{"Location": {StatusPath + dup.MessageID}}
		return nil, f
	}
	if o.ContentType == faultOutcome {
		var sf syncFault
		if err := json.Unmarshal(o.Reply, &sf); err != nil {
			return nil, bus.ServerFault(http.StatusInternalServerError, "Idempotency record unreadable",
				fmt.Sprintf("route %q: idempotency key %q: recorded failure: %v", k.name, dup.Key, err))
		}
		return nil, &bus.Fault{Status: sf.Status, Blame: sf.Blame, Type: sf.Type, Title: sf.Title, Detail: sf.Detail,
			Code: sf.Code, FaultCode: sf.FaultCode, FaultString: sf.FaultString, FaultDetail: sf.FaultDetail, Extra: sf.Extra,
			Header: http.Header{ReplayedHeader: {"true"}}}
	}
	out := m.Reply()
	out.Status = o.Status
	out.Header = http.Header{ReplayedHeader: {"true"}}
	if len(o.Reply) > 0 {
		st := &delivery.Status{State: delivery.Delivered, Reply: o.Reply, ReplyType: o.ContentType}
		if !setReply(out, st) {
			return nil, bus.ServerFault(http.StatusInternalServerError, "Idempotency record unreadable",
				fmt.Sprintf("route %q: idempotency key %q: recorded reply of type %q", k.name, dup.Key, o.ContentType))
		}
	}
	return out, nil
}
