package transforms

import (
	"math/bits"
	"sync"
)

// A Doc's node and attribute arrays are pooled: a server parses documents
// of similar sizes all day, and handing the next one the arrays of the last
// (Release) spares allocating, zeroing and collecting them, and the next
// parse writes memory still in the cache instead of fresh pages — the
// larger part of a parse's cost (BenchmarkParseDoc, pooled and not).
//
// Arrays are kept by size class (a power of two), so that a small document
// does not take the array a large one needs. src is never pooled: strings
// that a mapping or a caller took from a document (vars, fault texts) point
// into it and must stay what they were.

const (
	minPoolShift = 6  // the smallest class: 64 items
	maxPoolShift = 17 // arrays above 128 Ki items are left to the collector
)

var (
	nodePools [maxPoolShift + 1]sync.Pool // *[]docNode by class
	attrPools [maxPoolShift + 1]sync.Pool // *[]docAttr by class
)

// poolClass is the class whose arrays hold at least n items, -1 when n is
// beyond the largest.
func poolClass(n int) int {
	if n <= 1<<minPoolShift {
		return minPoolShift
	}
	k := bits.Len(uint(n - 1))
	if k > maxPoolShift {
		return -1
	}
	return k
}

// getNodes is an empty node array with room for at least n nodes; pooled
// reports whether it was used before (its items are not zero).
func getNodes(n int) (nodes []docNode, pooled bool) {
	k := poolClass(n)
	if k < 0 {
		return make([]docNode, 0, n), false
	}
	if p, ok := nodePools[k].Get().(*[]docNode); ok {
		return (*p)[:0], true
	}
	return make([]docNode, 0, 1<<k), false
}

func getAttrs(n int) []docAttr {
	k := poolClass(n)
	if k < 0 {
		return make([]docAttr, 0, n)
	}
	if p, ok := attrPools[k].Get().(*[]docAttr); ok {
		return (*p)[:0]
	}
	return make([]docAttr, 0, 1<<k)
}

// putNodes pools an array made by getNodes (its capacity is a class's).
func putNodes(s []docNode) {
	if k := poolClass(cap(s)); k >= 0 && cap(s) == 1<<k {
		s = s[:0]
		nodePools[k].Put(&s)
	}
}

func putAttrs(s []docAttr) {
	if k := poolClass(cap(s)); k >= 0 && cap(s) == 1<<k {
		s = s[:0]
		attrPools[k].Put(&s)
	}
}

// Release gives d's arrays back for the next document to use. Call it when
// nothing will read d again: whoever parsed it for one request, once that
// request is answered (connectors do, see their docScope). Strings taken from
// d stay valid, and so do the etree copies Element made; d itself is empty
// afterwards (a read of it panics rather than seeing another document).
func (d *Doc) Release() {
	if d == nil || d.nodes == nil {
		return
	}
	putNodes(d.nodes)
	if d.attrs != nil {
		putAttrs(d.attrs)
	}
	d.nodes, d.attrs = nil, nil
}

// Released reports whether Release has given d's arrays back.
func (d *Doc) Released() bool { return d.nodes == nil }
