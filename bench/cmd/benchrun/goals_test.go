package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestGoals checks the scorecard's arithmetic and verdicts: CPU goals (at
// or under the limit), the throughput goal (at or over), the payload
// restriction, and the RSS goal read from the c=200 table.
func TestGoals(t *testing.T) {
	b2, b200 := bapiPayload(2), bapiPayload(200)
	mk := func(target, pl string, conns int, xs ...sample) *cell {
		return &cell{Target: target, Payload: pl, Conns: conns, Samples: xs}
	}
	c := func(v float64) sample { return sample{CPU: v, RPS: 1} }
	r := func(v float64) sample { return sample{RPS: v, CPU: 1} }
	tb := tableResult{
		Table: table{ID: "B", Targets: []string{"S1", "S3", "S5", "revproxy"}, Payloads: []payload{b2, b200}, Conns: []int{50}},
		Cells: []*cell{
			mk("S1", b2.Name, 50, c(80), c(70), c(90)), mk("revproxy", b2.Name, 50, c(100), c(100), c(100)),
			mk("S3", b2.Name, 50, c(200)), // no goal at 2 items
			mk("S1", b200.Name, 50, sample{CPU: 100, RPS: 1000}), mk("revproxy", b200.Name, 50, c(110)),
			mk("S3", b200.Name, 50, c(109)),
			mk("S5", b200.Name, 50, r(290)),
		},
	}
	tc := tableResult{
		Table:   table{ID: "C", Targets: []string{"S1", "S5", "revproxy"}, Payloads: []payload{b200}, Conns: []int{200}},
		Cells:   []*cell{mk("S1", b200.Name, 200, c(1)), mk("S5", b200.Name, 200, c(1))},
		PeakKiB: map[string]int64{"S1": 80 << 10, "S5": 300 << 10, "revproxy": 999 << 10},
	}
	var out bytes.Buffer
	writeGoals(&out, &result{Tables: []tableResult{tb, tc}})
	got := out.String()
	for _, want := range []string{
		"| S1 CPU-µs/req ≤ 0.8× ReverseProxy | table B, BAPI 2 items, c=50 | 0.80 | 0.70–0.90 | met |",
		"| S1 CPU-µs/req ≤ 0.8× ReverseProxy | table B, BAPI 200 items, c=50 | 0.91 | 0.91–0.91 | **missed** |",
		"| S3 CPU-µs/req within 10 % of S1 at 200 items | table B, BAPI 200 items, c=50 | 1.09 | 1.09–1.09 | met |",
		"| S5 req/s ≥ 0.3× S1 at 200 items | table B, BAPI 200 items, c=50 | 0.29 | 0.29–0.29 | **missed** |",
		"| S1 peak RSS < 256 MiB at c=200, 200 items | table C | 80.0 MiB | | met |",
		"| S5 peak RSS < 256 MiB at c=200, 200 items | table C | 300.0 MiB | | **missed** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing line %q in:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"BAPI 2 items, c=50 | 2.", "revproxy peak RSS"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("unexpected %q in:\n%s", unwanted, got)
		}
	}
	out.Reset()
	writeGoals(&out, &result{})
	if out.Len() != 0 {
		t.Errorf("a run with no figures for any goal writes no section, got:\n%s", out.String())
	}
}
