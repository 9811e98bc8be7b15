package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadOne writes the policy files (name → YAML) into a temporary
// directory, loads them all and returns the set.
func load(t *testing.T, files map[string]string) (Set, error) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return Load(paths...)
}

func mustPolicy(t *testing.T, name string, files map[string]string) Policy {
	t.Helper()
	set, err := load(t, files)
	if err != nil {
		t.Fatal(err)
	}
	return set[name]
}

// authCase is one request against a policy and what must come of it.
type authCase struct {
	name      string
	req       func() *http.Request
	status    int    // 0: accepted
	caller    string // the Identity name when accepted
	challenge string // a prefix the WWW-Authenticate header must have (401 only)
	internal  string // a substring of Fault.Internal
}

func get(target string, header ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
}

// run checks each case, and that no refusal's public detail says more
// than the two fixed phrases.
func run(t *testing.T, p Policy, cases []authCase) {
	t.Helper()
	for i, c := range cases {
		id, f := p.Authenticate(c.req())
		if c.status == 0 {
			if f != nil {
				t.Errorf("case %d (%s): want accepted, got %d %s", i, c.name, f.Status, f.Error())
				continue
			}
			if id.Name != c.caller {
				t.Errorf("case %d (%s): want caller %q, got %q", i, c.name, c.caller, id.Name)
			}
			continue
		}
		if f == nil {
			t.Errorf("case %d (%s): want %d, got accepted as %q", i, c.name, c.status, id.Name)
			continue
		}
		if f.Status != c.status {
			t.Errorf("case %d (%s): want status %d, got %d (%s)", i, c.name, c.status, f.Status, f.Internal)
		}
		if f.Detail != DetailRequired && f.Detail != DetailNotAccepted {
			t.Errorf("case %d (%s): public detail says too much: %q", i, c.name, f.Detail)
		}
		_, body := f.ProblemJSON()
		if c.internal != "" && strings.Contains(string(body), c.internal) {
			t.Errorf("case %d (%s): the reason reached the caller: %s", i, c.name, body)
		}
		if !strings.Contains(f.Internal, c.internal) {
			t.Errorf("case %d (%s): want internal reason containing %q, got %q", i, c.name, c.internal, f.Internal)
		}
		www := f.Header.Get("WWW-Authenticate")
		if c.status == 401 && !strings.HasPrefix(www, c.challenge) {
			t.Errorf("case %d (%s): want WWW-Authenticate %q…, got %q", i, c.name, c.challenge, www)
		}
		if c.status == 403 && www != "" {
			t.Errorf("case %d (%s): a 403 carries no challenge, got %q", i, c.name, www)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
