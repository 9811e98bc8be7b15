package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md")

// TestReportGolden renders a fixed result: ratios to S0/S1 and to the peer,
// medians with ranges, failed and pending targets.
func TestReportGolden(t *testing.T) {
	bapi := bapiPayload(200)
	tb := table{ID: "B", Title: "Scenarios", Note: "A note.", Targets: []string{"S0", "S0-json", "S1", "S6", "S7", "revproxy", "bridge-S6", "bridge-S7"},
		Payloads: []payload{bapi}, Conns: []int{50}, Duration: 8 * time.Second}
	cells := []*cell{
		{Target: "S0", Samples: []sample{{RPS: 10000, P50: 1000, P99: 5000, CPU: 30}, {RPS: 9000, P50: 1100, P99: 6000, CPU: 32}, {RPS: 11000, P50: 900, P99: 4000, CPU: 28}}},
		{Target: "S0-json", Samples: []sample{{RPS: 12000, P50: 800, P99: 3000, CPU: 25}}},
		{Target: "S6", Samples: []sample{{RPS: 500, P50: 90000, P99: 150000, CPU: 3000, Requests: 400}}, Failures: []string{"2 status ≥ 400"}},
		{Target: "S7", Failures: []string{"12 status ≥ 400", "3 read"}},
		{Target: "revproxy", Samples: []sample{{RPS: 2000, P50: 20000, P99: 40000, CPU: 200}}},
		{Target: "bridge-S6", Samples: []sample{{RPS: 400, P50: 100000, P99: 200000, CPU: 4000}}},
		{Target: "bridge-S7", Samples: []sample{{RPS: 600, P50: 70000, P99: 120000, CPU: 2400}}},
	}
	for _, c := range cells {
		c.Payload, c.Conns = bapi.Name, 50
	}
	r := &result{
		Plan:    plan{Mode: "full", Duration: 4 * time.Second, Warmup: time.Second, Reps: 3},
		Machine: machine{Date: "2026-11-23", CPU: "AMD EPYC", Go: "go1.26.8", Kernel: "6.1.0", Wrk: "wrk 4.1.0", Nginx: "nginx/1.22.1", Cores: 2, Load: "0.10 0.20 0.30"},
		Note:    "Golden test.",
		Statuses: []status{{Target: "S0", State: "ok"}, {Target: "S0-json", State: "ok"},
			{Target: "S1", State: "pending", Reason: "needs from.http | from.match"}, {Target: "S6", State: "ok"}, {Target: "S7", State: "ok"},
			{Target: "revproxy", State: "ok"}, {Target: "bridge-S6", State: "ok"}, {Target: "bridge-S7", State: "ok"}},
		Tables: []tableResult{{Table: tb, Cells: cells, PeakKiB: map[string]int64{"S6": 65536, "bridge-S6": 30000, "bridge-S7": 30000, "revproxy": 16000}}},
	}
	var got bytes.Buffer
	writeReport(&got, r)
	const golden = "testdata/report.golden.md"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("report differs from %s (run with -update after checking):\n%s", golden, got.String())
	}
}
