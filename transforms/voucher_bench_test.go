package transforms

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/internal/cputime"
)

// The issue-3 throughput benchmarks: a JSON expense voucher with 2 and 200
// lines mapped to a SAP BAPI_ACC_DOCUMENT_POST body and back, each beside an
// encoding/xml token loop over the same XML document. MB/s counts the XML
// document's bytes in both directions, so the ratio to the token loop reads
// directly (docs/performance.md records the figures).

// voucherJSON makes a voucher with n lines; categories cycle so lookups and
// the default both run.
func voucherJSON(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"companyCode":"1000","date":"2024-03-15","voucherNo":"V-0042","currency":"CNY","lines":[`)
	cats := []string{"travel", "meals", "taxi"}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"category":%q,"glAccount":"0066900000","costCenter":"00001%05d","amount":"%d.%02d","text":"差旅 line %d"}`,
			cats[i%3], i, 100+i*7, i%100, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

type voucherCase struct {
	name string
	json []byte // the voucher
	xml  []byte // the BAPI body built from it
}

func voucherCases(b *testing.B) []voucherCase {
	m := mustLoad(b, "testdata/mapping/voucher-to-bapi/mapping.yaml")
	var cases []voucherCase
	for _, n := range []int{2, 200} {
		j := voucherJSON(n)
		out, err := m.Apply(jsonMsg(string(j)))
		if err != nil {
			b.Fatal(err)
		}
		cases = append(cases, voucherCase{name: fmt.Sprintf("lines=%d", n), json: j, xml: bytes.Clone(out.Bytes())})
	}
	return cases
}

func mustLoad(b *testing.B, path string) *Mapping {
	m, err := LoadMapping(path)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkVoucherJSONToXML: JSON voucher in, BAPI XML bytes out (what goes
// on the wire), JSON validation included.
func BenchmarkVoucherJSONToXML(b *testing.B) {
	m := mustLoad(b, "testdata/mapping/voucher-to-bapi/mapping.yaml")
	for _, c := range voucherCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.xml)))
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				in := bus.NewMessage()
				in.SetJSON(c.json)
				out, err := m.Apply(in)
				if err != nil {
					b.Fatal(err)
				}
				if len(out.Bytes()) == 0 {
					b.Fatal("empty output")
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}

// BenchmarkVoucherXMLToJSON: BAPI XML bytes in (parsed here, as a connector
// would), JSON voucher bytes out.
func BenchmarkVoucherXMLToJSON(b *testing.B) {
	m := mustLoad(b, "testdata/bench/bapi-to-voucher.yaml")
	for _, c := range voucherCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.xml)))
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				doc, err := ParseXML(c.xml, "")
				if err != nil {
					b.Fatal(err)
				}
				in := bus.NewMessage()
				in.SetXML(doc.Root())
				out, err := m.Apply(in)
				if err != nil {
					b.Fatal(err)
				}
				if len(out.Bytes()) == 0 {
					b.Fatal("empty output")
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}

// BenchmarkVoucherTokenLoop is the reference: the cheapest complete read of
// the same XML with the standard library, touching every token.
func BenchmarkVoucherTokenLoop(b *testing.B) {
	for _, c := range voucherCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.xml)))
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				d := xml.NewDecoder(bytes.NewReader(c.xml))
				n := 0
				for {
					_, err := d.Token()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n == 0 {
					b.Fatal("no tokens")
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}

// voucherRoundTrip maps a voucher of n lines to the BAPI document and back
// with the two benchmark mappings, as the benchmarks do.
func voucherRoundTrip(t *testing.T, n int) (bapi, voucher string) {
	t.Helper()
	to, err := LoadMapping("testdata/mapping/voucher-to-bapi/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadMapping("testdata/bench/bapi-to-voucher.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := to.Apply(jsonMsg(string(voucherJSON(n))))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseXML(out.Bytes(), "")
	if err != nil {
		t.Fatal(err)
	}
	in := bus.NewMessage()
	in.SetXML(doc.Root())
	res, err := back.Apply(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(out.Bytes()), string(res.Bytes())
}

// TestVoucherBenchMappings keeps the benchmark inputs honest: both mappings
// run and the round trip keeps the amounts exact.
func TestVoucherBenchMappings(t *testing.T) {
	_, got := voucherRoundTrip(t, 200)
	for _, want := range []string{`"total":159399.00}`, `"amount":1493.99`, `"glAccount":"0066100000"`, `"costCenter":"0000100199"`} {
		if !strings.Contains(got, want) {
			t.Errorf("round trip lacks %s in %.300s…", want, got)
		}
	}
}
