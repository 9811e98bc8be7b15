package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// `busbar map` prints what a mapping builds; its output is compared with
// golden files, its errors with the text a user sees.
func TestMapCommand(t *testing.T) {
	// An OA system's claim, GBK-encoded as such systems send it.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GBK"?>
<claim><employee>张三</employee><purpose>差旅费 上海</purpose><unit>kg</unit><amount>380.5</amount></claim>`)
	if err != nil {
		t.Fatal(err)
	}
	gbkFile := filepath.Join(t.TempDir(), "claim.gbk.xml")
	if err := os.WriteFile(gbkFile, []byte(gbk), 0o644); err != nil {
		t.Fatal(err)
	}
	const td = "testdata/map/"
	const oaWSDL = "../../examples/wsdl/oa-reimbursement.wsdl"
	cases := []struct {
		name   string
		args   []string
		code   int
		golden string // stdout, compared with testdata/map/NAME
		errOut string // stderr must contain this
	}{
		{"json-to-xml", []string{"--map", "../../examples/maps/voucher-to-bapi.yaml", "--input", td + "voucher.json"}, 0, "voucher-to-bapi.out.xml", ""},
		// Written as bytes by the mapping, shown with its CDATA section and nils.
		{"cdata-nil-output", []string{"--map", "../../transforms/testdata/mapping/nil-cdata-literals/mapping.yaml",
			"--input", "../../transforms/testdata/mapping/nil-cdata-literals/input.json"}, 0, "nil-cdata.out.xml", ""},
		{"soap12-envelope-in", []string{"--map", "../../examples/maps/claim-to-json.yaml", "--input", td + "submit-soap12.xml"}, 0, "claim-to-json.out.json", ""},
		{"gbk-vars-tables", []string{"--map", td + "claim.yaml", "--input", gbkFile, "--var", "claimId=CLM-9",
			"--table-dir", "../../transforms/testdata/mapping/tables-from-files"}, 0, "claim-gbk.out.json", ""},
		{"load-error", []string{"--map", "../../transforms/testdata/mapping/load-error-unknown-function/mapping.yaml", "--input", td + "voucher.json"}, 1, "",
			"busbar map: ../../transforms/testdata/mapping/load-error-unknown-function/mapping.yaml:5:13: expression \"dte($.date, \\\"2006-01-02\\\", \\\"20060102\\\")\": unknown function \"dte\"\n"},
		{"run-error", []string{"--map", td + "bad-date.yaml", "--input", td + "voucher.json"}, 1, "",
			"busbar map: testdata/map/voucher.json: Mapping failed: testdata/map/bad-date.yaml:4:13: voucher/posted: date($.date, "},
		{"missing-table", []string{"--map", td + "claim.yaml", "--input", gbkFile}, 1, "", "units.yaml"},
		{"empty-soap-body", []string{"--map", "../../examples/maps/claim-to-json.yaml", "--input", td + "empty-body.xml"}, 1, "",
			"busbar map: testdata/map/empty-body.xml: the SOAP envelope has an empty or no Body\n"},
		{"not-a-document", []string{"--map", "../../examples/maps/claim-to-json.yaml", "--input", td + "not-a-document.txt"}, 1, "",
			"busbar map: testdata/map/not-a-document.txt: neither XML nor valid JSON"},
		// --schema without --map: the conversion a route without a map does.
		{"schema-xml-to-json", []string{"--schema", oaWSDL, "--input", "../../examples/testdata/oa-reimbursement.gbk.xml"}, 0, "oa-form.schema.out.json", ""},
		{"schema-json-to-xml", []string{"--schema", oaWSDL, "--input", td + "oa-reply.json",
			"--element", "{http://oa.example.cn/finance/reimbursement}SubmitReimbursementResponse"}, 0, "oa-reply.schema.out.xml", ""},
		{"schema-json-needs-element", []string{"--schema", oaWSDL, "--input", td + "oa-reply.json"}, 2, "", "JSON input needs --element NAME"},
		{"schema-unknown-element", []string{"--schema", oaWSDL, "--input", td + "oa-reply.json", "--element", "Nope"}, 1, "", "declares no element Nope"},
		// --schema with --map checks the mapping's XML output.
		{"schema-check-ok", []string{"--map", "../../examples/maps/bapi-to-oa-reply.yaml", "--input", td + "bapi-reply.xml",
			"--var", "formNo=BX-1", "--var", "total=12.5", "--schema", oaWSDL}, 0, "oa-reply.checked.out.xml", ""},
		{"schema-check-fails", []string{"--map", "../../examples/maps/bapi-to-oa-reply.yaml", "--input", td + "bapi-reply.xml",
			"--var", "total=12.5", "--schema", oaWSDL}, 1, "", "the output does not match ../../examples/wsdl/oa-reimbursement.wsdl: "},
		{"schema-check-json-output", []string{"--map", "../../examples/maps/claim-to-json.yaml", "--input", td + "submit-soap12.xml", "--schema", oaWSDL}, 2, "",
			"--schema checks XML output; this mapping writes json"},
		{"bad-var", []string{"--map", td + "claim.yaml", "--input", gbkFile, "--var", "claimId"}, 2, "", `want name=value, got "claimId"`},
		{"usage", []string{"--map", td + "claim.yaml"}, 2, "", "usage: busbar map --map FILE --input FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"map"}, c.args...), &out, &errOut)
			if code != c.code || !strings.Contains(errOut.String(), c.errOut) {
				t.Fatalf("want exit %d, stderr containing %q; got %d, %q", c.code, c.errOut, code, errOut.String())
			}
			if c.golden == "" {
				if out.Len() > 0 {
					t.Errorf("want no output, got %q", out.String())
				}
				return
			}
			path := filepath.Join("testdata", "map", c.golden)
			if *update {
				os.WriteFile(path, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("want\n%s\ngot\n%s", want, out.String())
			}
		})
	}
}

// `busbar test` runs route test cases and says so in its exit status.
func TestTestCommand(t *testing.T) {
	cases := []struct {
		args      []string
		code      int
		outSuffix string
		errOut    string
	}{
		{[]string{"test", "../../examples/tests/oa-reimbursement.yaml"}, 0, "ok 2 passed\n", ""},
		{[]string{"test", "../../examples/tests/vouchers.yaml"}, 0, "ok 12 passed\n", ""},
		{[]string{"test", "../../routes/routetest/testdata/failing"}, 1, "\nFAIL 10 of 11\n", ""},
		{[]string{"test", "../../routes"}, 1, "", "busbar test: ../../routes: no test files (tests/*.yaml)\n"},
		{[]string{"test", "a", "b"}, 2, "", "usage: busbar test"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != c.code || !strings.HasSuffix(out.String(), c.outSuffix) || !strings.Contains(errOut.String(), c.errOut) {
			t.Errorf("busbar %s: want exit %d, stdout ending %q, stderr containing %q; got %d,\n%s\n%s",
				strings.Join(c.args, " "), c.code, c.outSuffix, c.errOut, code, out.String(), errOut.String())
		}
	}
}
