package transforms

import (
	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// BoolIn evaluates the expression as a condition over an XML fragment
// instead of the message's payload: frag is the document node and the
// context, its children are the top-level nodes. With a SOAP Header as frag,
// "/h:Routing/h:Target" and "./h:Routing/h:Target" both read the header block
// h:Routing. in supplies everything else (variables, the message id).
//
// Routing on a SOAP header parses the envelope only up to the end of its
// Header; this is how such a condition runs without a parsed body.
func (e *Expr) BoolIn(frag *etree.Element, in *bus.Message) (bool, error) {
	v, err := e.eval(in, frag)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

// startFragment binds the context to a fragment (see BoolIn).
func (c *evalCtx) startFragment(in *bus.Message, frag *etree.Element) {
	c.msg = in
	c.pos, c.last = 1, 1
	c.mode = inputXML
	c.xmlRoot = &xmlNav{root: frag, attr: -1, frag: true}
}
