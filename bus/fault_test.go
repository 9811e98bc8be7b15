package bus

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s: want\n%s\ngot\n%s", name, want, got)
	}
}

func TestFaultRendering(t *testing.T) {
	cases := []struct {
		name              string
		fault             *Fault
		problem, s11, s12 int // expected HTTP statuses
	}{
		{"client", &Fault{Status: 400, Blame: BlameClient, Title: "Malformed JSON", Detail: "line 1, column 2: invalid character 'x'", Route: "r1"},
			400, 500, 400},
		{"backend-soap-fault", &Fault{Status: 502, Blame: BlameServer, Title: "Backend SOAP fault", Detail: `connector "sap": Company <9999> locked`,
			FaultCode: "SOAP-ENV:Server", FaultString: "Company <9999> locked", FaultDetail: `<e:code xmlns:e="urn:x">42</e:code>`, Route: "voucher"},
			502, 500, 500},
		{"business", &Fault{Status: 422, Blame: BlameClient, Title: "SAP rejected the voucher", Detail: "Balance is 10.00",
			Extra: map[string]any{"errors": []string{"RW 609"}}},
			422, 500, 400},
		{"must-understand", &Fault{Blame: BlameClient, Code: "MustUnderstand", Title: "MustUnderstand", Detail: "header <Security> is not understood"},
			400, 500, 400},
		// A plain error's text (here "file does not exist") is for the log only.
		{"internal", AsFault(os.ErrNotExist), 500, 500, 500},
		// Callers get the public detail and the correlation id, never the internal one…
		{"hidden", hidden(false), 422, 500, 400},
		// …unless the server runs with --debug-errors.
		{"debug", hidden(true), 422, 500, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := c.fault.ProblemJSON()
			if st != c.problem {
				t.Errorf("problem+json status: want %d, got %d", c.problem, st)
			}
			golden(t, "faults/"+c.name+".problem.json", body)
			st, body = c.fault.SOAPFault(SOAP11)
			if st != c.s11 {
				t.Errorf("SOAP 1.1 status: want %d, got %d", c.s11, st)
			}
			golden(t, "faults/"+c.name+".soap11.xml", body)
			st, body = c.fault.SOAPFault(SOAP12)
			if st != c.s12 {
				t.Errorf("SOAP 1.2 status: want %d, got %d", c.s12, st)
			}
			golden(t, "faults/"+c.name+".soap12.xml", body)
		})
	}
}

func TestUnits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{{"1MiB", 1 << 20, true}, {"512KiB", 512 << 10, true}, {"10MB", 10_000_000, true}, {"42", 42, true}, {"1 GiB", 1 << 30, true},
		{"-1", 0, false}, {"ten", 0, false}, {"1TiB", 0, false}} {
		var s ByteSize
		err := s.UnmarshalText([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && int64(s) != c.want) {
			t.Errorf("ByteSize %q: want %d ok=%v, got %d err=%v", c.in, c.want, c.ok, s, err)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Std().Seconds() != 90 {
		t.Errorf("Duration 1m30s: got %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("5x")); err == nil || err.Error() != `invalid duration "5x": write it like 30s, 1m30s or 500ms` {
		t.Errorf("Duration 5x: got %v", err)
	}
}

func hidden(debug bool) *Fault {
	f := ClientFault(422, "Mapping failed", "/srv/busbar/maps/voucher-to-bapi.yaml:30:21: lookup(\"expense-accounts\", .category): no entry").
		Hide(`value map "expense-accounts" has no entry for "TRAVEL-X" (input $.lines[2].category)`)
	f.Route, f.CorrelationID, f.ShowInternal = "vouchers", "c0ffee-42", debug
	return f
}

func TestFaultHidesInternals(t *testing.T) {
	f := hidden(false)
	for name, body := range map[string][]byte{"problem+json": second(f.ProblemJSON()),
		"SOAP 1.1": second(f.SOAPFault(SOAP11)), "SOAP 1.2": second(f.SOAPFault(SOAP12))} {
		if s := string(body); strings.Contains(s, "/srv/") || strings.Contains(s, "yaml") || !strings.Contains(s, "c0ffee-42") {
			t.Errorf("%s: want the correlation id and no internal detail, got %s", name, s)
		}
	}
	if got := f.Error(); !strings.Contains(got, "/srv/busbar/maps/voucher-to-bapi.yaml:30:21") {
		t.Errorf("the log text must keep the internal detail, got %q", got)
	}
}

func second(_ int, b []byte) []byte { return b }
