package delivery

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/busbar/busbar/bus"
)

// Submission is what an async route persists: the original request bytes
// as received (before the request map, so a replay after a map fix and an
// audit both see what the caller sent) and the headers that matter to
// deliver it and to find it again.
type Submission struct {
	Body          []byte // copied by Accept
	ContentType   string // as received, with its parameters (charset)
	SOAPAction    string
	CorrelationID string
	// IdempotencyKey, when set, makes a repeated submission return the
	// first outcome instead of posting again (see Accept); it is also
	// handed to the Deliverer to send downstream.
	IdempotencyKey string
	// PayloadHash identifies the payload for the idempotency check; empty
	// means the SHA-256 of Body. A route that declares its key as an
	// expression over the body may pass a hash of a canonical form.
	PayloadHash string
	BusinessKey string // what operators search by (e.g. company code + voucher number)
	Caller      string // the authenticated caller identity, for audit
	// OrderingKey puts the message in order with every other message of
	// the same key on a route configured with Partitions (see RouteConfig).
	OrderingKey string
	// Path, Query (encoded) and Vars (path parameters and values set
	// before the message was stored) of the inbound request, for a
	// request map that reads them at delivery.
	Path  string
	Query string
	Vars  map[string]string
}

// SubmissionFrom fills a submission from an inbound message: its payload,
// content type, SOAPAction, correlation id, path, query, variables and
// Idempotency-Key header. The route layer sets BusinessKey, Caller,
// OrderingKey (and a key from an expression). The payload is what the
// message holds: for a SOAP request that is the Body's first element, not
// the envelope; a route that must keep the envelope's bytes passes them.
func SubmissionFrom(m *bus.Message) *Submission {
	s := &Submission{
		Body:          m.Bytes(),
		ContentType:   m.ContentType,
		SOAPAction:    m.SOAPAction,
		CorrelationID: m.CorrelationID,
		Path:          m.Path,
		Vars:          m.Vars,
	}
	if len(m.Query) > 0 {
		s.Query = m.Query.Encode()
	}
	if m.Header != nil {
		s.IdempotencyKey = m.Header.Get("Idempotency-Key")
		if s.ContentType == "" {
			s.ContentType = m.Header.Get("Content-Type")
		}
	}
	return s
}

// Envelope is a stored message as the Deliverer receives it.
type Envelope struct {
	ID    string
	Route string
	Submission
	Accepted time.Time
	// Attempt is this delivery attempt's number, from 1. Pauses for an
	// open breaker do not count.
	Attempt int
	// Replay counts the operator replays of this message (0 = none).
	Replay int
	seq    uint64 // stream sequence of this copy
}

// Key is what the Deliverer sends downstream for the backend to dedupe
// on: the submission's idempotency key, else the message id, which is the
// same for every attempt and replay of one message.
func (e *Envelope) Key() string {
	if e.IdempotencyKey != "" {
		return e.IdempotencyKey
	}
	return e.ID
}

// Header names of a stored message.
const (
	hdrID          = "Busbar-Id"
	hdrRoute       = "Busbar-Route"
	hdrContentType = "Content-Type"
	hdrSOAPAction  = "SOAPAction"
	hdrCorrelation = "Busbar-Correlation-Id"
	hdrIdemKey     = "Idempotency-Key"
	hdrBusinessKey = "Busbar-Business-Key"
	hdrCaller      = "Busbar-Caller"
	hdrOrderingKey = "Busbar-Ordering-Key"
	hdrAccepted    = "Busbar-Accepted"
	hdrReplay      = "Busbar-Replay"
	hdrPath        = "Busbar-Path"
	hdrQuery       = "Busbar-Query"
	hdrVars        = "Busbar-Vars" // JSON object
)

// newID returns a message id: 128 random bits (26 characters of base32),
// unique across nodes, safe as a subject token and a KV key — and not
// guessable from another one: the id in an async route's status URL is
// all a caller needs to read the message's reply. (A NUID, a per-process
// prefix and a sequence, let one id lead to its neighbours.)
func newID() string { return rand.Text() }

// routeToken is a route name as one subject token, KV key part and
// consumer name part: names made of letters, digits, '-' and '_' stay as
// they are (so operators can read the subjects); anything else is
// hex-encoded behind a '=' (valid in all three, never in a plain name).
func routeToken(route string) string {
	ok := route != ""
	for i := 0; i < len(route) && ok; i++ {
		c := route[i]
		ok = c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if ok {
		return route
	}
	return "=" + hex.EncodeToString([]byte(route))
}

// partitionOf picks the partition of a message: the hash of its ordering
// key (so one key always lands in one partition), else of its id (spread).
func partitionOf(sub *Submission, id string, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	k := sub.OrderingKey
	if k == "" {
		k = id
	}
	h := fnv.New32a()
	h.Write([]byte(k))
	return int(h.Sum32() % uint32(partitions))
}

func messageSubject(route string, partition int, id string) string {
	return subjectPrefix + "." + routeToken(route) + "." + strconv.Itoa(partition) + "." + id
}

func payloadHash(sub *Submission) string {
	if sub.PayloadHash != "" {
		return sub.PayloadHash
	}
	h := sha256.Sum256(sub.Body)
	return hex.EncodeToString(h[:])
}

// encode builds the stored message. The id doubles as Nats-Msg-Id, so a
// batch re-sent after a lost acknowledgement is stored once.
func (e *Envelope) encode(partition int) *nats.Msg {
	m := nats.NewMsg(messageSubject(e.Route, partition, e.ID))
	m.Data = e.Body
	set := func(k, v string) {
		if v != "" {
			m.Header[k] = []string{v}
		}
	}
	set(nats.MsgIdHdr, e.ID)
	if e.Replay > 0 {
		m.Header[nats.MsgIdHdr] = []string{e.ID + "." + strconv.Itoa(e.Replay)}
		set(hdrReplay, strconv.Itoa(e.Replay))
	}
	set(hdrID, e.ID)
	set(hdrRoute, e.Route)
	set(hdrContentType, e.ContentType)
	set(hdrSOAPAction, e.SOAPAction)
	set(hdrCorrelation, e.CorrelationID)
	set(hdrIdemKey, e.IdempotencyKey)
	set(hdrBusinessKey, e.BusinessKey)
	set(hdrCaller, e.Caller)
	set(hdrOrderingKey, e.OrderingKey)
	set(hdrAccepted, e.Accepted.UTC().Format(time.RFC3339Nano))
	set(hdrPath, e.Path)
	set(hdrQuery, e.Query)
	if len(e.Vars) > 0 {
		b, _ := json.Marshal(e.Vars) // a map of strings always encodes
		set(hdrVars, string(b))
	}
	return m
}

// decodeEnvelope reads a stored message back.
func decodeEnvelope(subject string, h nats.Header, data []byte, seq uint64) (*Envelope, error) {
	e := &Envelope{seq: seq}
	e.ID, e.Route = h.Get(hdrID), h.Get(hdrRoute)
	if e.ID == "" || e.Route == "" || !strings.HasPrefix(subject, subjectPrefix+".") {
		return nil, fmt.Errorf("delivery: stream sequence %d (%s): not a Busbar message (no %s/%s header)", seq, subject, hdrID, hdrRoute)
	}
	e.Body = data
	e.ContentType = h.Get(hdrContentType)
	e.SOAPAction = h.Get(hdrSOAPAction)
	e.CorrelationID = h.Get(hdrCorrelation)
	e.IdempotencyKey = h.Get(hdrIdemKey)
	e.BusinessKey = h.Get(hdrBusinessKey)
	e.Caller = h.Get(hdrCaller)
	e.OrderingKey = h.Get(hdrOrderingKey)
	if v := h.Get(hdrAccepted); v != "" {
		e.Accepted, _ = time.Parse(time.RFC3339Nano, v)
	}
	if v := h.Get(hdrReplay); v != "" {
		e.Replay, _ = strconv.Atoi(v)
	}
	e.Path, e.Query = h.Get(hdrPath), h.Get(hdrQuery)
	if v := h.Get(hdrVars); v != "" {
		if err := json.Unmarshal([]byte(v), &e.Vars); err != nil {
			return nil, fmt.Errorf("delivery: route %q: message %q: header %s: %w", e.Route, e.ID, hdrVars, err)
		}
	}
	return e, nil
}
