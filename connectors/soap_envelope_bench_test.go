package connectors

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/internal/cputime"
)

// BenchmarkParseEnvelopeBAPI parses the benchmark suite's
// BAPI_ACC_DOCUMENT_POST envelopes (bench/testdata, 2 and 200 line items),
// as every SOAP request and reply is parsed.
func BenchmarkParseEnvelopeBAPI(b *testing.B) {
	for _, n := range []int{2, 200} {
		body, err := os.ReadFile(fmt.Sprintf("../bench/testdata/bapi-%d.xml", n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			// CPU time as well: on a shared machine the wall clock per
			// operation mostly measures the other processes.
			cpu := cputime.Process()
			for b.Loop() {
				env, err := ParseEnvelope(body, "utf-8", bus.SOAP11)
				if err != nil || !env.HasPayload() {
					b.Fatalf("%v, %v", env, err)
				}
			}
			cputime.Report(b, cpu, time.Microsecond)
		})
	}
}
