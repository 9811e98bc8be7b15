package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
)

// Blame says whose side a fault is on. It picks the SOAP fault code
// (Client/Sender versus Server/Receiver) and the family of the HTTP status.
type Blame int

const (
	BlameServer Blame = iota // Busbar or a backend failed: 5xx, soap:Server / soap:Receiver
	BlameClient              // the caller sent something wrong: 4xx, soap:Client / soap:Sender
)

// Fault is Busbar's one error model. Any step or connector may return one;
// the inbound side renders it in the caller's own format: RFC 9457
// problem+json for REST callers, a SOAP 1.1 or SOAP 1.2 Fault for SOAP
// callers. Errors that are not Faults become a 500 Fault (see AsFault).
//
// A fault has two accounts of what happened: Detail, for the caller, and
// Internal, for the log. Callers are other companies' systems and people:
// they get what is wrong in their request (which value, which table, which
// input path), never Busbar's file paths, expressions, backend URLs or
// socket addresses; the log line that carries the same correlation id has
// the whole story.
type Fault struct {
	Status int    // HTTP status for REST callers (problem+json "status")
	Blame  Blame  // client or server side
	Type   string // problem type URI; "about:blank" when empty
	Title  string // short, stable summary of the problem kind
	Detail string // what happened this time, for the caller
	// Internal is the whole account for the log (file:line:col, the
	// expression, the Go error); "" when Detail says it all. Callers see it
	// only when ShowInternal is set (busbar serve --debug-errors).
	Internal string
	// CorrelationID is rendered so a caller can quote it; the log line of
	// the failure carries the same id.
	CorrelationID string
	// ShowInternal renders Internal to the caller as well: set by a server
	// run for development, where the one who calls is the one who configures.
	ShowInternal bool

	// Code overrides the SOAP fault code that Blame picks, for the codes
	// that are neither Client nor Server: "VersionMismatch", "MustUnderstand".
	Code string

	// Backend fault facts, when the fault came from a SOAP backend; they are
	// carried to the caller unchanged so nobody loses the original reason.
	FaultCode   string
	FaultString string
	FaultDetail string // the inner XML of the backend's <detail>, as received

	Route string         // route name, set by the pipeline
	Extra map[string]any // further problem+json members (e.g. "errors")
	// Header holds HTTP headers that go with the fault to REST callers,
	// e.g. Retry-After on a 503 from an open circuit breaker.
	Header http.Header
	Cause  error // the underlying error, for logs; never rendered
}

// Error is the whole account, for logs and command-line tools: the
// internal detail when there is one.
func (f *Fault) Error() string {
	var b bytes.Buffer
	if f.Route != "" {
		fmt.Fprintf(&b, "route %q: ", f.Route)
	}
	b.WriteString(f.Title)
	detail := f.Internal
	if detail == "" {
		detail = f.Detail
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	if f.Cause != nil && detail == "" {
		b.WriteString(": ")
		b.WriteString(f.Cause.Error())
	}
	return b.String()
}

// Hide keeps the fault's detail for the log only and gives callers public
// instead. It returns f.
func (f *Fault) Hide(public string) *Fault {
	if f.Internal == "" {
		f.Internal = f.Detail
	}
	f.Detail = public
	return f
}

// AddDetail appends s to both accounts of the fault, e.g. " (3 attempts)".
func (f *Fault) AddDetail(s string) {
	f.Detail += s
	if f.Internal != "" {
		f.Internal += s
	}
}

func (f *Fault) Unwrap() error { return f.Cause }

// ClientFault is a fault caused by the caller's request (HTTP 400 unless status says otherwise).
func ClientFault(status int, title, detail string) *Fault {
	if status == 0 {
		status = http.StatusBadRequest
	}
	return &Fault{Status: status, Blame: BlameClient, Title: title, Detail: detail}
}

// ServerFault is a fault on Busbar's or a backend's side (HTTP 500 unless status says otherwise).
func ServerFault(status int, title, detail string) *Fault {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &Fault{Status: status, Blame: BlameServer, Title: title, Detail: detail}
}

// AsFault returns err as a Fault, wrapping anything else as an internal
// error. A plain error's text is Busbar's business (paths, addresses, Go
// types): it goes to the log, and the caller gets no detail.
func AsFault(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	return &Fault{Status: http.StatusInternalServerError, Blame: BlameServer,
		Title: "Internal error", Internal: err.Error(), Cause: err}
}

func (f *Fault) status() int {
	if f.Status != 0 {
		return f.Status
	}
	if f.Blame == BlameClient {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// ProblemJSON renders the fault as an RFC 9457 problem document. It returns
// the HTTP status to send and the body; the content type is
// application/problem+json.
func (f *Fault) ProblemJSON() (int, []byte) {
	status := f.status()
	doc := map[string]any{}
	for k, v := range f.Extra {
		doc[k] = v
	}
	typ := f.Type
	if typ == "" {
		typ = "about:blank"
	}
	title := f.Title
	if title == "" {
		title = http.StatusText(status)
	}
	doc["type"], doc["title"], doc["status"] = typ, title, status
	if f.Detail != "" {
		doc["detail"] = f.Detail
	}
	if f.Route != "" {
		doc["route"] = f.Route
	}
	if f.CorrelationID != "" {
		doc["correlationId"] = f.CorrelationID
	}
	if f.ShowInternal && f.Internal != "" {
		doc["internalDetail"] = f.Internal
	}
	if f.FaultCode != "" {
		doc["faultcode"] = f.FaultCode
	}
	if f.FaultString != "" {
		doc["faultstring"] = f.FaultString
	}
	if f.FaultDetail != "" {
		doc["faultdetail"] = f.FaultDetail
	}
	b, err := marshalSorted(doc)
	if err != nil { // only possible with an unencodable Extra value: say so rather than lose the fault
		b = []byte(`{"type":"about:blank","title":"Internal error","status":500,"detail":` +
			strconv.Quote("cannot encode problem: "+err.Error()) + `}`)
		status = http.StatusInternalServerError
	}
	return status, b
}

// marshalSorted encodes with "type", "title", "status", "detail" first so the
// document reads in RFC order, and the rest sorted.
func marshalSorted(doc map[string]any) ([]byte, error) {
	first := []string{"type", "title", "status", "detail"}
	var rest []string
	for k := range doc {
		switch k {
		case "type", "title", "status", "detail":
		default:
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // problem details are read by people: keep <, > and & as they are
	b.WriteByte('{')
	n := 0
	for _, k := range append(first, rest...) {
		v, ok := doc[k]
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode ends with a newline
		b.WriteByte(':')
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("problem member %q: %w", k, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// SOAP envelope namespaces.
const (
	NSSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

// SOAPFault renders the fault as a complete SOAP envelope of the given
// version. It returns the HTTP status (SOAP 1.1: always 500, as WS-I Basic
// Profile requires; SOAP 1.2: 400 for Sender faults, 500 for Receiver faults)
// and the envelope bytes, UTF-8, with an XML declaration.
func (f *Fault) SOAPFault(v SOAPVersion) (int, []byte) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	reason := f.reason()
	if v == SOAP12 {
		code, status := "soap:Receiver", http.StatusInternalServerError
		if f.Blame == BlameClient {
			code, status = "soap:Sender", http.StatusBadRequest
		}
		if f.Code != "" {
			code = "soap:" + f.Code
		}
		b.WriteString(`<soap:Envelope xmlns:soap="` + NSSOAP12 + `"><soap:Body><soap:Fault>`)
		b.WriteString(`<soap:Code><soap:Value>` + code + `</soap:Value>`)
		if f.FaultCode != "" {
			// The backend's own code travels as a subcode; its prefix would be
			// unbound here, so only the local part is kept.
			b.WriteString(`<soap:Subcode><soap:Value xmlns:b="urn:busbar:backend">b:`)
			xmlEscape(&b, localPart(f.FaultCode))
			b.WriteString(`</soap:Value></soap:Subcode>`)
		}
		b.WriteString(`</soap:Code><soap:Reason><soap:Text xml:lang="en">`)
		xmlEscape(&b, reason)
		b.WriteString(`</soap:Text></soap:Reason>`)
		f.writeDetail(&b, "soap:Detail")
		b.WriteString(`</soap:Fault></soap:Body></soap:Envelope>`)
		return status, b.Bytes()
	}
	code := "soap:Server"
	if f.Blame == BlameClient {
		code = "soap:Client"
	}
	if f.Code != "" {
		code = "soap:" + f.Code
	}
	b.WriteString(`<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body><soap:Fault>`)
	b.WriteString(`<faultcode>` + code + `</faultcode><faultstring>`)
	xmlEscape(&b, reason)
	b.WriteString(`</faultstring>`)
	f.writeDetail(&b, "detail")
	b.WriteString(`</soap:Fault></soap:Body></soap:Envelope>`)
	return http.StatusInternalServerError, b.Bytes()
}

// reason is the human-readable fault string: the title and the detail.
func (f *Fault) reason() string {
	if f.Detail == "" {
		if f.Title == "" {
			return http.StatusText(f.status())
		}
		return f.Title
	}
	if f.Title == "" {
		return f.Detail
	}
	return f.Title + ": " + f.Detail
}

// writeDetail writes Busbar's own detail element: the HTTP status a REST
// caller would have seen, the route, the correlation id, and the backend's
// fault, so SOAP callers get the same facts as REST callers.
func (f *Fault) writeDetail(b *bytes.Buffer, tag string) {
	if f.Route == "" && f.FaultCode == "" && f.FaultString == "" && f.FaultDetail == "" && f.Status == 0 && f.CorrelationID == "" {
		return
	}
	internal := ""
	if f.ShowInternal {
		internal = f.Internal
	}
	b.WriteString(`<` + tag + `><bb:fault xmlns:bb="urn:busbar:fault">`)
	b.WriteString(`<bb:status>` + strconv.Itoa(f.status()) + `</bb:status>`)
	for _, kv := range [][2]string{{"route", f.Route}, {"correlationId", f.CorrelationID}, {"internalDetail", internal},
		{"faultcode", f.FaultCode}, {"faultstring", f.FaultString}} {
		if kv[1] == "" {
			continue
		}
		b.WriteString(`<bb:` + kv[0] + `>`)
		xmlEscape(b, kv[1])
		b.WriteString(`</bb:` + kv[0] + `>`)
	}
	if f.FaultDetail != "" {
		// As received from the backend, escaped: its namespace prefixes may be
		// declared on elements we do not copy.
		b.WriteString(`<bb:faultdetail>`)
		xmlEscape(b, f.FaultDetail)
		b.WriteString(`</bb:faultdetail>`)
	}
	b.WriteString(`</bb:fault></` + tag + `>`)
}

func localPart(qname string) string {
	for i := len(qname) - 1; i >= 0; i-- {
		if qname[i] == ':' {
			return qname[i+1:]
		}
	}
	return qname
}

// xmlEscape writes s as XML character data, escaping only what XML requires
// (encoding/xml also escapes quotes, which makes fault strings that quote a
// field unreadable: &#34;amount&#34;). Characters XML cannot carry become U+FFFD.
func xmlEscape(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\t' || r == '\n' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF:
			b.WriteRune(r)
		default:
			b.WriteRune('\uFFFD')
		}
	}
}
