package transforms

import (
	"github.com/busbar/busbar/bus"
	"os"
	"testing"
)

func BenchmarkApplyJSONToXML(b *testing.B) {
	m, err := LoadMapping("testdata/mapping/voucher-to-bapi/mapping.yaml")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := os.ReadFile("testdata/mapping/voucher-to-bapi/input.json")
	msg := jsonMsg(string(body))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Apply(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyXMLToJSON(b *testing.B) {
	m, err := LoadMapping("testdata/mapping/bapi-return-to-json/mapping.yaml")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := os.ReadFile("testdata/mapping/bapi-return-to-json/input.xml")
	doc, err := ParseXML(body, "")
	if err != nil {
		b.Fatal(err)
	}
	msg := jsonMsg("")
	msg.Format, msg.Root = bus.FormatXML, doc.Root().FindElement("//BAPI_ACC_DOCUMENT_POSTResponse")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Apply(msg); err != nil {
			b.Fatal(err)
		}
	}
}
