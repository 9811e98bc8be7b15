package routes

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/transforms"
	"github.com/busbar/busbar/wsdl"
)

// Config is a loaded, validated and compiled configuration directory.
type Config struct {
	Dir        string
	Routes     []*Route
	Connectors map[string]bus.Connector
	endpoints  connectors.Endpoints
	// read holds every file the load read besides the scanned *.yaml files
	// (maps, tables, WSDLs, certificates, ${file:…}), as absolute paths:
	// Watch reloads when one of them changes.
	read      fileSet
	built     map[string]builtConnector // by connector name: what each was built from (see Reusing)
	handedOff handOff                   // connectors a newer Config took over
	// store is the message store of async routes (WithStore); async
	// their compiled delivery; workers the running workers this Config
	// owns (a newer one takes over those of unchanged routes).
	store   atomic.Pointer[delivery.Store]
	async   []*asyncRoute
	keyed   []*syncKeyed // sync routes with idempotency keys: they need the store too
	workers workers
	// schedules are the compiled scheduled routes, scheduled their running
	// loops (started with the store, stopped by Close).
	schedules []*scheduledRoute
	scheduled schedulers
}

// Route is one compiled route.
type Route struct {
	Name     string
	File     string
	Spec     RouteFile
	Pipeline *bus.Pipeline
	async    *asyncRoute // nil: a sync route
}

// Describe is the one-line summary `busbar serve` prints for the route.
func (r *Route) Describe() string {
	var from, to string
	switch {
	case r.Spec.From.REST != nil:
		from = r.Spec.From.REST.Method + " " + r.Spec.From.REST.Path
	case r.Spec.From.SOAP != nil:
		from = "SOAP " + r.Spec.From.SOAP.Path
		if op := r.Spec.From.SOAP.Operation; op != "" {
			from += " (" + op + ")"
		}
	case r.Spec.From.HTTP != nil:
		from = "HTTP " + r.Spec.From.HTTP.Method + " " + r.Spec.From.HTTP.Path
	case r.Spec.From.Schedule != nil:
		from = "schedule " + r.Spec.From.Schedule.Cron
		if r.Spec.From.Schedule.Every != 0 {
			from = "schedule every " + r.Spec.From.Schedule.Every.Std().String()
		}
	}
	if r.Spec.From.Match != nil {
		from += " [match]"
	}
	if r.Spec.To != nil {
		to = "connector " + r.Spec.To.Connector
	} else {
		to = "respond"
	}
	if r.async != nil {
		to += " (async)"
	}
	return fmt.Sprintf("%-28s %-44s -> %s", r.Name, from, to)
}

// Endpoints returns the inbound endpoints the server should serve: with
// a message store, also the status of async routes' messages (StatusPath).
func (c *Config) Endpoints() connectors.Endpoints {
	if c.store.Load() == nil {
		return c.endpoints
	}
	e := c.endpoints
	e.REST = append(slices.Clip(e.REST), c.statusEndpoint())
	return e
}

// Close stops the workers of async routes that no newer configuration
// took over, and releases the connectors' idle connections, except those
// of connectors a newer configuration took over (see Reusing). The store
// stays open: it is the caller's.
func (c *Config) Close() {
	c.scheduled.stop()
	c.workers.stop()
	for name, k := range c.Connectors {
		if !c.handedOff.has(name) {
			k.Close()
		}
	}
}

// Load reads, validates and compiles every file under dir. It reports every
// problem it finds, not just the first, as Errors.
func Load(dir string, opts ...Option) (*Config, error) {
	cfg, _, err := load(dir, opts...)
	return cfg, err
}

// load is Load that also returns the files it read, whether or not the
// load succeeded: a reload that failed on a missing file must see it come.
func load(dir string, opts ...Option) (*Config, fileSet, error) {
	files, errs := readDir(dir)
	l := &loader{dir: dir, cfg: &Config{Dir: dir, Connectors: map[string]bus.Connector{}},
		maps: map[string]*transforms.Mapping{}, connectorKind: map[string]string{},
		wsdls: map[string]*wsdlFile{}, facades: map[string]*connectors.SOAPEndpoint{},
		connectorSchemas: map[string]*transforms.Schema{}, facadeCharsets: map[string]string{},
		read: fileSet{}}
	for _, o := range opts {
		o(&l.opts)
	}
	// Connectors first: routes refer to them.
	for _, f := range files {
		if f.kind == "connector" {
			errs = append(errs, l.connector(f)...)
		}
	}
	for _, f := range files {
		switch f.kind {
		case "route":
			errs = append(errs, l.route(f)...)
		case "map":
			_, merrs := l.mapping(f.rel)
			errs = append(errs, merrs...)
		}
	}
	errs = append(errs, l.endpointConflicts()...)
	if len(errs) > 0 {
		l.cfg.Close()
		return nil, l.read, errs.Sorted()
	}
	l.cfg.read = l.read
	if errs := l.startDelivery(); len(errs) > 0 {
		l.cfg.Close()
		return nil, l.read, errs.Sorted()
	}
	l.handOver()
	// Routes sharing a method and path are tried with the most conditions
	// first, then in file order (the order they were read in); the
	// fallback, with none, comes last.
	sort.SliceStable(l.inbound, func(i, j int) bool { return l.inbound[i].conditions > l.inbound[j].conditions })
	for _, d := range l.inbound {
		if d.rest != nil {
			l.cfg.endpoints.REST = append(l.cfg.endpoints.REST, *d.rest)
		} else {
			l.cfg.endpoints.HTTP = append(l.cfg.endpoints.HTTP, *d.http)
		}
	}
	for _, path := range sortedKeys(l.facades) {
		l.cfg.endpoints.SOAP = append(l.cfg.endpoints.SOAP, l.facades[path])
	}
	l.opts.rateLimits.keep(l.rateLimits)
	return l.cfg, l.read, nil
}

type loader struct {
	dir           string
	opts          options
	cfg           *Config
	maps          map[string]*transforms.Mapping // by path relative to dir: a map shared by routes compiles once
	mapErrs       map[string]bool
	connectorKind map[string]string                   // connector name -> kind
	wsdls         map[string]*wsdlFile                // by path relative to dir
	facades       map[string]*connectors.SOAPEndpoint // by path
	routeNames    map[string]string                   // name -> file
	reused        []string                            // connectors taken over from opts.reuse
	inbound       []*inboundDecl                      // from.rest and from.http endpoints, in file order
	// connectorHeaders are the header names each connector sets itself;
	// pass-through routes do not forward a caller's header of those names.
	connectorHeaders map[string][]string
	// connectorSchemas holds the schema of SOAP connectors that name a WSDL.
	connectorSchemas map[string]*transforms.Schema
	// facadeCharsets names the route that set a facade's charset, by path.
	facadeCharsets map[string]string
	read           fileSet                          // see Config.read
	schemas        map[string]schemaResult          // request.validate, by path relative to dir: compiled once
	rateLimits     map[string]*connectors.RateLimit // by route: what WithRateLimits keeps
}

// wsdlFile is a WSDL read once for every route and connector naming it.
type wsdlFile struct {
	defs   *wsdl.Definitions
	schema *transforms.Schema
	err    error
}

// loadWSDL reads a WSDL relative to the configuration directory, once.
func (l *loader) loadWSDL(rel string) *wsdlFile {
	if w, ok := l.wsdls[rel]; ok {
		return w
	}
	w := &wsdlFile{}
	w.defs, w.err = wsdl.Load(filepath.Join(l.dir, rel))
	l.read.add(filepath.Join(l.dir, rel))
	if w.err == nil {
		w.schema = w.defs.Schema()
		l.read.add(w.defs.Files...)
	}
	l.wsdls[rel] = w
	return w
}

// inboundDecl is a REST or HTTP endpoint and where it was declared.
type inboundDecl struct {
	key, route, file string // key: "METHOD /path"
	line, col        int
	match            string // the match in a canonical form; "" for a fallback
	conditions       int
	rest             *connectors.RESTEndpoint
	http             *connectors.HTTPEndpoint
}

func (d *inboundDecl) kind() string {
	if d.http != nil {
		return "http"
	}
	return "rest"
}

func (l *loader) connector(f *file) Errors {
	errs := f.substitute(l.dir, l.read)
	var head ConnectorFile
	// Decode only the common keys here; the kind's own struct takes the rest.
	if err := l.decodeHead(f, &head); err != nil {
		return append(errs, err)
	}
	fail := func(keys []string, format string, args ...any) Errors {
		line, col := posOf(nodeAt(f.root, keys...))
		if len(keys) == 0 {
			line, col = posOf(f.root)
		}
		return append(errs, &Error{File: f.path, Line: line, Col: col, Kind: "connector", Name: head.Connector,
			Msg: fmt.Sprintf(format, args...)})
	}
	if head.Connector == "" {
		return fail([]string{"connector"}, "the connector needs a name")
	}
	if _, dup := l.connectorKind[head.Connector]; dup {
		return fail([]string{"connector"}, "a connector with this name is already defined")
	}
	kind, ok := bus.LookupConnector(head.Type)
	if !ok {
		return fail([]string{"type"}, "unknown connector type %q (known: %s)", head.Type, strings.Join(bus.ConnectorKinds(), ", "))
	}
	// Known from here on, even when its file has problems: routes naming it
	// are not told it is undefined on top of them.
	l.connectorKind[head.Connector] = head.Type
	cfg := kind.New()
	derrs := f.decode(without(f.root, "connector", "type"), cfg).named("connector", head.Connector)
	if len(errs) > 0 || !derrs.onlyUnknownKeys() {
		// An unresolved ${…} or a value that did not decode would only
		// mislead validation; unknown keys alone do not.
		return append(errs, derrs...)
	}
	errs = derrs
	if r, ok := cfg.(interface{ ResolveFiles(dir string) []string }); ok {
		// File names in a connector are relative to the configuration directory.
		l.read.add(r.ResolveFiles(l.dir)...)
	}
	if err := cfg.Validate(); err != nil {
		return fail(fieldOf(err), "%v", err)
	}
	if len(errs) > 0 { // unknown keys: checked all it could, but not built
		return errs
	}
	if sc, ok := cfg.(*connectors.SOAPConfig); ok && sc.WSDL != "" {
		w := l.loadWSDL(sc.WSDL)
		if w.err != nil {
			return fail([]string{"wsdl"}, "%v", w.err)
		}
		l.connectorSchemas[head.Connector] = w.schema
	}
	c, err := l.reuseOrBuild(head.Connector, head.Type, cfg)
	if err != nil {
		return fail(nil, "%v", err)
	}
	l.cfg.Connectors[head.Connector] = c
	if hn, ok := cfg.(interface{ HeaderNames() []string }); ok {
		if l.connectorHeaders == nil {
			l.connectorHeaders = map[string][]string{}
		}
		l.connectorHeaders[head.Connector] = hn.HeaderNames()
	}
	return nil
}

// decodeHead decodes the keys every connector file has, ignoring the rest.
func (l *loader) decodeHead(f *file, head *ConnectorFile) *Error {
	m := f.root.(*ast.MappingNode)
	for _, v := range m.Values {
		s, ok := v.Value.(*ast.StringNode)
		switch v.Key.String() {
		case "connector", "type":
			if !ok {
				line, col := posOf(v.Value)
				return &Error{File: f.path, Line: line, Col: col, Msg: fmt.Sprintf("field %q: expected a text value", v.Key.String())}
			}
			if v.Key.String() == "connector" {
				head.Connector = s.Value
			} else {
				head.Type = s.Value
			}
		}
	}
	return nil
}

// fieldOf pulls `field "name"` (or `field "block.name"`) out of a
// validation message so the error can point at that line.
func fieldOf(err error) []string {
	m := quotedField.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	return strings.Split(m[1], ".")
}

func (l *loader) mapping(rel string) (*transforms.Mapping, Errors) {
	rel = filepath.ToSlash(filepath.Clean(rel))
	if m, ok := l.maps[rel]; ok {
		return m, nil
	}
	if l.mapErrs[rel] {
		return nil, nil // reported once already
	}
	m, err := transforms.LoadMapping(filepath.Join(l.dir, rel))
	l.read.add(filepath.Join(l.dir, rel))
	if err != nil {
		if l.mapErrs == nil {
			l.mapErrs = map[string]bool{}
		}
		l.mapErrs[rel] = true
		return nil, rawErrors(filepath.Join(l.dir, rel), err)
	}
	l.maps[rel] = m
	l.read.add(m.Files()...)
	return m, nil
}

// rawErrors is rawError for each of the errors the mapping compiler may
// join into one (every broken field of a map).
func rawErrors(file string, err error) Errors {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs Errors
		for _, e := range j.Unwrap() {
			errs = append(errs, rawErrors(file, e)...)
		}
		return errs
	}
	return Errors{rawError(file, err)}
}

// rawError keeps an error that already reads "file:line:col: …" (from the
// mapping compiler) as it is.
func rawError(file string, err error) *Error {
	msg := err.Error()
	var line, col int
	rest := msg
	if after, ok := strings.CutPrefix(msg, file+":"); ok {
		if n, _ := fmt.Sscanf(after, "%d:%d:", &line, &col); n == 2 {
			rest = after[strings.Index(after, ": ")+2:]
		} else {
			rest = strings.TrimSpace(after)
		}
	}
	return &Error{File: file, Line: line, Col: col, Msg: rest}
}

func (l *loader) route(f *file) Errors {
	errs := f.substitute(l.dir, l.read)
	var spec RouteFile
	if derrs := f.decode(f.root, &spec); derrs != nil {
		if spec.Route == "" {
			if s, ok := nodeAt(f.root, "route").(*ast.StringNode); ok {
				spec.Route = s.Value
			}
		}
		errs = append(errs, derrs.named("route", spec.Route)...)
		if !derrs.onlyUnknownKeys() {
			return errs
		}
	}
	rc := &routeCompiler{l: l, f: f, spec: &spec}
	rc.errs = errs
	rc.compile()
	return rc.errs
}

func (l *loader) endpointConflicts() Errors {
	var errs Errors
	seen := map[string]*inboundDecl{}  // key and match
	first := map[string]*inboundDecl{} // key
	for _, k := range l.inbound {
		fail := func(format string, args ...any) {
			errs = append(errs, &Error{File: k.file, Line: k.line, Col: k.col, Kind: "route", Name: k.route,
				Msg: fmt.Sprintf(format, args...)})
		}
		if f, ok := first[k.key]; ok && f.kind() != k.kind() {
			fail("%s is also served by route %q (%s), a from.%s route: the routes of one method and path are all from.rest or all from.http",
				k.key, f.route, f.file, f.kind())
			continue
		} else if !ok {
			first[k.key] = k
		}
		id := k.key + "\x00" + k.match
		if prev, dup := seen[id]; dup {
			if k.match == "" {
				fail("%s is already served by route %q (%s); give one of them a `match`", k.key, prev.route, prev.file)
			} else {
				fail("%s with the same match is already served by route %q (%s)", k.key, prev.route, prev.file)
			}
			continue
		}
		seen[id] = k
		path := k.key[strings.IndexByte(k.key, ' ')+1:]
		if _, soap := l.facades[path]; soap {
			fail("path %s is also a SOAP facade", path)
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// routeCompiler validates one route file and builds its pipeline.
type routeCompiler struct {
	l     *loader
	f     *file
	spec  *RouteFile
	errs  Errors
	steps []bus.NamedStep

	raw   bool        // from.http: the message is bus.FormatRaw
	async *asyncRoute // set by compileDelivery for an async route
	// responseMap is the route's response map, nil without one: a
	// facade checks the names it writes against its charset.
	responseMap *transforms.Mapping
	match       *connectors.Match // compiled from.match; nil for a fallback
	matchKey    string            // the match in a canonical form, for conflicts
}

func (rc *routeCompiler) fail(keys []string, format string, args ...any) {
	n := nodeAt(rc.f.root, keys...)
	for n == nil && len(keys) > 0 { // point at the closest existing parent
		keys = keys[:len(keys)-1]
		n = nodeAt(rc.f.root, keys...)
	}
	line, col := posOf(n)
	if n == nil {
		line, col = posOf(rc.f.root)
	}
	rc.errs = append(rc.errs, &Error{File: rc.f.path, Line: line, Col: col, Kind: "route", Name: rc.spec.Route,
		Msg: fmt.Sprintf(format, args...)})
}

func (rc *routeCompiler) compile() {
	s := rc.spec
	if s.Route == "" {
		rc.fail([]string{"route"}, "the route needs a name")
		return
	}
	if rc.l.routeNames == nil {
		rc.l.routeNames = map[string]string{}
	}
	if prev, dup := rc.l.routeNames[s.Route]; dup {
		rc.fail([]string{"route"}, "a route with this name is already defined in %s", prev)
		return
	}
	rc.l.routeNames[s.Route] = rc.f.path
	rc.raw = s.From.HTTP != nil
	rc.compileMatch()
	if rc.raw && rc.readsRequest() {
		rc.steps = append(rc.steps, bus.NamedStep{Name: "parse", Step: bus.StepFunc(parseRequest)})
	}
	if s.Request != nil && s.Request.Validate != "" {
		rc.validateStep(s.Request.Validate)
	}
	// An async route stores the request here, checked but not yet mapped
	// (docs/delivery.md): the rest runs at each delivery attempt.
	acceptAt := len(rc.steps)
	if s.Request != nil && len(s.Request.Vars) > 0 {
		rc.varsStep(s.Request.Vars)
	}
	if s.Request != nil && !s.Request.Map.IsZero() {
		rc.mapStep("request map", []string{"request", "map"}, s.Request.Map)
	}
	switch {
	case s.To != nil && len(s.Respond) > 0:
		rc.fail([]string{"respond"}, "a route has either `to` (call a connector) or `respond` (answer itself), not both")
	case s.To != nil:
		rc.callStep()
	case len(s.Respond) > 0:
		rc.respondStep()
	default:
		rc.fail(nil, "the route needs `to` (call a connector) or `respond` (answer from templates)")
	}
	responseFrom := len(rc.steps)
	if r := s.Response; r != nil {
		if r.FaultWhen != "" {
			rc.faultWhenStep(r)
		} else if r.Fault != nil {
			rc.fail([]string{"response", "fault"}, "`fault` needs `fault-when`, the condition that raises it")
		}
		if !r.Map.IsZero() {
			rc.responseMap = rc.mapStep("response map", []string{"response", "map"}, r.Map)
		}
	}
	if rc.raw {
		rc.guardRawReply(responseFrom)
	}
	route := &Route{Name: s.Route, File: rc.f.path, Spec: *s}
	limits := connectors.Limits{MaxBody: int64(s.Limits.MaxBody), Timeout: s.Limits.Timeout.Std(), Rate: rc.rateLimit(),
		KeepBody: s.Delivery.Async(), Replays: s.Delivery.syncKeyed()}
	kinds := 0
	for _, set := range []bool{s.From.REST != nil, s.From.SOAP != nil, s.From.HTTP != nil, s.From.Schedule != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		rc.fail([]string{"from"}, "`from` has one of `rest`, `soap`, `http` or `schedule`, not several")
	case s.From.REST != nil:
		rc.rest(route, limits)
	case s.From.HTTP != nil:
		rc.http(route, limits)
	case s.From.SOAP != nil:
		if s.From.Match != nil {
			rc.fail([]string{"from", "match"}, "`match` chooses among from.rest or from.http routes; a SOAP facade dispatches on its operations")
		}
		rc.soap(route, limits)
	case s.From.Schedule != nil:
		rc.compileSchedule(route)
	default:
		rc.fail([]string{"from"}, "`from` needs `rest`, `soap`, `http` or `schedule`")
	}
	rc.compileDelivery(acceptAt)
	if len(rc.errs) > 0 {
		return
	}
	route.async = rc.async
	route.Pipeline = &bus.Pipeline{Route: s.Route, Steps: rc.steps}
	rc.l.cfg.Routes = append(rc.l.cfg.Routes, route)
}

var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

func (rc *routeCompiler) rest(route *Route, limits connectors.Limits) {
	in := rc.spec.From.REST
	rc.methodAndPath("rest", &in.Method, in.Path)
	// REST callers speak JSON: an XML result (a SOAP reply nobody mapped)
	// is converted by the conventions of docs/mapping.md, schema-aware when
	// the SOAP connector names its WSDL.
	var schema *transforms.Schema
	if rc.spec.To != nil {
		schema = rc.l.connectorSchemas[rc.spec.To.Connector]
	}
	rc.steps = append(rc.steps, bus.NamedStep{Name: "to json", Step: bus.StepFunc(func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		return toJSON(m, schema)
	})})
	d := rc.inboundDecl("rest", in.Method, in.Path)
	d.rest = &connectors.RESTEndpoint{Route: rc.spec.Route, Method: in.Method, Path: in.Path,
		Match: rc.match, Limits: limits, Handle: rc.handler(route)}
}

// http compiles a raw inbound route (from.http).
func (rc *routeCompiler) http(route *Route, limits connectors.Limits) {
	in := rc.spec.From.HTTP
	rc.methodAndPath("http", &in.Method, in.Path)
	d := rc.inboundDecl("http", in.Method, in.Path)
	d.http = &connectors.HTTPEndpoint{Route: rc.spec.Route, Method: in.Method, Path: in.Path,
		Match: rc.match, Limits: limits, Handle: rc.handler(route)}
}

// methodAndPath checks (and defaults) the method and path of from.rest or from.http.
func (rc *routeCompiler) methodAndPath(kind string, method *string, path string) {
	*method = strings.ToUpper(*method)
	if *method == "" {
		*method = http.MethodPost
	}
	if !methods[*method] {
		rc.fail([]string{"from", kind, "method"}, "method %q: use GET, POST, PUT, PATCH or DELETE", *method)
	}
	if !strings.HasPrefix(path, "/") {
		rc.fail([]string{"from", kind, "path"}, "path %q must start with /", path)
	}
}

func (rc *routeCompiler) inboundDecl(kind, method, path string) *inboundDecl {
	line, col := posOf(nodeAt(rc.f.root, "from", kind))
	d := &inboundDecl{key: method + " " + path, route: rc.spec.Route, file: rc.f.path, line: line, col: col,
		match: rc.matchKey, conditions: rc.match.Conditions()}
	if rc.spec.From.Match != nil {
		d.line, d.col = posOf(nodeAt(rc.f.root, "from", "match"))
	}
	rc.l.inbound = append(rc.l.inbound, d)
	return d
}

// toJSON converts an XML message to JSON; schema may be nil.
func toJSON(m *bus.Message, schema *transforms.Schema) (*bus.Message, error) {
	if !m.HasXML() {
		return m, nil
	}
	root, err := m.XML()
	if err != nil {
		return nil, bus.ServerFault(0, "Cannot convert XML to JSON", err.Error())
	}
	b, err := schema.XMLToJSON(root)
	if err != nil {
		return nil, bus.ServerFault(0, "Cannot convert XML to JSON", err.Error())
	}
	out := m.Reply()
	out.Status = m.Status
	out.SetJSON(b)
	return out, nil
}

func (rc *routeCompiler) soap(route *Route, limits connectors.Limits) {
	in := rc.spec.From.SOAP
	if !strings.HasPrefix(in.Path, "/") {
		rc.fail([]string{"from", "soap", "path"}, "path %q must start with /", in.Path)
		return
	}
	ep := rc.l.facades[in.Path]
	if ep == nil {
		ep = &connectors.SOAPEndpoint{Path: in.Path}
		rc.l.facades[in.Path] = ep
	}
	switch in.Version {
	case "":
	case "1.1":
		ep.Versions = append(ep.Versions, bus.SOAP11)
	case "1.2":
		ep.Versions = append(ep.Versions, bus.SOAP12)
	default:
		rc.fail([]string{"from", "soap", "version"}, "version %q: write \"1.1\" or \"1.2\", or leave it out to accept both", in.Version)
	}
	if in.Charset != "" {
		cs, err := transforms.CharsetName(in.Charset)
		prev, set := rc.l.facadeCharsets[in.Path]
		switch {
		case err != nil:
			rc.fail([]string{"from", "soap", "charset"}, "%v", err)
		case set && ep.Charset != cs:
			rc.fail([]string{"from", "soap", "charset"}, "facade %s answers in %s (route %q): routes sharing a path share its charset", in.Path, ep.Charset, prev)
		default:
			ep.Charset = cs
			rc.l.facadeCharsets[in.Path] = rc.spec.Route
		}
	}
	op := connectors.SOAPOperation{Route: rc.spec.Route, Name: in.Operation, Element: in.Element, Limits: limits}
	responseElement, responseNS := in.Operation+"Response", ""
	var schema *transforms.Schema
	if in.WSDL != "" {
		defs := rc.wsdl(in.WSDL)
		if defs == nil {
			return
		}
		if in.Operation == "" {
			rc.fail([]string{"from", "soap"}, "`operation` is required with a WSDL (one of: %s)", strings.Join(operationNames(defs), ", "))
			return
		}
		found := false
		for _, o := range defs.Operations() {
			if o.Name != in.Operation {
				continue
			}
			found = true
			op.Action, op.Element, op.Namespace = o.Action, o.Input.Local, o.Input.Space
			schema = rc.l.loadWSDL(in.WSDL).schema
			if o.Output.Local != "" {
				responseElement, responseNS = o.Output.Local, o.Output.Space
			}
			break
		}
		if !found {
			rc.fail([]string{"from", "soap", "operation"}, "operation %q is not in %s (it has: %s)", in.Operation, in.WSDL, strings.Join(operationNames(defs), ", "))
			return
		}
		src, err := os.ReadFile(filepath.Join(rc.l.dir, in.WSDL))
		if err != nil {
			rc.fail([]string{"from", "soap", "wsdl"}, "%v", err)
			return
		}
		if ep.WSDL == nil {
			ep.WSDL = func(address string) ([]byte, error) { return wsdl.Publish(src, address) }
		}
	} else if in.Element != "" {
		if op.Namespace, op.Element = rc.elementName(in.Element); op.Element == "" {
			return
		}
	} else if in.Operation != "" {
		op.Element = in.Operation
	}
	for _, other := range ep.Operations {
		if other.Element == op.Element && other.Namespace == op.Namespace && other.Action == op.Action {
			rc.fail([]string{"from", "soap"}, "facade %s already dispatches this operation to route %q", in.Path, other.Route)
			return
		}
	}
	if responseElement == "Response" { // neither WSDL nor operation: name it after the request
		responseElement = op.Element + "Response"
	}
	rc.facadeNames(ep.Charset, responseElement)
	// SOAP callers get XML: a JSON result (a REST reply nobody mapped) is
	// converted into the operation's response element, in the WSDL's
	// namespace or else the request's, following the WSDL's schema when
	// there is one.
	op.Handle = func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		ns := responseNS
		if ns == "" {
			ns = transforms.PayloadNamespace(m)
		}
		out, err := route.Pipeline.Run(ctx, m)
		if err != nil {
			return nil, err
		}
		if route.async != nil {
			if out.Format == bus.FormatNone {
				return out, nil // stored: a one-way 202 (see asyncRoute.accept)
			}
			x, err := toXML(out, responseElement, ns, schema)
			if x != nil {
				x.Header = out.Header // Location: where the message's status is
			}
			return x, err
		}
		x, err := toXML(out, responseElement, ns, schema)
		if x != nil && x != out && out.Header != nil && limits.Replays {
			x.Header = out.Header // Idempotent-Replayed, on a repeat
		}
		return x, err
	}
	ep.Operations = append(ep.Operations, op)
}

// facadeNames refuses, at load, a name the facade's replies would hold that
// its charset cannot: text gets a character reference, a name cannot, and
// found only when the reply is written the error would come after the
// backend acted on the request. Names that come from a backend's reply
// are not known until then.
func (rc *routeCompiler) facadeNames(charset, responseElement string) {
	if charset == "" || charset == "UTF-8" {
		return
	}
	check := func(name, where string) bool {
		if _, err := transforms.EncodeCharset([]byte(name), charset); err != nil {
			rc.fail([]string{"from", "soap", "charset"}, "%s %q cannot be written in %s, the facade's charset, and no character reference can stand in a name", where, name, charset)
			return false
		}
		return true
	}
	if !check(responseElement, "the response element") || rc.responseMap == nil {
		return
	}
	for _, n := range rc.responseMap.XMLNames() {
		what := "the element"
		if n.Attribute {
			what = "the attribute"
		}
		if !check(n.Name, fmt.Sprintf("%s:%d:%d: %s", n.File, n.Line, n.Col, what)) {
			return
		}
	}
}

// elementName reads `from.soap.element`: a local name (an element in no
// namespace), or prefix:local with the prefix from the route's
// `namespaces`, as its XPath names elements. "" local after a load error.
func (rc *routeCompiler) elementName(name string) (ns, local string) {
	prefix, local, prefixed := strings.Cut(name, ":")
	if !prefixed {
		return "", name
	}
	ns, ok := rc.spec.Namespaces[prefix]
	switch {
	case prefix == "" || local == "" || strings.Contains(local, ":"):
		rc.fail([]string{"from", "soap", "element"}, "element %q: write name (an element in no namespace) or prefix:name (a prefix of `namespaces`)", name)
	case !ok || ns == "":
		rc.fail([]string{"from", "soap", "element"}, "element %q: prefix %q is not declared in the route's `namespaces`", name, prefix)
	default:
		return ns, local
	}
	return "", ""
}

func toXML(m *bus.Message, element, ns string, schema *transforms.Schema) (*bus.Message, error) {
	if m.HasXML() {
		return m, nil
	}
	body := m.Bytes()
	if m.Format != bus.FormatJSON {
		body = []byte("{}")
	}
	root, err := schema.JSONToXML(body, ns, element)
	if err != nil {
		return nil, bus.ServerFault(0, "Cannot convert JSON to XML", err.Error())
	}
	out := m.Reply()
	out.SetXML(root)
	return out, nil
}

func operationNames(d *wsdl.Definitions) []string {
	seen := map[string]bool{}
	var names []string
	for _, o := range d.Operations() {
		if !seen[o.Name] {
			seen[o.Name] = true
			names = append(names, o.Name)
		}
	}
	sort.Strings(names)
	return names
}

func (rc *routeCompiler) wsdl(rel string) *wsdl.Definitions {
	w := rc.l.loadWSDL(rel)
	if w.err != nil {
		rc.fail([]string{"from", "soap", "wsdl"}, "%v", w.err)
		return nil
	}
	return w.defs
}

func (rc *routeCompiler) mapStep(name string, keys []string, ref MapRef) *transforms.Mapping {
	m := rc.useMap(keys, "", ref)
	if m == nil {
		return nil
	}
	rc.steps = append(rc.steps, bus.NamedStep{Name: name, Step: bus.StepFunc(func(_ context.Context, in *bus.Message) (*bus.Message, error) {
		out, err := m.Apply(in)
		if err != nil {
			return nil, err
		}
		out.Status = in.Status
		return out, nil
	})})
	return m
}

func (rc *routeCompiler) expr(keys []string, src string) *transforms.Expr {
	line, col := posOf(nodeAt(rc.f.root, keys...))
	e, err := transforms.CompileExpr(src, rc.f.path, line, col, rc.spec.Namespaces)
	if err != nil {
		rc.exprError(err, "")
		return nil
	}
	return e
}

// exprError reports an expression error at the place the compiler found
// (its position is inside the expression, more precise than the key's).
func (rc *routeCompiler) exprError(err error, prefix string) {
	e := rawError(rc.f.path, err)
	if e.Line == 0 {
		e.Line, e.Col = posOf(rc.f.root)
	}
	e.Kind, e.Name, e.Msg = "route", rc.spec.Route, prefix+e.Msg
	rc.errs = append(rc.errs, e)
}

// handler runs the route's pipeline; the pipeline is set once compile ends.
func (rc *routeCompiler) handler(route *Route) connectors.Handler {
	return func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		return route.Pipeline.Run(ctx, m)
	}
}

// Errors from validation name the field: `field "url": …`.
var quotedField = regexp.MustCompile(`field "([^"]+)"`)
