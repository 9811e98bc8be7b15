package transforms

import (
	"sync"
)

// ElementType is what a schema (XSD, or the types of a WSDL) says about one
// element, as far as XML ⇄ JSON conversion needs it. Package wsdl builds
// these from XSD (wsdl.LoadSchema, Definitions.Schema); they can also be
// written by hand.
//
// An ElementType must not be changed once it is part of a Schema. Children
// may point back at an ancestor (a recursive type), so code walking a tree
// of ElementTypes must be driven by a document, not by the types alone.
type ElementType struct {
	// Space is the element's namespace URI; "" for an unqualified local
	// element (elementFormDefault="unqualified", the SAP RFC style).
	Space string
	// Local is the element's local name.
	Local string
	// Type is the XSD built-in type of the element's text: "string",
	// "decimal", "int", "boolean", "date"…; "" for element-only content;
	// "anyType" when anything goes (the generic rules apply inside).
	Type string
	// Repeats is true when maxOccurs > 1 or unbounded: the element is always
	// a JSON array, even with one item.
	Repeats bool
	// Required is true when minOccurs >= 1 and the element is not one
	// alternative of a choice.
	Required bool
	// Nillable allows xsi:nil="true" (JSON null).
	Nillable bool
	// Choice marks an alternative of an xsd:choice.
	Choice bool
	// Open is true when the content may hold elements Children does not
	// list (xsd:any, a type the schema does not define, a recursion cut
	// short): those are converted by the generic rules.
	Open bool
	// Children are the declared child elements, in xsd:sequence order.
	Children []*ElementType
}

// generic tells whether the element's content is unknown, so the generic
// conventions apply to all of it.
func (t *ElementType) generic() bool {
	return t.Type == "anyType" || (t.Type == "" && t.Open && len(t.Children) == 0)
}

// Schema holds the global elements of one or more XSDs for schema-aware
// XML ⇄ JSON conversion. A nil *Schema is valid and converts by the generic
// conventions. It is safe for concurrent use.
type Schema struct {
	mu       sync.Mutex
	elements map[xmlName]*ElementType
	resolve  func(space, local string) *ElementType
}

type xmlName struct{ space, local string }

// NewSchema returns a schema made of the given global elements.
func NewSchema(elements ...*ElementType) *Schema {
	s := &Schema{elements: make(map[xmlName]*ElementType, len(elements))}
	for _, e := range elements {
		s.elements[xmlName{e.Space, e.Local}] = e
	}
	return s
}

// NewSchemaFunc returns a schema whose global elements are described on
// first use by resolve (nil: no such element), then remembered: a large
// schema set pays only for the elements its messages use. resolve is never
// called concurrently.
func NewSchemaFunc(resolve func(space, local string) *ElementType) *Schema {
	return &Schema{elements: map[xmlName]*ElementType{}, resolve: resolve}
}

// Element returns the global element {space}local, or nil.
func (s *Schema) Element(space, local string) *ElementType {
	if s == nil {
		return nil
	}
	k := xmlName{space, local}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.elements[k]; ok || s.resolve == nil {
		return e
	}
	e := s.resolve(space, local)
	s.elements[k] = e
	return e
}

// Which numbers and booleans an XSD built-in type holds.
type xsdKind uint8

const (
	xsdString xsdKind = iota
	xsdInteger
	xsdDecimal
	xsdFloat
	xsdBoolean
)

func kindOf(xsdType string) xsdKind {
	switch xsdType {
	case "decimal":
		return xsdDecimal
	case "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short", "byte",
		"nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte", "positiveInteger":
		return xsdInteger
	case "float", "double":
		return xsdFloat
	case "boolean":
		return xsdBoolean
	}
	return xsdString
}

// appendXSDNumber appends the JSON number for the XSD lexical form s of
// kind k, and reports whether s is such a form. The digits stay as written
// (1.50 stays 1.50, 12345678901234567890.01 stays exact: no float64 on the
// way); only what JSON forbids changes: a leading "+", leading zeros
// ("0010.50" → 10.50), a bare point ("5." → 5, ".5" → 0.5). A hand-written
// scanner rather than a decimal library: libraries accept forms XSD does
// not (an exponent in xsd:decimal, "Infinity") and rewrite the digits.
func appendXSDNumber(buf []byte, s string, k xsdKind) ([]byte, bool) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := s[intStart:i]
	var frac string
	if i < len(s) && s[i] == '.' && k != xsdInteger {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intDigits == "" && frac == "" {
		return buf, false
	}
	var exp string
	if k == xsdFloat && i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		es := i
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == ds {
			return buf, false
		}
		exp = s[es:i]
	}
	if i != len(s) {
		return buf, false
	}
	if neg {
		buf = append(buf, '-')
	}
	for len(intDigits) > 1 && intDigits[0] == '0' {
		intDigits = intDigits[1:]
	}
	if intDigits == "" {
		intDigits = "0"
	}
	buf = append(buf, intDigits...)
	if frac != "" {
		buf = append(buf, '.')
		buf = append(buf, frac...)
	}
	return append(buf, exp...), true
}

// xsdBool reads an xsd:boolean lexical form.
func xsdBool(s string) (value, ok bool) {
	switch s {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}
