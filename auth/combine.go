package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/busbar/busbar/bus"
)

func init() {
	Register("any-of", func() Spec { return &combineSpec{all: false} })
	Register("all-of", func() Spec { return &combineSpec{all: true} })
}

// combineSpec is the settings of an `any-of` or `all-of` policy: other
// policies of the set, by name, tried in the order written.
type combineSpec struct {
	// Policies are the members' names.
	Policies []string `yaml:"policies"`
	all      bool
}

func (s *combineSpec) Build(env *Env) (Policy, error) {
	if len(s.Policies) < 2 {
		return nil, errors.New(`"policies": name at least two policies to combine`)
	}
	c := &combined{all: s.all}
	seen := map[string]bool{}
	for _, name := range s.Policies {
		if seen[name] {
			return nil, fmt.Errorf(`"policies": %q listed twice`, name)
		}
		seen[name] = true
		p, err := env.Policy(name)
		if err != nil {
			return nil, fmt.Errorf(`"policies": %w`, err)
		}
		c.members = append(c.members, p)
	}
	return c, nil
}

// combined is any-of (the first member that accepts lets the caller in)
// or all-of (every member must accept; a mutual-TLS-plus-key kind of
// policy). The Identity is the accepting member's (any-of) or the first
// member's (all-of), so Identity.Policy names a member, not the
// combination.
type combined struct {
	all     bool
	members []Policy
}

func (c *combined) Authenticate(r *http.Request) (Identity, *bus.Fault) {
	if c.all {
		var first Identity
		for i, m := range c.members {
			id, f := m.Authenticate(r)
			if f != nil {
				return Identity{}, f
			}
			if i == 0 {
				first = id
			}
		}
		return first, nil
	}
	var faults []*bus.Fault
	for _, m := range c.members {
		id, f := m.Authenticate(r)
		if f == nil {
			return id, nil
		}
		faults = append(faults, f)
	}
	return Identity{}, anyOfFault(faults)
}

// anyOfFault is the refusal when no member accepted. Credentials that
// were read and refused say more than a missing one, and a 403 (who the
// caller is was proved) most of all; the challenges of every member go
// with a 401 so the caller learns each way in; the log gets every reason.
func anyOfFault(faults []*bus.Fault) *bus.Fault {
	rank := func(f *bus.Fault) int {
		switch {
		case f.Status == http.StatusForbidden:
			return 2
		case f.Detail == DetailRequired:
			return 0
		}
		return 1
	}
	best := faults[0]
	var reasons []string
	challenges := http.Header{}
	for _, f := range faults {
		if rank(f) > rank(best) {
			best = f
		}
		reasons = append(reasons, f.Internal)
		for _, v := range f.Header.Values("Www-Authenticate") {
			challenges.Add("Www-Authenticate", v)
		}
	}
	out := *best
	out.Internal = "any-of: " + strings.Join(reasons, "; ")
	if out.Status == http.StatusUnauthorized {
		out.Header = challenges
	}
	return &out
}
