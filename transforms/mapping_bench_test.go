package transforms

import (
	"os"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/internal/cputime"
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

// benchBAPI200 is the 200-line BAPI envelope's payload, parsed, as the
// S5 and S6 routes receive it.
func benchBAPI200(b *testing.B) *bus.Message {
	b.Helper()
	body, err := os.ReadFile("../bench/testdata/bapi-200.xml")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := ParseXML(body, "")
	if err != nil {
		b.Fatal(err)
	}
	in := jsonMsg("")
	in.Format, in.Root = bus.FormatXML, doc.Root().FindElement("//BAPI_ACC_DOCUMENT_POST")
	return in
}

type benchMap struct {
	name string
	m    *Mapping
	in   *bus.Message
}

// runBenchMaps runs each mapping over its input, reporting CPU time (the
// mappings' own and the collector's) per Apply.
func runBenchMaps(b *testing.B, cases []benchMap) {
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				if _, err := bc.m.Apply(bc.in); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}

// BenchmarkS5Maps runs the S5 benchmark route's two mappings over the
// 200-line BAPI envelope: the request map (BAPI → ledger voucher), then the
// response map over its output (ledger → BAPI), as the route does with the
// echoed reply. Parsing is left out: BenchmarkParseEnvelopeBAPI covers it.
func BenchmarkS5Maps(b *testing.B) {
	req, err := LoadMapping("../bench/routes/s5/maps/bapi-to-ledger.yaml")
	if err != nil {
		b.Fatal(err)
	}
	resp, err := LoadMapping("../bench/routes/s5/maps/ledger-to-bapi.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in := benchBAPI200(b)
	mid, err := req.Apply(in)
	if err != nil {
		b.Fatal(err)
	}
	reply, err := ParseXML(mid.Bytes(), "")
	if err != nil {
		b.Fatal(err)
	}
	back := jsonMsg("")
	back.Format, back.Root = bus.FormatXML, reply.Root()
	runBenchMaps(b, []benchMap{{"request", req, in}, {"response", resp, back},
		// The input read as a Doc, as the SOAP facade and connector hand it over.
		{"request-doc", req, docInput(b, in)}, {"response-doc", resp, docInput(b, back)}})
}

// BenchmarkS6Maps runs the S6 route's request mapping (BAPI → the posting
// platform's JSON) over the 200-line BAPI envelope, from a tree and from a
// Doc. (Its response mapping reads a one-message JSON receipt.)
func BenchmarkS6Maps(b *testing.B) {
	req, err := LoadMapping("../bench/routes/s6/maps/bapi-to-posting.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in := benchBAPI200(b)
	runBenchMaps(b, []benchMap{{"request", req, in}, {"request-doc", req, docInput(b, in)}})
}
