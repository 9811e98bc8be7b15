package auth

import (
	"strings"
	"testing"
)

func TestAPIKey(t *testing.T) {
	header := mustPolicy(t, "oa", map[string]string{"oa.yaml": `
name: oa
kind: api-key
keys:
  - caller: oa-system
    sha256: ` + HashAPIKey("k-oa-1") + `
  - caller: expense
    sha256: ` + strings.ToUpper(HashAPIKey("k-exp-2")) + `
`})
	run(t, header, []authCase{
		{name: "first key", req: get("/", "X-API-Key", "k-oa-1"), caller: "oa-system"},
		{name: "second key, stored in upper-case hex", req: get("/", "x-api-key", "k-exp-2"), caller: "expense"},
		{name: "missing header", req: get("/"), status: 401, challenge: `APIKey realm="oa", header="X-Api-Key"`, internal: "no key"},
		{name: "wrong key", req: get("/", "X-API-Key", "k-oa-2"), status: 401, challenge: "APIKey", internal: "matches no caller"},
		{name: "the stored hash as key", req: get("/", "X-API-Key", HashAPIKey("k-oa-1")), status: 401, internal: "matches no caller"},
		{name: "key in the query is not read", req: get("/?api_key=k-oa-1"), status: 401, internal: "no key"},
	})

	query := mustPolicy(t, "q", map[string]string{"q.yaml": `
name: q
kind: api-key
query: api_key
keys: [{caller: portal, sha256: ` + HashAPIKey("k-portal") + `}]
`})
	run(t, query, []authCase{
		{name: "query key", req: get("/x?api_key=k-portal"), caller: "portal"},
		{name: "header is not read", req: get("/x", "X-API-Key", "k-portal"), status: 401, challenge: `APIKey realm="q", query="api_key"`, internal: "no key"},
		{name: "wrong query key", req: get("/x?api_key=nope"), status: 401, internal: "matches no caller"},
	})
}

func TestHashAPIKey(t *testing.T) {
	// echo -n test | sha256sum
	if got, want := HashAPIKey("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; got != want {
		t.Fatalf("want %s, got %s", want, got)
	}
}
