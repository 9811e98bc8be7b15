package routes

import (
	"encoding/json"
	"strings"
	"testing"
)

// What a REST route refuses before any step or backend sees it: a body that
// readers could read differently, or that Busbar would have to alter, is a
// 400 naming the place; a POST without a body is a 400 too. A GET needs no
// body.
func TestRESTIntakeRefuses(t *testing.T) {
	b := start(t, examples)
	cases := []struct {
		method, path, body  string
		status              int
		title, detailPrefix string
	}{
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","companyCode":"2000","lines":[]}`, 400, "Malformed JSON",
			`line 1, column 23: duplicate key "companyCode" at $.companyCode (first at line 1, column 2)`},
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","lines":[{"amount":1},{"amount":2,"amount":3}]}`, 400, "Malformed JSON",
			`line 1, column 57: duplicate key "amount" at $.lines[1].amount (first at line 1, column 46)`},
		{"POST", "/api/v1/vouchers", "{\"companyCode\":\"1000\",\"description\":\"Taxi \xff\"}", 400, "Malformed JSON",
			`line 1, column 43 (byte 42): invalid UTF-8 (byte 0xFF) at $.description`},
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","description":"Taxi\u0000"}`, 400, "Malformed JSON",
			`line 1, column 42 (byte 41): \u0000 (U+0000), a character XML cannot hold at $.description`},
		{"POST", "/api/v1/vouchers", "", 400, "Empty body", "the request body is empty"},
		{"POST", "/api/v1/vouchers", " \r\n\t", 400, "Empty body", "the request body is empty"},
		{"GET", "/demo/expense-api/claims/CLM-1", "", 200, "", ""},
	}
	for n, c := range cases {
		r := b.do(t, c.method, c.path, map[string]string{"Content-Type": "application/json"}, c.body)
		var p struct{ Title, Detail string }
		json.Unmarshal([]byte(r.Body), &p)
		if r.Status != c.status || p.Title != c.title || !strings.HasPrefix(p.Detail, c.detailPrefix) {
			t.Errorf("case %d %s %q:\nwant %d %s: %s…\n got %d %s", n, c.method, c.body, c.status, c.title, c.detailPrefix, r.Status, r.Body)
		}
	}
}
