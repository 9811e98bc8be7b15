package transforms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
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
	buf = append(buf, '{')
	n := 0
	sep := func() {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
	}
	for _, a := range attrs {
		sep()
		buf = appendJSONString(buf, "@"+a.Key)
		buf = append(buf, ':')
		buf = appendJSONString(buf, a.Value)
	}
	if t := strings.TrimSpace(text.String()); t != "" {
		sep()
		buf = append(buf, `"#text":`...)
		buf = appendJSONString(buf, t)
	}
	for _, name := range names {
		sep()
		buf = appendJSONString(buf, name)
		buf = append(buf, ':')
		g := groups[name]
		if len(g) == 1 {
			buf = appendElementJSON(buf, g[0])
			continue
		}
		buf = append(buf, '[')
		for i, c := range g {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendElementJSON(buf, c)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
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
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.String()
		switch {
		case strings.HasPrefix(key, "@"):
			if !isNCName(key[1:]) {
				err = fmt.Errorf("json to xml: %q is not a valid attribute name", key)
				return false
			}
			if s, ok := jsonText(val); ok {
				e.CreateAttr(key[1:], s)
			}
		case key == "#text":
			if s, ok := jsonText(val); ok {
				e.SetText(s)
			}
		default:
			err = addJSONChild(e, key, val)
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
