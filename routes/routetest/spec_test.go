package routetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busbar/busbar/routes"
)

// Bodies written as YAML become JSON with numbers exactly as written.
func TestDocJSON(t *testing.T) {
	cases := []struct {
		yaml, json, err string
	}{
		{"body: {a: 1250.00, b: -0.10, c: 7, d: 1.5e3}", `{"a":1250.00,"b":-0.10,"c":7,"d":1.5e3}`, ""},
		{"body: {code: \"0066100000\", on: true, none: null, s: <x/>}", `{"code":"0066100000","on":true,"none":null,"s":"<x/>"}`, ""},
		{"body: [1, [2, {k: v}]]", `[1,[2,{"k":"v"}]]`, ""},
		{"body: {text: 'say \"hi\" <b>'}", `{"text":"say \"hi\" <b>"}`, ""},
		{"body: {tagged: !!str 0010}", `{"tagged":"0010"}`, ""},
		{"body: '{\"raw\": 1.50}'", `{"raw": 1.50}`, ""},
		{"body: {gl: 0066100000}", "", `t.yaml:1:12: 0066100000 is not a JSON number: quote it to send text ("0066100000")`},
		{"body: {n: 0x1F}", "", `t.yaml:1:11: 0x1F is not a JSON number`},
		{"body: 12", "", `t.yaml:1:7: expected a text or a YAML mapping or list (sent as JSON), got "12"`},
	}
	for i, c := range cases {
		var v struct {
			Body Doc `yaml:"body"`
		}
		path := filepath.Join(t.TempDir(), "t.yaml")
		os.WriteFile(path, []byte(c.yaml), 0o644)
		_, err := routes.DecodeFile(path, &v)
		got, gotErr := string(v.Body.Text), ""
		if err != nil {
			got, gotErr = "", strings.TrimPrefix(err.Error(), filepath.Dir(path)+string(filepath.Separator))
		}
		if got != c.json || (c.err == "" && gotErr != "") || (c.err != "" && !strings.HasPrefix(gotErr, c.err)) {
			t.Errorf("case %d %s: want %s %q, got %s %q", i, c.yaml, c.json, c.err, got, gotErr)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	cases := []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\nc\n", "a\nB\nc\n", "--- want\n+++ got\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"", "x\n", "--- want\n+++ got\n@@ -0,0 +1 @@\n+x\n"},
		// Changes far apart make two hunks with three lines of context each.
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n", "0\n2\n3\n4\n5\n6\n7\n8\n9\n10\n12\n",
			"--- want\n+++ got\n@@ -1,4 +1,4 @@\n-1\n+0\n 2\n 3\n 4\n@@ -8,4 +8,4 @@\n 8\n 9\n 10\n-11\n+12\n"},
	}
	for i, c := range cases {
		if got := unifiedDiff(c.want, c.got); got != c.diff {
			t.Errorf("case %d: want\n%s\ngot\n%s", i, c.diff, got)
		}
	}
}
