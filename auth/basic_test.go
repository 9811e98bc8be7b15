package auth

import (
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost) // a test needs no slow hash
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasic(t *testing.T) {
	p := mustPolicy(t, "sap", map[string]string{"sap.yaml": `
name: sap
kind: basic
realm: SAP inbound
users:
  - name: sap-pi
    bcrypt: ` + bcryptHash(t, "s3cret") + `
  - name: oracle
    bcrypt: ` + strings.Replace(bcryptHash(t, "or@cle:pw"), "$2a$", "$2y$", 1) + ` # htpasswd -B writes $2y$
`})
	const challenge = `Basic realm="SAP inbound"`
	run(t, p, []authCase{
		{name: "good", req: get("/", "Authorization", basicHeader("sap-pi", "s3cret")), caller: "sap-pi"},
		{name: "password with a colon", req: get("/", "Authorization", basicHeader("oracle", "or@cle:pw")), caller: "oracle"},
		{name: "missing header", req: get("/"), status: 401, challenge: challenge, internal: "no Authorization"},
		{name: "wrong password", req: get("/", "Authorization", basicHeader("sap-pi", "S3cret")), status: 401, challenge: challenge, internal: "wrong password"},
		{name: "unknown user", req: get("/", "Authorization", basicHeader("root", "s3cret")), status: 401, challenge: challenge, internal: "unknown user"},
		{name: "empty password", req: get("/", "Authorization", basicHeader("sap-pi", "")), status: 401, internal: "wrong password"},
		{name: "bearer instead", req: get("/", "Authorization", "Bearer x"), status: 401, challenge: challenge, internal: "not Basic"},
		{name: "malformed base64", req: get("/", "Authorization", "Basic %%%"), status: 401, internal: "not Basic"},
		{name: "no colon", req: get("/", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("sap-pi"))), status: 401, internal: "not Basic"},
	})
}

func TestBasicLoadErrors(t *testing.T) {
	h := bcryptHash(t, "x")
	cases := []struct{ src, want string }{
		{"name: b\nkind: basic\n", "at least one user"},
		{"name: b\nkind: basic\nusers: [{name: a, bcrypt: plain}]\n", "not a bcrypt hash"},
		{"name: b\nkind: basic\nusers: [{name: a, bcrypt: '" + h + "'}, {name: a, bcrypt: '" + h + "'}]\n", "listed twice"},
		{"name: b\nkind: basic\nusers: [{name: a, password: x}]\n", "password"},
	}
	for i, c := range cases {
		_, err := load(t, map[string]string{"b.yaml": c.src})
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("case %d: want error containing %q, got %v", i, c.want, err)
		}
	}
}
