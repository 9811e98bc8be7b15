package connectors

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/busbar/busbar/bus"
)

// Handler runs a route for one inbound message.
type Handler func(ctx context.Context, m *bus.Message) (*bus.Message, error)

// Limits bound what one request may cost.
type Limits struct {
	MaxBody int64         // bytes; 0 means DefaultMaxBody
	Timeout time.Duration // whole route, outbound calls included; 0 means DefaultTimeout
	Rate    *RateLimit    // requests admitted over time; nil: no limit
	// KeepBody hands the handler the request's bytes as received
	// (RequestBody): an async route stores them. Off, no request pays for
	// the context value. It also lets the route's reply set Location
	// (where the stored message's status is), which no other route may:
	// it would be a backend's.
	KeepBody bool
	// Replays lets the route's reply set Idempotent-Replayed: a sync route
	// with idempotency keys answering a repeat from its record. Other
	// routes' replies carry a backend's headers, which must not pass.
	Replays bool
}

// handlerContext is ctx with what the handler of a route with lim may read.
func (l Limits) handlerContext(ctx context.Context, body []byte) context.Context {
	if l.KeepBody {
		return withRequestBody(ctx, body)
	}
	return ctx
}

// Defaults for Limits and ServerConfig.
const (
	DefaultMaxBody     = 10 << 20
	DefaultTimeout     = 60 * time.Second
	DefaultReadTimeout = 30 * time.Second
)

func (l Limits) maxBody() int64 {
	if l.MaxBody > 0 {
		return l.MaxBody
	}
	return DefaultMaxBody
}

func (l Limits) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return DefaultTimeout
}

// Endpoints is one complete set of inbound endpoints. The server swaps a
// whole set at once, so a reload never serves half old, half new routes.
//
// REST and HTTP endpoints sharing a method and path form one dispatch
// group: those with a Match are tried in the order given here, the one
// without is the fallback. A group holds either REST or HTTP endpoints.
type Endpoints struct {
	REST []RESTEndpoint
	HTTP []HTTPEndpoint
	SOAP []*SOAPEndpoint
}

// ServerConfig holds the listener's settings.
type ServerConfig struct {
	Listen            string        // host:port
	ReadHeaderTimeout time.Duration // slow-loris guard
	// ReadTimeout bounds reading one request's body, from the moment its
	// route starts reading it; a route's shorter timeout bounds it further.
	// 0 means DefaultReadTimeout.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration // must exceed the longest route timeout
	IdleTimeout  time.Duration // keep-alive connections
	Logger       *slog.Logger
	TLS          *tls.Config // serve HTTPS with it (see package certs); nil: plain HTTP
	// Work bounds the REST and SOAP requests that compute at once (parse,
	// map, serialise); nil: no bound. Raw (from.http) requests, which
	// mostly pass bytes through, do not take part.
	Work *bus.WorkLimiter
	// DebugErrors shows callers the internal detail of a route's faults
	// (file:line:col, expressions, backend errors), which otherwise only the
	// log gets: for development, never in production.
	DebugErrors bool
	// BodyBudget bounds the bytes of all request bodies held at once (see
	// bodyBudget); 0: no bound.
	BodyBudget int64
}

// Server is the inbound HTTP listener for REST and SOAP endpoints.
type Server struct {
	cfg    ServerConfig
	router atomic.Pointer[http.Handler]
	srv    *http.Server
	log    *slog.Logger
	budget *bodyBudget
}

// NewServer makes a server with no endpoints but /healthz.
func NewServer(cfg ServerConfig) *Server {
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 3 * time.Minute
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, budget: newBodyBudget(cfg.BodyBudget)}
	s.srv = &http.Server{
		Addr:              cfg.Listen,
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		// Routes set their own, shorter deadline for the body (see
		// readRequestBody); this one bounds what no route reads, such as
		// the rest of a body net/http discards after a 404.
		ReadTimeout:    cfg.ReadHeaderTimeout + cfg.ReadTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		TLSConfig:      cfg.TLS,
	}
	if err := s.Swap(Endpoints{}); err != nil {
		panic(err) // an empty set cannot conflict
	}
	return s
}

// Swap replaces every endpoint at once. Requests in flight finish on the
// router they started on.
func (s *Server) Swap(e Endpoints) error {
	// Match on the escaped path, so a %2F inside a {variable} stays inside
	// it; newMessage unescapes the variables.
	r := mux.NewRouter().UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	rt := &router{mux: r, exact: map[string]map[string]http.Handler{}}
	rt.handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	}), http.MethodGet)
	facades := map[string]bool{}
	for _, ep := range e.SOAP {
		if facades[ep.Path] {
			return fmt.Errorf("path %s is served twice (SOAP)", ep.Path)
		}
		facades[ep.Path] = true
		rt.handle(ep.Path, s.soapHandler(ep), http.MethodPost, http.MethodGet)
	}
	groups := map[string]*dispatchGroup{}
	var order []*dispatchGroup
	add := func(method, path string, raw bool, c candidate) error {
		if facades[path] {
			return fmt.Errorf("path %s is a SOAP facade and an endpoint of route %s", path, c.route)
		}
		key := method + " " + path
		g := groups[key]
		if g == nil {
			g = &dispatchGroup{method: method, path: path, raw: raw}
			groups[key] = g
			order = append(order, g)
		} else if g.raw != raw {
			return fmt.Errorf("%s is served by from.rest and from.http routes (%s and %s); one path takes one kind",
				key, g.cands[0].route, c.route)
		}
		return g.add(c)
	}
	for _, ep := range e.REST {
		if err := add(ep.Method, ep.Path, false, candidate{ep.Route, ep.Match, ep.Limits, ep.Handle}); err != nil {
			return err
		}
	}
	for _, ep := range e.HTTP {
		if err := add(ep.Method, ep.Path, true, candidate{ep.Route, ep.Match, ep.Limits, ep.Handle}); err != nil {
			return err
		}
	}
	for _, g := range order {
		rt.handle(g.path, s.groupHandler(g), g.method)
	}
	var h http.Handler = rt
	s.router.Store(&h)
	return nil
}

// router finds an exact path in a map before asking gorilla/mux, whose
// regexp matching costs more than the rest of a pass-through's routing:
// most integration paths hold no {variables}. An exact path also wins over
// a template that would match it. Everything is registered with the mux
// too, so whatever the map does not answer (templates, a method the path
// does not serve, an escaped or unclean path) gets the mux's behaviour.
type router struct {
	exact map[string]map[string]http.Handler // path -> method -> handler
	mux   *mux.Router
}

func (rt *router) handle(path string, h http.Handler, methods ...string) {
	rt.mux.Handle(path, h).Methods(methods...)
	if strings.Contains(path, "{") {
		return
	}
	byMethod := rt.exact[path]
	if byMethod == nil {
		byMethod = map[string]http.Handler{}
		rt.exact[path] = byMethod
	}
	for _, m := range methods {
		byMethod[m] = h
	}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" {
		if h := rt.exact[r.URL.Path][r.Method]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	rt.mux.ServeHTTP(w, r)
}

func (s *Server) groupHandler(g *dispatchGroup) http.Handler {
	if g.raw {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveRaw(g, w, r) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveREST(g, w, r) })
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		// RFC 9112 §6.1: a request with both Transfer-Encoding and
		// Content-Length (a smuggling attempt, or a broken proxy) must not
		// leave its connection open. net/http in Go 1.26 drops the
		// Content-Length before a handler can see it and keeps the
		// connection (golang/go#80942), so every chunked request's
		// connection is closed after its reply: chunked uploads are rare
		// among SOAP and REST callers, and a reconnect is cheap.
		w.Header()["Connection"] = []string{"close"}
	}
	if f := ambiguousHeaders(r.Header); f != nil {
		if v := requestSOAPVersion(r.Header); v != 0 {
			writeSOAPFault(w, v, f, "utf-8")
		} else {
			writeProblem(w, f)
		}
		return
	}
	(*s.router.Load()).ServeHTTP(w, r)
}

// ambiguousHeaders refuses a request that carries twice a header Busbar
// acts on: it would read the first copy, and a backend or a proxy behind it
// might read the other (a SOAPAction naming one operation for Busbar's
// checks and another for SAP's dispatch).
func ambiguousHeaders(h http.Header) *bus.Fault {
	for _, name := range [...]string{"Content-Type", "Soapaction"} {
		if n := len(h[name]); n > 1 {
			if name == "Soapaction" {
				name = "SOAPAction"
			}
			return bus.ClientFault(http.StatusBadRequest, "Ambiguous request",
				fmt.Sprintf("the request carries %d %s headers; send one", n, name))
		}
	}
	return nil
}

// Handler exposes the current routing, for tests that use httptest.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.cfg.TLS != nil {
		err = s.srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight to finish, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, bus.ClientFault(http.StatusNotFound, "Not found", "no route serves "+r.Method+" "+r.URL.Path))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, bus.ClientFault(http.StatusMethodNotAllowed, "Method not allowed",
		"no route serves "+r.Method+" "+r.URL.Path))
}

func writeProblem(w http.ResponseWriter, f *bus.Fault) {
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	status, body := forCaller(w, f).ProblemJSON()
	w.Header().Set("Content-Type", "application/problem+json")
	writeWhole(w, status, body)
}

// forCaller is f with the correlation id of the reply (every handler sets
// X-Correlation-ID first), which the failure's log line carries too. A copy:
// a fault may be shared.
//
// Server.run logs a route's faults and stamps their id; a fault without
// one failed before any route ran (a body that stopped arriving). When it
// hides an internal detail from the caller, that detail is logged here, so
// the id the caller quotes finds it.
func forCaller(w http.ResponseWriter, f *bus.Fault) *bus.Fault {
	id := w.Header().Get("X-Correlation-Id")
	if id == "" || f.CorrelationID == id {
		return f
	}
	if f.CorrelationID == "" && f.Internal != "" {
		slog.Default().LogAttrs(context.Background(), levelFor(f), "request failed",
			slog.String("correlation_id", id), slog.Int("status", f.Status), slog.String("error", f.Error()))
	}
	g := *f
	g.CorrelationID = id
	return &g
}

// writeWhole sends a reply whose body is all in memory, with its
// Content-Length: not chunked, which HTTP/1.0 callers and some legacy SOAP
// stacks cannot read, and one write less for the server.
func writeWhole(w http.ResponseWriter, status int, body ...[]byte) {
	if status != http.StatusNoContent && status != http.StatusNotModified && status >= 200 {
		n := 0
		for _, b := range body {
			n += len(b)
		}
		w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
	}
	w.WriteHeader(status)
	for _, b := range body {
		w.Write(b)
	}
}

// newMessage starts the message for an inbound request: ids, HTTP facts.
// Its Header is the request's own, not a copy: routes only read it.
func newMessage(r *http.Request) *bus.Message {
	m := &bus.Message{Header: r.Header}
	initMessage(m, r)
	return m
}

// initMessage sets the ids and HTTP facts every inbound message has.
func initMessage(m *bus.Message, r *http.Request) {
	m.ID = newID()
	m.CorrelationID = r.Header.Get("X-Correlation-ID")
	if m.CorrelationID == "" {
		m.CorrelationID = r.Header.Get("X-Request-ID")
	}
	if m.CorrelationID == "" || len(m.CorrelationID) > 128 {
		m.CorrelationID = m.ID
	}
	m.Method, m.Path = r.Method, r.URL.Path
	if r.URL.RawQuery != "" {
		m.Query = r.URL.Query()
	}
	for k, v := range mux.Vars(r) {
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		m.SetVar(k, v)
	}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // a version-4 UUID, so ids look familiar in logs
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// run calls the route with the route's time limit and logs the outcome.
func (s *Server) run(ctx context.Context, route string, lim Limits, h Handler, m *bus.Message) (*bus.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.timeout())
	defer cancel()
	start := time.Now()
	// m is the handler's from here: keeping it (and its parsed tree)
	// reachable for the log lines would hold the tree across the route's
	// outbound calls.
	id, correlationID := m.ID, m.CorrelationID
	reply, err := h(ctx, m)
	if err != nil {
		f := bus.AsFault(err)
		if f.Route == "" {
			f.Route = route
		}
		f.CorrelationID, f.ShowInternal = correlationID, s.cfg.DebugErrors
		s.log.LogAttrs(ctx, levelFor(f), "request failed",
			slog.String("route", route), slog.String("correlation_id", correlationID),
			slog.String("message_id", id), slog.Int("status", f.Status),
			slog.Duration("elapsed", time.Since(start)), slog.String("error", f.Error()))
		return nil, f
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "request served",
		slog.String("route", route), slog.String("correlation_id", correlationID),
		slog.String("message_id", id), slog.Duration("elapsed", time.Since(start)))
	return reply, nil
}

func levelFor(f *bus.Fault) slog.Level {
	if f.Blame == bus.BlameClient {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
