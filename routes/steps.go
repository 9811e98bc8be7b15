package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/transforms"
)

// pathVar matches {name} in a call path.
var pathVar = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_-]*)\}`)

func (rc *routeCompiler) callStep() {
	to := rc.spec.To
	conn, ok := rc.l.cfg.Connectors[to.Connector]
	kind := rc.l.connectorKind[to.Connector]
	if !ok {
		if kind != "" {
			return // its file has problems, reported there
		}
		if to.Connector == "" {
			rc.fail([]string{"to"}, "`to` needs `connector`")
		} else {
			rc.fail([]string{"to", "connector"}, "connector %q is not defined (defined: %s)", to.Connector, strings.Join(sortedKeys(rc.l.connectorKind), ", "))
		}
		return
	}
	method := strings.ToUpper(to.Method)
	switch kind {
	case "soap":
		if to.Method != "" {
			rc.fail([]string{"to", "method"}, "`method` is for http connectors; SOAP calls are always POST")
		}
		if rc.spec.From.REST != nil && (rc.spec.Request == nil || rc.spec.Request.Map.IsZero()) {
			rc.fail([]string{"to", "connector"}, "connector %q speaks SOAP: add `request: {map: …}` to build the XML body from the caller's JSON", to.Connector)
		}
	default:
		if to.Action != "" {
			rc.fail([]string{"to", "action"}, "`action` is the SOAPAction of SOAP connectors; connector %q is %s", to.Connector, kind)
		}
		if method == "" {
			method = http.MethodPost
		}
		if !methods[method] {
			rc.fail([]string{"to", "method"}, "method %q: use GET, POST, PUT, PATCH or DELETE", to.Method)
		}
	}
	headers := http.Header{}
	for k, v := range to.Headers {
		headers.Set(k, v)
	}
	path, action, name, idempotent := to.Path, to.Action, to.Connector, to.Idempotent
	pathHasVars := pathVar.MatchString(path)
	// A facade's WSDL describes the caller's request: a REST service gets
	// it as typed JSON (nil when the WSDL failed, which soap() reports).
	var schema *transforms.Schema
	if in := rc.spec.From.SOAP; in != nil && in.WSDL != "" {
		schema = rc.l.loadWSDL(in.WSDL).schema
	}
	rawHeaders := rc.rawHeaders(name, headers)
	// Only a route with keys sends one downstream: every async delivery,
	// and a sync call under its idempotency key.
	keyed := rc.spec.Delivery.Async() || rc.spec.Delivery.syncKeyed()
	rc.steps = append(rc.steps, bus.NamedStep{Name: "call " + name, Step: bus.StepFunc(func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		out := &bus.Message{ID: m.ID, CorrelationID: m.CorrelationID,
			ContentType: m.ContentType, SOAP: m.SOAP, SOAPAction: action, Method: method, Vars: m.Vars, Path: path}
		out.CopyPayload(m) // as parsed: a Doc is not made a tree here
		if pathHasVars {   // a regexp pass per request only where there is something to replace
			out.Path = pathVar.ReplaceAllStringFunc(path, func(ref string) string {
				return url.PathEscape(m.Vars[ref[1:len(ref)-1]])
			})
		}
		if idempotent {
			ctx = connectors.WithIdempotent(ctx)
		}
		if m.Format == bus.FormatRaw {
			return callRaw(ctx, conn, kind, m, out, rawHeaders)
		}
		if len(headers) > 0 {
			out.Header = headers // shared: connectors read a request's Header, never write it
		}
		if keyed {
			out.Header = withDeliveryKey(ctx, headers)
		}
		if method == http.MethodGet || method == http.MethodDelete {
			out.Format, out.Body, out.Root = bus.FormatNone, nil, nil
		}
		if kind != "soap" && out.Format == bus.FormatXML {
			// A REST service takes JSON: an unmapped XML payload (a SOAP
			// caller's body) goes over by the conventions of docs/mapping.md.
			root, err := m.XML()
			if err != nil {
				return nil, bus.ServerFault(0, "Cannot convert XML to JSON", err.Error())
			}
			b, err := schema.XMLToJSON(root)
			if err != nil {
				return nil, bus.ServerFault(0, "Cannot convert XML to JSON", err.Error())
			}
			out.SetCheckedJSON(b) // XMLToJSON writes well-formed JSON
		}
		if keyed {
			markCalled(ctx)
		}
		return conn.Call(ctx, out)
	})})
}

// callRaw calls a connector with a raw (from.http) request. An http
// connector gets it as it came (a pass-through); a SOAP connector gets its
// parsed payload, which it sends in its own envelope.
func callRaw(ctx context.Context, conn bus.Connector, kind string, m, out *bus.Message, headers func(http.Header) http.Header) (*bus.Message, error) {
	if kind == "soap" {
		// The parsed view (the connector writes it out of its tree).
		root, _ := m.XML()
		if root == nil {
			return nil, bus.ClientFault(http.StatusBadRequest, "No XML payload",
				"the route calls a SOAP service and the request holds no XML to send")
		}
		out.SetXML(root)
		if out.SOAPAction == "" {
			out.SOAPAction = m.SOAPAction
		}
		return conn.Call(ctx, out)
	}
	out.Header, out.Query, out.SOAPAction = headers(m.Header), m.Query, m.SOAPAction
	if out.Method == http.MethodGet || out.Method == http.MethodDelete {
		out.Body, out.Root = nil, nil
	}
	return conn.Call(ctx, out)
}

// answer is one compiled `respond` case.
type answer struct {
	when    *transforms.Expr
	status  int
	mapping *transforms.Mapping
	fault   *faultTemplate
}

func (rc *routeCompiler) respondStep() {
	var answers []answer
	for i, a := range rc.spec.Respond {
		keys := []string{"respond"}
		var ans answer
		ans.status = a.Status
		if a.When != "" {
			ans.when = rc.exprAt(i, "when", a.When)
		}
		switch {
		case !a.Map.IsZero() && a.Fault != nil:
			rc.fail(keys, "respond case %d has both `map` and `fault`: answer with one", i+1)
		case !a.Map.IsZero():
			ans.mapping = rc.useMap(keys, fmt.Sprintf("respond case %d: ", i+1), a.Map)
		case a.Fault != nil:
			ans.fault = rc.faultTemplate(keys, a.Fault, http.StatusInternalServerError)
		}
		if ans.status != 0 && (ans.status < 100 || ans.status > 599) {
			rc.fail(keys, "respond case %d: status %d is not an HTTP status", i+1, ans.status)
		}
		answers = append(answers, ans)
	}
	rc.steps = append(rc.steps, bus.NamedStep{Name: "respond", Step: bus.StepFunc(func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		for _, a := range answers {
			if a.when != nil {
				ok, err := a.when.Bool(m)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			if a.fault != nil {
				return nil, a.fault.render(m)
			}
			out := m.Reply() // a bare status: an empty answer
			if a.mapping != nil {
				var err error
				if out, err = a.mapping.Apply(m); err != nil {
					return nil, err
				}
			}
			out.Status = a.status
			return out, nil
		}
		return nil, bus.ClientFault(http.StatusUnprocessableEntity, "No answer", "no `respond` case matches the request")
	})})
}

// exprAt compiles the expression of a key inside the i-th respond case.
func (rc *routeCompiler) exprAt(i int, key, src string) *transforms.Expr {
	seq := nodeAt(rc.f.root, "respond")
	line, col := posOf(seq)
	if n := respondCase(seq, i, key); n != nil {
		line, col = posOf(n)
	}
	e, err := transforms.CompileExpr(src, rc.f.path, line, col, rc.spec.Namespaces)
	if err != nil {
		rc.exprError(err, fmt.Sprintf("respond case %d: ", i+1))
		return nil
	}
	return e
}

// faultTemplate is a compiled FaultSpec.
type faultTemplate struct {
	status int
	blame  bus.Blame
	code   string
	title  string
	detail *transforms.Expr
	extra  *transforms.Mapping
}

func (rc *routeCompiler) faultTemplate(keys []string, fs *FaultSpec, defaultStatus int) *faultTemplate {
	t := &faultTemplate{status: fs.Status, code: fs.Code, title: fs.Title}
	if t.status == 0 {
		t.status = defaultStatus
	}
	if t.status < 400 || t.status > 599 {
		rc.fail(append(keys, "fault", "status"), "fault status %d: use a 4xx or 5xx status", t.status)
	}
	switch fs.Blame {
	case "":
		if t.status < 500 {
			t.blame = bus.BlameClient
		}
	case "client":
		t.blame = bus.BlameClient
	case "server":
		t.blame = bus.BlameServer
	default:
		rc.fail(append(keys, "fault", "blame"), "blame %q: write client or server", fs.Blame)
	}
	if t.title == "" {
		t.title = http.StatusText(t.status)
	}
	if fs.Detail != "" {
		t.detail = rc.expr(append(keys, "fault", "detail"), fs.Detail)
	}
	if !fs.Map.IsZero() {
		m := rc.useMap(append(keys, "fault", "map"), "", fs.Map)
		switch {
		case m == nil:
		case m.Output() != bus.FormatJSON:
			rc.fail(append(keys, "fault", "map"), "%s must have output: json (its members join the problem document)", fs.Map.describe())
		default:
			t.extra = m
		}
	}
	return t
}

func (t *faultTemplate) render(m *bus.Message) error {
	f := &bus.Fault{Status: t.status, Blame: t.blame, Title: t.title, FaultCode: t.code}
	if t.detail != nil {
		d, err := t.detail.String(m)
		if err != nil {
			return err
		}
		f.Detail = d
	}
	if t.extra != nil {
		out, err := t.extra.Apply(m)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out.Bytes(), &f.Extra); err != nil {
			return bus.ServerFault(0, "Fault map failed", fmt.Sprintf("map %s must build a JSON object: %v", t.extra.Name(), err)).
				Hide("the route's fault map did not build a JSON object")
		}
	}
	if t.code != "" {
		f.FaultString = f.Detail
		if f.FaultString == "" {
			f.FaultString = t.title
		}
	}
	return f
}

func (rc *routeCompiler) faultWhenStep(r *ResponseStage) {
	keys := []string{"response"}
	cond := rc.expr([]string{"response", "fault-when"}, r.FaultWhen)
	spec := r.Fault
	if spec == nil {
		spec = &FaultSpec{Title: "Business error"}
	}
	t := rc.faultTemplate(keys, spec, http.StatusUnprocessableEntity)
	rc.steps = append(rc.steps, bus.NamedStep{Name: "fault-when", Step: bus.StepFunc(func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		hit, err := cond.Bool(m)
		if err != nil {
			return nil, err
		}
		if hit {
			return nil, t.render(m)
		}
		return m, nil
	})})
}

// respondCase finds a key's value inside the i-th item of the respond list.
func respondCase(seq ast.Node, i int, key string) ast.Node {
	s, ok := seq.(*ast.SequenceNode)
	if !ok || i >= len(s.Values) {
		return nil
	}
	return nodeAt(s.Values[i], key)
}

func (rc *routeCompiler) varsStep(vars map[string]string) {
	type setter struct {
		name string
		expr *transforms.Expr
	}
	var setters []setter
	for _, name := range sortedKeys(vars) {
		if e := rc.expr([]string{"request", "vars", name}, vars[name]); e != nil {
			setters = append(setters, setter{name, e})
		}
	}
	rc.steps = append(rc.steps, bus.NamedStep{Name: "vars", Step: bus.StepFunc(func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		for _, s := range setters {
			v, err := s.expr.String(m)
			if err != nil {
				return nil, err
			}
			m.SetVar(s.name, v)
		}
		return m, nil
	})})
}
