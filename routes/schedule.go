package routes

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // tz: must not depend on the host's zoneinfo (containers often lack it)

	"github.com/beevik/etree"
	"github.com/robfig/cron/v3"
	"github.com/tidwall/gjson"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/delivery"
	"github.com/busbar/busbar/transforms"
)

// ScheduleFrom is `from.schedule`: a route that runs on a timer, pulls
// from a source and sends each record of the reply through the route's
// usual steps. docs/routes.md and docs/delivery.md say what a run
// promises.
type ScheduleFrom struct {
	// Cron is a standard 5-field cron expression (minute hour day month
	// weekday), e.g. "*/5 * * * *". Exactly one of Cron and Every.
	Cron string `yaml:"cron"`
	// Every runs the route at a fixed interval, aligned to multiples of it
	// since the Unix epoch (every: 5m runs at :00, :05, …) so that every
	// node agrees on the ticks.
	Every bus.Duration `yaml:"every"`
	// TZ is the IANA time zone Cron is read in, e.g. Asia/Shanghai. Default UTC.
	TZ string `yaml:"tz"`
	// Timeout bounds one run: the source call and every record. Default 5m.
	Timeout bus.Duration `yaml:"timeout"`
	// Source is the call whose reply holds the records.
	Source *SourceCall `yaml:"source"`
	// Split selects the records in the source's reply: a JSON path ($.claims)
	// or an XPath (/*/item). Without it the whole reply is one record.
	Split string `yaml:"split"`
	// Checkpoint says what the watermark advances to after a run whose
	// records all succeeded.
	Checkpoint *CheckpointSpec `yaml:"checkpoint"`
}

// SourceCall is a scheduled route's pull: a REST GET or a SOAP operation
// through a named connector. The route variable changedSince holds the
// checkpoint (in the path as {changedSince}, in the map as
// var("changedSince")).
type SourceCall struct {
	// Connector names a connector file's `connector:`.
	Connector string `yaml:"connector"`
	// Method is the HTTP method (http connectors); default GET.
	Method string `yaml:"method"`
	// Path is appended to the connector's URL; {name} takes a route
	// variable, escaped for where it stands (path or query).
	Path string `yaml:"path"`
	// Action is the SOAPAction (SOAP connectors).
	Action string `yaml:"action"`
	// Headers are sent with the source call.
	Headers map[string]string `yaml:"headers"`
	// Map builds the request body (a mapping file or inline): required for
	// a SOAP source, optional for a POST.
	Map MapRef `yaml:"map"`
}

// CheckpointSpec is `from.schedule.checkpoint`.
type CheckpointSpec struct {
	// From is an expression over each record (e.g. $.approvedAt); after a
	// successful run the checkpoint becomes the largest value (RFC 3339
	// times compared as times, numbers as numbers, else as text). Without
	// it the checkpoint is the run's start time (RFC 3339, UTC).
	From string `yaml:"from"`
	// Initial is the checkpoint of the first run. Default
	// 1970-01-01T00:00:00Z.
	Initial string `yaml:"initial"`
}

// CheckpointVar is the route variable holding the checkpoint during a run.
const CheckpointVar = "changedSince"

const (
	defaultRunTimeout   = 5 * time.Minute
	defaultCheckpoint   = "1970-01-01T00:00:00Z"
	minScheduleInterval = 10 * time.Millisecond
)

// leaseMargin is how much longer than a run's timeout its lease is taken
// for: room for the release after a run cut short. A variable so a test
// can watch a renewal without waiting 10 s for it.
var leaseMargin = 30 * time.Second

// scheduledRoute is a compiled `from.schedule` route.
type scheduledRoute struct {
	name     string
	cron     cron.Schedule // nil: every
	every    time.Duration
	loc      *time.Location
	timeout  time.Duration
	source   *bus.Pipeline
	split    func(*bus.Message) ([]*bus.Message, error)
	ckptFrom *transforms.Expr
	initial  string
	route    *Route // each record runs route.Pipeline (an async route's: the accept)
	log      *slog.Logger
}

// compileSchedule checks `from.schedule` and builds the source call.
func (rc *routeCompiler) compileSchedule(route *Route) {
	in := rc.spec.From.Schedule
	keys := func(k ...string) []string { return append([]string{"from", "schedule"}, k...) }
	sr := &scheduledRoute{name: rc.spec.Route, route: route, timeout: in.Timeout.Std(), loc: time.UTC,
		initial: defaultCheckpoint}
	if sr.timeout == 0 {
		sr.timeout = defaultRunTimeout
	}
	if in.Timeout < 0 {
		rc.fail(keys("timeout"), "timeout %s: write a positive duration such as 5m", in.Timeout.Std())
	}
	if in.TZ != "" {
		loc, err := time.LoadLocation(in.TZ)
		if err != nil {
			rc.fail(keys("tz"), "tz %q: not an IANA time zone (such as UTC or Asia/Shanghai)", in.TZ)
		} else {
			sr.loc = loc
		}
	}
	switch {
	case in.Cron != "" && in.Every != 0:
		rc.fail(keys("every"), "a schedule has `cron` or `every`, not both")
	case in.Cron != "":
		s, err := cron.ParseStandard(in.Cron)
		switch {
		case err != nil:
			rc.fail(keys("cron"), "cron %q: %v (write 5 fields: minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\")", in.Cron, err)
		case strings.Contains(in.Cron, "TZ="):
			rc.fail(keys("cron"), "cron %q: give the time zone in `tz`", in.Cron)
		default:
			sr.cron = s
		}
	case in.Every != 0:
		if in.Every.Std() < minScheduleInterval {
			rc.fail(keys("every"), "every %s: write a positive interval of at least %s, such as 5m", in.Every.Std(), minScheduleInterval)
		}
		if in.TZ != "" {
			rc.fail(keys("tz"), "`tz` is for `cron`; `every` ticks at fixed intervals whatever the zone")
		}
		sr.every = in.Every.Std()
	default:
		rc.fail(keys(), "a schedule needs `cron` (e.g. \"*/5 * * * *\") or `every` (e.g. 5m)")
	}
	if rc.spec.From.Match != nil {
		rc.fail([]string{"from", "match"}, "`match` chooses among from.rest or from.http routes; a scheduled route has no caller")
	}
	if in.Source == nil {
		rc.fail(keys(), "a schedule needs `source`, the call that pulls the records")
	} else {
		sr.source = rc.sourceCall(in.Source, keys("source"))
	}
	if in.Split != "" {
		sr.split = rc.splitter(in.Split, keys("split"))
	}
	if c := in.Checkpoint; c != nil {
		if c.From != "" {
			sr.ckptFrom = rc.expr(keys("checkpoint", "from"), c.From)
		}
		if c.Initial != "" {
			sr.initial = c.Initial
		}
	}
	if len(rc.errs) == 0 {
		rc.l.cfg.schedules = append(rc.l.cfg.schedules, sr)
	}
}

// sourceCall compiles the source's map and call into a pipeline.
func (rc *routeCompiler) sourceCall(src *SourceCall, keys []string) *bus.Pipeline {
	at := func(k string) []string { return append(append([]string(nil), keys...), k) }
	conn, ok := rc.l.cfg.Connectors[src.Connector]
	kind := rc.l.connectorKind[src.Connector]
	if !ok {
		switch {
		case kind != "": // its file has problems, reported there
		case src.Connector == "":
			rc.fail(keys, "`source` needs `connector`")
		default:
			rc.fail(at("connector"), "connector %q is not defined (defined: %s)", src.Connector, strings.Join(sortedKeys(rc.l.connectorKind), ", "))
		}
		return nil
	}
	method := strings.ToUpper(src.Method)
	if kind == "soap" {
		if method != "" {
			rc.fail(at("method"), "`method` is for http connectors; SOAP calls are always POST")
		}
		if src.Map.IsZero() {
			rc.fail(at("connector"), "connector %q speaks SOAP: add `map` to build the operation's request", src.Connector)
		}
	} else {
		if src.Action != "" {
			rc.fail(at("action"), "`action` is the SOAPAction of SOAP connectors; connector %q is %s", src.Connector, kind)
		}
		if method == "" {
			method = http.MethodGet
		}
		if !methods[method] {
			rc.fail(at("method"), "method %q: use GET, POST, PUT, PATCH or DELETE", src.Method)
		}
	}
	var mapping *transforms.Mapping
	if !src.Map.IsZero() {
		if mapping = rc.useMap(at("map"), "source: ", src.Map); mapping == nil {
			return nil
		}
	}
	headers := http.Header{}
	for k, v := range src.Headers {
		headers.Set(k, v)
	}
	path, action := src.Path, src.Action
	call := func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		req := m
		if mapping != nil {
			var err error
			if req, err = mapping.Apply(m); err != nil {
				return nil, err
			}
		}
		out := &bus.Message{ID: m.ID, CorrelationID: m.CorrelationID, SOAPAction: action, Method: method,
			Vars: m.Vars, Path: expandPath(path, m.Vars)}
		out.CopyPayload(req)
		if len(headers) > 0 {
			out.Header = headers
		}
		if method == http.MethodGet || method == http.MethodDelete {
			out.Format, out.Body, out.Root = bus.FormatNone, nil, nil
		}
		return conn.Call(ctx, out)
	}
	return &bus.Pipeline{Route: rc.spec.Route, Steps: []bus.NamedStep{{Name: "source " + src.Connector, Step: bus.StepFunc(call)}}}
}

// expandPath replaces {name} with the route variable, escaped for the part
// of the URL it stands in: a time such as 2026-12-08T03:00:00+08:00 in a
// query must keep its '+'.
func expandPath(path string, vars map[string]string) string {
	if !pathVar.MatchString(path) {
		return path
	}
	p, q, hasQuery := strings.Cut(path, "?")
	p = pathVar.ReplaceAllStringFunc(p, func(ref string) string { return url.PathEscape(vars[ref[1:len(ref)-1]]) })
	if !hasQuery {
		return p
	}
	q = pathVar.ReplaceAllStringFunc(q, func(ref string) string { return url.QueryEscape(vars[ref[1:len(ref)-1]]) })
	return p + "?" + q
}

// splitter compiles `split`: a JSON path ($.claims, $ for a top-level
// array) or an XPath (/*/item) over the reply.
func (rc *routeCompiler) splitter(path string, keys []string) func(*bus.Message) ([]*bus.Message, error) {
	if strings.HasPrefix(path, "$") {
		p := strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
		if p == "" {
			p = "@this"
		}
		if strings.ContainsAny(p, "[]*?#|") {
			rc.fail(keys, "split %q: write a dotted JSON path to an array, such as $.claims or $.data.items", path)
			return nil
		}
		return func(m *bus.Message) ([]*bus.Message, error) {
			if m.Format != bus.FormatJSON {
				return nil, fmt.Errorf("split %s: the source's reply is not JSON", path)
			}
			r := gjson.GetBytes(m.Bytes(), p)
			if !r.Exists() || r.Type == gjson.Null {
				return nil, nil // no records
			}
			if !r.IsArray() {
				return nil, fmt.Errorf("split %s: the reply holds %s there, not an array", path, r.Type)
			}
			var recs []*bus.Message
			for _, e := range r.Array() {
				rec := &bus.Message{ContentType: "application/json"}
				rec.SetCheckedJSON([]byte(e.Raw)) // from gjson-validated input
				recs = append(recs, rec)
			}
			return recs, nil
		}
	}
	if !strings.HasPrefix(path, "/") {
		rc.fail(keys, "split %q: write a JSON path ($.claims) or an absolute XPath (/*/item)", path)
		return nil
	}
	ep, err := etree.CompilePath(path)
	if err != nil {
		rc.fail(keys, "split %q: %v", path, err)
		return nil
	}
	return func(m *bus.Message) ([]*bus.Message, error) {
		if !m.HasXML() {
			return nil, fmt.Errorf("split %s: the source's reply is not XML", path)
		}
		root, err := m.XML()
		if err != nil {
			return nil, fmt.Errorf("split %s: %w", path, err)
		}
		// A document around a copy: the path's leading / is the document,
		// whatever the reply's root element hangs from.
		doc := etree.NewDocument()
		doc.SetRoot(root.Copy())
		var recs []*bus.Message
		for _, e := range doc.FindElementsPath(ep) {
			rec := &bus.Message{ContentType: "application/xml"}
			rec.SetXML(e.Copy())
			recs = append(recs, rec)
		}
		return recs, nil
	}
}

// next is the first tick after t.
func (sr *scheduledRoute) next(t time.Time) time.Time {
	if sr.cron != nil {
		return sr.cron.Next(t.In(sr.loc))
	}
	return t.Truncate(sr.every).Add(sr.every)
}

// scheduler runs one route's ticks until stopped.
type scheduler struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the loop and waits for a run in progress: its context is
// cancelled, so it ends without advancing the checkpoint.
func (s *scheduler) stop() {
	s.cancel()
	<-s.done
}

// schedulers are a Config's running schedulers.
type schedulers struct {
	mu sync.Mutex
	s  []*scheduler
}

func (ss *schedulers) stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.s {
		s.stop()
	}
	ss.s = nil
}

// startSchedules starts the scheduled routes' loops on store.
func (l *loader) startSchedules(store *delivery.Store) {
	host, _ := os.Hostname()
	node := host + "/" + strconv.Itoa(os.Getpid())
	for _, sr := range l.cfg.schedules {
		sr.log = slog.Default()
		ctx, cancel := context.WithCancel(context.Background())
		s := &scheduler{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			sr.loop(ctx, store, node)
		}()
		l.cfg.scheduled.mu.Lock()
		l.cfg.scheduled.s = append(l.cfg.scheduled.s, s)
		l.cfg.scheduled.mu.Unlock()
	}
}

func (sr *scheduledRoute) loop(ctx context.Context, store *delivery.Store, node string) {
	for {
		tick := sr.next(time.Now())
		t := time.NewTimer(time.Until(tick))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		sr.run(ctx, store, node, tick)
	}
}

// run is one tick: take the route's lease, skip a tick another node ran,
// pull, send each record through the route, and advance the checkpoint
// only if every record went through.
func (sr *scheduledRoute) run(ctx context.Context, store *delivery.Store, node string, tick time.Time) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, sr.timeout)
	defer cancel()
	leaseFor := sr.timeout + leaseMargin
	lease, err := store.AcquireLease(ctx, sr.name, node, tick, leaseFor)
	if errors.Is(err, delivery.ErrLeaseHeld) {
		sr.log.Debug("scheduled run skipped: another run holds the route", slog.String("route", sr.name),
			slog.Time("tick", tick), slog.String("reason", err.Error()))
		return
	}
	if err != nil {
		sr.log.Error("scheduled run failed", slog.String("route", sr.name), slog.Time("tick", tick),
			slog.String("error", fmt.Sprintf("route %q: schedule: %v", sr.name, err)))
		return
	}
	// Renewal keeps a long run's lease; a renewal that fails means the
	// lease lapsed and another node may run: this run stops.
	renewDone := make(chan struct{})
	renewStopped := make(chan struct{})
	go func() {
		defer close(renewStopped)
		tk := time.NewTicker(leaseFor / 3)
		defer tk.Stop()
		for {
			select {
			case <-renewDone:
				return
			case <-tk.C:
				if err := lease.Renew(ctx, leaseFor); err != nil {
					sr.log.Error("scheduled run stopped: lease lost", slog.String("route", sr.name), slog.String("error", err.Error()))
					cancel()
					return
				}
			}
		}
	}()
	defer func() {
		close(renewDone)
		<-renewStopped
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		if err := lease.Release(rctx); err != nil {
			sr.log.Warn("scheduled run: lease not released (it lapses by itself)", slog.String("route", sr.name), slog.String("error", err.Error()))
		}
	}()
	st, err := store.ScheduleState(ctx, sr.name)
	if err != nil {
		sr.log.Error("scheduled run failed", slog.String("route", sr.name), slog.Time("tick", tick),
			slog.String("error", fmt.Sprintf("route %q: schedule: %v", sr.name, err)))
		return
	}
	if !st.Tick.Before(tick) {
		sr.log.Debug("scheduled run skipped: tick already run", slog.String("route", sr.name), slog.Time("tick", tick))
		return
	}
	before := st.Checkpoint
	if before == "" {
		before = sr.initial
	}
	res := sr.pull(ctx, before, start)
	rec := &delivery.RunRecord{Node: node, Started: start, Duration: time.Since(start), Records: res.records, Failed: res.failed}
	st.Tick, st.Run = tick, rec
	after := before
	if res.err == nil && res.failed == 0 {
		after = res.checkpoint
		st.Checkpoint = after
	} else if res.err != nil {
		rec.Error = res.err.Error()
	} else {
		rec.Error = fmt.Sprintf("%d of %d records failed", res.failed, res.records)
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	saveErr := lease.Save(sctx, st)
	attrs := []slog.Attr{slog.String("route", sr.name), slog.String("node", node), slog.Time("tick", tick),
		slog.Int("records", res.records), slog.Int("failed", res.failed),
		slog.String("checkpoint_before", before), slog.String("checkpoint_after", after),
		slog.Duration("duration", time.Since(start))}
	switch {
	case saveErr != nil:
		sr.log.LogAttrs(ctx, slog.LevelError, "scheduled run: checkpoint not saved; the next run repeats this one",
			append(attrs, slog.String("error", fmt.Sprintf("route %q: schedule: %v", sr.name, saveErr)))...)
	case rec.Error != "":
		sr.log.LogAttrs(ctx, slog.LevelWarn, "scheduled run failed; the checkpoint stays, the records are pulled again next run",
			append(attrs, slog.String("error", fmt.Sprintf("route %q: schedule: %s", sr.name, rec.Error)))...)
	default:
		sr.log.LogAttrs(ctx, slog.LevelInfo, "scheduled run", attrs...)
	}
}

// pullResult is what a run's pull did.
type pullResult struct {
	records, failed int
	checkpoint      string
	err             error // the source call or the split failed: nothing was sent
}

// pull calls the source with the checkpoint and sends every record
// through the route. A failed record does not stop the others: they are
// independent, and the next run pulls the failed one again anyway.
func (sr *scheduledRoute) pull(ctx context.Context, before string, start time.Time) pullResult {
	runID := rand.Text()
	m := &bus.Message{ID: runID, CorrelationID: runID}
	m.SetVar(CheckpointVar, before)
	reply, err := guarded(func() (*bus.Message, error) { return sr.source.Run(ctx, m) })
	if err != nil {
		return pullResult{err: fmt.Errorf("source: %w", err)}
	}
	recs := []*bus.Message{reply}
	if sr.split != nil {
		if recs, err = sr.split(reply); err != nil {
			return pullResult{err: err}
		}
	}
	res := pullResult{records: len(recs), checkpoint: before}
	if sr.ckptFrom == nil {
		res.checkpoint = start.UTC().Format(time.RFC3339Nano)
	}
	for i, rec := range recs {
		rec.ID, rec.CorrelationID = fmt.Sprintf("%s-%d", runID, i+1), runID
		rec.SetVar(CheckpointVar, before)
		var v string
		if sr.ckptFrom != nil {
			// Read before the steps: they make new messages from it.
			if v, err = sr.ckptFrom.String(rec); err != nil {
				res.failed++
				sr.log.Warn("scheduled record failed", slog.String("route", sr.name), slog.Int("record", i+1),
					slog.String("error", fmt.Sprintf("route %q: schedule: checkpoint.from: %v", sr.name, err)))
				continue
			}
		}
		if err := sr.send(ctx, rec); err != nil {
			res.failed++
			f := bus.AsFault(err)
			sr.log.Warn("scheduled record failed", slog.String("route", sr.name), slog.Int("record", i+1),
				slog.String("correlation_id", runID), slog.Int("status", f.Status), slog.String("error", f.Error()))
			continue
		}
		if v != "" {
			res.checkpoint = maxCheckpoint(res.checkpoint, v)
		}
	}
	return res
}

// send runs one record through the route.
func (sr *scheduledRoute) send(ctx context.Context, rec *bus.Message) error {
	_, err := guarded(func() (*bus.Message, error) { return sr.route.Pipeline.Run(ctx, rec) })
	return err
}

// guarded turns a panic (a mapping bug meeting an odd record) into the
// record's failure: serve has no caller's goroutine to take it, and one
// bad record must not stop the node.
func guarded(f func() (*bus.Message, error)) (m *bus.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, bus.ServerFault(0, "Internal error", fmt.Sprintf("panic: %v", p))
		}
	}()
	return f()
}

// maxCheckpoint is the later of two checkpoint values: as times when both
// are RFC 3339, as numbers when both are numbers, else as text.
func maxCheckpoint(a, b string) string {
	if ta, err := time.Parse(time.RFC3339Nano, a); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, b); err == nil {
			if tb.After(ta) {
				return b
			}
			return a
		}
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		if fb, err := strconv.ParseFloat(b, 64); err == nil {
			if fb > fa {
				return b
			}
			return a
		}
	}
	if b > a {
		return b
	}
	return a
}

// storeUser names a route that needs the store, for an error opening it.
func (l *loader) storeUser() string {
	switch {
	case len(l.cfg.async) > 0:
		return l.cfg.async[0].name
	case len(l.cfg.schedules) > 0:
		return l.cfg.schedules[0].name
	}
	return l.cfg.keyed[0].name
}
