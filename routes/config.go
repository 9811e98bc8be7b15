// Package routes reads Busbar's configuration directory — route files,
// connector files, mapping files — strictly, with file:line:col in every
// error, and compiles it into inbound endpoints whose handlers run bus
// pipelines. It also watches the directory and reloads on change.
package routes

import (
	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
)

// The structs below are the file formats, as plain data. docs/routes.md is
// their reference; a test checks that every yaml key here appears there.

// RouteFile is a file with a top-level `route:` key.
type RouteFile struct {
	// Route is the route's unique name, used in logs, metrics and errors.
	Route string `yaml:"route"`
	// Description is free text for people and the admin page.
	Description string `yaml:"description"`
	// Namespaces declares prefixes for XPath in this route's conditions.
	Namespaces map[string]string `yaml:"namespaces"`
	// From says how callers reach the route.
	From From `yaml:"from"`
	// Limits bound what one request may cost.
	Limits LimitsConfig `yaml:"limits"`
	// RateLimit bounds how many requests the route admits over time, for
	// all its callers or per caller.
	RateLimit *connectors.RateLimitConfig `yaml:"rate-limit"`
	// Request is applied to the caller's message before the call.
	Request *Stage `yaml:"request"`
	// To calls a connector. Exactly one of To and Respond is set.
	To *Call `yaml:"to"`
	// Respond answers from templates instead of calling anything: a mock
	// backend, a stub during a migration, a canned error.
	Respond []Answer `yaml:"respond"`
	// Response is applied to the connector's reply before it goes back.
	Response *ResponseStage `yaml:"response"`
	// Delivery is sync (the default: the caller waits for the backend) or
	// async (store and forward; see DeliverySpec and docs/delivery.md).
	Delivery *DeliverySpec `yaml:"delivery"`
}

// From is the inbound side; exactly one of REST, SOAP, HTTP and Schedule is set.
type From struct {
	REST *RESTFrom `yaml:"rest"`
	SOAP *SOAPFrom `yaml:"soap"`
	HTTP *HTTPFrom `yaml:"http"`
	// Schedule runs the route on a timer instead (schedule.go).
	Schedule *ScheduleFrom `yaml:"schedule"`
	// Match picks this route among the routes sharing its method and path
	// (from.rest and from.http only); without it the route is the fallback.
	Match *Match `yaml:"match"`
}

// HTTPFrom: a raw inbound endpoint. Any content type; the body is passed
// on as bytes and parsed only when a match, a mapping or an expression
// must look inside.
type HTTPFrom struct {
	// Method is the HTTP method, e.g. POST.
	Method string `yaml:"method"`
	// Path is the URL path; {name} segments become route variables.
	Path string `yaml:"path"`
}

// Match is the condition under which a request of the route's method and
// path goes to this route. Every condition given must hold.
type Match struct {
	// Headers must be present with these exact values; names are case-insensitive.
	Headers map[string]string `yaml:"headers"`
	// SOAPAction is the exact SOAPAction (SOAP 1.1, without quotes) or action parameter (SOAP 1.2).
	SOAPAction string `yaml:"soap-action"`
	// SOAPHeader is a condition evaluated with the SOAP Header element as
	// context; the envelope is read only up to the end of its Header.
	SOAPHeader string `yaml:"soap-header"`
	// Body is a condition over the payload (XPath or JSON paths, as in fault-when).
	Body string `yaml:"body"`
}

// RESTFrom: JSON callers. Errors reach them as problem+json.
type RESTFrom struct {
	// Method is the HTTP method, e.g. POST.
	Method string `yaml:"method"`
	// Path is the URL path; {name} segments become route variables.
	Path string `yaml:"path"`
}

// SOAPFrom: SOAP callers, through a facade Busbar publishes.
type SOAPFrom struct {
	// Path is the facade's URL path; several routes may share it, one per operation.
	Path string `yaml:"path"`
	// WSDL is the facade's contract, served at Path?wsdl with its address set to Busbar's.
	WSDL string `yaml:"wsdl"`
	// Operation is the WSDL operation this route serves; its SOAPAction and
	// body element dispatch requests. Required when a WSDL is given.
	Operation string `yaml:"operation"`
	// Element is the body element to dispatch on, when there is no WSDL:
	// prefix:name for an element in the namespace `namespaces` gives the
	// prefix, a bare name for an element in no namespace.
	Element string `yaml:"element"`
	// Version restricts callers to "1.1" or "1.2"; default both.
	Version string `yaml:"version"`
	// Charset is what the facade answers in: utf-8 (default), gbk, gb18030
	// or big5. Routes sharing a path must not disagree.
	Charset string `yaml:"charset"`
}

// LimitsConfig bounds one request.
type LimitsConfig struct {
	// MaxBody is the largest request body accepted, e.g. 1MiB. Default 10MiB.
	MaxBody bus.ByteSize `yaml:"max-body"`
	// Timeout bounds the whole route, outbound calls included. Default 60s.
	Timeout bus.Duration `yaml:"timeout"`
}

// Stage transforms the message on its way to the connector.
type Stage struct {
	// Validate is a JSON Schema file (relative to the configuration
	// directory) the request body must satisfy (from.rest routes); checked
	// first, a body that fails it gets a 400 listing every violation.
	Validate string `yaml:"validate"`
	// Vars sets route variables from expressions over the request, before
	// Map runs; `to.path` and mappings (var("name")) read them.
	Vars map[string]string `yaml:"vars"`
	// Map is a mapping file (relative to the configuration directory) or an inline map.
	Map MapRef `yaml:"map"`
}

// ResponseStage transforms the reply and decides whether it is a business error.
type ResponseStage struct {
	// Map is a mapping (file or inline) applied to a successful reply.
	Map MapRef `yaml:"map"`
	// FaultWhen is a condition on the reply (before Map) that makes it a
	// business error, e.g. "count(/*/RETURN/item[TYPE='E']) > 0".
	FaultWhen string `yaml:"fault-when"`
	// Fault describes the error FaultWhen raises. Default: 422 "Business error".
	Fault *FaultSpec `yaml:"fault"`
}

// Call is the outbound call.
type Call struct {
	// Connector names a connector file's `connector:`.
	Connector string `yaml:"connector"`
	// Action is the SOAPAction (SOAP connectors).
	Action string `yaml:"action"`
	// Method is the HTTP method (http connectors); default POST.
	Method string `yaml:"method"`
	// Path is appended to the connector's URL; {name} takes a route variable.
	Path string `yaml:"path"`
	// Headers are sent with this route's calls.
	Headers map[string]string `yaml:"headers"`
	// Idempotent says this route's call may be repeated (the backend
	// ignores duplicates), so the connector retries it even when it is a POST.
	Idempotent bool `yaml:"idempotent"`
}

// Answer is one case of a `respond` list; the first whose When holds answers.
type Answer struct {
	// When is a condition on the request; empty means always.
	When string `yaml:"when"`
	// Status is the HTTP status of the answer; default 200.
	Status int `yaml:"status"`
	// Map (file or inline) builds the answer from the request.
	Map MapRef `yaml:"map"`
	// Fault answers with an error instead.
	Fault *FaultSpec `yaml:"fault"`
}

// FaultSpec describes an error a route raises.
type FaultSpec struct {
	// Status is the HTTP status for REST callers; default 422 (fault-when) or 500 (respond).
	Status int `yaml:"status"`
	// Blame is "client" (SOAP Client/Sender) or "server" (Server/Receiver).
	// Default: client for 4xx, server otherwise.
	Blame string `yaml:"blame"`
	// Code is a backend-style fault code, e.g. "RW609" (carried as faultcode).
	Code string `yaml:"code"`
	// Title is a short fixed summary.
	Title string `yaml:"title"`
	// Detail is an expression over the message giving the human-readable reason.
	Detail string `yaml:"detail"`
	// Map is a mapping (file or inline) with JSON output whose members are
	// added to the problem document, e.g. every message of SAP's RETURN table.
	Map MapRef `yaml:"map"`
}

// ConnectorFile is a file with a top-level `connector:` key; its other keys
// are the connector kind's own fields (see docs/routes.md).
type ConnectorFile struct {
	// Connector is the name routes use in `to.connector`.
	Connector string `yaml:"connector"`
	// Type is the registered connector kind: soap, http.
	Type string `yaml:"type"`
}
