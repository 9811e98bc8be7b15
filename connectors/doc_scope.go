package connectors

import (
	"context"
	"sync"

	"github.com/busbar/busbar/transforms"
)

// docScope holds the documents parsed from the replies of one inbound
// request's connector calls and releases them
// (transforms.Doc.Release) once the request is answered, so that the next
// request parses into the same, still cached, arrays.
//
// That is safe because nothing keeps a request's messages beyond it: the
// server, the routes' steps and the connectors run a request on its own
// goroutine, each step returning before the next starts, and what a message
// hands on (strings, etree copies, serialised bytes) does not point into a
// Doc's arrays. A step that ever keeps a message for later (store and
// forward) must serialise it, as it must anyway to survive a restart.
//
// The request's own document is not kept: a scope holds what it keeps until
// the reply is written, and the request's document would then stay
// reachable while the route waits on its backend (as many documents as
// requests in flight); dropped, it is garbage once the request is mapped.
type docScope struct {
	mu   sync.Mutex // a route may one day call connectors in parallel
	docs []*transforms.Doc
}

type docScopeKey struct{}

var docScopePool = sync.Pool{New: func() any { return new(docScope) }}

// withDocScope starts the scope of one inbound request.
func withDocScope(ctx context.Context) (context.Context, *docScope) {
	s := docScopePool.Get().(*docScope)
	return context.WithValue(ctx, docScopeKey{}, s), s
}

// add puts d in the scope; a nil scope (a call made outside an inbound
// request, e.g. from a test) leaves d to the collector.
func (s *docScope) add(d *transforms.Doc) {
	if s == nil || d == nil {
		return
	}
	s.mu.Lock()
	s.docs = append(s.docs, d)
	s.mu.Unlock()
}

// keepDoc puts d in the scope of the request ctx belongs to, if any.
func keepDoc(ctx context.Context, d *transforms.Doc) {
	s, _ := ctx.Value(docScopeKey{}).(*docScope)
	s.add(d)
}

// release releases the scope's documents and pools the scope. Call it once
// the request's reply is written.
func (s *docScope) release() {
	for i, d := range s.docs {
		d.Release()
		s.docs[i] = nil
	}
	s.docs = s.docs[:0]
	docScopePool.Put(s)
}
