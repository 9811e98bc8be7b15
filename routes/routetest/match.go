package routetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// body is a received body, parsed once for every check on it.
type body struct {
	raw      []byte
	kind     string // "json", "xml" or "text"
	json     any    // parsed JSON (numbers as json.Number)
	root     *etree.Element
	payload  *etree.Element // the SOAP payload, or root
	envelope bool
	parseErr error
}

func parseBody(contentType string, raw []byte) *body {
	b := &body{raw: raw, kind: kindOf(contentType, raw)}
	switch b.kind {
	case "json":
		b.json, b.parseErr = decodeJSON(raw)
	case "xml":
		_, params, _ := mime.ParseMediaType(contentType)
		doc, err := transforms.ParseXML(raw, params["charset"])
		if err != nil {
			b.parseErr = err
			return b
		}
		b.root = doc.Root()
		b.payload = b.root
		if isEnvelope(b.root) {
			b.envelope = true
			b.payload = nil
			if bd := soapChild(b.root, "Body"); bd != nil {
				if kids := bd.ChildElements(); len(kids) > 0 {
					b.payload = kids[0]
				}
			}
		}
	}
	return b
}

// kindOf tells JSON from XML by the content type, or by the first byte when
// the content type says neither.
func kindOf(contentType string, raw []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "json"
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return "xml"
	}
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) > 0 && (t[0] == '{' || t[0] == '['):
		return "json"
	case len(t) > 0 && t[0] == '<':
		return "xml"
	}
	return "text"
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

func isEnvelope(e *etree.Element) bool {
	return e != nil && e.Tag == "Envelope" && (e.NamespaceURI() == bus.NSSOAP11 || e.NamespaceURI() == bus.NSSOAP12)
}

func soapChild(e *etree.Element, local string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == e.NamespaceURI() {
			return c
		}
	}
	return nil
}

// message is the body as a route's expressions see it.
func (b *body) message() *bus.Message {
	m := bus.NewMessage()
	switch {
	case b.kind == "json" && b.parseErr == nil:
		m.SetJSON(b.raw)
	case b.kind == "xml" && b.payload != nil:
		m.SetXML(b.payload)
	}
	return m
}

// failure is one failed check: a headline and, for documents, a diff.
type failure struct {
	what, diff string
}

// checkBody runs the body checks; label names the body ("response body").
func (r *run) checkBody(label string, c *BodyChecks, got *body) []failure {
	var fails []failure
	if got.parseErr != nil && (!c.Body.IsZero() || c.BodyFile != "" || !c.Partial.IsZero() || len(c.Assert) > 0) {
		return []failure{{what: fmt.Sprintf("%s is not valid %s: %v", label, strings.ToUpper(got.kind), got.parseErr),
			diff: indentText(string(got.raw))}}
	}
	want := c.Body
	if c.BodyFile != "" {
		text, err := r.readFile(c.BodyFile)
		if err != nil {
			return []failure{{what: err.Error()}}
		}
		want = Doc{Text: text, File: c.BodyFile}
	}
	if !want.IsZero() {
		if f := compareDoc(label, want, got, false); f != nil {
			fails = append(fails, *f)
		}
	}
	if !c.Partial.IsZero() {
		if f := compareDoc(label+" (partial)", c.Partial, got, true); f != nil {
			fails = append(fails, *f)
		}
	}
	if len(c.Assert) > 0 {
		m := got.message()
		for _, a := range c.Assert {
			e, err := transforms.CompileExpr(a.Expr, r.file, a.Line, a.Col, c.Namespaces)
			if err != nil {
				fails = append(fails, failure{what: fmt.Sprintf("%s: assert: %v", label, err)})
				continue
			}
			v, err := e.String(m)
			if err != nil {
				fails = append(fails, failure{what: fmt.Sprintf("%s: assert %s: %v", label, a.Expr, err)})
				continue
			}
			if v != a.Want {
				fails = append(fails, failure{what: fmt.Sprintf("%s: assert %s (%s:%d): want %q, got %q", label, a.Expr, r.file, a.Line, a.Want, v)})
			}
		}
	}
	return fails
}

// compareDoc compares an expected document with a body, exactly or as a
// part of it, and returns the failure with a diff of canonical forms.
func compareDoc(label string, want Doc, got *body, partial bool) *failure {
	kind := got.kind
	if want.JSON {
		kind = "json"
	}
	if kind != got.kind {
		return &failure{what: fmt.Sprintf("%s: want a JSON document, got %s", label, describeKind(got)), diff: indentText(string(got.raw))}
	}
	switch kind {
	case "json":
		w, err := decodeJSON(want.Text)
		if err != nil {
			return &failure{what: fmt.Sprintf("%s: the expected body (%s) is not valid JSON: %v", label, want.where(), err)}
		}
		if partial {
			if jsonMatch(w, got.json, true) {
				return nil
			}
			return &failure{what: label + " does not contain the expected members (-want +got, got cut to the members wanted)",
				diff: unifiedDiff(prettyJSON(w), prettyJSON(project(got.json, w)))}
		}
		actual := withoutCorrelationID(got.json, w)
		if jsonMatch(w, actual, false) {
			return nil
		}
		return &failure{what: label + " differs (-want +got)", diff: unifiedDiff(prettyJSON(w), prettyJSON(actual))}
	case "xml":
		doc, err := transforms.ParseXML(want.Text, "")
		if err != nil {
			return &failure{what: fmt.Sprintf("%s: the expected body (%s) is not valid XML: %v", label, want.where(), err)}
		}
		w, actual := doc.Root(), got.payload
		if isEnvelope(w) {
			actual = got.root
		}
		if actual == nil {
			return &failure{what: label + ": the SOAP Body is empty", diff: indentText(string(got.raw))}
		}
		if partial && xmlSubset(w, actual) || !partial && xmlEqual(w, actual) {
			return nil
		}
		what := label + " differs (-want +got)"
		if partial {
			what = label + " does not contain the expected elements (-want +got, got cut to the elements wanted)"
		}
		shown := actual
		if partial {
			shown = xmlProject(w, actual)
		}
		return &failure{what: what, diff: unifiedDiff(prettyXML(w), prettyXML(shown))}
	}
	if partial {
		if bytes.Contains(got.raw, want.Text) {
			return nil
		}
		return &failure{what: label + " does not contain the expected text (-want +got)", diff: unifiedDiff(string(want.Text), string(got.raw))}
	}
	if bytes.Equal(bytes.TrimRight(want.Text, "\n"), bytes.TrimRight(got.raw, "\n")) {
		return nil
	}
	return &failure{what: label + " differs (-want +got)", diff: unifiedDiff(string(want.Text), string(got.raw))}
}

// withoutCorrelationID drops a problem document's correlationId, which
// differs from request to request, unless want names it.
func withoutCorrelationID(got, want any) any {
	g, ok := got.(map[string]any)
	if !ok {
		return got
	}
	if _, has := g["correlationId"]; !has {
		return got
	}
	if w, ok := want.(map[string]any); ok {
		if _, named := w["correlationId"]; named {
			return got
		}
	}
	out := make(map[string]any, len(g))
	for k, v := range g {
		if k != "correlationId" {
			out[k] = v
		}
	}
	return out
}

func describeKind(b *body) string {
	switch {
	case len(b.raw) == 0:
		return "an empty body"
	case b.kind == "xml":
		return "an XML body"
	case b.kind == "json":
		return "a JSON body"
	}
	return "a text body"
}

// jsonMatch compares JSON values. Numbers compare as written: Busbar keeps
// decimals exactly, so 12.50 and 12.5 are different answers. With subset,
// objects need only want's members; lists match item by item and must have
// the same length either way.
func jsonMatch(want, got any, subset bool) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || (!subset && len(w) != len(g)) {
			return false
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok || !jsonMatch(v, gv, subset) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(w) != len(g) {
			return false
		}
		for i := range w {
			if !jsonMatch(w[i], g[i], subset) {
				return false
			}
		}
		return true
	}
	return want == got
}

// project cuts got down to the members want names, so a diff of a partial
// match shows only what was asked for.
func project(got, want any) any {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return got
		}
		out := map[string]any{}
		for k, v := range w {
			if gv, ok := g[k]; ok {
				out[k] = project(gv, v)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return got
		}
		out := make([]any, len(g))
		for i := range g {
			if i < len(w) {
				out[i] = project(g[i], w[i])
			} else {
				out[i] = g[i]
			}
		}
		return out
	}
	return got
}

// prettyJSON is the canonical form diffs are made of: indented, keys sorted.
func prettyJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return b.String()
}

// xmlEqual compares elements by namespace URI and local name, attributes as
// a set (namespace declarations aside), trimmed text and children in order.
func xmlEqual(a, b *etree.Element) bool {
	if a.Tag != b.Tag || a.NamespaceURI() != b.NamespaceURI() || ownText(a) != ownText(b) {
		return false
	}
	aa, ba := attrs(a), attrs(b)
	if len(aa) != len(ba) {
		return false
	}
	for k, v := range aa {
		if ba[k] != v {
			return false
		}
	}
	ac, bc := a.ChildElements(), b.ChildElements()
	if len(ac) != len(bc) {
		return false
	}
	for i := range ac {
		if !xmlEqual(ac[i], bc[i]) {
			return false
		}
	}
	return true
}

// xmlSubset: got has want's name, at least its attributes, its text when
// want has text, and want's children in order among its own.
func xmlSubset(want, got *etree.Element) bool {
	if want.Tag != got.Tag || want.NamespaceURI() != got.NamespaceURI() {
		return false
	}
	if t := ownText(want); t != "" && t != ownText(got) {
		return false
	}
	ga := attrs(got)
	for k, v := range attrs(want) {
		if gv, ok := ga[k]; !ok || gv != v {
			return false
		}
	}
	gc := got.ChildElements()
	j := 0
	for _, wc := range want.ChildElements() {
		for j < len(gc) && !xmlSubset(wc, gc[j]) {
			j++
		}
		if j == len(gc) {
			return false
		}
		j++
	}
	return true
}

// xmlProject cuts got down to the elements and attributes want names,
// pairing children in order by name, so a diff of a partial match shows
// only what was asked for.
func xmlProject(want, got *etree.Element) *etree.Element {
	out := etree.NewElement(got.Tag)
	out.Space = got.Space
	wa := attrs(want)
	for _, a := range got.Attr {
		_, wanted := wa["{"+a.NamespaceURI()+"}"+a.Key]
		if wanted || a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			out.CreateAttr(a.FullKey(), a.Value)
		}
	}
	wantKids := want.ChildElements()
	if len(wantKids) == 0 || ownText(want) != "" {
		out.SetText(ownText(got))
	}
	gc := got.ChildElements()
	j := 0
	for _, wc := range wantKids {
		k := -1
		for x := j; x < len(gc) && k < 0; x++ {
			if xmlSubset(wc, gc[x]) {
				k = x
			}
		}
		for x := j; x < len(gc) && k < 0; x++ {
			if gc[x].Tag == wc.Tag && gc[x].NamespaceURI() == wc.NamespaceURI() {
				k = x
			}
		}
		if k < 0 {
			continue // missing: the diff shows it as wanted only
		}
		out.AddChild(xmlProject(wc, gc[k]))
		j = k + 1
	}
	return out
}

func ownText(e *etree.Element) string {
	var b strings.Builder
	for _, t := range e.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

func attrs(e *etree.Element) map[string]string {
	m := map[string]string{}
	for _, a := range e.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		m["{"+a.NamespaceURI()+"}"+a.Key] = a.Value
	}
	return m
}

// prettyXML is the canonical form diffs are made of: indented, whitespace
// between elements dropped.
func prettyXML(e *etree.Element) string {
	c := e.Copy()
	stripBlank(c)
	doc := etree.NewDocument()
	doc.SetRoot(c)
	doc.Indent(2)
	doc.WriteSettings.CanonicalEndTags = true
	s, _ := doc.WriteToString()
	return s
}

func stripBlank(e *etree.Element) {
	for _, t := range append([]etree.Token(nil), e.Child...) {
		switch t := t.(type) {
		case *etree.CharData:
			if t.IsWhitespace() {
				e.RemoveChild(t)
			}
		case *etree.Element:
			stripBlank(t)
		}
	}
}

// faultOf reads the code and reason of a SOAP fault or a problem document.
func faultOf(b *body) (code, reason string, ok bool) {
	switch {
	case b.kind == "xml" && b.envelope:
		bd := soapChild(b.root, "Body")
		if bd == nil {
			return "", "", false
		}
		f := soapChild(bd, "Fault")
		if f == nil {
			return "", "", false
		}
		if b.root.NamespaceURI() == bus.NSSOAP12 {
			if c := soapChild(f, "Code"); c != nil {
				if v := soapChild(c, "Value"); v != nil {
					code = v.Text()
				}
			}
			if r := soapChild(f, "Reason"); r != nil {
				if t := soapChild(r, "Text"); t != nil {
					reason = t.Text()
				}
			}
			return strings.TrimSpace(code), reason, true
		}
		if c := f.SelectElement("faultcode"); c != nil {
			code = c.Text()
		}
		if s := f.SelectElement("faultstring"); s != nil {
			reason = s.Text()
		}
		return strings.TrimSpace(code), reason, true
	case b.kind == "json":
		doc, isObj := b.json.(map[string]any)
		if !isObj {
			return "", "", false
		}
		if _, has := doc["status"]; !has {
			return "", "", false
		}
		code, _ = doc["faultcode"].(string)
		reason, _ = doc["detail"].(string)
		return code, reason, true
	}
	return "", "", false
}

// sameCode compares fault codes; without a prefix in want only local names count.
func sameCode(want, got string) bool {
	if strings.Contains(want, ":") {
		return want == got
	}
	if i := strings.LastIndexByte(got, ':'); i >= 0 {
		got = got[i+1:]
	}
	return want == got
}

func indentText(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(empty)\n"
	}
	return s + "\n"
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
