package transforms

import (
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
)

// FuzzCompileExpr: no expression text makes the compiler or an evaluation panic.
func FuzzCompileExpr(f *testing.F) {
	for _, s := range []string{`$.a + 1`, `/*/A[B='x']`, `lookup("t", .k)`, `'a' + ./b`, `$x`, `[`, `"`, `(((`,
		`date($.d, "2006", "2006", "UTC")`, `xpath("//a")`, `json("a.#")`, `./A*2`, `- - -$.a`, `$.a ?? ./b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := CompileExpr(src, "f", 1, 1, map[string]string{"p": "urn:p"})
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
			return
		}
		for _, m := range []*bus.Message{jsonMsg(`{"a": 1, "d": "2024", "l": [1, 2]}`), xmlMsg(t, `<R><A>1</A><B>x</B></R>`)} {
			if _, err := e.String(m); err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%q: %v", src, err)
			}
		}
	})
}
