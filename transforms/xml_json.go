package transforms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"
	"github.com/cockroachdb/apd/v3"
	"github.com/tidwall/gjson"
)

// XMLToJSON converts an XML payload to JSON by fixed conventions, for routes
// that have no mapping:
//
//   - the result is an object with one member, the root element's local name;
//   - namespaces are dropped: every element and attribute is named by its
//     local name, and xmlns declarations are left out;
//   - an element with neither attributes nor child elements becomes a JSON
//     string of its text (always a string: "0066100000" keeps its zeros;
//     an empty element is "");
//   - otherwise it becomes an object: attributes first as "@name", then its
//     text as "#text" when it has non-whitespace text, then its child
//     elements by name in order of first appearance;
//   - a name that occurs more than once among siblings becomes an array (in
//     document order); a name that occurs once is a single value. Without a
//     schema, one item cannot be told from a list: a mapping with for-each
//     is the way to always get an array;
//   - comments and processing instructions are dropped.
func XMLToJSON(root *etree.Element) ([]byte, error) {
	if root == nil {
		return nil, errors.New("xml to json: no element")
	}
	buf := make([]byte, 0, 256)
	buf = append(buf, '{')
	buf = appendJSONString(buf, root.Tag)
	buf = append(buf, ':')
	buf = appendElementJSON(buf, root)
	buf = append(buf, '}')
	return buf, nil
}

func appendElementJSON(buf []byte, e *etree.Element) []byte {
	var attrs []etree.Attr
	for _, a := range e.Attr {
		if !isNSDecl(a) {
			attrs = append(attrs, a)
		}
	}
	var names []string
	var groups map[string][]*etree.Element
	var text strings.Builder
	for _, c := range e.Child {
		switch c := c.(type) {
		case *etree.Element:
			if groups == nil {
				groups = map[string][]*etree.Element{}
			}
			if _, ok := groups[c.Tag]; !ok {
				names = append(names, c.Tag)
			}
			groups[c.Tag] = append(groups[c.Tag], c)
		case *etree.CharData:
			text.WriteString(c.Data)
		}
	}
	if len(attrs) == 0 && len(names) == 0 {
		return appendJSONString(buf, text.String())
	}
	buf = appendAttrMembers(append(buf, '{'), attrs)
	n := len(attrs)
	sep := func() {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
	}
	if t := strings.TrimSpace(text.String()); t != "" {
		sep()
		buf = append(buf, `"#text":`...)
		buf = appendJSONString(buf, t)
	}
	buf = appendGroups(buf, names, groups, n > 0)
	return append(buf, '}')
}

// appendAttrMembers appends attributes as the first members of an object,
// "@name": "value", by the generic rules (the schema gives attributes no type).
func appendAttrMembers(buf []byte, attrs []etree.Attr) []byte {
	for i, a := range attrs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, "@"+a.Key)
		buf = append(buf, ':')
		buf = appendJSONString(buf, a.Value)
	}
	return buf
}

// appendGroups appends child elements grouped by name, in order of first
// appearance, by the generic rules: one element is a value, several an
// array. comma says whether a member precedes them.
func appendGroups(buf []byte, names []string, groups map[string][]*etree.Element, comma bool) []byte {
	for _, name := range names {
		if comma {
			buf = append(buf, ',')
		}
		comma = true
		buf = appendJSONString(buf, name)
		buf = append(buf, ':')
		g := groups[name]
		if len(g) == 1 {
			buf = appendElementJSON(buf, g[0])
			continue
		}
		buf = append(buf, '[')
		for i, el := range g {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendElementJSON(buf, el)
		}
		buf = append(buf, ']')
	}
	return buf
}

// JSONToXML converts a JSON document to an XML element by the conventions
// of XMLToJSON, reversed:
//
//   - the root element is rootName. With a prefix ("n0:Request") the prefix
//     is declared for namespace and child elements are unqualified (the SAP
//     RFC style); without one, namespace (when not "") becomes the default
//     namespace, which the child elements inherit;
//   - object members become child elements in the JSON order; "@name"
//     members become attributes and "#text" the element's text;
//   - an array becomes one element per item, all named by the member's key;
//     a top-level array becomes <item> elements under the root;
//   - strings are text, numbers keep their JSON text exactly (1.50 stays
//     1.50), booleans are true/false, null members are left out;
//   - a key that is not a valid XML name is an error.
func JSONToXML(body []byte, rootName, namespace string) (*etree.Element, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("json to xml: the body is not valid JSON")
	}
	prefix, local, hasPrefix := strings.Cut(rootName, ":")
	if !hasPrefix {
		prefix, local = "", rootName
	}
	if !isNCName(local) || (hasPrefix && !isNCName(prefix)) {
		return nil, fmt.Errorf("json to xml: root name %q is not a valid XML name", rootName)
	}
	if hasPrefix && namespace == "" {
		return nil, fmt.Errorf("json to xml: root name %q has a prefix but no namespace was given", rootName)
	}
	root := etree.NewElement(rootName)
	switch {
	case hasPrefix:
		root.CreateAttr("xmlns:"+prefix, namespace)
	case namespace != "":
		root.CreateAttr("xmlns", namespace)
	}
	doc := gjson.ParseBytes(body)
	if doc.IsArray() {
		var err error
		doc.ForEach(func(_, v gjson.Result) bool {
			err = addJSONChild(root, "item", v)
			return err == nil
		})
		return root, err
	}
	if err := fillElement(root, doc); err != nil {
		return nil, err
	}
	return root, nil
}

func fillElement(e *etree.Element, v gjson.Result) error {
	if !v.IsObject() {
		if s, ok := jsonText(v); ok {
			e.SetText(s)
		}
		return nil
	}
	return eachMember(e, v, func(key string, val gjson.Result) error { return addJSONChild(e, key, val) })
}

// eachMember reads a JSON object into e the way both JSON-to-XML writers
// agree on: "@name" members become attributes, "#text" the element's text,
// and every other member goes to child, in the object's order.
func eachMember(e *etree.Element, v gjson.Result, child func(key string, val gjson.Result) error) error {
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.String()
		switch {
		case strings.HasPrefix(key, "@"):
			err = setAttr(e, key, val)
		case key == "#text":
			if s, ok := jsonText(val); ok {
				e.SetText(s)
			}
		default:
			err = child(key, val)
		}
		return err == nil
	})
	return err
}

func addJSONChild(parent *etree.Element, key string, v gjson.Result) error {
	if !isNCName(key) {
		return fmt.Errorf("json to xml: %q is not a valid XML element name", key)
	}
	if v.IsArray() {
		var err error
		v.ForEach(func(_, item gjson.Result) bool {
			err = addJSONChild(parent, key, item)
			return err == nil
		})
		return err
	}
	if v.Type == gjson.Null {
		return nil
	}
	return fillElement(parent.CreateElement(key), v)
}

// jsonText is the text of a JSON scalar; ok is false for null.
func jsonText(v gjson.Result) (string, bool) {
	switch v.Type {
	case gjson.Null:
		return "", false
	case gjson.String:
		return v.Str, true
	case gjson.JSON:
		return v.Raw, true
	}
	return v.Raw, true
}

// nsXSI is the XML Schema instance namespace (xsi:nil, xsi:type).
const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

// XMLToJSON converts like the package function XMLToJSON, guided by the
// schema where it describes the root element (see docs/mapping.md,
// "Schema-aware conversion"):
//
//   - an element that may repeat (maxOccurs > 1) is always an array, even
//     with one item; one that is absent from a present parent is [] (an
//     empty SAP table stays an array), except an alternative of a choice;
//   - xsd numeric types become JSON numbers with their digits as written
//     (no float64), xsd:boolean true/false; every other type, xsd:string
//     included, is a string ("0010010000" keeps its zeros); an empty
//     number is null; text that is not a valid number stays a string;
//   - xsi:nil="true" is null; xsi attributes are not copied;
//   - object members follow the schema's order; children the schema does
//     not declare follow in document order, by the generic rules, as does
//     everything inside an element of unknown content.
//
// With a nil schema, or a root element the schema does not know, it is
// the generic conversion.
func (s *Schema) XMLToJSON(root *etree.Element) ([]byte, error) {
	if root == nil {
		return nil, errors.New("xml to json: no element")
	}
	t := s.Element(root.NamespaceURI(), root.Tag)
	if t == nil {
		return XMLToJSON(root)
	}
	var c typedJSON
	buf := make([]byte, 0, 256)
	buf = append(buf, '{')
	buf = appendJSONString(buf, root.Tag)
	buf = append(buf, ':')
	buf = c.element(buf, root, t)
	buf = append(buf, '}')
	return buf, nil
}

// typedJSON converts with schema hints. idx is scratch space shared down
// the recursion: which schema child each XML child matched.
type typedJSON struct {
	idx []int
}

func (c *typedJSON) element(buf []byte, e *etree.Element, t *ElementType) []byte {
	if t.generic() {
		return appendElementJSON(buf, e)
	}
	var attrs []etree.Attr
	nilled := false
	for _, a := range e.Attr {
		if isNSDecl(a) {
			continue
		}
		if a.Space != "" && a.NamespaceURI() == nsXSI {
			nilled = nilled || (a.Key == "nil" && (a.Value == "true" || a.Value == "1"))
			continue
		}
		attrs = append(attrs, a)
	}
	if nilled {
		return append(buf, "null"...)
	}
	start := len(c.idx)
	defer func() { c.idx = c.idx[:start] }()
	var text strings.Builder
	unknown := 0
	for _, ch := range e.Child {
		switch ch := ch.(type) {
		case *etree.Element:
			i := childIndex(t, ch)
			if i < 0 {
				unknown++
			}
			c.idx = append(c.idx, i)
		case *etree.CharData:
			text.WriteString(ch.Data)
		}
	}
	kids := c.idx[start:]
	if t.Type != "" {
		if len(kids) > 0 {
			return appendElementJSON(buf, e) // the data has more than the schema says: keep it all
		}
		if len(attrs) == 0 {
			return appendXSDValue(buf, text.String(), t.Type)
		}
	}
	buf = appendAttrMembers(append(buf, '{'), attrs)
	n := len(attrs)
	sep := func() {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
	}
	if t.Type != "" {
		if s := strings.TrimSpace(text.String()); s != "" {
			sep()
			buf = append(buf, `"#text":`...)
			buf = appendXSDValue(buf, text.String(), t.Type)
		}
		return append(buf, '}')
	}
	if s := strings.TrimSpace(text.String()); s != "" {
		sep()
		buf = append(buf, `"#text":`...)
		buf = appendJSONString(buf, s)
	}
	for i, ct := range t.Children {
		count := 0
		for _, k := range kids {
			if k == i {
				count++
			}
		}
		if count == 0 {
			if ct.Repeats && !ct.Choice {
				sep()
				buf = appendJSONString(buf, ct.Local)
				buf = append(buf, ":[]"...)
			}
			continue
		}
		sep()
		buf = appendJSONString(buf, ct.Local)
		buf = append(buf, ':')
		array := ct.Repeats || count > 1 // more than the schema allows: keep every one
		if array {
			buf = append(buf, '[')
		}
		j, w := 0, 0
		for _, ch := range e.Child {
			el, ok := ch.(*etree.Element)
			if !ok {
				continue
			}
			if kids[j] == i {
				if w > 0 {
					buf = append(buf, ',')
				}
				w++
				buf = c.element(buf, el, ct)
			}
			j++
		}
		if array {
			buf = append(buf, ']')
		}
	}
	if unknown > 0 {
		buf = c.undeclared(buf, e, kids, n > 0)
	}
	return append(buf, '}')
}

// undeclared appends the children no schema child matched, grouped by name
// in order of first appearance, by the generic rules.
func (c *typedJSON) undeclared(buf []byte, e *etree.Element, kids []int, comma bool) []byte {
	var names []string
	groups := map[string][]*etree.Element{}
	j := 0
	for _, ch := range e.Child {
		el, ok := ch.(*etree.Element)
		if !ok {
			continue
		}
		if kids[j] < 0 {
			if _, seen := groups[el.Tag]; !seen {
				names = append(names, el.Tag)
			}
			groups[el.Tag] = append(groups[el.Tag], el)
		}
		j++
	}
	return appendGroups(buf, names, groups, comma)
}

// childIndex finds the schema child an XML child is: by local name, and by
// namespace when several children share the local name. A namespace that
// does not match is forgiven when the local name is unique (backends are
// often careless with elementFormDefault).
func childIndex(t *ElementType, el *etree.Element) int {
	found, matches := -1, 0
	for i, ct := range t.Children {
		if ct.Local == el.Tag {
			if matches == 0 {
				found = i
			}
			matches++
		}
	}
	if matches <= 1 {
		return found
	}
	ns := el.NamespaceURI()
	for i, ct := range t.Children {
		if ct.Local == el.Tag && ct.Space == ns {
			return i
		}
	}
	return found
}

// appendXSDValue appends the JSON value of an element's text of the given
// XSD type.
func appendXSDValue(buf []byte, text, xsdType string) []byte {
	k := kindOf(xsdType)
	if k == xsdString {
		return appendJSONString(buf, text)
	}
	s := strings.TrimSpace(text)
	if s == "" {
		return append(buf, "null"...)
	}
	if k == xsdBoolean {
		if v, ok := xsdBool(s); ok {
			if v {
				return append(buf, "true"...)
			}
			return append(buf, "false"...)
		}
		return appendJSONString(buf, text)
	}
	if out, ok := appendXSDNumber(buf, s, k); ok {
		return out
	}
	return appendJSONString(buf, text)
}

// JSONToXML converts a JSON document into the global element {space}local,
// following the schema (see docs/mapping.md, "Schema-aware conversion"):
//
//   - children are written in xsd:sequence order whatever the JSON order,
//     each in its declared namespace (qualified or not, as the schema's
//     elementFormDefault and form say);
//   - the JSON is the element's content; an object whose only member is
//     named after the element (what XMLToJSON produces) is accepted too;
//   - a repeating element takes an array or a single value; an array for
//     an element that occurs at most once is an error;
//   - values of xsd numeric and boolean types must be valid for the type
//     (JSON numbers are written with their digits as sent; an exponent is
//     expanded for xsd:decimal and the integer types);
//   - null is xsi:nil="true" for a nillable element and leaves others out;
//   - a required element that is missing is an error; members the schema
//     does not declare are left out, unless the content is open (xsd:any),
//     where they follow by the generic rules.
//
// Namespaces are declared on the root: the root's namespace as the default
// one when every element is qualified, otherwise with prefixes ns0, ns1…
//
// With a nil schema, or an element the schema does not know, it is the
// generic JSONToXML(body, local, space).
func (s *Schema) JSONToXML(body []byte, space, local string) (*etree.Element, error) {
	t := s.Element(space, local)
	if t == nil {
		return JSONToXML(body, local, space)
	}
	if !gjson.ValidBytes(body) {
		return nil, errors.New("json to xml: the body is not valid JSON")
	}
	v := gjson.ParseBytes(body)
	if v.IsObject() && t.Type == "" && t.Child(local) == nil {
		var only gjson.Result
		n := 0
		v.ForEach(func(k, val gjson.Result) bool {
			n++
			if k.String() == local {
				only = val
			}
			return n < 2
		})
		if n == 1 && only.Exists() {
			v = only
		}
	}
	b := &xmlBuilder{}
	root := b.element(t.Space, t.Local)
	if err := b.fill(root, v, t, t.Local); err != nil {
		return nil, err
	}
	b.declare(root)
	return root, nil
}

// Child returns the first declared child with the given local name.
func (t *ElementType) Child(local string) *ElementType {
	for _, c := range t.Children {
		if c.Local == local {
			return c
		}
	}
	return nil
}

// xmlBuilder builds elements first and names their namespaces at the end,
// when it knows whether any element is unqualified (which rules out a
// default namespace).
type xmlBuilder struct {
	elems       []*etree.Element
	spaces      []string
	unqualified bool
	xsiUsed     bool
}

func (b *xmlBuilder) element(space, local string) *etree.Element {
	e := etree.NewElement(local)
	b.elems = append(b.elems, e)
	b.spaces = append(b.spaces, space)
	if space == "" {
		b.unqualified = true
	}
	return e
}

func (b *xmlBuilder) child(parent *etree.Element, space, local string) *etree.Element {
	e := b.element(space, local)
	parent.AddChild(e)
	return e
}

// declare gives every element its prefix and declares the namespaces on root.
func (b *xmlBuilder) declare(root *etree.Element) {
	prefixes := map[string]string{}
	var order []string
	for i, e := range b.elems {
		ns := b.spaces[i]
		if ns == "" {
			continue
		}
		p, ok := prefixes[ns]
		if !ok {
			if i == 0 && !b.unqualified {
				p = "" // the root's namespace is the default one
			} else {
				p = "ns" + strconv.Itoa(len(order))
			}
			prefixes[ns] = p
			order = append(order, ns)
		}
		e.Space = p
	}
	var decls []etree.Attr
	for _, ns := range order {
		if p := prefixes[ns]; p == "" {
			decls = append(decls, etree.Attr{Key: "xmlns", Value: ns})
		} else {
			decls = append(decls, etree.Attr{Space: "xmlns", Key: p, Value: ns})
		}
	}
	if b.xsiUsed {
		decls = append(decls, etree.Attr{Space: "xmlns", Key: "xsi", Value: nsXSI})
	}
	root.Attr = append(decls, root.Attr...)
}

// fill writes v as the content of e, of type t; path names e in errors.
func (b *xmlBuilder) fill(e *etree.Element, v gjson.Result, t *ElementType, path string) error {
	if t.generic() {
		b.unqualified = true // fillElement's elements have no namespace
		return fillElement(e, v)
	}
	if v.IsArray() {
		return fmt.Errorf("json to xml: %s: an array where one element is expected", path)
	}
	if t.Type != "" {
		if !v.IsObject() {
			s, err := xsdText(v, t.Type, path)
			if err != nil {
				return err
			}
			e.SetText(s)
			return nil
		}
		var err error
		v.ForEach(func(k, val gjson.Result) bool {
			key := k.String()
			switch {
			case strings.HasPrefix(key, "@"):
				err = setAttr(e, key, val)
			case key == "#text":
				var s string
				if s, err = xsdText(val, t.Type, path); err == nil {
					e.SetText(s)
				}
			}
			return err == nil
		})
		return err
	}
	if !v.IsObject() {
		return fmt.Errorf("json to xml: %s: %s where an object is expected (the element has child elements)", path, jsonKind(v))
	}
	type member struct {
		key  string
		val  gjson.Result
		used bool
	}
	var members []member
	if err := eachMember(e, v, func(key string, val gjson.Result) error {
		members = append(members, member{key: key, val: val})
		return nil
	}); err != nil {
		return err
	}
	for _, ct := range t.Children {
		var m *member
		for i := range members {
			if members[i].key == ct.Local && !members[i].used {
				m = &members[i]
				break
			}
		}
		cpath := path + "/" + ct.Local
		if m == nil || m.val.Type == gjson.Null && !ct.Nillable {
			if ct.Required {
				return fmt.Errorf("json to xml: %s: required element is missing", cpath)
			}
			continue
		}
		m.used = true
		items := []gjson.Result{m.val}
		if m.val.IsArray() {
			items = m.val.Array()
			if len(items) > 1 && !ct.Repeats {
				return fmt.Errorf("json to xml: %s occurs at most once, got an array of %d", cpath, len(items))
			}
			if len(items) == 0 && ct.Required {
				return fmt.Errorf("json to xml: %s: required element is missing (empty array)", cpath)
			}
		}
		for i, item := range items {
			ipath := cpath
			if len(items) > 1 {
				ipath += "[" + strconv.Itoa(i+1) + "]"
			}
			if item.Type == gjson.Null {
				if ct.Nillable {
					b.xsiUsed = true
					b.child(e, ct.Space, ct.Local).CreateAttr("xsi:nil", "true")
				}
				continue
			}
			if err := b.fill(b.child(e, ct.Space, ct.Local), item, ct, ipath); err != nil {
				return err
			}
		}
	}
	if t.Open {
		for _, m := range members {
			if m.used {
				continue
			}
			if err := b.genericChild(e, m.key, m.val); err != nil {
				return err
			}
		}
	}
	return nil
}

// genericChild adds an undeclared member by the generic rules, as an
// unqualified element.
func (b *xmlBuilder) genericChild(parent *etree.Element, key string, v gjson.Result) error {
	if !isNCName(key) {
		return fmt.Errorf("json to xml: %q is not a valid XML element name", key)
	}
	if v.IsArray() {
		var err error
		v.ForEach(func(_, item gjson.Result) bool {
			err = b.genericChild(parent, key, item)
			return err == nil
		})
		return err
	}
	if v.Type == gjson.Null {
		return nil
	}
	return fillElement(b.child(parent, "", key), v)
}

func setAttr(e *etree.Element, key string, val gjson.Result) error {
	if !isNCName(key[1:]) {
		return fmt.Errorf("json to xml: %q is not a valid attribute name", key)
	}
	if s, ok := jsonText(val); ok {
		e.CreateAttr(key[1:], s)
	}
	return nil
}

func jsonKind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

// xsdText is the XML text of a JSON scalar for an element of the given XSD
// type, checked against the type.
func xsdText(v gjson.Result, xsdType, path string) (string, error) {
	k := kindOf(xsdType)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("json to xml: %s: %s is not an xsd:%s%s", path, shortJSON(v), xsdType, why)
	}
	switch v.Type {
	case gjson.Null:
		return "", nil
	case gjson.JSON:
		return bad("")
	case gjson.True, gjson.False:
		if k == xsdString || k == xsdBoolean {
			return v.Raw, nil
		}
		return bad("")
	case gjson.String:
		switch k {
		case xsdString:
			return v.Str, nil
		case xsdBoolean:
			if _, ok := xsdBool(strings.TrimSpace(v.Str)); ok {
				return v.Str, nil
			}
			return bad("")
		}
		if _, ok := appendXSDNumber(nil, strings.TrimSpace(v.Str), k); ok {
			return v.Str, nil // valid as written: "0010.50" goes over as sent
		}
		return bad("")
	}
	// A JSON number.
	switch k {
	case xsdString, xsdFloat:
		return v.Raw, nil
	case xsdBoolean:
		if v.Raw == "0" || v.Raw == "1" {
			return v.Raw, nil
		}
		return bad("")
	}
	if !strings.ContainsAny(v.Raw, "eE") && (k == xsdDecimal || !strings.Contains(v.Raw, ".")) {
		return v.Raw, nil
	}
	// An exponent (or a fraction for an integer type): XSD has no such
	// form, so write the exact value in plain digits.
	d, _, err := apd.NewFromString(v.Raw)
	if err != nil {
		return bad("")
	}
	if k == xsdInteger {
		var r apd.Decimal
		r.Reduce(d)
		if r.Exponent < 0 {
			return bad(" (it has a fraction)")
		}
		d = &r
	}
	if d.Exponent > 1000 || d.Exponent < -1000 {
		return bad(" (the exponent is too large to write out)")
	}
	return d.Text('f'), nil
}

func shortJSON(v gjson.Result) string {
	s := v.Raw
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
