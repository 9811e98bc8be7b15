package transforms

import (
	"strings"

	"github.com/beevik/etree"
)

// TEMPORARY until the docparse branch lands: ParseDoc through the tree.
func ParseDoc(body []byte, charsetLabel string) (*Doc, error) {
	doc, err := parseXMLFast(body, charsetLabel)
	if err != nil {
		return nil, err
	}
	return tmpDocFromTree(doc), nil
}

func tmpDocFromTree(doc *etree.Document) *Doc {
	e := &doc.Element
	top := e
	for top.Parent() != nil {
		top = top.Parent()
	}
	var b strings.Builder
	d := &Doc{uris: []string{""}}
	span := func(s string) docSpan {
		off := b.Len()
		b.WriteString(s)
		return docSpan{uint32(off), uint32(b.Len())}
	}
	intern := func(u string) int32 {
		for i, x := range d.uris {
			if x == u {
				return int32(i)
			}
		}
		d.uris = append(d.uris, u)
		return int32(len(d.uris) - 1)
	}
	want := int32(-1)
	var add func(t etree.Token, parent int32)
	add = func(t etree.Token, parent int32) {
		i := int32(len(d.nodes))
		d.nodes = append(d.nodes, docNode{parent: parent})
		n := docNode{parent: parent}
		switch x := t.(type) {
		case *etree.Element:
			if x == e {
				want = i
			}
			if parent < 0 {
				n.kind = docDocument // the etree Document's own element
			} else {
				n.kind = docElement
				n.name, n.space, n.ns = span(x.Tag), span(x.Space), intern(x.NamespaceURI())
				n.attr, n.nattr = int32(len(d.attrs)), int32(len(x.Attr))
				for _, a := range x.Attr {
					ns := int32(0)
					if a.Space != "" {
						ns = intern(a.NamespaceURI())
					}
					d.attrs = append(d.attrs, docAttr{span(a.Space), span(a.Key), span(a.Value), ns})
				}
			}
			for _, c := range x.Child {
				add(c, i)
			}
		case *etree.CharData:
			n.kind, n.name = docText, span(x.Data)
		case *etree.Comment:
			n.kind, n.name = docComment, span(x.Data)
		case *etree.ProcInst:
			n.kind, n.name, n.space = docProcInst, span(x.Target), span(x.Inst)
		case *etree.Directive:
			n.kind, n.name = docDirective, span(x.Data)
		}
		n.end = int32(len(d.nodes))
		d.nodes[i] = n
	}
	add(top, -1)
	d.src = b.String()
	_ = want
	return d
}
