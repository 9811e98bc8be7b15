package transforms

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/beevik/etree"
)

// benchBAPI reads the benchmark suite's documents (bench/testdata): the
// BAPI_ACC_DOCUMENT_POST envelope and its JSON twin, with n line items.
func benchBAPI(b *testing.B, n int) (envelope, voucher []byte) {
	b.Helper()
	envelope, err := os.ReadFile(fmt.Sprintf("../bench/testdata/bapi-%d.xml", n))
	if err != nil {
		b.Fatal(err)
	}
	voucher, err = os.ReadFile(fmt.Sprintf("../bench/testdata/voucher-%d.json", n))
	if err != nil {
		b.Fatal(err)
	}
	return envelope, voucher
}

// BenchmarkGenericXMLToJSON: what a route without a mapping pays to turn a
// SOAP body into JSON, parse included.
func BenchmarkGenericXMLToJSON(b *testing.B) {
	for _, n := range []int{2, 200} {
		body, _ := benchBAPI(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				doc, err := ParseXML(body, "")
				if err != nil {
					b.Fatal(err)
				}
				payload := doc.FindElement("//BAPI_ACC_DOCUMENT_POST")
				if _, err := XMLToJSON(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenericJSONToXML: the other way, serialisation included.
func BenchmarkGenericJSONToXML(b *testing.B) {
	for _, n := range []int{2, 200} {
		_, body := benchBAPI(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var out bytes.Buffer
			for b.Loop() {
				root, err := JSONToXML(body, "rfc:Voucher", "urn:sap-com:document:sap:rfc:functions")
				if err != nil {
					b.Fatal(err)
				}
				out.Reset()
				doc := etree.NewDocument()
				doc.SetRoot(root)
				if _, err := doc.WriteTo(&out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenericXMLTokenLoopReference is the floor the two above are read
// against: encoding/xml's tokenizer over the same envelope, building nothing.
func BenchmarkGenericXMLTokenLoopReference(b *testing.B) {
	for _, n := range []int{2, 200} {
		body, _ := benchBAPI(b, n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				d := xml.NewDecoder(bytes.NewReader(body))
				for {
					_, err := d.RawToken()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
