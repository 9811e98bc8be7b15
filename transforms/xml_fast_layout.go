package transforms

import (
	"reflect"
	"unsafe"

	"github.com/beevik/etree"
)

// etree keeps a node's parent and index, and an attribute's element, in
// unexported fields that only AddChild and CreateAttr set: per child, AddChild
// asks the node for its parent, then sets the parent and the index through
// two more interface calls and appends. The parser knows all of these when it
// carves a node, so it writes them directly through mirrors of etree's
// structs. The mirrors are used only if etree's structs have exactly these
// fields at these offsets (checked once, below); with any other etree the
// parser takes the exported way, and the differential tests, which check
// Parent, Index and each attribute's element, hold either way to the same
// tree.
type (
	etreeElement struct {
		Space, Tag string
		Attr       []etree.Attr
		Child      []etree.Token
		parent     *etree.Element
		index      int
	}
	etreeCharData struct {
		Data   string
		parent *etree.Element
		index  int
		flags  uint8
	}
	etreeAttr struct {
		Space, Key string
		Value      string
		element    *etree.Element
	}
)

var etreeMirrored = sameLayout[etree.Element, etreeElement]() &&
	sameLayout[etree.CharData, etreeCharData]() &&
	sameLayout[etree.Attr, etreeAttr]()

// sameLayout tells whether T and mirror M have the same fields, by name,
// offset, size and kind (and the same type where M names one of etree's).
func sameLayout[T, M any]() bool {
	t, m := reflect.TypeFor[T](), reflect.TypeFor[M]()
	if t.Size() != m.Size() || t.Align() != m.Align() || t.NumField() != m.NumField() {
		return false
	}
	for i := range t.NumField() {
		tf, mf := t.Field(i), m.Field(i)
		if tf.Name != mf.Name || tf.Offset != mf.Offset || tf.Type.Size() != mf.Type.Size() || tf.Type.Kind() != mf.Type.Kind() {
			return false
		}
		switch mf.Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.String, reflect.Int:
			if tf.Type != mf.Type {
				return false
			}
		}
	}
	return true
}

// adoptOthers sets the parent and index of the comments, processing
// instructions and directives among e's children (e.Child, just filled) as
// AddChild would, with e.Child cut just before each so that AddChild's append
// rewrites the child in place.
func adoptOthers(e *etree.Element) {
	n := len(e.Child)
	for i, k := range e.Child {
		switch k.(type) {
		case *etree.Element, *etree.CharData:
		default:
			e.Child = e.Child[:i]
			e.AddChild(k)
			e.Child = e.Child[:n]
		}
	}
}

// fillAttr fills a, an attribute of e, as CreateAttr would.
func fillAttr(a *etree.Attr, e *etree.Element, space, key, value string) {
	*(*etreeAttr)(unsafe.Pointer(a)) = etreeAttr{Space: space, Key: key, Value: value, element: e}
}
