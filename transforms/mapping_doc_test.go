package transforms

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// docFromTree builds the Doc of the document holding e, independently of
// the parser: the reference the doc-mode navigator is tested against. It
// returns the Doc and e's node.
func docFromTree(e *etree.Element) (*Doc, int32) {
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
	return d, want
}

// docInput is in with its XML payload as a Doc (SetXMLSource) instead of a tree.
func docInput(t testing.TB, in *bus.Message) *bus.Message {
	t.Helper()
	if in.Format != bus.FormatXML || in.Root == nil {
		return in
	}
	d, i := docFromTree(in.Root)
	if i < 0 {
		t.Fatal("payload not found in its document")
	}
	out := *in
	out.SetXMLSource(&DocPayload{Doc: d, Node: i})
	return &out
}

// TestDocInputMatchesTree runs every golden case and docs example with the
// input read as a Doc and as an etree tree: output and faults identical.
func TestDocInputMatchesTree(t *testing.T) {
	dirs, err := filepath.Glob("testdata/mapping/*")
	if err != nil || len(dirs) == 0 {
		t.Fatal("no golden cases", err)
	}
	viaDoc := 0
	for _, dir := range dirs {
		m, err := LoadMapping(filepath.Join(dir, "mapping.yaml"))
		if err != nil {
			continue // the golden test checks the error
		}
		in := goldenInput(t, dir)
		if in.Format != bus.FormatXML {
			continue
		}
		want := outcome(t, m, goldenInput(t, dir))
		got := outcome(t, m, docInput(t, in))
		if want != got {
			t.Errorf("%s: output from a Doc differs from the tree's\ntree:\n%s\ndoc:\n%s", dir, want, got)
		}
		viaDoc++
	}
	_, blocks := readDocBlocks(t)
	for _, ex := range docExamples(t, blocks) {
		m, in, _, err := docExampleMapping(t, ex)
		if m == nil || err != nil || in.Format != bus.FormatXML {
			continue
		}
		where := fmt.Sprintf("%s:%d", docsPath, ex.mapB.start+1)
		tree := *in
		want := outcome(t, m, &tree)
		got := outcome(t, m, docInput(t, in))
		if want != got {
			t.Errorf("%s: output from a Doc differs from the tree's\ntree:\n%s\ndoc:\n%s", where, want, got)
		}
		viaDoc++
	}
	if viaDoc < 15 {
		t.Errorf("only %d XML cases compared", viaDoc)
	}
	t.Logf("%d cases compared", viaDoc)
}
