package wsdl

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// ErrMissingImport is returned (wrapped) when a file named by wsdl:import,
// xsd:import or xsd:include does not exist.
var ErrMissingImport = errors.New("imported file not found")

// ErrNotWSDL is returned (wrapped) when the file given to Load is XML but
// not a wsdl:definitions document.
var ErrNotWSDL = errors.New("not a WSDL 1.1 document")

// LoadOptions tunes Load. The zero value is strict.
type LoadOptions struct {
	// TolerateMissingImports turns a missing or unreadable imported file into
	// a warning (Definitions.Warnings) instead of an error; what could be read
	// is still used.
	TolerateMissingImports bool
}

// Load reads the WSDL 1.1 file at path and every file it imports.
// A missing imported file is an error naming the importing file and the
// missing location; see LoadWith to collect such problems as warnings.
func Load(path string) (*Definitions, error) {
	return LoadWith(path, LoadOptions{})
}

// LoadWith is Load with options.
func LoadWith(path string, opt LoadOptions) (*Definitions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wsdl: %s: %w", path, unwrapPathError(err))
	}
	return LoadBytes(path, data, opt)
}

// LoadBytes reads a WSDL held in memory. name stands for the document in
// errors, and relative imports are resolved against its directory.
func LoadBytes(name string, data []byte, opt LoadOptions) (*Definitions, error) {
	l := &loader{opt: opt, seen: map[string]bool{}, schema: newSchemaSet()}
	doc, err := parseFile(name, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if root == nil || root.Tag != "definitions" || root.NamespaceURI() != NSWSDL {
		got := "nothing"
		if root != nil {
			got = "<" + root.FullTag() + ">"
		}
		return nil, fmt.Errorf("wsdl: %s: %w: the document element is %s, want wsdl:definitions", name, ErrNotWSDL, got)
	}
	l.seen[seenKey(name, "")] = true
	l.files = append(l.files, name)
	if err := l.wsdlDoc(name, root); err != nil {
		return nil, err
	}
	d := &Definitions{
		TargetNamespace: root.SelectAttrValue("targetNamespace", ""),
		schema:          l.schema,
	}
	l.build(d)
	d.Files = l.files
	d.Warnings = append(l.warnings, d.Warnings...)
	return d, nil
}

// loader collects the components of every file first; build resolves the
// references between them once everything is read.
type loader struct {
	opt      LoadOptions
	seen     map[string]bool
	files    []string
	warnings []string

	messages  map[QName]*etree.Element
	portTypes map[QName]*etree.Element
	bindings  map[QName]*etree.Element
	bindOrder []QName
	services  []*etree.Element
	schema    *schemaSet
}

func parseFile(name string, data []byte) (*etree.Document, error) {
	doc, err := transforms.ParseXML(data, "")
	if err != nil {
		return nil, fmt.Errorf("wsdl: %s: %w", name, err)
	}
	return doc, nil
}

func seenKey(path, chameleonNS string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	return abs + "\x00" + chameleonNS
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *loader) warnf(format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf(format, args...))
}

// importKind names the construct for messages.
const (
	kindWSDLImport = "wsdl:import"
	kindXSDImport  = "xsd:import"
	kindXSDInclude = "xsd:include"
)

func locAttr(kind string) string {
	if kind == kindWSDLImport {
		return "location"
	}
	return "schemaLocation"
}

// follow reads the file that from (at fromFile) names with location. It
// returns the parsed document element, or nil when there is nothing to load
// (already loaded, remote, or missing and tolerated).
func (l *loader) follow(fromFile, kind, location, chameleonNS string) (string, *etree.Element, error) {
	loc := strings.TrimSpace(location)
	if loc == "" {
		return "", nil, nil
	}
	if u, err := url.Parse(loc); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		switch strings.ToLower(u.Scheme) {
		case "file":
			loc = u.Path
		default:
			l.warnf("%s: %s %s=%q: remote location not loaded", fromFile, kind, locAttr(kind), location)
			return "", nil, nil
		}
	} else if p, err := url.PathUnescape(loc); err == nil {
		loc = p
	}
	path := loc
	if !filepath.IsAbs(loc) {
		path = filepath.Join(filepath.Dir(fromFile), filepath.FromSlash(loc))
	}
	key := seenKey(path, chameleonNS)
	if l.seen[key] {
		return "", nil, nil
	}
	l.seen[key] = true
	data, err := os.ReadFile(path)
	if err != nil {
		cause := unwrapPathError(err)
		if errors.Is(err, fs.ErrNotExist) {
			cause = ErrMissingImport
		}
		msg := fmt.Sprintf("%s: %s %s=%q: %s: %v", fromFile, kind, locAttr(kind), location, path, cause)
		if l.opt.TolerateMissingImports {
			l.warnings = append(l.warnings, msg+" (skipped)")
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("wsdl: %s: %s %s=%q: %s: %w", fromFile, kind, locAttr(kind), location, path, cause)
	}
	doc, err := parseFile(path, data)
	if err != nil {
		return "", nil, err
	}
	root := doc.Root()
	if root == nil {
		return "", nil, fmt.Errorf("wsdl: %s: no document element", path)
	}
	l.files = append(l.files, path)
	return path, root, nil
}

// wsdlDoc collects one wsdl:definitions.
func (l *loader) wsdlDoc(file string, root *etree.Element) error {
	if l.messages == nil {
		l.messages = map[QName]*etree.Element{}
		l.portTypes = map[QName]*etree.Element{}
		l.bindings = map[QName]*etree.Element{}
	}
	tns := root.SelectAttrValue("targetNamespace", "")
	for _, c := range root.ChildElements() {
		if c.NamespaceURI() != NSWSDL {
			continue
		}
		name := QName{tns, c.SelectAttrValue("name", "")}
		switch c.Tag {
		case "import":
			if err := l.importDoc(file, kindWSDLImport, c.SelectAttrValue("location", ""), ""); err != nil {
				return err
			}
		case "types":
			for _, s := range c.ChildElements() {
				if s.Tag == "schema" && isXSD(s.NamespaceURI()) {
					if err := l.schemaDoc(file, s, ""); err != nil {
						return err
					}
				}
			}
		case "message":
			putFirst(l.messages, name, c)
		case "portType":
			putFirst(l.portTypes, name, c)
		case "binding":
			if _, dup := l.bindings[name]; !dup {
				l.bindOrder = append(l.bindOrder, name)
			}
			putFirst(l.bindings, name, c)
		case "service":
			l.services = append(l.services, c)
		}
	}
	return nil
}

func putFirst(m map[QName]*etree.Element, k QName, v *etree.Element) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// importDoc follows a location to a WSDL or a schema: which one is decided
// by the document element, not by the construct or the file extension
// (WCF saves schemas as .wsdl; a wsdl:import may name an XSD).
func (l *loader) importDoc(from, kind, location, chameleonNS string) error {
	path, root, err := l.follow(from, kind, location, chameleonNS)
	if err != nil || root == nil {
		return err
	}
	ns := root.NamespaceURI()
	switch {
	case root.Tag == "definitions" && ns == NSWSDL:
		return l.wsdlDoc(path, root)
	case root.Tag == "schema" && isXSD(ns):
		return l.schemaDoc(path, root, chameleonNS)
	}
	l.warnf("%s: %s %s=%q: <%s> is neither a WSDL nor a schema; ignored", from, kind, locAttr(kind), location, root.FullTag())
	return nil
}

// schemaDoc collects one xsd:schema; chameleonNS is the namespace of the
// including schema, "" unless reached through xsd:include.
func (l *loader) schemaDoc(file string, el *etree.Element, chameleonNS string) error {
	s := l.schema.add(file, el, chameleonNS)
	for _, c := range el.ChildElements() {
		if !isXSD(c.NamespaceURI()) {
			continue
		}
		switch c.Tag {
		case "import":
			if err := l.importDoc(file, kindXSDImport, c.SelectAttrValue("schemaLocation", ""), ""); err != nil {
				return err
			}
		case "include", "redefine":
			if err := l.importDoc(file, kindXSDInclude, c.SelectAttrValue("schemaLocation", ""), s.tns); err != nil {
				return err
			}
		}
	}
	return nil
}

// build resolves services and binding operations.
func (l *loader) build(d *Definitions) {
	versions := map[QName]bus.SOAPVersion{}
	for _, bn := range l.bindOrder {
		b := l.bindings[bn]
		v := bindingVersion(b)
		versions[bn] = v
		if v == 0 {
			continue
		}
		d.operations = append(d.operations, l.bindingOps(bn, b, v)...)
	}
	for _, se := range l.services {
		svc := Service{Name: se.SelectAttrValue("name", "")}
		for _, pe := range childrenNS(se, NSWSDL, "port") {
			bq := resolveQName(pe, pe.SelectAttrValue("binding", ""))
			p := Port{Name: pe.SelectAttrValue("name", ""), Binding: bq.Local}
			v, known := versions[bq]
			if !known {
				l.warnf("service %q port %q: binding %s not found", svc.Name, p.Name, bq)
			}
			for _, a := range pe.ChildElements() {
				if a.Tag != "address" {
					continue
				}
				switch a.NamespaceURI() {
				case NSSOAP11:
					p.Address = a.SelectAttrValue("location", "")
					if !known {
						v = bus.SOAP11
					}
				case NSSOAP12:
					p.Address = a.SelectAttrValue("location", "")
					if !known {
						v = bus.SOAP12
					}
				case NSHTTP:
					p.Address = a.SelectAttrValue("location", "")
				}
			}
			p.SOAP = v
			svc.Ports = append(svc.Ports, p)
		}
		d.Services = append(d.Services, svc)
	}
}

func bindingVersion(b *etree.Element) bus.SOAPVersion {
	for _, c := range b.ChildElements() {
		if c.Tag != "binding" {
			continue
		}
		switch c.NamespaceURI() {
		case NSSOAP11:
			return bus.SOAP11
		case NSSOAP12:
			return bus.SOAP12
		}
	}
	return 0
}

// soapChild returns the first child named local in the binding namespace of v.
func soapChild(e *etree.Element, v bus.SOAPVersion, local string) *etree.Element {
	ns := NSSOAP11
	if v == bus.SOAP12 {
		ns = NSSOAP12
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

func childrenNS(e *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

func (l *loader) bindingOps(bn QName, b *etree.Element, v bus.SOAPVersion) []Operation {
	defStyle := "document"
	if sb := soapChild(b, v, "binding"); sb != nil {
		defStyle = sb.SelectAttrValue("style", defStyle)
	}
	ptName := resolveQName(b, b.SelectAttrValue("type", ""))
	pt := l.portTypes[ptName]
	if pt == nil {
		l.warnf("binding %q: portType %s not found", bn.Local, ptName)
	}
	used := map[*etree.Element]bool{}
	var ops []Operation
	for _, bo := range childrenNS(b, NSWSDL, "operation") {
		op := Operation{Name: bo.SelectAttrValue("name", ""), Binding: bn.Local, SOAP: v, Style: defStyle, Use: "literal"}
		if so := soapChild(bo, v, "operation"); so != nil {
			op.Action = so.SelectAttrValue("soapAction", "")
			op.Style = so.SelectAttrValue("style", op.Style)
		}
		bin := firstChildNS(bo, NSWSDL, "input")
		bout := firstChildNS(bo, NSWSDL, "output")
		pto := l.portTypeOp(pt, op.Name, attrOf(bin, "name"), attrOf(bout, "name"), used)
		var inMsg, outMsg *etree.Element
		if pto != nil {
			used[pto] = true
			if e := firstChildNS(pto, NSWSDL, "input"); e != nil {
				inMsg = l.messages[resolveQName(e, e.SelectAttrValue("message", ""))]
			}
			if e := firstChildNS(pto, NSWSDL, "output"); e != nil {
				outMsg = l.messages[resolveQName(e, e.SelectAttrValue("message", ""))]
			}
			for _, f := range childrenNS(pto, NSWSDL, "fault") {
				op.Faults = append(op.Faults, f.SelectAttrValue("name", ""))
			}
		} else if pt != nil {
			l.warnf("binding %q operation %q: not in portType %s", bn.Local, op.Name, ptName)
		}
		if len(op.Faults) == 0 {
			for _, f := range childrenNS(bo, NSWSDL, "fault") {
				op.Faults = append(op.Faults, f.SelectAttrValue("name", ""))
			}
		}
		var inBody *etree.Element
		if bin != nil {
			inBody = soapChild(bin, v, "body")
		}
		if inBody != nil {
			op.Use = inBody.SelectAttrValue("use", op.Use)
		}
		var parts []string
		op.Input, parts = bodyElement(op, bin, v, inBody, inMsg, "", bn.Space)
		op.InputParts = parts
		if bout != nil {
			op.Output, _ = bodyElement(op, bout, v, soapChild(bout, v, "body"), outMsg, "Response", bn.Space)
		}
		ops = append(ops, op)
	}
	return ops
}

func attrOf(e *etree.Element, key string) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue(key, "")
}

func firstChildNS(e *etree.Element, ns, local string) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// portTypeOp finds the portType operation a binding operation binds:
// by name, and for overloaded names by the input and output names, else the
// first of that name not bound yet.
func (l *loader) portTypeOp(pt *etree.Element, name, in, out string, used map[*etree.Element]bool) *etree.Element {
	if pt == nil {
		return nil
	}
	var cands []*etree.Element
	for _, o := range childrenNS(pt, NSWSDL, "operation") {
		if o.SelectAttrValue("name", "") == name {
			cands = append(cands, o)
		}
	}
	if len(cands) > 1 {
		for _, o := range cands {
			if (in == "" || attrOf(firstChildNS(o, NSWSDL, "input"), "name") == in) &&
				(out == "" || attrOf(firstChildNS(o, NSWSDL, "output"), "name") == out) && !used[o] {
				return o
			}
		}
		for _, o := range cands {
			if !used[o] {
				return o
			}
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return nil
}

// bodyElement derives the first body child of a message and the names of
// the parts that go into the body. io is the binding's wsdl:input or
// wsdl:output; parts bound to a soap:header of the same message are not in
// the body. An rpc soap:body without a namespace takes tns (what SoapUI and
// most toolkits do).
func bodyElement(op Operation, io *etree.Element, v bus.SOAPVersion, body, msg *etree.Element, suffix, tns string) (QName, []string) {
	var sel map[string]bool
	if body != nil {
		if p := strings.Fields(body.SelectAttrValue("parts", "")); len(p) > 0 || body.SelectAttr("parts") != nil {
			sel = map[string]bool{}
			for _, n := range p {
				sel[n] = true
			}
		}
	}
	inHeader := map[string]bool{}
	if sel == nil && io != nil && msg != nil {
		ns := NSSOAP11
		if v == bus.SOAP12 {
			ns = NSSOAP12
		}
		msgName := msg.SelectAttrValue("name", "")
		for _, h := range childrenNS(io, ns, "header") {
			if resolveQName(h, h.SelectAttrValue("message", "")).Local == msgName {
				inHeader[h.SelectAttrValue("part", "")] = true
			}
		}
	}
	var parts []*etree.Element
	if msg != nil {
		for _, p := range childrenNS(msg, NSWSDL, "part") {
			n := p.SelectAttrValue("name", "")
			if (sel == nil || sel[n]) && !inHeader[n] {
				parts = append(parts, p)
			}
		}
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.SelectAttrValue("name", ""))
	}
	if op.Style == "rpc" {
		ns := attrOf(body, "namespace")
		if body == nil || body.SelectAttr("namespace") == nil {
			ns = tns
		}
		return QName{ns, op.Name + suffix}, names
	}
	if len(parts) == 0 {
		return QName{}, names
	}
	p := parts[0]
	if el := p.SelectAttrValue("element", ""); el != "" {
		return resolveQName(p, el), names
	}
	// A document-style part with type=: the part name itself is the element.
	return QName{Local: p.SelectAttrValue("name", "")}, names
}

// resolveQName resolves a prefixed name in an attribute value against the
// namespace declarations in scope at e. An unprefixed name takes the
// default namespace.
func resolveQName(e *etree.Element, v string) QName {
	v = strings.TrimSpace(v)
	prefix, local, ok := strings.Cut(v, ":")
	if !ok {
		return QName{lookupNS(e, ""), v}
	}
	return QName{lookupNS(e, prefix), local}
}

func lookupNS(e *etree.Element, prefix string) string {
	switch prefix {
	case "xml":
		return "http://www.w3.org/XML/1998/namespace"
	}
	for ; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value
			}
		}
	}
	return ""
}

func isXSD(ns string) bool {
	switch ns {
	case NSXSD, "http://www.w3.org/2000/10/XMLSchema", "http://www.w3.org/1999/XMLSchema":
		return true
	}
	return false
}
