package routes

import (
	"bytes"
	"os"
	"reflect"
	"sync"

	"github.com/busbar/busbar/bus"
)

// Reusing makes Load take over the connectors of prev (the configuration
// serving now) whose decoded configuration did not change, with their
// breakers, in-flight counts and idle connections: a reload for an
// unrelated edit must not close an open breaker and let every caller hit a
// backend that is down, nor lift a max-inflight cap for the calls in flight.
// A connector whose configuration changed in any way starts afresh.
func Reusing(prev *Config) Option {
	return func(o *options) { o.reuse = prev }
}

// builtConnector is what a connector was built from, to compare on reload.
type builtConnector struct {
	kind  string
	cfg   bus.ConnectorConfig
	files [][]byte // the contents of the files the configuration names (TLS material)
}

// handOff is the set of connectors a Config's Close leaves open: those a
// newer Config took over, and, while a Load that reuses them may still
// fail, those it took over itself.
type handOff struct {
	mu    sync.Mutex
	names map[string]bool
}

func (h *handOff) add(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string]bool{}
	}
	h.names[name] = true
}

func (h *handOff) remove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.names, name)
}

func (h *handOff) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[name]
}

// reuseOrBuild builds a connector, or takes over the previous
// configuration's one built from an identical configuration. The decoded
// values are compared, not the text: a comment or a reordered key changes
// nothing, a changed URL or breaker setting does. A file the configuration
// names (a certificate) is compared by content, since its name may stay the
// same when it is replaced. Substituted connectors (WithConnectors) are
// never reused.
func (l *loader) reuseOrBuild(name, kind string, cfg bus.ConnectorConfig) (bus.Connector, error) {
	built := builtConnector{kind: kind, cfg: cfg}
	if f, ok := cfg.(interface{ Files() []string }); ok {
		for _, p := range f.Files() {
			b, err := os.ReadFile(p)
			if err != nil {
				b = nil // Validate read it a moment ago; a file gone now just never matches
			}
			built.files = append(built.files, b)
		}
	}
	if l.cfg.built == nil {
		l.cfg.built = map[string]builtConnector{}
	}
	l.cfg.built[name] = built
	if prev := l.opts.reuse; prev != nil && l.opts.connector == nil {
		if old, ok := prev.built[name]; ok && sameBuild(old, built) && prev.Connectors[name] != nil {
			l.cfg.handedOff.add(name) // not ours to close until the load succeeds (see handOver)
			l.reused = append(l.reused, name)
			return prev.Connectors[name], nil
		}
	}
	return l.buildConnector(name, kind, cfg)
}

// handOver completes a successful Load: the connectors it reused are now
// its own, and the previous configuration's Close leaves them open.
func (l *loader) handOver() {
	for _, name := range l.reused {
		l.opts.reuse.handedOff.add(name)
		l.cfg.handedOff.remove(name)
	}
}

func sameBuild(a, b builtConnector) bool {
	if a.kind != b.kind || !reflect.DeepEqual(a.cfg, b.cfg) || len(a.files) != len(b.files) {
		return false
	}
	for i := range a.files {
		if a.files[i] == nil || !bytes.Equal(a.files[i], b.files[i]) {
			return false
		}
	}
	return true
}
