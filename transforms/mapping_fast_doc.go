package transforms

// fastXPath's walks over a Doc (doc-mode navs, see xmlNav.d): the same steps
// and the same results as the etree walks in mapping_fast.go
// (TestDocInputMatchesTree runs every golden case and docs example over
// both), reading the flat node array instead of following pointers.

func (s *fastStep) matchDoc(d *Doc, e int32) bool {
	if s.any {
		return true
	}
	return d.local(e) == s.local && (!s.hasNS || d.uri(e) == s.ns)
}

func (s *fastStep) matchDocAttr(d *Doc, a int32) bool {
	if d.nsDecl(a) {
		return false
	}
	if s.any {
		return true
	}
	at := &d.attrs[a]
	return d.str(at.key) == s.local && (!s.hasNS || d.uris[at.ns] == s.ns)
}

// docStart is start for a doc-mode nav.
func (f *fastXPath) docStart(at *xmlNav) (from int32, step int, ok bool) {
	if at.attr >= 0 {
		return 0, 0, false
	}
	d := at.d
	if f.absolute || at.dn < 0 {
		if f.steps[0].attr || !f.steps[0].matchDoc(d, at.dr) {
			return 0, -1, true
		}
		return at.dr, 1, true
	}
	if d.nodes[at.dn].kind != docElement {
		return 0, 0, false
	}
	return at.dn, 0, true
}

func (f *fastXPath) docSelected(at *xmlNav, c *evalCtx) (found []xmlNav, handled bool) {
	from, step, ok := f.docStart(at)
	if !ok {
		return nil, false
	}
	if step < 0 {
		return nil, true
	}
	if step == len(f.steps) {
		return append(c.navBuf(1), xmlNav{d: at.d, dr: at.dr, dn: from, attr: -1}), true
	}
	if c != nil {
		return c.navCollect(func(out []xmlNav) []xmlNav { return f.docCollect(at, from, step, out) }), true
	}
	n := f.docCount(at.d, from, step)
	if n == 0 {
		return nil, true
	}
	return f.docCollect(at, from, step, make([]xmlNav, 0, n)), true
}

func (f *fastXPath) docCount(d *Doc, e int32, i int) int {
	s := &f.steps[i]
	n := 0
	el := &d.nodes[e]
	if s.attr {
		for a := el.attr; a < el.attr+el.nattr; a++ {
			if s.matchDocAttr(d, a) {
				n++
			}
		}
		return n
	}
	last := i == len(f.steps)-1
	for c := e + 1; c < el.end; c = d.nodes[c].end {
		if d.nodes[c].kind != docElement || !s.matchDoc(d, c) {
			continue
		}
		if last {
			n++
		} else {
			n += f.docCount(d, c, i+1)
		}
	}
	return n
}

// docCollect appends the nodes steps[i:] select below e, in document order.
func (f *fastXPath) docCollect(at *xmlNav, e int32, i int, out []xmlNav) []xmlNav {
	s := &f.steps[i]
	d := at.d
	el := &d.nodes[e]
	if s.attr {
		for a := el.attr; a < el.attr+el.nattr; a++ {
			if s.matchDocAttr(d, a) {
				out = append(out, xmlNav{d: d, dr: at.dr, dn: e, attr: a - el.attr})
			}
		}
		return out
	}
	last := i == len(f.steps)-1
	for c := e + 1; c < el.end; c = d.nodes[c].end {
		if d.nodes[c].kind != docElement || !s.matchDoc(d, c) {
			continue
		}
		if last {
			out = append(out, xmlNav{d: d, dr: at.dr, dn: c, attr: -1})
		} else {
			out = f.docCollect(at, c, i+1, out)
		}
	}
	return out
}

// docFirstNode is firstNode for a doc-mode nav.
func (f *fastXPath) docFirstNode(at *xmlNav) (n xmlNav, found, handled bool) {
	from, step, ok := f.docStart(at)
	if !ok {
		return xmlNav{}, false, false
	}
	if step < 0 {
		return xmlNav{}, false, true
	}
	attr := int32(-1)
	if step < len(f.steps) {
		if from, attr = f.docFirst(at.d, from, step); from < 0 {
			return xmlNav{}, false, true
		}
	}
	return xmlNav{d: at.d, dr: at.dr, dn: from, attr: attr}, true, true
}

// docFirst is the first node steps[i:] select below e: an element and -1,
// or an element and the index of its attribute; -1 when there is none.
func (f *fastXPath) docFirst(d *Doc, e int32, i int) (node, attr int32) {
	s := &f.steps[i]
	el := &d.nodes[e]
	if s.attr {
		for a := el.attr; a < el.attr+el.nattr; a++ {
			if s.matchDocAttr(d, a) {
				return e, a - el.attr
			}
		}
		return -1, -1
	}
	last := i == len(f.steps)-1
	for c := e + 1; c < el.end; c = d.nodes[c].end {
		if d.nodes[c].kind != docElement || !s.matchDoc(d, c) {
			continue
		}
		if last {
			return c, -1
		}
		if n, a := f.docFirst(d, c, i+1); n >= 0 {
			return n, a
		}
	}
	return -1, -1
}

// docText is text for a doc-mode nav, without making a nav of the node.
func (f *fastXPath) docText(at *xmlNav) (s string, found, handled bool) {
	from, step, ok := f.docStart(at)
	if !ok {
		return "", false, false
	}
	if step < 0 {
		return "", false, true
	}
	d := at.d
	if step < len(f.steps) {
		var attr int32
		if from, attr = f.docFirst(d, from, step); from < 0 {
			return "", false, true
		}
		if attr >= 0 {
			return d.str(d.attrs[d.nodes[from].attr+attr].value), true, true
		}
	}
	return d.text(from), true, true
}
