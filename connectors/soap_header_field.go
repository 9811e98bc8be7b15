package connectors

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"sync"
)

// HeaderField is a `match.soap-header` condition of the commonest shape,
// `/p:Block/p:Field == 'value'`: the XPath string value of the first element
// at Path under the SOAP Header equals Value. Such a condition is answered
// from the envelope's bytes (scanHeaderField) instead of building the
// Header's tree for the expression engine, which cost a route chosen this
// way more than issue 4 allows over a pass-through. It gives what the
// expression gives (TestHeaderFieldMatchesExpression); whatever the scanner
// is not sure of goes to the expression.
type HeaderField struct {
	Path  []FieldStep
	Value string
}

// FieldStep is one child step of a HeaderField's path.
type FieldStep struct {
	Local string
	// Space is the namespace URI of a prefixed name test; an unprefixed
	// test (AnyNS) matches the local name in any namespace, as the
	// expression's XPath does.
	Space string
	AnyNS bool
}

// headerFieldExpr is the shape ParseHeaderField accepts: child steps of
// ASCII names, `==`, a quoted string without escapes.
var headerFieldExpr = regexp.MustCompile(`^\s*\.?((?:/[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?)+)\s*==\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*$`)

// ParseHeaderField recognises a soap-header condition HeaderField can
// answer; nil when the expression has another shape (the expression engine
// then answers it alone). namespaces are the route's prefixes.
func ParseHeaderField(src string, namespaces map[string]string) *HeaderField {
	m := headerFieldExpr.FindStringSubmatch(src)
	if m == nil {
		return nil
	}
	f := &HeaderField{Value: m[2] + m[3]}
	for _, step := range strings.Split(m[1][1:], "/") {
		prefix, local, prefixed := strings.Cut(step, ":")
		if !prefixed {
			f.Path = append(f.Path, FieldStep{Local: step, AnyNS: true})
			continue
		}
		uri, ok := namespaces[prefix]
		if !ok || uri == "" || prefix == "xml" || prefix == "xmlns" {
			return nil
		}
		f.Path = append(f.Path, FieldStep{Local: local, Space: uri})
	}
	return f
}

// scanHeaderField reads the string value of the first element at path
// under a UTF-8 envelope's Header; found is false when there is none (or no
// Header). sure is false when the fast scanner cannot read the bytes (see
// scanSOAPHeaderFast): the caller then builds the Header and asks the
// expression. Like the scanner, it reads the whole Header, so a Header
// broken after the field is still left to the decoder path to report. The
// value may share the body's bytes.
func scanHeaderField(b []byte, path []FieldStep) (value []byte, found, sure bool) {
	w := fieldWalks.Get().(*fieldWalk)
	defer w.release()
	w.s = fastScan{b: b, arena: w.arena[:0]}
	env, h, found, sure := w.s.headerStart()
	if !found {
		return nil, false, sure // no Header: nothing is at the path
	}
	w.path = path
	if !h.empty && !w.children(h.name, 0, 0, false) || !w.s.noSecondHeader(env) {
		return nil, false, false
	}
	switch {
	case !w.done:
		return nil, false, true
	case w.segs <= 1:
		return w.first, true, true
	}
	return bytes.Clone(w.text), true, true
}

// fieldWalk is the state of scanHeaderField's walk, pooled with its
// buffers: the scan then allocates nothing.
type fieldWalk struct {
	s     fastScan
	path  []FieldStep
	arena []xml.Attr // the attributes of the tags read
	done  bool       // the first element at the path has been read
	first []byte     // its text, while it is one segment (no copy)
	text  []byte     // its text, from a second segment on
	segs  int
}

var fieldWalks = sync.Pool{New: func() any {
	return &fieldWalk{arena: make([]xml.Attr, 0, 32)}
}}

func (w *fieldWalk) release() {
	if cap(w.s.arena) > cap(w.arena) {
		w.arena = w.s.arena // it grew: keep the bigger one
	}
	clear(w.arena[:cap(w.arena)]) // no body's strings kept alive by the pool
	*w = fieldWalk{arena: w.arena[:0], text: w.text[:0]}
	fieldWalks.Put(w)
}

func (w *fieldWalk) addText(t []byte) {
	w.segs++
	switch w.segs {
	case 1:
		w.first = t
	case 2:
		w.text = append(append(w.text, w.first...), t...)
	default:
		w.text = append(w.text, t...)
	}
}

// ns resolves an element's prefix in the open elements' declarations.
func (w *fieldWalk) ns(prefix string) (string, bool) {
	if prefix == "xml" || prefix == "xmlns" {
		return "", false
	}
	for i := w.s.scoped - 1; i >= 0; i-- {
		for _, a := range w.s.scope[i] {
			if (prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns") ||
				(prefix != "" && a.Name.Space == "xmlns" && a.Name.Local == prefix) {
				return a.Value, true
			}
		}
	}
	return "", true
}

// fieldChildren is children (soap_header_fast.go) without building
// anything: it reads e's content up to its end tag, and the text of the
// first element at the path. matched is how many steps e's ancestors and e
// matched in a row from the Header (-1: e is off the path); capture is
// whether e is inside the element at the path.
func (w *fieldWalk) children(name xml.Name, depth, matched int, capture bool) bool {
	return w.s.content(name, depth,
		func(text []byte) {
			if capture {
				w.addText(text)
			}
		},
		func(t fastTag) bool {
			next := -1
			if matched >= 0 && matched < len(w.path) && !w.done {
				step := w.path[matched]
				if t.name.Local == step.Local {
					uri, known := w.ns(t.name.Space)
					if !known {
						return false
					}
					if step.AnyNS || uri == step.Space {
						next = matched + 1
					}
				}
			}
			at := next == len(w.path)
			if !t.empty && !w.children(t.name, depth+1, next, capture || at) {
				return false
			}
			if at {
				w.done = true
			}
			return true
		})
}
