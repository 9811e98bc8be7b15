package auth

import (
	"net/http"
	"slices"
	"testing"

	"github.com/busbar/busbar/bus"
)

func TestCombinations(t *testing.T) {
	h := bcryptHash(t, "pw")
	files := map[string]string{
		"key.yaml":    "name: key\nkind: api-key\nkeys: [{caller: oa, sha256: " + HashAPIKey("k1") + "}]\n",
		"user.yaml":   "name: user\nkind: basic\nusers: [{name: sap, bcrypt: '" + h + "'}]\n",
		"either.yaml": "name: either\nkind: any-of\npolicies: [key, user]\n",
		"both.yaml":   "name: both\nkind: all-of\npolicies: [key, user]\n",
		// A combination of a combination: members are built on demand, in any file order.
		"nested.yaml": "name: nested\nkind: any-of\npolicies: [both, key]\n",
	}
	set, err := load(t, files)
	if err != nil {
		t.Fatal(err)
	}
	auth := "Authorization"
	run(t, set["either"], []authCase{
		{name: "key", req: get("/", "X-API-Key", "k1"), caller: "oa"},
		{name: "user", req: get("/", auth, basicHeader("sap", "pw")), caller: "sap"},
		{name: "bad key, good user", req: get("/", "X-API-Key", "nope", auth, basicHeader("sap", "pw")), caller: "sap"},
		{name: "nothing", req: get("/"), status: 401, challenge: "APIKey", internal: "any-of: api-key: no key in the request; basic: no Authorization"},
		{name: "bad key, no user", req: get("/", "X-API-Key", "nope"), status: 401, internal: "matches no caller"},
	})
	run(t, set["both"], []authCase{
		{name: "both", req: get("/", "X-API-Key", "k1", auth, basicHeader("sap", "pw")), caller: "oa"},
		{name: "key only", req: get("/", "X-API-Key", "k1"), status: 401, challenge: "Basic", internal: "no Authorization"},
		{name: "user only", req: get("/", auth, basicHeader("sap", "pw")), status: 401, challenge: "APIKey", internal: "no key"},
		{name: "wrong password", req: get("/", "X-API-Key", "k1", auth, basicHeader("sap", "x")), status: 401, internal: "wrong password"},
	})
	run(t, set["nested"], []authCase{
		{name: "key alone", req: get("/", "X-API-Key", "k1"), caller: "oa"},
		{name: "user alone", req: get("/", auth, basicHeader("sap", "pw")), status: 401, internal: "no key"},
	})

	// Every member's challenge goes with an any-of 401.
	_, f := set["either"].Authenticate(get("/")())
	if got := f.Header.Values("WWW-Authenticate"); len(got) != 2 || !slices.ContainsFunc(got, func(s string) bool { return s[:5] == "Basic" }) {
		t.Errorf("want the APIKey and Basic challenges, got %q", got)
	}
	// A 403 from one member outranks a 401 from another.
	forbid := anyOfFault([]*bus.Fault{unauthenticated("X", "a"), forbidden("b"), rejected("Y", "c")})
	if forbid.Status != http.StatusForbidden || forbid.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("want a bare 403, got %d %v", forbid.Status, forbid.Header)
	}
}

func TestCombinationLoadErrors(t *testing.T) {
	key := "name: key\nkind: api-key\nkeys: [{caller: oa, sha256: " + HashAPIKey("k1") + "}]\n"
	cases := []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"a.yaml": "name: a\nkind: any-of\npolicies: [key, ghost]\n", "key.yaml": key}, `no policy named "ghost"`},
		{map[string]string{"a.yaml": "name: a\nkind: any-of\npolicies: [key]\n", "key.yaml": key}, "at least two"},
		{map[string]string{"a.yaml": "name: a\nkind: all-of\npolicies: [key, key]\n", "key.yaml": key}, "listed twice"},
		{map[string]string{"a.yaml": "name: a\nkind: any-of\npolicies: [key, b]\n", "b.yaml": "name: b\nkind: all-of\npolicies: [key, a]\n", "key.yaml": key}, "refers to itself"},
		{map[string]string{"a.yaml": "name: a\nkind: any-of\npolicy: [key, b]\n"}, `a.yaml:3:1: policy "a": unknown field "policy"`},
	}
	for i, c := range cases {
		_, err := load(t, c.files)
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("case %d: want error containing %q, got %v", i, c.want, err)
		}
	}
}
