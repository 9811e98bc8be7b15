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

func benchGolden(b *testing.B, dir string) {
	b.Helper()
	m, err := LoadMapping("testdata/mapping/" + dir + "/mapping.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var msg *bus.Message
	if body, err := os.ReadFile("testdata/mapping/" + dir + "/input.json"); err == nil {
		msg = jsonMsg(string(body))
	} else {
		body, err := os.ReadFile("testdata/mapping/" + dir + "/input.document.xml")
		if err != nil {
			b.Fatal(err)
		}
		doc, err := ParseXML(body, "")
		if err != nil {
			b.Fatal(err)
		}
		msg = jsonMsg("")
		msg.Format, msg.Root = bus.FormatXML, doc.Root()
	}
	b.SetBytes(int64(len(msg.Bytes())))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Apply(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyGroupBy: 7 voucher lines grouped by G/L account (a lookup
// per line), sorted, summed twice.
func BenchmarkApplyGroupBy(b *testing.B) { benchGolden(b, "group-by-gl-account") }

// BenchmarkIdentitySOAP11To12: a SOAP 1.1 envelope copied into SOAP 1.2.
func BenchmarkIdentitySOAP11To12(b *testing.B) { benchGolden(b, "identity-soap11-to-soap12") }
