package transforms

import (
	"strconv"
	"strings"
	"testing"
)

// A SAP-style reply with a 200-line table, converted generically and by
// its schema: the schema's price is the typing and ordering work.
func benchVoucherXML(lines int) string {
	var b strings.Builder
	b.WriteString(`<v:Voucher xmlns:v="urn:sap"><DOC_NO>0000012345</DOC_NO><LINES>`)
	for i := range lines {
		n := strconv.Itoa(i + 1)
		b.WriteString(`<item><ITEMNO>` + n + `</ITEMNO><GL_ACCOUNT>00661` + n + `</GL_ACCOUNT><AMOUNT>` + n + `.50</AMOUNT><TAXED>true</TAXED></item>`)
	}
	b.WriteString(`</LINES><RETURN/></v:Voucher>`)
	return b.String()
}

func BenchmarkXMLToJSON200(b *testing.B) {
	src := benchVoucherXML(200)
	root, err := ParseXML([]byte(src), "")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		schema *Schema
	}{{"generic", nil}, {"schema", voucherSchema()}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.schema.XMLToJSON(root.Root()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJSONToXML200(b *testing.B) {
	s := voucherSchema()
	root, _ := ParseXML([]byte(benchVoucherXML(200)), "")
	js, err := s.XMLToJSON(root.Root())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.JSONToXML(js, "urn:sap", "Voucher"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONToXML200Generic(b *testing.B) {
	root, _ := ParseXML([]byte(benchVoucherXML(200)), "")
	js, _ := voucherSchema().XMLToJSON(root.Root())
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := JSONToXML(js, "Voucher", "urn:sap"); err != nil {
			b.Fatal(err)
		}
	}
}
