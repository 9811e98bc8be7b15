package wsdl

import (
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// ElementInfo is what the schema says about one element: enough for a
// mapping to emit children in order, make arrays of repeating elements and
// type simple values.
//
// Supported: global and local elements, element refs, named and anonymous
// complex and simple types, xsd:sequence / xsd:all / xsd:choice (nested, and
// their maxOccurs), xsd:group refs, complexContent extension (base children
// first) and restriction, simpleContent, simple type restriction chains down
// to a built-in type, elementFormDefault and form, chameleon includes.
//
// Not supported (the information is absent, not wrong): attributes,
// xsd:any (reported as Any on the parent), substitution groups, xsd:redefine
// overrides (the redefined schema is read as an include), identity
// constraints, facets other than what decides the built-in base type,
// SOAP-encoded arrays (soapenc:Array with wsdl:arrayType: the element is
// reported with Type soapenc:Array and no children), and xsi:type
// polymorphism (only the declared type is described).
type ElementInfo struct {
	Name QName
	// Type is the declared type name; zero for an anonymous type.
	Type QName
	// Simple is the XSD built-in type the value has (for simple types and
	// complex types with simple content), such as "string", "decimal",
	// "int", "boolean", "date"; "" for element-only content. A list type
	// reports "list", a union "union".
	Simple string
	// MinOccurs and MaxOccurs as declared, multiplied through enclosing
	// groups; MaxOccurs is -1 for unbounded.
	MinOccurs, MaxOccurs int
	// Repeats is true when the element may occur more than once, so that a
	// mapping emits it as an array even when one item is present.
	Repeats  bool
	Nillable bool
	// Choice is true when the element is one alternative of an xsd:choice.
	Choice bool
	// Any is true when the content model also allows xsd:any elements.
	Any bool
	// Recursive is true when the element's type already occurs among its
	// ancestors; its children are not expanded again.
	Recursive bool
	// Children are the declared child elements in schema order.
	Children []*ElementInfo
}

// Child returns the first child with the given local name.
func (e *ElementInfo) Child(local string) *ElementInfo {
	for _, c := range e.Children {
		if c.Name.Local == local {
			return c
		}
	}
	return nil
}

type schema struct {
	file      string
	el        *etree.Element
	tns       string // effective target namespace (the includer's for a chameleon)
	chameleon bool
	qualified bool // elementFormDefault="qualified"
}

type component struct {
	s  *schema
	el *etree.Element
}

type schemaSet struct {
	schemas  []*schema
	elements map[QName]component
	types    map[QName]component
	groups   map[QName]component
}

func newSchemaSet() *schemaSet {
	return &schemaSet{elements: map[QName]component{}, types: map[QName]component{}, groups: map[QName]component{}}
}

func (ss *schemaSet) add(file string, el *etree.Element, chameleonNS string) *schema {
	s := &schema{file: file, el: el, tns: el.SelectAttrValue("targetNamespace", "")}
	if s.tns == "" && chameleonNS != "" {
		s.tns, s.chameleon = chameleonNS, true
	}
	s.qualified = el.SelectAttrValue("elementFormDefault", "") == "qualified"
	ss.schemas = append(ss.schemas, s)
	for _, c := range el.ChildElements() {
		if !isXSD(c.NamespaceURI()) {
			continue
		}
		name := c.SelectAttrValue("name", "")
		if name == "" {
			continue
		}
		q := QName{s.tns, name}
		var m map[QName]component
		switch c.Tag {
		case "element":
			m = ss.elements
		case "complexType", "simpleType":
			m = ss.types
		case "group":
			m = ss.groups
		default:
			continue
		}
		if _, dup := m[q]; !dup {
			m[q] = component{s, c}
		}
	}
	return s
}

// ref resolves a QName-valued attribute inside schema s; a chameleon
// schema's no-namespace references land in the including namespace.
func (s *schema) ref(e *etree.Element, v string) QName {
	q := resolveQName(e, v)
	if q.Space == "" && s.chameleon {
		q.Space = s.tns
	}
	return q
}

// Element describes the global element q with its tree of children.
func (d *Definitions) Element(q QName) (*ElementInfo, bool) {
	if d == nil || d.schema == nil {
		return nil, false
	}
	c, ok := d.schema.elements[q]
	if !ok {
		return nil, false
	}
	w := &walker{ss: d.schema, budget: maxNodes}
	info := w.element(c, q, 1, 1, true, []QName{{"\x00element " + q.Space, q.Local}})
	return info, true
}

// maxNodes bounds one Element tree, so that a schema whose types fan out
// wide and deep cannot exhaust memory. A cut-short tree is marked Recursive
// where the expansion stopped.
const maxNodes = 20000

type walker struct {
	ss     *schemaSet
	budget int
}

// element describes the element declared (or referenced) by c.
// name is the element's name when already known (a ref).
func (w *walker) element(c component, name QName, minOcc, maxOcc int, top bool, stack []QName) *ElementInfo {
	w.budget--
	el, s := c.el, c.s
	info := &ElementInfo{MinOccurs: minOcc, MaxOccurs: maxOcc}
	if ref := el.SelectAttrValue("ref", ""); ref != "" {
		rq := s.ref(el, ref)
		g, ok := w.ss.elements[rq]
		if !ok {
			info.Name = rq
			return info
		}
		mark := QName{"\x00element " + rq.Space, rq.Local}
		for _, q := range stack {
			if q == mark {
				info.Name, info.Recursive = rq, true
				return info
			}
		}
		return w.element(g, rq, minOcc, maxOcc, true, append(stack, mark))
	}
	info.Name = name
	if info.Name.Local == "" {
		info.Name.Local = el.SelectAttrValue("name", "")
		if top || isGlobal(el) || formQualified(el, s) {
			info.Name.Space = s.tns
		}
	}
	info.Nillable = el.SelectAttrValue("nillable", "") == "true"
	if t := el.SelectAttrValue("type", ""); t != "" {
		info.Type = s.ref(el, t)
		w.typeInto(info, info.Type, stack)
		return info
	}
	for _, ch := range el.ChildElements() {
		if !isXSD(ch.NamespaceURI()) {
			continue
		}
		switch ch.Tag {
		case "complexType":
			w.complexInto(info, component{s, ch}, stack)
			return info
		case "simpleType":
			info.Simple = w.simpleBase(component{s, ch}, 0)
			return info
		}
	}
	info.Simple = "anyType"
	return info
}

func isGlobal(el *etree.Element) bool {
	p := el.Parent()
	return p != nil && p.Tag == "schema" && isXSD(p.NamespaceURI())
}

func formQualified(el *etree.Element, s *schema) bool {
	switch el.SelectAttrValue("form", "") {
	case "qualified":
		return true
	case "unqualified":
		return false
	}
	return s.qualified
}

// typeInto fills info from the named type t.
func (w *walker) typeInto(info *ElementInfo, t QName, stack []QName) {
	if isXSD(t.Space) || t.Space == NSSOAPEnc {
		if t.Space == NSSOAPEnc && t.Local == "Array" {
			return
		}
		info.Simple = t.Local
		return
	}
	c, ok := w.ss.types[t]
	if !ok {
		info.Simple = "anyType" // unknown type: say nothing wrong
		return
	}
	if c.el.Tag == "simpleType" {
		info.Simple = w.simpleBase(c, 0)
		return
	}
	for _, q := range stack {
		if q == t {
			info.Recursive = true
			return
		}
	}
	if w.budget <= 0 || len(stack) > 64 {
		info.Recursive = true
		return
	}
	w.complexInto(info, c, append(stack, t))
}

// simpleBase follows a simple type down to its built-in base.
func (w *walker) simpleBase(c component, depth int) string {
	if depth > 32 {
		return "anySimpleType"
	}
	for _, ch := range c.el.ChildElements() {
		if !isXSD(ch.NamespaceURI()) {
			continue
		}
		switch ch.Tag {
		case "restriction", "extension":
			if b := ch.SelectAttrValue("base", ""); b != "" {
				return w.builtin(c.s.ref(ch, b), depth)
			}
			for _, st := range ch.ChildElements() {
				if st.Tag == "simpleType" {
					return w.simpleBase(component{c.s, st}, depth+1)
				}
			}
		case "list":
			return "list"
		case "union":
			return "union"
		}
	}
	return "anySimpleType"
}

func (w *walker) builtin(q QName, depth int) string {
	if isXSD(q.Space) || q.Space == NSSOAPEnc {
		return q.Local
	}
	c, ok := w.ss.types[q]
	if !ok {
		return "anySimpleType"
	}
	if c.el.Tag == "complexType" {
		// simpleContent of a complex type
		for _, ch := range c.el.ChildElements() {
			if ch.Tag == "simpleContent" {
				return w.simpleBase(component{c.s, ch}, depth+1)
			}
		}
		return "anyType"
	}
	return w.simpleBase(c, depth+1)
}

// complexInto fills info from a complexType.
func (w *walker) complexInto(info *ElementInfo, c component, stack []QName) {
	for _, ch := range c.el.ChildElements() {
		if !isXSD(ch.NamespaceURI()) {
			continue
		}
		switch ch.Tag {
		case "sequence", "all", "choice", "group":
			w.particle(info, component{c.s, ch}, 1, 1, false, stack)
		case "simpleContent":
			info.Simple = w.simpleBase(component{c.s, ch}, 0)
		case "complexContent":
			for _, d := range ch.ChildElements() {
				if !isXSD(d.NamespaceURI()) || (d.Tag != "extension" && d.Tag != "restriction") {
					continue
				}
				base := c.s.ref(d, d.SelectAttrValue("base", ""))
				if base.Space == NSSOAPEnc && base.Local == "Array" {
					info.Type = base
					continue
				}
				if d.Tag == "extension" && base.Local != "" {
					w.typeInto(info, base, stack)
				}
				for _, g := range d.ChildElements() {
					if isXSD(g.NamespaceURI()) {
						switch g.Tag {
						case "sequence", "all", "choice", "group":
							w.particle(info, component{c.s, g}, 1, 1, false, stack)
						}
					}
				}
			}
		}
	}
}

// particle appends the elements of a model group to info.Children.
// minOcc/maxOcc carry the enclosing groups' occurrence; inChoice marks
// alternatives.
func (w *walker) particle(info *ElementInfo, c component, minOcc, maxOcc int, inChoice bool, stack []QName) {
	el := c.el
	mn, mx := occurs(el)
	minOcc, maxOcc = mulOcc(minOcc, mn), mulOcc(maxOcc, mx)
	switch el.Tag {
	case "group":
		if ref := el.SelectAttrValue("ref", ""); ref != "" {
			gq := c.s.ref(el, ref)
			g, ok := w.ss.groups[gq]
			if !ok {
				return
			}
			mark := QName{"\x00group " + gq.Space, gq.Local}
			for _, q := range stack {
				if q == mark {
					info.Recursive = true
					return
				}
			}
			stack = append(stack, mark)
			for _, ch := range g.el.ChildElements() {
				if isXSD(ch.NamespaceURI()) && (ch.Tag == "sequence" || ch.Tag == "all" || ch.Tag == "choice") {
					w.particle(info, component{g.s, ch}, minOcc, maxOcc, inChoice, stack)
				}
			}
		}
		return
	case "choice":
		inChoice = true
	}
	for _, ch := range el.ChildElements() {
		if !isXSD(ch.NamespaceURI()) {
			continue
		}
		switch ch.Tag {
		case "element":
			if w.budget <= 0 {
				info.Recursive = true
				return
			}
			emn, emx := occurs(ch)
			ci := w.element(component{c.s, ch}, QName{}, mulOcc(minOcc, emn), mulOcc(maxOcc, emx), false, stack)
			if inChoice {
				ci.MinOccurs = 0
			}
			ci.Choice = inChoice
			ci.Repeats = ci.MaxOccurs < 0 || ci.MaxOccurs > 1
			info.Children = append(info.Children, ci)
		case "sequence", "all", "choice", "group":
			w.particle(info, component{c.s, ch}, minOcc, maxOcc, inChoice, stack)
		case "any":
			info.Any = true
		}
	}
}

func occurs(el *etree.Element) (int, int) {
	mn, mx := 1, 1
	if v := el.SelectAttrValue("minOccurs", ""); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			mn = n
		}
	}
	if v := strings.TrimSpace(el.SelectAttrValue("maxOccurs", "")); v != "" {
		if v == "unbounded" {
			mx = -1
		} else if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			mx = n
		}
	}
	return mn, mx
}

// mulOcc multiplies occurrence bounds; -1 is unbounded.
func mulOcc(a, b int) int {
	switch {
	case a == 0 || b == 0:
		return 0
	case a < 0 || b < 0:
		return -1
	case a > 1<<20 || b > 1<<20:
		return -1
	}
	return a * b
}
