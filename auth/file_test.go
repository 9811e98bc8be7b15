package auth

import (
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	good := HashAPIKey("k")
	cases := []struct {
		files map[string]string
		want  []string // substrings of the error
	}{
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys: [{caller: x, sha256: " + good + "}]\nheadr: X\n"},
			[]string{"a.yaml:4:1:", `policy "a"`, "headr"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys:\n  - caller: x\n    sha: " + good + "\n"},
			[]string{"a.yaml:5:5:", "sha"}},
		{map[string]string{"a.yaml": "name: a\nkind: apikey\n"},
			[]string{"a.yaml:", `unknown kind "apikey"`, "api-key"}},
		{map[string]string{"a.yaml": "kind: api-key\n"}, []string{`"name" is required`}},
		{map[string]string{"a.yaml": "name: a\n"}, []string{`"kind" is required`}},
		{map[string]string{"a.yaml": "name: none\nkind: api-key\n"}, []string{"reserved"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys: [{caller: x, sha256: abc}]\n"},
			[]string{`policy "a"`, "64 hex digits"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys: [{caller: x, sha256: " + good + "}, {caller: y, sha256: " + good + "}]\n"},
			[]string{"same key"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nheader: X\nquery: y\nkeys: [{caller: x, sha256: " + good + "}]\n"},
			[]string{"exclude each other"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys: []\n"}, []string{"at least one key"}},
		{map[string]string{
			"a.yaml": "name: a\nkind: api-key\nkeys: [{caller: x, sha256: " + good + "}]\n",
			"b.yaml": "name: a\nkind: api-key\nkeys: [{caller: x, sha256: " + good + "}]\n"},
			[]string{"name already used"}},
		{map[string]string{"a.yaml": "name: a\nkind: api-key\nkeys: [\n"}, []string{"a.yaml:"}},
		{map[string]string{"a.yaml": "- name: a\n"}, []string{"expected a mapping"}},
	}
	for i, c := range cases {
		_, err := load(t, c.files)
		if err == nil {
			t.Errorf("case %d: want an error, got none", i)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("case %d: want error containing %q, got %q", i, w, err)
			}
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	for i, name := range []string{"", "api-key"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: Register(%q) did not panic", i, name)
				}
			}()
			Register(name, func() Spec { return new(APIKeySpec) })
		}()
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", []byte("name: a\nkind: api-key\nkeys: [{caller: x, sha256: "+HashAPIKey("k")+"}]\n"))
	writeFile(t, dir, "b.yml", []byte("name: b\nkind: api-key\nquery: k\nkeys: [{caller: y, sha256: "+HashAPIKey("k")+"}]\n"))
	writeFile(t, dir, "notes.txt", []byte("not a policy"))
	set, err := LoadDir(dir)
	if err != nil || len(set) != 2 || set["a"] == nil || set["b"] == nil {
		t.Fatalf("want policies a and b, got %v, %v", set, err)
	}
	if _, err := LoadDir(dir + "/missing"); err == nil {
		t.Error("want an error for a missing directory")
	}
}
