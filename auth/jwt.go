package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/busbar/busbar/bus"
)

func init() { Register("jwt", func() Spec { return new(JWTSpec) }) }

// JWTSpec is the settings of a `jwt` policy: a bearer token (RFC 6750)
// verified with public keys only.
type JWTSpec struct {
	// PEM is a file of public keys ("PUBLIC KEY", "RSA PUBLIC KEY" or
	// "CERTIFICATE" blocks; RSA, ECDSA or Ed25519), relative to the policy
	// file. Several blocks are several keys: the old and the new one while
	// a key is rotated.
	PEM string `yaml:"pem"`
	// JWKS is a JSON Web Key Set file, relative to the policy file; a
	// token's "kid" picks the key. A JWKS URL with refresh is not yet
	// supported. Symmetric ("oct") keys in the set are never used.
	JWKS string `yaml:"jwks"`
	// Issuer must equal the token's "iss" (required).
	Issuer string `yaml:"issuer"`
	// Audience must be one of the token's "aud" (required), so that a token
	// the same issuer made for another service is refused here.
	Audience string `yaml:"audience"`
	// Algorithms is the allow-list of "alg" values (default: every RSA,
	// RSA-PSS, ECDSA and EdDSA algorithm). HMAC algorithms and "none" are
	// refused: this policy holds no shared secret.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is how far "exp" and "nbf" may be off (default 30s).
	ClockSkew string `yaml:"clock-skew"`
	// Claims must be present with these values (for an array claim: among
	// its values); a missing or other value is a 403.
	Claims map[string]string `yaml:"claims"`
	// Scopes must all be granted, in "scope" (space-separated) or "scp".
	Scopes []string `yaml:"scopes"`
}

// asymmetric are the algorithms a public key can verify.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type jwtPolicy struct {
	name, challenge string
	parser          *jwt.Parser
	keys            jwt.Keyfunc
	claims          map[string]string
	scopes          []string
}

// now is the clock of the jwt policies; tests move it.
var now = time.Now

func (s *JWTSpec) Build(env *Env) (Policy, error) {
	if (s.PEM == "") == (s.JWKS == "") {
		return nil, errors.New(`exactly one of "pem" and "jwks" is required`)
	}
	if s.Issuer == "" || s.Audience == "" {
		return nil, errors.New(`"issuer" and "audience" are required`)
	}
	algs := s.Algorithms
	if len(algs) == 0 {
		algs = asymmetric
	}
	for _, a := range algs {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf(`"algorithms": %q is not allowed (allowed: %s); HMAC and "none" never are`, a, strings.Join(asymmetric, ", "))
		}
	}
	skew := 30 * time.Second
	if s.ClockSkew != "" {
		d, err := time.ParseDuration(s.ClockSkew)
		if err != nil || d < 0 {
			return nil, fmt.Errorf(`"clock-skew": %q is not a duration like 30s`, s.ClockSkew)
		}
		skew = d
	}
	p := &jwtPolicy{
		name:      env.Name,
		challenge: fmt.Sprintf(`Bearer realm=%q`, env.Name),
		claims:    s.Claims,
		scopes:    s.Scopes,
		parser: jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithIssuer(s.Issuer), jwt.WithAudience(s.Audience),
			jwt.WithLeeway(skew), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now() })),
	}
	var err error
	if s.PEM != "" {
		p.keys, err = pemKeys(resolve(env.Dir, s.PEM))
	} else {
		p.keys, err = jwksKeys(resolve(env.Dir, s.JWKS))
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func resolve(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

func pemKeys(path string) (jwt.Keyfunc, error) {
	rest, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf(`"pem": %w`, err)
	}
	var keys []any
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var key any
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = c.PublicKey
			}
		default:
			// A private key here means it was copied where it should not be:
			// say so rather than verify with it.
			return nil, fmt.Errorf(`"pem": %s: a %q block; only public keys and certificates belong here`, path, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf(`"pem": %s: %w`, path, err)
		}
		if !publicKey(key) {
			return nil, fmt.Errorf(`"pem": %s: a %T key; RSA, ECDSA or Ed25519 expected`, path, key)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf(`"pem": %s holds no PEM block`, path)
	}
	return func(t *jwt.Token) (any, error) {
		// Only keys of the token's algorithm family are offered, so the
		// token's "alg" can never make a public key serve as an HMAC secret.
		var set jwt.VerificationKeySet
		for _, k := range keys {
			if keyFits(t.Method, k) {
				set.Keys = append(set.Keys, k)
			}
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("no key for alg %s", t.Method.Alg())
		}
		return set, nil
	}, nil
}

func jwksKeys(path string) (jwt.Keyfunc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf(`"jwks": %w`, err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf(`"jwks": %s is not JSON`, path)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf(`"jwks": %s: %w`, path, err)
	}
	return func(t *jwt.Token) (any, error) {
		key, err := kf.Keyfunc(t)
		if err != nil {
			return nil, err
		}
		// A JWKS may carry symmetric keys, and a JWK without "alg" does not
		// bind its algorithm: the same family check as for PEM keys applies.
		switch k := key.(type) {
		case jwt.VerificationKeySet:
			k.Keys = slices.DeleteFunc(k.Keys, func(key jwt.VerificationKey) bool { return !keyFits(t.Method, key) })
			if len(k.Keys) == 0 {
				return nil, fmt.Errorf("no key for alg %s", t.Method.Alg())
			}
			return k, nil
		default:
			if !keyFits(t.Method, key) {
				return nil, fmt.Errorf("key %v is a %T, not a key for alg %s", t.Header["kid"], key, t.Method.Alg())
			}
			return key, nil
		}
	}, nil
}

func publicKey(key any) bool {
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// keyFits says whether key verifies signatures of method: the defence
// against algorithm confusion (RFC 8725 §2.1, §3.1).
func keyFits(method jwt.SigningMethod, key any) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		switch method.(type) {
		case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
			return true
		}
	case *ecdsa.PublicKey:
		_, ok := method.(*jwt.SigningMethodECDSA)
		return ok
	case ed25519.PublicKey:
		_, ok := method.(*jwt.SigningMethodEd25519)
		return ok
	}
	return false
}

func (p *jwtPolicy) Authenticate(r *http.Request) (Identity, *bus.Fault) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Identity{}, unauthenticated(p.challenge, "jwt: no Authorization header")
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, rejected(p.challenge+`, error="invalid_request"`, "jwt: Authorization header is not a Bearer token")
	}
	claims := jwt.MapClaims{}
	if _, err := p.parser.ParseWithClaims(token, claims, p.keys); err != nil {
		return Identity{}, rejected(p.challenge+`, error="invalid_token"`, "jwt: "+err.Error())
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return Identity{}, rejected(p.challenge+`, error="invalid_token"`, `jwt: no "sub" claim`)
	}
	for name, want := range p.claims {
		if !claimHas(claims[name], want) {
			return Identity{}, forbidden(fmt.Sprintf("jwt: subject %q: claim %q is not %q", sub, name, want))
		}
	}
	granted := scopes(claims)
	for _, s := range p.scopes {
		if !slices.Contains(granted, s) {
			return Identity{}, forbidden(fmt.Sprintf("jwt: subject %q: scope %q not granted", sub, s))
		}
	}
	return Identity{Policy: p.name, Kind: "jwt", Name: sub, Claims: claims}, nil
}

func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	case bool, float64:
		return fmt.Sprint(v) == want
	}
	return false
}

// scopes reads "scope" (RFC 8693: space-separated) and "scp" (Azure AD,
// Okta: a list or a string).
func scopes(c jwt.MapClaims) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch v := c[name].(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
