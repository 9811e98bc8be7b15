package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/busbar/busbar/bus"
)

func init() { Register("api-key", func() Spec { return new(APIKeySpec) }) }

// APIKeySpec is the settings of an `api-key` policy.
type APIKeySpec struct {
	// Header carries the key (default X-API-Key when Query is empty).
	Header string `yaml:"header"`
	// Query names a query parameter that carries the key instead. Keys in
	// URLs end up in access logs and browser histories: prefer a header.
	Query string `yaml:"query"`
	// Keys are the accepted keys, each with the caller it names.
	Keys []APIKey `yaml:"keys"`
}

// APIKey is one accepted key. Only its SHA-256 is stored, so a leaked
// policy file does not leak keys; keys are random, so no slow hash is
// needed (HashAPIKey makes the value).
type APIKey struct {
	Caller string `yaml:"caller"` // the Identity name of whoever holds this key
	SHA256 string `yaml:"sha256"` // hex SHA-256 of the key
}

// HashAPIKey returns the value of an APIKey's sha256 field for key.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

type apiKeyPolicy struct {
	name, header, query, challenge string
	callers                        []string
	sums                           [][]byte
}

func (s *APIKeySpec) Build(env *Env) (Policy, error) {
	if s.Header != "" && s.Query != "" {
		return nil, fmt.Errorf(`"header" and "query" exclude each other`)
	}
	p := &apiKeyPolicy{name: env.Name, header: s.Header, query: s.Query}
	if p.header == "" && p.query == "" {
		p.header = "X-API-Key"
	}
	if p.header != "" {
		p.header = http.CanonicalHeaderKey(p.header)
		p.challenge = fmt.Sprintf(`APIKey realm=%q, header=%q`, env.Name, p.header)
	} else {
		p.challenge = fmt.Sprintf(`APIKey realm=%q, query=%q`, env.Name, p.query)
	}
	if len(s.Keys) == 0 {
		return nil, fmt.Errorf(`"keys": at least one key is required`)
	}
	seen := map[string]int{}
	for i, k := range s.Keys {
		if k.Caller == "" {
			return nil, fmt.Errorf(`"keys"[%d]: "caller" is required`, i)
		}
		sum, err := hex.DecodeString(k.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf(`"keys"[%d] (caller %q): "sha256" must be 64 hex digits (see auth.HashAPIKey)`, i, k.Caller)
		}
		if j, dup := seen[string(sum)]; dup {
			return nil, fmt.Errorf(`"keys"[%d] (caller %q): same key as "keys"[%d]`, i, k.Caller, j)
		}
		seen[string(sum)] = i
		p.callers = append(p.callers, k.Caller)
		p.sums = append(p.sums, sum)
	}
	return p, nil
}

func (p *apiKeyPolicy) Authenticate(r *http.Request) (Identity, *bus.Fault) {
	var key string
	if p.header != "" {
		key = r.Header.Get(p.header)
	} else {
		key = r.URL.Query().Get(p.query)
	}
	if key == "" {
		return Identity{}, unauthenticated(p.challenge, "api-key: no key in the request")
	}
	sum := sha256.Sum256([]byte(key))
	// Every stored hash is compared, without stopping at a match, so the
	// time taken says nothing about which key (or how much of one) matched.
	found := -1
	for i, s := range p.sums {
		if subtle.ConstantTimeCompare(sum[:], s) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, rejected(p.challenge, "api-key: key matches no caller")
	}
	return Identity{Policy: p.name, Kind: "api-key", Name: p.callers[found]}, nil
}
