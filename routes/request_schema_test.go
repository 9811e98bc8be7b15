package routes

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/busbar/busbar/bus"
)

// problem is a 400 of request.validate as a REST caller reads it.
type problem struct {
	Title, Detail string
	Status        int
	Errors        []struct{ Pointer, Message string }
}

func readProblem(t *testing.T, r reply) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	return p
}

// A body of the wrong shape posted to the demo's voucher route was mapped
// with empty values and posted to SAP, which answered 200 (hostile cases
// empty-json-object and top-level-array). The route's schema refuses it
// with every violation at its JSON pointer, and SAP gets no call.
func TestRequestValidateRefusesWrongShapes(t *testing.T) {
	var calls atomic.Int32
	sap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no call expected", 500)
	}))
	defer sap.Close()
	t.Setenv("SAP_URL", sap.URL)
	b := start(t, examples)
	cases := []struct {
		name, body string
		want       []string // pointer: message prefix, in order
	}{
		{"empty object", `{}`, []string{"/companyCode: required", "/currency: required", "/date: required", "/lines: required", "/voucherNo: required"}},
		{"array", `[` + balancedVoucher + `]`, []string{": got array, want object"}},
		{"wrong lines", `{"companyCode": "1000", "date": "2026-11-20", "currency": "CNY", "voucherNo": "EXP-1", "lines": [
			{"glAccount": "0066100000", "amount": 10.005},
			{"glAccount": "0066100000", "amount": "ten"},
			{"glAccount": 66100000, "amount": 1},
			{"glAccount": "0066100000"}]}`,
			[]string{"/lines/0/amount: multipleOf: got 10.005, want 0.01", "/lines/1/amount: 'ten' does not match pattern",
				"/lines/2/glAccount: got number, want string", "/lines/3/amount: required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.postJSON(t, "/api/v1/vouchers", c.body)
			r.expect(t, 400, "application/problem+json")
			p := readProblem(t, r)
			if p.Title != "Request does not match its schema" || len(p.Errors) != len(c.want) {
				t.Fatalf("want %d violations, got %s", len(c.want), r.Body)
			}
			for i, w := range c.want {
				got := p.Errors[i].Pointer + ": " + p.Errors[i].Message
				if !strings.HasPrefix(got, w) {
					t.Errorf("violation %d: want %q…, got %q", i, w, got)
				}
			}
			if !strings.Contains(p.Detail, orRoot(p.Errors[0].Pointer)+": "+p.Errors[0].Message) {
				t.Errorf("the detail should name the violation: %q", p.Detail)
			}
			if strings.Contains(r.Body, "schemas/") || strings.Contains(r.Body, "file:") || strings.Contains(r.Body, "examples") {
				t.Errorf("the reply names the bus's files: %s", r.Body)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("SAP was called %d times", n)
	}
}

// Money is compared as the decimal it is written as: 0.07 / 0.01 is
// 7.000000000000001 in float64, and a schema's multipleOf must not refuse
// it, nor pass 123.455.
func TestRequestValidateExactNumbers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "amount.json", `{"type": "object", "properties": {"amount": {"type": ["number", "string"], "multipleOf": 0.01}}}`)
	s, err := compileSchema(dir, "amount.json", fileSet{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		amount string
		ok     bool
	}{{"123.45", true}, {"0.07", true}, {"1250.10", true}, {"-179.19", true}, {"1e2", true},
		{"123.455", false}, {"0.001", false}, {"12345678901234567890.011", false}, {"12345678901234567890.01", true}} {
		m := bus.NewMessage()
		m.SetCheckedJSON([]byte(`{"amount": ` + c.amount + `}`))
		_, err := s.check(t.Context(), m)
		if (err == nil) != c.ok {
			t.Errorf("amount %s: want ok=%v, got %v", c.amount, c.ok, err)
		}
	}
}

// A number math/big would take seconds (or a panic) to make exact is
// refused, naming where it is, before the validator sees it.
func TestRequestValidateHugeNumbers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "amount.json", `{"properties": {"lines": {"items": {"properties": {"amount": {"minimum": 0}}}}}}`)
	s, err := compileSchema(dir, "amount.json", fileSet{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"1e999999999", "1e999999", "1" + strings.Repeat("0", 200000)} {
		m := bus.NewMessage()
		m.SetCheckedJSON([]byte(`{"lines": [{"amount": 1}, {"amount": ` + n + `}]}`))
		_, err := s.check(t.Context(), m)
		f, ok := err.(*bus.Fault)
		if !ok || f.Status != 400 {
			t.Fatalf("%.20s: want a 400, got %v", n, err)
		}
		if vs := f.Extra["errors"].([]violation); len(vs) != 1 || vs[0].Pointer != "/lines/1/amount" {
			t.Errorf("%.20s: want one violation at /lines/1/amount, got %+v", n, vs)
		}
	}
}

// A body with thousands of violations gets the first hundred, in document
// order, and the detail says how many there are.
func TestRequestValidateListsTheFirstHundred(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "lines.json", `{"properties": {"lines": {"items": {"type": "string"}}}}`)
	s, err := compileSchema(dir, "lines.json", fileSet{})
	if err != nil {
		t.Fatal(err)
	}
	m := bus.NewMessage()
	m.SetCheckedJSON([]byte(`{"lines": [` + strings.TrimSuffix(strings.Repeat(`1,`, 250), ",") + `]}`))
	_, err = s.check(t.Context(), m)
	f, ok := err.(*bus.Fault)
	if !ok {
		t.Fatalf("want a fault, got %v", err)
	}
	vs := f.Extra["errors"].([]violation)
	if len(vs) != maxViolations || vs[0].Pointer != "/lines/0" || vs[99].Pointer != "/lines/99" {
		t.Errorf("want /lines/0 … /lines/99, got %d from %q to %q", len(vs), vs[0].Pointer, vs[len(vs)-1].Pointer)
	}
	if want := "250 violations, the first: /lines/0: got number, want string (the first 100 are listed)"; f.Detail != want {
		t.Errorf("detail: want %q, got %q", want, f.Detail)
	}
}

// A schema is configuration: its $ref never makes the bus fetch a URL, nor
// read a file outside the configuration directory.
func TestRequestValidateRefusesRemoteRefs(t *testing.T) {
	var fetched atomic.Int32
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write([]byte(`{"type": "string"}`))
	}))
	defer remote.Close()
	outside := filepath.Join(t.TempDir(), "outside.json")
	os.WriteFile(outside, []byte(`{"type": "string"}`), 0o644)
	dir := t.TempDir()
	writeFile(t, dir, "remote.json", `{"properties": {"a": {"$ref": "`+remote.URL+`/a.json"}}}`)
	writeFile(t, dir, "meta.json", `{"$schema": "`+remote.URL+`/meta", "type": "object"}`)
	writeFile(t, dir, "outside.json", `{"properties": {"a": {"$ref": "file://`+filepath.ToSlash(outside)+`"}}}`)
	writeFile(t, dir, "local.json", `{"properties": {"a": {"$ref": "defs/a.json"}}}`)
	writeFile(t, dir, "defs/a.json", `{"type": "string"}`)
	for _, name := range []string{"remote.json", "meta.json", "outside.json"} {
		_, err := compileSchema(dir, name, fileSet{})
		if err == nil || !strings.Contains(err.Error(), "schema "+name+": ") {
			t.Errorf("%s: want an error naming the schema, got %v", name, err)
			continue
		}
		if want := "never URLs"; name != "outside.json" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q in %v", name, want, err)
		}
		if strings.Contains(err.Error(), dir) {
			t.Errorf("%s: the error should name files relative to the directory: %v", name, err)
		}
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("a $ref was fetched %d times", n)
	}
	read := fileSet{}
	s, err := compileSchema(dir, "local.json", read)
	if err != nil {
		t.Fatal(err)
	}
	m := bus.NewMessage()
	m.SetCheckedJSON([]byte(`{"a": 1}`))
	if _, err := s.check(t.Context(), m); err == nil {
		t.Error("a local $ref should apply")
	}
	// The hot reload watches what the load read, the $ref'd file too.
	if !read[absPath(filepath.Join(dir, "defs", "a.json"))] || !read[absPath(filepath.Join(dir, "local.json"))] {
		t.Errorf("the schema's files should be recorded for the watcher: %v", read)
	}
}

// A route's schema is one of the files a load reads: changing it reloads.
func TestRequestValidateSchemaIsWatched(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	cfg, err := Load(examples)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if p := absPath(filepath.Join(examples, "schemas", "voucher.schema.json")); !cfg.read[p] {
		t.Errorf("%s is not among the files the load read", p)
	}
}

// A route's XML body cannot be checked against a JSON Schema: it is
// refused, not let through unchecked.
func TestRequestValidateRefusesXML(t *testing.T) {
	b := start(t, examples)
	r := b.do(t, "POST", "/api/v1/vouchers", map[string]string{"Content-Type": "application/xml"}, `<voucher><companyCode>1000</companyCode></voucher>`)
	r.expect(t, 415, "application/problem+json")
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkValidateVoucher is request.validate's cost per request on the
// demo's voucher schema: decoding the body into values, then validating.
func BenchmarkValidateVoucher(b *testing.B) {
	s, err := compileSchema(examples, "schemas/voucher.schema.json", fileSet{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{2, 200} {
		body, err := os.ReadFile(filepath.Join("..", "bench", "testdata", "voucher-"+strconv.Itoa(n)+".json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			m := bus.NewMessage()
			m.SetCheckedJSON(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.check(b.Context(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Editing a route's schema while Busbar runs reloads it: a broken schema is
// reported and the old one keeps checking; a fixed one takes over.
func TestRequestValidateSchemaReloads(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, examples, dir)
	b := start(t, dir)
	w := watch(t, b)
	schema := filepath.Join(dir, "schemas", "voucher.schema.json")
	orig, err := os.ReadFile(schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(schema, []byte(`{"type": "object",`), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken schema is reported", func() bool { return len(w.get().rejected) > 0 })
	if want, got := `route "expense-voucher-to-sap": schema schemas/voucher.schema.json: `, w.get().rejected[0]; !strings.Contains(got, want) {
		t.Errorf("reported %q, want it to contain %q", got, want)
	}
	if r := b.postJSON(t, "/api/v1/vouchers", `{}`); r.Status != 400 {
		t.Errorf("the old schema should still check: got %d %s", r.Status, r.Body)
	}
	// Now voucherNo is no longer required.
	relaxed := strings.Replace(string(orig), `"currency", "voucherNo", "lines"`, `"currency", "lines"`, 1)
	if err := os.WriteFile(schema, []byte(relaxed), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed schema is applied", func() bool { return w.get().applied > 0 })
	r := b.postJSON(t, "/api/v1/vouchers", `{}`)
	if p := readProblem(t, r); len(p.Errors) != 4 {
		t.Errorf("want the 4 violations of the new schema, got %s", r.Body)
	}
}
