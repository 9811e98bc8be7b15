package routes

import (
	"testing"

	"github.com/busbar/busbar/connectors"
)

// Inline maps run exactly like mapping files, in every place a map can be.
func TestInlineMaps(t *testing.T) {
	b := start(t, "testdata/inline")
	r := b.postJSON(t, "/inline", `{"name": "ann", "amount": "12.5"}`)
	r.expect(t, 201, "application/json")
	if want := `{"greeting":"hello ANN","note":"${NOT_SUBSTITUTED}","amount":12.50,"caller":"ann"}`; r.Body != want {
		t.Errorf("want %s, got %s", want, r.Body)
	}
	r = b.postJSON(t, "/inline", `{"name": "nobody", "amount": 1}`)
	r.expect(t, 422, "application/problem+json")
	if want := `{"type":"about:blank","title":"Nobody","status":422,"correlationId":"test-correlation-id","errors":["who is nobody"],"route":"inline"}`; r.Body != want {
		t.Errorf("want %s, got %s", want, r.Body)
	}
}

// A run-time error in an inline map names the route file's line in the
// log, and to callers only with --debug-errors; callers otherwise get what
// in their input is wrong.
func TestInlineMapRunError(t *testing.T) {
	b := start(t, "testdata/inline")
	r := b.postJSON(t, "/inline", `{"name": "ann", "amount": "twelve"}`)
	r.expect(t, 422, "application/problem+json")
	golden(t, "inline-run-error.problem.json", r.Body)

	b = startWith(t, "testdata/inline", connectors.ServerConfig{DebugErrors: true})
	r = b.postJSON(t, "/inline", `{"name": "ann", "amount": "twelve"}`)
	r.expect(t, 422, "application/problem+json")
	golden(t, "inline-run-error.debug.problem.json", r.Body)
}
