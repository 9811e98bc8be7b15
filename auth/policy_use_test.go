package auth

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentUse: built policies are shared by every request of a route.
func TestConcurrentUse(t *testing.T) {
	set, err := load(t, map[string]string{
		"key.yaml":  "name: key\nkind: api-key\nkeys: [{caller: oa, sha256: " + HashAPIKey("k1") + "}]\n",
		"user.yaml": "name: user\nkind: basic\nusers: [{name: sap, bcrypt: '" + bcryptHash(t, "pw") + "'}]\n",
		"any.yaml":  "name: any\nkind: any-of\npolicies: [key, user]\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			req := get("/", "X-API-Key", "k1")
			if i%2 == 1 {
				req = get("/", "Authorization", basicHeader("sap", "pw"))
			}
			if _, f := set["any"].Authenticate(req()); f != nil {
				t.Errorf("goroutine %d: %v", i, f)
			}
		})
	}
	wg.Wait()
}

func TestIdentityLogValue(t *testing.T) {
	var b bytes.Buffer
	id := Identity{Policy: "p", Kind: "jwt", Name: "oa", Claims: map[string]any{"email": "a@example.com"}}
	slog.New(slog.NewTextHandler(&b, nil)).Log(context.Background(), slog.LevelInfo, "call", "caller", id)
	if got := b.String(); !strings.Contains(got, "caller.name=oa") || strings.Contains(got, "a@example.com") {
		t.Errorf("want the name and no claims, got %s", got)
	}
}
