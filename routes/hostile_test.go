package routes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/transforms"
)

// The hostile-request suite (issue 10): every case under testdata/hostile/
// is sent to the demo's SOAP facade, REST route or pass-through route (or
// the suite's own pass-through chosen by a soap-header condition,
// testdata/hostile/config), built around a valid request of that target so that only the hostile
// part differs. Each answer is checked (status, fault code or problem
// title, time to answer, no leaked addresses or paths), then the target
// must still serve a valid request, and cases refused before any backend
// call must not have reached the demo backend. See
// testdata/hostile/README.md for the case format.

// HOSTILE_PENDING=1 runs the pending cases too (they should fail until
// their fix is merged).

// hostileReadTimeout bounds reading one request in this test (the
// server's ReadTimeout, body included), so that trickled and endless
// bodies are answered in seconds, not after the 2-minute default.
const hostileReadTimeout = 4 * time.Second

// hostileTarget is a valid request of one route of the demo.
type hostileTarget struct {
	path    string
	headers map[string]string
	// body is the valid body; {{field}} is a free-text field that cases
	// may fill with hostile text (default hostileField).
	body    string
	payload string // SOAP targets: the body element, for {{payload}}
	header  string // header-match: the routing header block, for {{header}}
	action  string // SOAP targets: the SOAPAction
}

const hostileField = "Taxi 出租车"

var hostileTargets = map[string]hostileTarget{
	// The SOAP facade (routes/soap-expense-facade.yaml), SOAP 1.1.
	"facade": {
		path:    "/soap/expense",
		headers: map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"urn:busbar:demo:expense:SubmitExpense"`},
		action:  "urn:busbar:demo:expense:SubmitExpense",
		payload: `<e:SubmitExpense xmlns:e="urn:busbar:demo:expense"><e:employeeId>E1001</e:employeeId><e:claimNo>OA-77</e:claimNo>` +
			`<e:date>2026-11-20</e:date><e:currency>CNY</e:currency><e:amount>380.50</e:amount><e:purpose>{{field}}</e:purpose></e:SubmitExpense>`,
		body: `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{{payload}}</soap:Body></soap:Envelope>`,
	},
	// The REST route (routes/expense-voucher-to-sap.yaml): JSON in, SOAP to "SAP".
	"rest": {
		path:    "/api/v1/vouchers",
		headers: map[string]string{"Content-Type": "application/json"},
		body: `{"companyCode": "1000", "date": "2026-11-20", "currency": "CNY", "voucherNo": "EXP-2026-0001", "description": "{{field}}",
  "lines": [{"glAccount": "0066100000", "costCenter": "0000001000", "amount": 1250.10, "text": "Flight"},
            {"glAccount": "0021100000", "amount": -1250.10, "text": "Payable to employee"}]}`,
	},
	// The pass-through (routes/oa-sap-company-code.yaml): the envelope goes
	// byte for byte to the demo SAP backend, itself a SOAP facade.
	"passthrough": {
		path:    "/pass/sap/rfc",
		headers: map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"urn:sap-com:document:sap:rfc:functions:BAPI_COMPANYCODE_GETDETAIL"`},
		action:  "urn:sap-com:document:sap:rfc:functions:BAPI_COMPANYCODE_GETDETAIL",
		payload: `<rfc:BAPI_COMPANYCODE_GETDETAIL xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><COMPANYCODEID>1000</COMPANYCODEID><NOTE>{{field}}</NOTE></rfc:BAPI_COMPANYCODE_GETDETAIL>`,
		body:    `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{{payload}}</soapenv:Body></soapenv:Envelope>`,
	},
	// A pass-through chosen by a soap-header condition
	// (testdata/hostile/config), forwarding to the same demo SAP backend.
	"header-match": {
		path:    "/hostile/header-match",
		headers: map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": `"urn:sap-com:document:sap:rfc:functions:BAPI_COMPANYCODE_GETDETAIL"`},
		action:  "urn:sap-com:document:sap:rfc:functions:BAPI_COMPANYCODE_GETDETAIL",
		payload: `<rfc:BAPI_COMPANYCODE_GETDETAIL xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><COMPANYCODEID>1000</COMPANYCODEID></rfc:BAPI_COMPANYCODE_GETDETAIL>`,
		body: `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header>{{header}}</soapenv:Header>` +
			`<soapenv:Body>{{payload}}</soapenv:Body></soapenv:Envelope>`,
		header: `<h:Routing xmlns:h="urn:busbar:hostile:routing"><h:Target>上海</h:Target><h:Note>{{field}}</h:Note></h:Routing>`,
	},
}

// hostileFile is one file of testdata/hostile: the cases of one kind.
type hostileFile struct {
	Kind  string        `yaml:"kind"`
	About string        `yaml:"about"`
	Cases []hostileCase `yaml:"cases"`
}

type hostileCase struct {
	Name string `yaml:"name"`
	kind string

	Method      string            `yaml:"method"`       // default POST
	Path        string            `yaml:"path"`         // default the target's
	Headers     map[string]string `yaml:"headers"`      // added to (and replacing) the target's
	DropHeaders []string          `yaml:"drop-headers"` // target headers not sent
	Body        *string           `yaml:"body"`         // default {{valid}}
	BodyFile    string            `yaml:"body-file"`    // under testdata/hostile/bodies/
	Field       *string           `yaml:"field"`        // the target's free-text field
	Generate    *hostileGenerator `yaml:"generate"`     // {{gen}}

	// Delivery: normal (net/http), raw (the bytes of Raw, or the request
	// written by hand), trickle (Chunk bytes every Interval), endless (a
	// chunked body that never ends), lying-length (Content-Length
	// DeclaredLength, the body, then silence).
	Delivery       string `yaml:"delivery"`
	Raw            string `yaml:"raw"` // raw, trickle: the whole request; \n is sent as CRLF
	DeclaredLength int64  `yaml:"declared-length"`
	Chunk          int    `yaml:"chunk"`       // trickle/endless: bytes per write (default 1 / 64KiB)
	Interval       string `yaml:"interval"`    // trickle/endless: pause between writes (default 100ms / none)
	Repeat         int    `yaml:"repeat"`      // send the request this many times (the last answer is checked)
	Connections    int    `yaml:"connections"` // lying-length: this many at once

	Want map[string]*hostileWant `yaml:"want"` // target → outcome
}

// hostileGenerator makes a big body from a small description.
type hostileGenerator struct {
	Repeat string `yaml:"repeat"` // Times copies of Repeat …
	Times  int    `yaml:"times"`
	Sep    string `yaml:"sep"`    // … separated by Sep
	Open   string `yaml:"open"`   // or Depth copies of Open, then of Close
	Middle string `yaml:"middle"` // between the opens and the closes
	Close  string `yaml:"close"`
	Depth  int    `yaml:"depth"`
	// Numbered: each copy of Repeat has its "#" replaced by its index
	// (distinct attribute or key names).
	Numbered bool `yaml:"numbered"`
}

// hostileWant is the outcome issue 10 asks for.
type hostileWant struct {
	Pending  string   `yaml:"pending"`  // "defect N: why": skipped until the fix is merged
	Status   int      `yaml:"status"`   // HTTP status; 0 with Closed: no answer at all
	Statuses []int    `yaml:"statuses"` // instead of Status: any of these
	Fault    string   `yaml:"fault"`    // SOAP fault code's local part: Client, Sender, Server, Receiver, VersionMismatch, MustUnderstand
	BBStatus int      `yaml:"bb-status"`
	Title    string   `yaml:"title"` // a substring of the problem title or fault string
	Contains []string `yaml:"contains"`
	Matches  string   `yaml:"matches"` // a regular expression the answer must match
	Absent   []string `yaml:"absent"`
	Seconds  float64  `yaml:"seconds"` // most time to answer; default 5
	Backend  *int     `yaml:"backend"` // most requests the demo backend may receive
	Closed   bool     `yaml:"closed"`  // the server closes the connection after its answer
	// Responses: raw deliveries, exactly this many answers on the connection
	// (a smuggled second request must not be answered). 0: not checked.
	Responses int    `yaml:"responses"`
	HeapMax   string `yaml:"heap-max"` // connections: most heap held while they are open
}

func loadHostileCases(t *testing.T) []*hostileCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases under testdata/hostile (%v)", err)
	}
	var cases []*hostileCase
	names := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f hostileFile
		if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
			t.Fatalf("%s: %v", file, yaml.FormatError(err, false, true))
		}
		if f.Kind == "" || len(f.Cases) == 0 {
			t.Fatalf("%s: a kind and cases, please", file)
		}
		for i := range f.Cases {
			c := &f.Cases[i]
			c.kind = f.Kind
			if c.Name == "" || names[c.Name] {
				t.Fatalf("%s: case %d: a name is missing or used twice (%q)", file, i+1, c.Name)
			}
			names[c.Name] = true
			if len(c.Want) == 0 {
				t.Fatalf("%s: case %s: no target in want", file, c.Name)
			}
			for target := range c.Want {
				if _, ok := hostileTargets[target]; !ok {
					t.Fatalf("%s: case %s: unknown target %q", file, c.Name, target)
				}
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// backendCounter counts the requests that reach the demo backends, by the
// X-Correlation-ID that Busbar passes on.
type backendCounter struct {
	mu  sync.Mutex
	ids map[string]int
}

func (c *backendCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.ids[r.Header.Get("X-Correlation-ID")]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *backendCounter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id]
}

// startHostile serves the examples with short read timeouts on one
// loopback port, and the same routes on a second port, counted, for the
// demo's connectors: the backends.
func startHostile(t *testing.T) (*busbar, *backendCounter) {
	t.Helper()
	lnBackend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BUSBAR_DEMO_URL", "http://"+lnBackend.Addr().String())
	cfg, err := Load(examples)
	if err != nil {
		t.Fatalf("load %s:\n%v", examples, err)
	}
	// The suite's own routes (testdata/hostile/config) are served beside
	// the examples.
	extra, err := Load(filepath.Join("testdata", "hostile", "config"))
	if err != nil {
		cfg.Close()
		t.Fatalf("load testdata/hostile/config:\n%v", err)
	}
	endpoints, more := cfg.Endpoints(), extra.Endpoints()
	endpoints.REST = append(endpoints.REST, more.REST...)
	endpoints.HTTP = append(endpoints.HTTP, more.HTTP...)
	endpoints.SOAP = append(endpoints.SOAP, more.SOAP...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := connectors.NewServer(connectors.ServerConfig{
		Listen:            ln.Addr().String(),
		ReadHeaderTimeout: hostileReadTimeout,
		ReadTimeout:       hostileReadTimeout,
	})
	if err := srv.Swap(endpoints); err != nil {
		t.Fatal(err)
	}
	counter := &backendCounter{ids: map[string]int{}}
	backend := &http.Server{Handler: counter.wrap(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go backend.Serve(lnBackend)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		backend.Shutdown(ctx)
		cfg.Close()
		extra.Close()
	})
	return &busbar{URL: "http://" + ln.Addr().String(), srv: srv, cfg: cfg}, counter
}

var hostileSeq atomic.Int64

// The canary is a loopback listener that {{canary}} names in external
// entities, DTDs and XIncludes: Busbar must never connect to it.
var (
	hostileCanaryURL  string
	hostileCanaryHits atomic.Int64
)

func startCanary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostileCanaryURL = "http://" + ln.Addr().String()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			hostileCanaryHits.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
}

// hostileAnswer is what came back for one request.
type hostileAnswer struct {
	status    int // 0: no answer
	body      string
	elapsed   time.Duration
	responses int  // raw deliveries: answers read on the connection
	closed    bool // raw deliveries: the server closed the connection
	err       error
}

func TestHostileRequests(t *testing.T) {
	cases := loadHostileCases(t)
	startCanary(t)
	b, counter := startHostile(t)
	addr := strings.TrimPrefix(b.URL, "http://")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	for name := range hostileTargets {
		if a := sendValid(client, b.URL, name, "hostile-valid-start-"+name); a.status != 200 {
			t.Fatalf("target %s: the valid request must pass first: got %d %v\n%s", name, a.status, a.err, a.body)
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Slow deliveries wait for timeouts (and raw ones a second for a
	// smuggled answer): they run in parallel, the rest one after another.
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			targets := make([]string, 0, len(c.Want))
			for target := range c.Want {
				targets = append(targets, target)
			}
			sort.Strings(targets)
			for _, target := range targets {
				want := c.Want[target]
				t.Run(c.kind+"/"+c.Name+"/"+target, func(t *testing.T) {
					if want.Pending != "" && os.Getenv("HOSTILE_PENDING") == "" {
						t.Skip("pending " + want.Pending)
					}
					if c.slow() {
						t.Parallel()
					}
					runHostileCase(t, client, b.URL, addr, counter, c, target, want)
				})
			}
		}
	})

	if n := hostileCanaryHits.Load(); n > 0 {
		t.Errorf("the canary was reached %d times: an entity, DTD or XInclude was fetched", n)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	const heapBound = 64 << 20
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > heapBound {
		t.Errorf("after the hostile cases the heap holds %d MiB more than before (bound %d MiB)", grown>>20, heapBound>>20)
	}
	if hwm := vmHWM(); hwm > 0 {
		t.Logf("peak RSS (VmHWM) %d MiB; heap in use before %d MiB, after %d MiB", hwm>>20, before.HeapInuse>>20, after.HeapInuse>>20)
		const rssBound = 1536 << 20 // generous: -race multiplies memory
		if hwm > rssBound {
			t.Errorf("peak RSS %d MiB, want at most %d MiB", hwm>>20, rssBound>>20)
		}
	}
}

func (c *hostileCase) slow() bool {
	if c.Connections > 0 {
		return false // it measures the heap: alone, not beside endless bodies
	}
	switch c.Delivery {
	case "trickle", "endless", "lying-length", "raw": // raw: waits a second for a smuggled answer
		return true
	}
	for _, w := range c.Want {
		if w.Status == 0 && w.Closed || w.Status == http.StatusRequestTimeout {
			return true
		}
	}
	return false
}

func runHostileCase(t *testing.T, client *http.Client, url, addr string, counter *backendCounter, c *hostileCase, target string, want *hostileWant) {
	tg := hostileTargets[target]
	id := fmt.Sprintf("hostile-%d-%s", hostileSeq.Add(1), c.Name)
	req, err := c.build(tg, id)
	if err != nil {
		t.Fatalf("case %s: %v", c.Name, err)
	}
	seconds := want.Seconds
	if seconds == 0 {
		seconds = 5
	}
	limit := time.Duration(seconds * float64(time.Second))

	var a hostileAnswer
	if c.Connections > 0 {
		checkHeldConnections(t, addr, c, req, want, limit)
	} else {
		for range max(c.Repeat, 1) {
			if c.Delivery == "" || c.Delivery == "normal" {
				a = sendHTTP(client, url, req)
			} else {
				a = sendRaw(addr, c, req, limit+3*time.Second)
			}
		}
		checkHostileAnswer(t, c, want, a, limit)
	}
	if want.Backend != nil {
		if n := counter.count(id); n > *want.Backend {
			t.Errorf("case %s: want at most %d requests at the demo backend, got %d", c.Name, *want.Backend, n)
		}
	}
	// Whatever came before, the target still serves a valid request.
	if v := sendValid(client, url, target, id+"-valid"); v.status != 200 {
		t.Errorf("case %s: after it the valid request must pass: want 200, got %d %v\n%s", c.Name, v.status, v.err, v.body)
	}
}

// hostileRequest is a case made concrete for one target.
type hostileRequest struct {
	method, path string
	headers      [][2]string // in order; X-Correlation-ID first
	body         []byte
	raw          []byte // raw delivery: the whole request
}

var placeholder = regexp.MustCompile(`\{\{([a-z0-9]+)(?::([^}]*))?\}\}`)

// expand replaces the placeholders of s: {{valid}} {{payload}} {{field}}
// {{action}} {{gen}} {{soap11}} {{soap12}} {{hex:c0af}} {{gbk:文字}}.
func (c *hostileCase) expand(s string, tg hostileTarget) ([]byte, error) {
	field := hostileField
	if c.Field != nil {
		// The field's own placeholders first ({{gen}}, {{hex:…}}).
		b, err := c.substitute(*c.Field, tg, "")
		if err != nil {
			return nil, fmt.Errorf("field: %v", err)
		}
		field = string(b)
	}
	return c.substitute(s, tg, field)
}

func (c *hostileCase) substitute(s string, tg hostileTarget, field string) ([]byte, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		switch sub[1] {
		case "valid":
			body := strings.NewReplacer("{{payload}}", tg.payload, "{{header}}", tg.header).Replace(tg.body)
			return strings.ReplaceAll(body, "{{field}}", field)
		case "payload":
			return strings.ReplaceAll(tg.payload, "{{field}}", field)
		case "header":
			return strings.ReplaceAll(tg.header, "{{field}}", field)
		case "field":
			return field
		case "canary":
			return hostileCanaryURL
		case "action":
			return tg.action
		case "soap11":
			return "http://schemas.xmlsoap.org/soap/envelope/"
		case "soap12":
			return "http://www.w3.org/2003/05/soap-envelope"
		case "gen":
			return c.Generate.String()
		case "hex":
			b, e := hex.DecodeString(sub[2])
			if e != nil {
				err = fmt.Errorf("%s: %v", m, e)
			}
			return string(b)
		case "gbk":
			b, e := transforms.EncodeCharset([]byte(sub[2]), "GBK")
			if e != nil {
				err = fmt.Errorf("%s: %v", m, e)
			}
			return string(b)
		}
		err = fmt.Errorf("unknown placeholder %s", m)
		return m
	})
	return []byte(out), err
}

func (g *hostileGenerator) String() string {
	if g == nil {
		return ""
	}
	if g.Depth > 0 {
		return strings.Repeat(g.Open, g.Depth) + g.Middle + strings.Repeat(g.Close, g.Depth)
	}
	if g.Times <= 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(g.Times * (len(g.Repeat) + len(g.Sep)))
	for i := range g.Times {
		if i > 0 {
			b.WriteString(g.Sep)
		}
		if g.Numbered {
			b.WriteString(strings.ReplaceAll(g.Repeat, "#", strconv.Itoa(i)))
		} else {
			b.WriteString(g.Repeat)
		}
	}
	return b.String()
}

func (c *hostileCase) build(tg hostileTarget, id string) (*hostileRequest, error) {
	r := &hostileRequest{method: c.Method, path: c.Path}
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = tg.path
	}
	src := "{{valid}}"
	switch {
	case c.BodyFile != "":
		b, err := os.ReadFile(filepath.Join("testdata", "hostile", "bodies", c.BodyFile))
		if err != nil {
			return nil, err
		}
		src = string(b)
	case c.Body != nil:
		src = *c.Body
	}
	body, err := c.expand(src, tg)
	if err != nil {
		return nil, err
	}
	r.body = body
	r.headers = append(r.headers, [2]string{"X-Correlation-ID", id})
	names := make([]string, 0, len(tg.headers)+len(c.Headers))
	for k := range tg.headers {
		if _, replaced := c.Headers[k]; !replaced && !containsFold(c.DropHeaders, k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		r.headers = append(r.headers, [2]string{k, tg.headers[k]})
	}
	extra := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		v, err := c.expand(c.Headers[k], tg)
		if err != nil {
			return nil, err
		}
		r.headers = append(r.headers, [2]string{k, string(v)})
	}
	if c.Raw != "" {
		// \n in the file is CRLF on the wire; {{hex:0a}} writes a bare LF.
		tmpl := strings.ReplaceAll(c.Raw, "\n", "\r\n")
		var hdr strings.Builder
		for _, h := range r.headers {
			hdr.WriteString(h[0] + ": " + h[1] + "\r\n")
		}
		tmpl = strings.NewReplacer("{{path}}", r.path, "{{headers}}", hdr.String(), "{{id}}", id,
			"{{len}}", strconv.Itoa(len(body)), "{{body}}", string(body)).Replace(tmpl)
		raw, err := c.expand(tmpl, tg)
		if err != nil {
			return nil, err
		}
		r.raw = raw
	}
	return r, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func sendHTTP(client *http.Client, url string, r *hostileRequest) hostileAnswer {
	req, err := http.NewRequest(r.method, url+r.path, bytes.NewReader(r.body))
	if err != nil {
		return hostileAnswer{err: err}
	}
	if len(r.body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for _, h := range r.headers {
		req.Header[http.CanonicalHeaderKey(h[0])] = append(req.Header[http.CanonicalHeaderKey(h[0])], h[1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return hostileAnswer{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return hostileAnswer{status: resp.StatusCode, body: string(data), elapsed: time.Since(start), err: err, responses: 1}
}

func sendValid(client *http.Client, url, target, id string) hostileAnswer {
	c := &hostileCase{}
	r, err := c.build(hostileTargets[target], id)
	if err != nil {
		return hostileAnswer{err: err}
	}
	return sendHTTP(client, url, r)
}

// header writes the request line and headers of r, with Content-Length n
// (n < 0: chunked).
func (r *hostileRequest) header(n int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hostile.test\r\n", r.method, r.path)
	for _, h := range r.headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	if n < 0 {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", n)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// sendRaw sends the request over its own TCP connection, as the case's
// delivery says, while reading the answers; it gives up after limit.
func sendRaw(addr string, c *hostileCase, r *hostileRequest, limit time.Duration) hostileAnswer {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return hostileAnswer{err: err}
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	go func() { writeDelivery(conn, c, r, stop, start.Add(limit)) }()

	conn.SetReadDeadline(start.Add(limit))
	br := bufio.NewReader(conn)
	var a hostileAnswer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if a.responses == 0 {
				a.err, a.elapsed = err, time.Since(start)
			}
			a.closed = err == io.EOF || err == io.ErrUnexpectedEOF || isReset(err)
			return a
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.responses++
		if a.responses == 1 {
			a.status, a.body, a.elapsed = resp.StatusCode, string(data), time.Since(start)
			// Look for a second answer (a smuggled request) or the close.
			conn.SetReadDeadline(time.Now().Add(time.Second))
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// writeDelivery writes the request as the case's delivery says, until it
// is all written, stop is closed, or the deadline passes.
func writeDelivery(conn net.Conn, c *hostileCase, r *hostileRequest, stop <-chan struct{}, deadline time.Time) {
	conn.SetWriteDeadline(deadline)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return time.Now().After(deadline)
		}
	}
	pause := func(d time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	interval, _ := time.ParseDuration(c.Interval)
	switch c.Delivery {
	case "raw":
		if r.raw != nil {
			conn.Write(r.raw)
		} else {
			conn.Write(append(r.header(int64(len(r.body))), r.body...))
		}
	case "lying-length":
		conn.Write(append(r.header(c.DeclaredLength), r.body...))
		<-stop // then silence: the rest never comes
	case "trickle":
		if interval == 0 {
			interval = 100 * time.Millisecond
		}
		chunk := max(c.Chunk, 1)
		data := r.raw // the whole request, headers included
		if data == nil {
			if _, err := conn.Write(r.header(int64(len(r.body)))); err != nil {
				return
			}
			data = r.body
		}
		for i := 0; i < len(data) && !stopped(); i += chunk {
			if _, err := conn.Write(data[i:min(i+chunk, len(data))]); err != nil || !pause(interval) {
				return
			}
		}
	case "endless":
		// A chunked body: the case's body, then its generator's output
		// (or spaces) again and again.
		chunk := c.Chunk
		if chunk == 0 {
			chunk = 64 << 10
		}
		filler := []byte(c.Generate.String())
		if len(filler) == 0 {
			filler = bytes.Repeat([]byte(" "), chunk)
		}
		if _, err := conn.Write(r.header(-1)); err != nil {
			return
		}
		writeChunk := func(p []byte) error {
			_, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(p), p)
			return err
		}
		if len(r.body) > 0 && writeChunk(r.body) != nil {
			return
		}
		for !stopped() {
			for p := filler; len(p) > 0; p = p[min(chunk, len(p)):] {
				if writeChunk(p[:min(chunk, len(p))]) != nil {
					return
				}
				if interval > 0 && !pause(interval) {
					return
				}
			}
		}
	}
}

// checkHeldConnections opens c.Connections connections that each declare
// a body they never send, and measures the heap they cost while open.
func checkHeldConnections(t *testing.T, addr string, c *hostileCase, r *hostileRequest, want *hostileWant, limit time.Duration) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	answers := make([]hostileAnswer, c.Connections)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = sendRaw(addr, c, r, limit+3*time.Second) })
	}
	time.Sleep(hostileReadTimeout / 2)
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	wg.Wait()
	if want.HeapMax != "" {
		bound, err := parseHeapMax(want.HeapMax)
		if err != nil {
			t.Fatalf("case %s: heap-max: %v", c.Name, err)
		}
		if grown := int64(held.HeapAlloc) - int64(before.HeapAlloc); grown > bound {
			t.Errorf("case %s: want at most %s of heap for %d connections declaring %d bytes each, got %d MiB",
				c.Name, want.HeapMax, c.Connections, c.DeclaredLength, grown>>20)
		}
	}
	seen := map[string]bool{}
	for i, a := range answers {
		msg := hostileFailure(c, want, a, limit)
		key, _, _ := strings.Cut(loopback.ReplaceAllString(msg, "ADDR"), "\n")
		if msg != "" && !seen[key] {
			seen[key] = true // one report per distinct failure
			t.Errorf("case %s: connection %d of %d: %s", c.Name, i+1, len(answers), msg)
		}
	}
}

func parseHeapMax(s string) (int64, error) {
	for suffix, unit := range map[string]int64{"MiB": 1 << 20, "KiB": 1 << 10, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * unit, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func checkHostileAnswer(t *testing.T, c *hostileCase, want *hostileWant, a hostileAnswer, limit time.Duration) {
	t.Helper()
	if msg := hostileFailure(c, want, a, limit); msg != "" {
		t.Errorf("case %s: %s", c.Name, msg)
	}
}

// leaks are what no answer may show a caller (defect 10): socket
// addresses and file system paths.
var leaks = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+|\[::1?\]:\d+|(^|[\s"'(=])/(work|home|tmp|etc|usr|root|var|proc)/|\.go:\d+|[\w./-]+\.ya?ml:\d+`)

var (
	faultCode11 = regexp.MustCompile(`<faultcode>(?:[^:<]*:)?([^<]*)</faultcode>`)
	faultCode12 = regexp.MustCompile(`<(?:[^:>]+:)?Code>\s*<(?:[^:>]+:)?Value>(?:[^:<]*:)?([^<]*)</`)
	bbStatus    = regexp.MustCompile(`<bb:status>(\d+)</bb:status>`)
	faultString = regexp.MustCompile(`<faultstring>([^<]*)</faultstring>|<(?:[^:>]+:)?Text[^>]*>([^<]*)</`)
)

// hostileFailure says how the answer differs from the wanted one, "" when it does not.
func hostileFailure(c *hostileCase, want *hostileWant, a hostileAnswer, limit time.Duration) string {
	var problems []string
	got := fmt.Sprintf("%d", a.status)
	if a.status == 0 {
		got = fmt.Sprintf("no answer (%v)", a.err)
	}
	switch {
	case len(want.Statuses) > 0:
		ok := false
		for _, s := range want.Statuses {
			ok = ok || s == a.status
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("want status one of %v, got %s", want.Statuses, got))
		}
	case want.Status != a.status:
		problems = append(problems, fmt.Sprintf("want status %d, got %s", want.Status, got))
	}
	if a.status != 0 && a.elapsed > limit {
		problems = append(problems, fmt.Sprintf("want an answer within %v, got one after %v", limit, a.elapsed.Round(time.Millisecond)))
	}
	if want.Closed && !a.closed {
		problems = append(problems, "want the connection closed, it stayed open")
	}
	if want.Responses > 0 && a.responses != want.Responses {
		problems = append(problems, fmt.Sprintf("want %d answers on the connection, got %d", want.Responses, a.responses))
	}
	if want.Fault != "" {
		code := ""
		if m := faultCode11.FindStringSubmatch(a.body); m != nil {
			code = m[1]
		} else if m := faultCode12.FindStringSubmatch(a.body); m != nil {
			code = m[1]
		}
		if code != want.Fault {
			problems = append(problems, fmt.Sprintf("want fault code %s, got %q", want.Fault, code))
		}
	}
	if want.BBStatus != 0 {
		got := ""
		if m := bbStatus.FindStringSubmatch(a.body); m != nil {
			got = m[1]
		}
		if got != strconv.Itoa(want.BBStatus) {
			problems = append(problems, fmt.Sprintf("want bb:status %d, got %q", want.BBStatus, got))
		}
	}
	if want.Title != "" {
		title := ""
		var p struct {
			Title string `json:"title"`
		}
		if json.Unmarshal([]byte(a.body), &p) == nil && p.Title != "" {
			title = p.Title
		} else if m := faultString.FindStringSubmatch(a.body); m != nil {
			title = m[1] + m[2]
		}
		if !strings.Contains(title, want.Title) {
			problems = append(problems, fmt.Sprintf("want a title or fault string containing %q, got %q", want.Title, title))
		}
	}
	for _, s := range want.Contains {
		if !strings.Contains(a.body, s) {
			problems = append(problems, fmt.Sprintf("want the answer to contain %q", s))
		}
	}
	if want.Matches != "" {
		if re, err := regexp.Compile(want.Matches); err != nil || !re.MatchString(a.body) {
			problems = append(problems, fmt.Sprintf("want the answer to match %q (%v)", want.Matches, err))
		}
	}
	for _, s := range want.Absent {
		if strings.Contains(a.body, s) {
			problems = append(problems, fmt.Sprintf("want the answer not to contain %q", s))
		}
	}
	if m := leaks.FindString(a.body); m != "" {
		problems = append(problems, fmt.Sprintf("want no address or path in the answer, got %q", strings.TrimSpace(m)))
	}
	if len(problems) == 0 {
		return ""
	}
	body := a.body
	if len(body) > 600 {
		body = body[:600] + "…"
	}
	return strings.Join(problems, "; ") + "\n" + body
}

// vmHWM is the process's peak resident set size, 0 when unknown.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
