package payloads

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite bench/testdata from the generator")

const testdata = "../testdata"

// TestTestdataIsGenerated keeps the checked-in payloads equal to the
// generator's output (run with -update after changing the generator).
func TestTestdataIsGenerated(t *testing.T) {
	for name, want := range Files() {
		path := filepath.Join(testdata, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./bench/payloads -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output (run go test ./bench/payloads -update)", path)
		}
	}
}

func TestPayloadsAreWellFormed(t *testing.T) {
	for name, body := range Files() {
		switch filepath.Ext(name) {
		case ".xml":
			d := xml.NewDecoder(bytes.NewReader(body))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		case ".json":
			if !json.Valid(body) {
				t.Errorf("%s is not valid JSON", name)
			}
		}
	}
}

func TestSizes(t *testing.T) {
	for _, n := range Sizes {
		if got := len(SOAP(n)); got != n {
			t.Errorf("SOAP(%d) is %d bytes", n, got)
		}
		if got := len(JSON(n)); got != n {
			t.Errorf("JSON(%d) is %d bytes", n, got)
		}
	}
}

// TestVoucherBalances: the demo's SAP refuses an unbalanced document, so the
// twins must balance to the cent.
func TestVoucherBalances(t *testing.T) {
	for _, n := range Lines {
		var v struct {
			Lines []struct {
				Amount json.Number `json:"amount"`
			} `json:"lines"`
		}
		if err := json.Unmarshal(Voucher(n), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Lines) != n {
			t.Fatalf("Voucher(%d) has %d lines", n, len(v.Lines))
		}
		cents := 0
		for _, l := range v.Lines {
			var units, frac int
			s := string(l.Amount)
			neg := s[0] == '-'
			if neg {
				s = s[1:]
			}
			if _, err := fmtSscanf(s, &units, &frac); err != nil {
				t.Fatalf("amount %q: %v", l.Amount, err)
			}
			c := units*100 + frac
			if neg {
				c = -c
			}
			cents += c
		}
		if cents != 0 {
			t.Errorf("Voucher(%d) is off balance by %d cents", n, cents)
		}
	}
}

func fmtSscanf(s string, units, frac *int) (int, error) { return fmt.Sscanf(s, "%d.%d", units, frac) }
