package main

import (
	"time"

	"github.com/busbar/busbar/bench/payloads"
)

// kind is what serves a target.
type kind string

const (
	direct   kind = "direct"   // the echo backend itself (S0)
	busbar   kind = "busbar"   // busbar serve --config bench/routes/<Config>
	nginx    kind = "nginx"    // Debian nginx as a pass-through proxy
	revproxy kind = "revproxy" // bench/peers/revproxy
	bridge   kind = "bridge"   // bench/peers/bridge
)

// input is the kind of body a target takes.
type input string

const (
	soapIn input = "soap"
	jsonIn input = "json"
	anyIn  input = "any" // pass-through: whatever the payload is
)

// target is one thing benchrun sends load to.
type target struct {
	Name   string
	What   string
	Kind   kind
	Config string // busbar: the folder under bench/routes
	Path   string // URL path
	Input  input
	TLS    bool
	// Peer names the target whose CPU-µs per request is this one's bar.
	Peer string
	// Pending names the feature this target waits for. While it is missing,
	// Busbar refuses the config (or the flags) and the report says
	// "pending" instead of failing the run.
	Pending string
	// PendingErrors are the substrings of `busbar validate` errors that
	// mean "the feature is not there yet"; any other error is a broken
	// config (TestRouteConfigs checks this).
	PendingErrors []string
	// Async: the route stores before it answers (delivery: async), so its
	// Busbar gets a fresh --data-dir of its own.
	Async bool
}

const (
	pendingRouting    = `from.http / from.match (branch routing)`
	pendingResilience = `connector keys retry:/breaker: (branch resilience)`
	pendingTLS        = `busbar serve --tls-cert/--tls-key (branch resilience)`
)

var routingErrors = []string{`unknown field "http"`, `unknown field "match"`}

// targets lists every target in report order.
var targets = []target{
	{Name: "S0", What: "client → echo backend directly", Kind: direct, Path: "/echo", Input: anyIn},
	{Name: "S0-json", What: "S0 with the JSON twin (S7's baseline)", Kind: direct, Path: "/echo", Input: jsonIn},
	{Name: "S1", What: "pass-through route (from.http, body not parsed)", Kind: busbar, Config: "s1", Path: "/s1", Input: anyIn,
		Peer: "revproxy", Pending: pendingRouting, PendingErrors: routingErrors},
	{Name: "S2", What: "route chosen by SOAPAction / HTTP header (3 routes on one path)", Kind: busbar, Config: "s2", Path: "/s2", Input: soapIn,
		Peer: "revproxy", Pending: pendingRouting, PendingErrors: routingErrors},
	{Name: "S3", What: "route chosen by a SOAP Header field", Kind: busbar, Config: "s3", Path: "/s3", Input: soapIn,
		Peer: "revproxy", Pending: pendingRouting, PendingErrors: routingErrors},
	{Name: "S4", What: "route chosen by an XPath into the body", Kind: busbar, Config: "s4", Path: "/s4", Input: soapIn,
		Peer: "revproxy", Pending: pendingRouting, PendingErrors: routingErrors},
	{Name: "S5", What: "XML → XML mapping both ways (SOAP facade → SOAP backend)", Kind: busbar, Config: "s5", Path: "/s5", Input: soapIn},
	{Name: "S6", What: "SOAP client → REST/JSON backend (mapped both ways)", Kind: busbar, Config: "s6", Path: "/s6", Input: soapIn, Peer: "bridge-S6"},
	{Name: "S7", What: "REST/JSON client → SOAP backend (the demo's maps)", Kind: busbar, Config: "s7", Path: "/s7", Input: jsonIn, Peer: "bridge-S7"},
	{Name: "S8", What: "S1 with retries and a circuit breaker", Kind: busbar, Config: "s8", Path: "/s8", Input: anyIn,
		Peer: "revproxy", Pending: pendingRouting + "; " + pendingResilience,
		PendingErrors: append([]string{`unknown field "retry"`, `unknown field "breaker"`}, routingErrors...)},
	{Name: "S9", What: "S1 over TLS", Kind: busbar, Config: "s9", Path: "/s9", Input: anyIn, TLS: true,
		Peer: "revproxy", Pending: pendingRouting + "; " + pendingTLS, PendingErrors: routingErrors},
	{Name: "A1", What: "S1 made async: stored (fsync) before the 202, forwarded by a worker", Kind: busbar, Config: "a1", Path: "/a1", Input: jsonIn,
		Async: true},
	{Name: "A1q", What: "A1 with its backend down and the breaker open: the accept path alone", Kind: busbar, Config: "a1q", Path: "/a1q",
		Input: jsonIn, Async: true},
	{Name: "nginx", What: "nginx pass-through (keepalive upstream pool)", Kind: nginx, Path: "/echo", Input: anyIn},
	{Name: "revproxy", What: "httputil.ReverseProxy pass-through", Kind: revproxy, Path: "/echo", Input: anyIn},
	{Name: "bridge-S6", What: "hand-written Go bridge doing S6", Kind: bridge, Path: "/s6", Input: soapIn},
	{Name: "bridge-S7", What: "hand-written Go bridge doing S7", Kind: bridge, Path: "/s7", Input: jsonIn},
}

func targetByName(name string) (target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return target{}, false
}

// payload is one body, as SOAP and/or JSON (files under bench/testdata).
type payload struct {
	Name       string
	SOAP, JSON string
	Action     string // SOAPAction sent with the SOAP body
}

// body returns the file and headers a target of input in sends, or ok
// false when the payload has no body of that kind.
func (p payload) body(in input) (file, contentType string, headers []string, ok bool) {
	soap := func() (string, string, []string, bool) {
		return p.SOAP, "text/xml; charset=utf-8", []string{`SOAPAction: "` + p.Action + `"`}, true
	}
	switch {
	case in == soapIn && p.SOAP != "", in == anyIn && p.SOAP != "":
		return soap()
	case (in == jsonIn || in == anyIn) && p.JSON != "":
		return p.JSON, "application/json", nil, true
	}
	return "", "", nil, false
}

const echoAction = "urn:busbar:bench:Echo"

func sweepPayloads(sizes []int, json bool) []payload {
	var ps []payload
	for _, n := range sizes {
		ps = append(ps, payload{Name: "SOAP " + payloads.SizeName(n), SOAP: "soap-" + payloads.SizeName(n) + ".xml", Action: echoAction})
	}
	if json {
		for _, n := range sizes {
			ps = append(ps, payload{Name: "JSON " + payloads.SizeName(n), JSON: "json-" + payloads.SizeName(n) + ".json"})
		}
	}
	return ps
}

func bapiPayload(lines int) payload {
	n := map[int]string{2: "2", 200: "200"}[lines]
	return payload{Name: "BAPI " + n + " items", SOAP: "bapi-" + n + ".xml", JSON: "voucher-" + n + ".json", Action: payloads.ActionBAPI}
}

// table is one comparison: its targets run interleaved (A B C A B C …),
// every payload and concurrency, Reps times.
type table struct {
	ID, Title, Note string
	Targets         []string
	Payloads        []payload
	Conns           []int
	// Duration, when set, replaces the plan's for this table: at c=200 a
	// slow scenario needs longer runs so that the requests still in flight
	// when wrk stops (their CPU counted, themselves not) stay a small share.
	Duration time.Duration
}

// plan is the whole matrix and its timing.
type plan struct {
	Mode     string
	Duration time.Duration // one measured run
	Warmup   time.Duration // an unmeasured run just before it, same load
	Reps     int
	Tables   []table
}

var passThrough = []string{"S0", "S1", "nginx", "revproxy"}

func fullPlan() plan {
	return plan{Mode: "full", Duration: 4 * time.Second, Warmup: time.Second, Reps: 3, Tables: []table{
		{ID: "A", Title: "Pass-through, payload sweep (c=50)", Targets: passThrough,
			Payloads: sweepPayloads(payloads.Sizes, true), Conns: []int{50},
			Note: "The reply is the request echoed, so each size travels both ways."},
		{ID: "B", Title: "Scenarios at the BAPI document (c=50)",
			Targets:  []string{"S0", "S0-json", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "nginx", "revproxy", "bridge-S6", "bridge-S7"},
			Payloads: []payload{bapiPayload(2), bapiPayload(200)}, Conns: []int{50},
			Note: "SOAP targets get the BAPI_ACC_DOCUMENT_POST envelope, JSON targets (S7, bridge-S7, S0-json) its JSON twin."},
		{ID: "C", Title: "Concurrency sweep at the 200-item BAPI document",
			Targets:  []string{"S0", "S0-json", "S1", "S5", "S6", "S7", "nginx", "revproxy", "bridge-S6", "bridge-S7"},
			Payloads: []payload{bapiPayload(200)}, Conns: []int{1, 200}, Duration: 8 * time.Second,
			Note: "c=50 is in table B. Peak RSS at c=200 with 200-item bodies is the memory target."},
		asyncTable(4 * time.Second),
	}}
}

func quickPlan() plan {
	return plan{Mode: "quick", Duration: time.Second, Warmup: time.Second, Reps: 1, Tables: []table{
		{ID: "A", Title: "Pass-through, payload sweep (c=50)", Targets: passThrough,
			Payloads: []payload{sweepPayloads([]int{1 << 10}, false)[0], sweepPayloads([]int{100 << 10}, false)[0]}, Conns: []int{50}},
		{ID: "B", Title: "Scenarios at the BAPI document (c=50)",
			Targets:  []string{"S0", "S0-json", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "nginx", "revproxy", "bridge-S6", "bridge-S7"},
			Payloads: []payload{bapiPayload(2), bapiPayload(200)}, Conns: []int{50}},
		{ID: "C", Title: "Concurrency sweep at the 200-item BAPI document",
			Targets:  []string{"S0", "S1", "S6", "revproxy", "bridge-S6"},
			Payloads: []payload{bapiPayload(200)}, Conns: []int{1, 200}, Duration: 3 * time.Second},
		asyncTable(3 * time.Second),
	}}
}

// asyncTable is issue 11's accept benchmark: durable accepts (A1) beside
// the same exchange made sync (S1), at c=1 and c=50.
func asyncTable(d time.Duration) table {
	return table{ID: "D", Title: "Durable async accepts (JSON 1 KiB)", Targets: []string{"S1", "A1", "A1q"},
		Payloads: []payload{sweepPayloads([]int{1 << 10}, true)[1]}, Conns: []int{1, 50}, Duration: d,
		Note: "A1's and A1q's req/s are durable accepts (202 after the fsync); their CPU-µs include the embedded NATS server. " +
			"A1's worker forwards each message to the echo backend meanwhile, in the same process (accept and delivery); " +
			"A1q's backend is down and its breaker open, so its worker waits: the accept path alone."}
}

// duration is how long one measured run of t lasts.
func (p plan) duration(t table) time.Duration {
	if t.Duration > 0 {
		return t.Duration
	}
	return p.Duration
}

// seconds is the load time of the plan's runs, warm-ups included.
func (p plan) seconds(runs func(target string) bool) float64 {
	s := 0.0
	for _, t := range p.Tables {
		one := p
		one.Tables = []table{t}
		s += float64(one.runs(runs)) * (p.duration(t) + p.Warmup).Seconds()
	}
	return s
}

// runs counts the measured wrk invocations of a plan's targets that run
// (each has a warm-up before it), for progress and the time estimate.
func (p plan) runs(runs func(target string) bool) int {
	n := 0
	for _, t := range p.Tables {
		for _, name := range t.Targets {
			tg, _ := targetByName(name)
			if !runs(name) {
				continue
			}
			for _, pl := range t.Payloads {
				if _, _, _, ok := pl.body(tg.Input); ok {
					n += len(t.Conns)
				}
			}
		}
	}
	return n * p.Reps
}
