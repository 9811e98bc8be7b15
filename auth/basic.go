package auth

import (
	"fmt"
	"net/http"

	"golang.org/x/crypto/bcrypt"

	"github.com/busbar/busbar/bus"
)

func init() { Register("basic", func() Spec { return new(BasicSpec) }) }

// BasicSpec is the settings of a `basic` policy (HTTP Basic, RFC 7617).
type BasicSpec struct {
	// Realm is sent in the challenge (default: the policy's name).
	Realm string `yaml:"realm"`
	// Users are the accepted users and their bcrypt hashes
	// (`htpasswd -nbB user pass` prints one after the colon).
	Users []BasicUser `yaml:"users"`
}

// BasicUser is one accepted user.
type BasicUser struct {
	Name   string `yaml:"name"`
	Bcrypt string `yaml:"bcrypt"`
}

type basicPolicy struct {
	name, challenge string
	users           map[string][]byte
	// decoy is compared when the user is unknown, so an unknown name costs
	// a bcrypt comparison too and the timing does not list the users.
	decoy []byte
}

func (s *BasicSpec) Build(env *Env) (Policy, error) {
	realm := s.Realm
	if realm == "" {
		realm = env.Name
	}
	p := &basicPolicy{name: env.Name, challenge: fmt.Sprintf(`Basic realm=%q, charset="UTF-8"`, realm), users: map[string][]byte{}}
	if len(s.Users) == 0 {
		return nil, fmt.Errorf(`"users": at least one user is required`)
	}
	maxCost := bcrypt.MinCost
	for i, u := range s.Users {
		if u.Name == "" {
			return nil, fmt.Errorf(`"users"[%d]: "name" is required`, i)
		}
		if _, dup := p.users[u.Name]; dup {
			return nil, fmt.Errorf(`"users"[%d]: user %q listed twice`, i, u.Name)
		}
		cost, err := bcrypt.Cost([]byte(u.Bcrypt))
		if err != nil {
			return nil, fmt.Errorf(`"users"[%d] (user %q): "bcrypt" is not a bcrypt hash`, i, u.Name)
		}
		maxCost = max(maxCost, cost)
		p.users[u.Name] = []byte(u.Bcrypt)
	}
	decoy, err := bcrypt.GenerateFromPassword([]byte("busbar decoy"), maxCost)
	if err != nil {
		return nil, err
	}
	p.decoy = decoy
	return p, nil
}

func (p *basicPolicy) Authenticate(r *http.Request) (Identity, *bus.Fault) {
	if r.Header.Get("Authorization") == "" {
		return Identity{}, unauthenticated(p.challenge, "basic: no Authorization header")
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return Identity{}, rejected(p.challenge, "basic: Authorization header is not Basic credentials")
	}
	hash, known := p.users[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(p.decoy, []byte(pass))
		return Identity{}, rejected(p.challenge, fmt.Sprintf("basic: unknown user %q", user))
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return Identity{}, rejected(p.challenge, fmt.Sprintf("basic: wrong password for user %q", user))
	}
	return Identity{Policy: p.name, Kind: "basic", Name: user}, nil
}
