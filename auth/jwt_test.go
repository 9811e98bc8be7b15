package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC)

func setClock(t *testing.T, at time.Time) {
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

func pemPublic(t *testing.T, key crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, header ...string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for i := 0; i+1 < len(header); i += 2 {
		tok.Header[header[i]] = header[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are a valid token's claims at t0, with changes.
func claims(changes ...any) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "https://idp.test", "aud": "busbar", "sub": "oa-system",
		"exp": t0.Add(5 * time.Minute).Unix(), "nbf": t0.Add(-time.Minute).Unix(),
		"scope": "invoices.read vouchers.write", "tenant": "acme"}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == nil {
			delete(c, changes[i].(string))
		} else {
			c[changes[i].(string)] = changes[i+1]
		}
	}
	return c
}

func bearer(tok string) func() *http.Request { return get("/", "Authorization", "Bearer "+tok) }

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadIn(t *testing.T, dir string, files map[string]string) (Set, error) {
	t.Helper()
	var paths []string
	for name, src := range files {
		writeFile(t, dir, name, []byte(src))
		paths = append(paths, filepath.Join(dir, name))
	}
	return Load(paths...)
}

const jwtPolicyYAML = `
name: partners
kind: jwt
pem: keys/issuer.pem
issuer: https://idp.test
audience: busbar
clock-skew: 30s
claims: {tenant: acme}
scopes: [invoices.read]
`

func TestJWTWithPEM(t *testing.T) {
	setClock(t, t0)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)

	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "keys"), 0o700)
	rsaPEM := pemPublic(t, &rsaKey.PublicKey)
	// Three keys in one file: how an issuer's keys are listed while it rotates.
	writeFile(t, dir, "keys/issuer.pem", append(append(rsaPEM, pemPublic(t, &ecKey.PublicKey)...), pemPublic(t, edPub)...))
	set, err := loadIn(t, dir, map[string]string{"partners.yaml": jwtPolicyYAML})
	if err != nil {
		t.Fatal(err)
	}
	p := set["partners"]

	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKey, c) }
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())
	// The alg-confusion attack: HS256 with the RSA public key's PEM as the
	// HMAC secret, which a verifier that trusts "alg" would accept.
	confused := sign(t, jwt.SigningMethodHS256, rsaPEM, claims())
	const ch = `Bearer realm="partners"`
	run(t, p, []authCase{
		{name: "RS256", req: bearer(rs(claims())), caller: "oa-system"},
		{name: "PS256", req: bearer(sign(t, jwt.SigningMethodPS256, rsaKey, claims())), caller: "oa-system"},
		{name: "ES256", req: bearer(sign(t, jwt.SigningMethodES256, ecKey, claims("sub", "ec"))), caller: "ec"},
		{name: "EdDSA", req: bearer(sign(t, jwt.SigningMethodEdDSA, edKey, claims("sub", "ed"))), caller: "ed"},
		{name: "lower-case scheme", req: get("/", "Authorization", "bearer "+rs(claims())), caller: "oa-system"},
		{name: "audience in a list", req: bearer(rs(claims("aud", []string{"other", "busbar"}))), caller: "oa-system"},
		{name: "scp list", req: bearer(rs(claims("scope", nil, "scp", []string{"invoices.read"}))), caller: "oa-system"},
		{name: "expired within the skew", req: bearer(rs(claims("exp", t0.Add(-20*time.Second).Unix()))), caller: "oa-system"},
		{name: "not yet valid within the skew", req: bearer(rs(claims("nbf", t0.Add(20*time.Second).Unix()))), caller: "oa-system"},

		{name: "missing header", req: get("/"), status: 401, challenge: ch, internal: "no Authorization"},
		{name: "Basic instead", req: get("/", "Authorization", basicHeader("a", "b")), status: 401, challenge: ch + `, error="invalid_request"`, internal: "not a Bearer"},
		{name: "empty bearer", req: get("/", "Authorization", "Bearer "), status: 401, internal: "not a Bearer"},
		{name: "malformed", req: bearer("abc.def"), status: 401, challenge: ch + `, error="invalid_token"`, internal: "malformed"},
		{name: "expired", req: bearer(rs(claims("exp", t0.Add(-time.Minute).Unix()))), status: 401, internal: "expired"},
		{name: "no exp", req: bearer(rs(claims("exp", nil))), status: 401, internal: "exp"},
		{name: "not yet valid", req: bearer(rs(claims("nbf", t0.Add(time.Minute).Unix()))), status: 401, internal: "not valid yet"},
		{name: "wrong issuer", req: bearer(rs(claims("iss", "https://evil.test"))), status: 401, internal: "issuer"},
		{name: "wrong audience", req: bearer(rs(claims("aud", "other"))), status: 401, internal: "audience"},
		{name: "alg none", req: bearer(none), status: 401, internal: "signing method none is invalid"},
		{name: "HS256 signed with the RSA public key", req: bearer(confused), status: 401, internal: "signing method HS256 is invalid"},
		{name: "signed by another key", req: bearer(sign(t, jwt.SigningMethodRS256, otherRSA, claims())), status: 401, internal: "verification"},
		{name: "no sub", req: bearer(rs(claims("sub", nil))), status: 401, internal: `no "sub"`},
		{name: "missing scope", req: bearer(rs(claims("scope", "vouchers.write"))), status: 403, internal: `scope "invoices.read"`},
		{name: "wrong tenant", req: bearer(rs(claims("tenant", "other"))), status: 403, internal: `claim "tenant"`},
		{name: "no tenant", req: bearer(rs(claims("tenant", nil))), status: 403, internal: `claim "tenant"`},
	})

	// Even with an allow-list that lets HS256 through the parser, the key
	// family check would refuse it; the allow-list itself refuses HMAC.
	if _, err := loadIn(t, dir, map[string]string{"partners.yaml": jwtPolicyYAML + "algorithms: [RS256, HS256]\n"}); err == nil || !contains(err.Error(), `"HS256" is not allowed`) {
		t.Errorf("want HS256 refused in the allow-list, got %v", err)
	}
	if keyFits(jwt.SigningMethodHS256, &rsaKey.PublicKey) || keyFits(jwt.SigningMethodES256, &rsaKey.PublicKey) || keyFits(jwt.SigningMethodRS256, &ecKey.PublicKey) {
		t.Error("keyFits lets a key serve another algorithm family")
	}

	// An allow-list narrower than the keys: PS256 with the right key is refused.
	set, err = loadIn(t, dir, map[string]string{"partners.yaml": jwtPolicyYAML + "algorithms: [RS256]\n"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, set["partners"], []authCase{
		{name: "RS256 allowed", req: bearer(rs(claims())), caller: "oa-system"},
		{name: "PS256 not in the list", req: bearer(sign(t, jwt.SigningMethodPS256, rsaKey, claims())), status: 401, internal: "signing method PS256 is invalid"},
		{name: "ES256 not in the list", req: bearer(sign(t, jwt.SigningMethodES256, ecKey, claims())), status: 401, internal: "signing method ES256 is invalid"},
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func TestJWTWithJWKS(t *testing.T) {
	setClock(t, t0)
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	secret := []byte("a-shared-secret-of-32-bytes-long")
	jwks, _ := json.Marshal(map[string]any{"keys": []any{
		rsaJWK("k1", &k1.PublicKey),
		map[string]any{"kty": "oct", "kid": "hmac", "k": b64(secret)},
	}})
	dir := t.TempDir()
	writeFile(t, dir, "idp.jwks.json", jwks)
	set, err := loadIn(t, dir, map[string]string{"p.yaml": "name: p\nkind: jwt\njwks: idp.jwks.json\nissuer: https://idp.test\naudience: busbar\n"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, set["p"], []authCase{
		{name: "kid k1", req: bearer(sign(t, jwt.SigningMethodRS256, k1, claims(), "kid", "k1")), caller: "oa-system"},
		{name: "no kid: every fitting key is tried", req: bearer(sign(t, jwt.SigningMethodRS256, k1, claims())), caller: "oa-system"},
		{name: "unknown kid", req: bearer(sign(t, jwt.SigningMethodRS256, k2, claims(), "kid", "k2")), status: 401, internal: "could not read JWK"},
		{name: "k2 under k1's kid", req: bearer(sign(t, jwt.SigningMethodRS256, k2, claims(), "kid", "k1")), status: 401, internal: "verification"},
		{name: "HS256 with the set's own oct key", req: bearer(sign(t, jwt.SigningMethodHS256, secret, claims(), "kid", "hmac")), status: 401, internal: "HS256 is invalid"},
	})
	// The oct key is refused by the key check as well, whatever the allow-list.
	tok, _ := jwt.Parse(sign(t, jwt.SigningMethodHS256, secret, claims(), "kid", "hmac"), set["p"].(*jwtPolicy).keys)
	if tok != nil && tok.Valid {
		t.Error("an oct key from the JWKS verified an HS256 token")
	}
}

func TestJWTLoadErrors(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	writeFile(t, dir, "pub.pem", pemPublic(t, &k.PublicKey))
	writeFile(t, dir, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv}))
	writeFile(t, dir, "empty.pem", []byte("nothing"))
	writeFile(t, dir, "bad.json", []byte("{"))
	const head = "name: j\nkind: jwt\nissuer: i\naudience: a\n"
	cases := []struct{ src, want string }{
		{head, `exactly one of "pem" and "jwks"`},
		{head + "pem: pub.pem\njwks: x.json\n", `exactly one of "pem" and "jwks"`},
		{"name: j\nkind: jwt\npem: pub.pem\n", `"issuer" and "audience" are required`},
		{head + "pem: pub.pem\nalgorithms: [none]\n", `"none" is not allowed`},
		{head + "pem: pub.pem\nalgorithms: [HS512]\n", `"HS512" is not allowed`},
		{head + "pem: pub.pem\nclock-skew: soon\n", `"clock-skew"`},
		{head + "pem: missing.pem\n", "missing.pem"},
		{head + "pem: priv.pem\n", "only public keys"},
		{head + "pem: empty.pem\n", "no PEM block"},
		{head + "jwks: bad.json\n", "not JSON"},
		{head + "pem: pub.pem\nscope: [x]\n", `"scope"`},
	}
	for i, c := range cases {
		_, err := loadIn(t, dir, map[string]string{"j.yaml": c.src})
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("case %d: want error containing %q, got %v", i, c.want, err)
		}
	}
}
