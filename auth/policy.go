package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"github.com/busbar/busbar/bus"
)

// Policy decides whether a request's caller is who the route lets in. It
// returns the caller's Identity, or a client Fault (401 or 403) whose
// Detail tells the caller nothing an attacker could use; the reason is in
// Fault.Internal, for the log.
type Policy interface {
	Authenticate(r *http.Request) (Identity, *bus.Fault)
}

// Identity is the authenticated caller, for mappings, log lines and
// message traces. It never holds a secret (no key, password or token).
type Identity struct {
	Policy string         // name of the policy that let the caller in
	Kind   string         // that policy's kind: "api-key", "basic", "jwt"
	Name   string         // the caller: key name, username, JWT subject
	Claims map[string]any // a JWT's claims; nil for other kinds
}

// Spec is one kind's settings, decoded strictly from a policy file. Build
// checks them (every error names the field) and returns the policy.
type Spec interface {
	Build(env *Env) (Policy, error)
}

// Env is what a Spec may need to build: the file's directory, for relative
// key paths, and the other policies of the set, for combinations.
type Env struct {
	Name string // the policy's name
	Dir  string // directory of the policy file
	// Policy returns the named policy of the same set, built on demand;
	// it reports unknown names and cycles.
	Policy func(name string) (Policy, error)
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]func() Spec{}
)

// Register makes a policy kind available under name; newSpec returns a
// pointer to zero settings for the decoder to fill. Call it from init():
// an empty or duplicate name panics, so the mistake shows at start-up and
// never at request time.
func Register(name string, newSpec func() Spec) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if name == "" || newSpec == nil {
		panic("auth: Register with an empty name or a nil factory")
	}
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("auth: policy kind %q registered twice", name))
	}
	kinds[name] = newSpec
}

// Kinds lists the registered policy kinds, sorted.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func kind(name string) (func() Spec, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	f, ok := kinds[name]
	return f, ok
}

// The two public details. They are the same for every reason on purpose:
// telling "no such key" from "wrong password" or "expired" helps whoever
// probes the policy; the log (Fault.Internal) has the reason.
const (
	DetailRequired    = "authentication required"
	DetailNotAccepted = "credentials not accepted"
)

// unauthenticated is the 401 for a request that brought no credentials
// this policy reads; challenge is the WWW-Authenticate value.
func unauthenticated(challenge, reason string) *bus.Fault {
	return challenged(bus.ClientFault(http.StatusUnauthorized, "Unauthorized", DetailRequired), challenge, reason)
}

// rejected is the 401 for credentials that were read and refused.
func rejected(challenge, reason string) *bus.Fault {
	return challenged(bus.ClientFault(http.StatusUnauthorized, "Unauthorized", DetailNotAccepted), challenge, reason)
}

// forbidden is the 403 for a caller who proved who it is but lacks a
// required claim or scope: asking again with the same credentials is no use.
func forbidden(reason string) *bus.Fault {
	f := bus.ClientFault(http.StatusForbidden, "Forbidden", DetailNotAccepted)
	f.Internal = reason
	return f
}

func challenged(f *bus.Fault, challenge, reason string) *bus.Fault {
	f.Internal = reason
	if challenge != "" {
		f.Header = http.Header{"Www-Authenticate": {challenge}}
	}
	return f
}

// LogValue puts the caller into log lines as policy, kind and name; the
// claims stay out, since a token's claims may carry personal data.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("policy", id.Policy), slog.String("kind", id.Kind), slog.String("name", id.Name))
}
