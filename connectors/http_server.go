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
}

// Defaults for Limits.
const (
	DefaultMaxBody = 10 << 20
	DefaultTimeout = 60 * time.Second
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
type Endpoints struct {
	REST []RESTEndpoint
	SOAP []*SOAPEndpoint
}

// ServerConfig holds the listener's settings.
type ServerConfig struct {
	Listen            string        // host:port
	ReadHeaderTimeout time.Duration // slow-loris guard
	ReadTimeout       time.Duration // whole request, body included
	WriteTimeout      time.Duration // must exceed the longest route timeout
	IdleTimeout       time.Duration // keep-alive connections
	Logger            *slog.Logger
	TLS               *tls.Config // serve HTTPS with it (see package certs); nil: plain HTTP
}

// Server is the inbound HTTP listener for REST and SOAP endpoints.
type Server struct {
	cfg    ServerConfig
	router atomic.Pointer[http.Handler]
	srv    *http.Server
	log    *slog.Logger
}

// NewServer makes a server with no endpoints but /healthz.
func NewServer(cfg ServerConfig) *Server {
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 2 * time.Minute
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
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.srv = &http.Server{
		Addr:              cfg.Listen,
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		TLSConfig:         cfg.TLS,
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
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	seen := map[string]string{}
	for _, ep := range e.SOAP {
		if prev, dup := seen[ep.Path]; dup {
			return fmt.Errorf("path %s is served twice (%s)", ep.Path, prev)
		}
		seen[ep.Path] = "SOAP"
		r.Handle(ep.Path, s.soapHandler(ep)).Methods(http.MethodPost, http.MethodGet)
	}
	for i := range e.REST {
		ep := e.REST[i]
		key := ep.Method + " " + ep.Path
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s is served twice (routes %s and %s)", key, prev, ep.Route)
		}
		if _, dup := seen[ep.Path]; dup {
			return fmt.Errorf("path %s is a SOAP facade and a REST endpoint (route %s)", ep.Path, ep.Route)
		}
		seen[key] = ep.Route
		r.Handle(ep.Path, s.restHandler(ep)).Methods(ep.Method)
	}
	var h http.Handler = r
	s.router.Store(&h)
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.router.Load()).ServeHTTP(w, r)
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
	status, body := f.ProblemJSON()
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(body)
}

// newMessage starts the message for an inbound request: ids, HTTP facts.
func newMessage(r *http.Request) *bus.Message {
	m := bus.NewMessage()
	m.ID = newID()
	m.CorrelationID = r.Header.Get("X-Correlation-ID")
	if m.CorrelationID == "" {
		m.CorrelationID = r.Header.Get("X-Request-ID")
	}
	if m.CorrelationID == "" || len(m.CorrelationID) > 128 {
		m.CorrelationID = m.ID
	}
	m.Method, m.Path, m.Query = r.Method, r.URL.Path, r.URL.Query()
	m.Header = r.Header.Clone()
	for k, v := range mux.Vars(r) {
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		m.Vars[k] = v
	}
	return m
}

// readBody reads at most limit bytes; a larger body is a 413 fault.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, bus.ClientFault(http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("the route accepts at most %d bytes", limit))
	case err != nil:
		return nil, bus.ClientFault(http.StatusBadRequest, "Cannot read request body", err.Error())
	}
	return b, nil
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
	reply, err := h(ctx, m)
	if err != nil {
		f := bus.AsFault(err)
		if f.Route == "" {
			f.Route = route
		}
		s.log.LogAttrs(ctx, levelFor(f), "request failed",
			slog.String("route", route), slog.String("correlation_id", m.CorrelationID),
			slog.String("message_id", m.ID), slog.Int("status", f.Status),
			slog.Duration("elapsed", time.Since(start)), slog.String("error", f.Error()))
		return nil, f
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "request served",
		slog.String("route", route), slog.String("correlation_id", m.CorrelationID),
		slog.String("message_id", m.ID), slog.Duration("elapsed", time.Since(start)))
	return reply, nil
}

func levelFor(f *bus.Fault) slog.Level {
	if f.Blame == bus.BlameClient {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
