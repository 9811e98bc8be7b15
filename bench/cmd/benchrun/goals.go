package main

import (
	"fmt"
	"io"
	"strings"
)

// goal is one of issue 4's targets, checked against every cell of a run
// that has the figures it needs, so a report says by itself what is met.
type goal struct {
	What string
	// Target and Versus are compared on Metric: Target/Versus must stay at
	// or under Limit (Min false) or at or over it (Min true).
	Target, Versus string
	Metric         string // "cpu" or "rps"
	Limit          float64
	Min            bool
	// Payload, when set, restricts the goal to that payload's cells.
	Payload string
}

var issueGoals = []goal{
	{What: "S1 CPU-µs/req ≤ 0.8× ReverseProxy", Target: "S1", Versus: "revproxy", Metric: "cpu", Limit: 0.8},
	{What: "S2 CPU-µs/req within 5 % of S1", Target: "S2", Versus: "S1", Metric: "cpu", Limit: 1.05},
	{What: "S3 CPU-µs/req within 10 % of S1 at 200 items", Target: "S3", Versus: "S1", Metric: "cpu", Limit: 1.10, Payload: bapiPayload(200).Name},
	{What: "S5 req/s ≥ 0.3× S1 at 200 items", Target: "S5", Versus: "S1", Metric: "rps", Limit: 0.3, Min: true, Payload: bapiPayload(200).Name},
	{What: "S6 CPU-µs/req ≤ 0.7× the bridge", Target: "S6", Versus: "bridge-S6", Metric: "cpu", Limit: 0.7},
	{What: "S7 CPU-µs/req ≤ 0.7× the bridge", Target: "S7", Versus: "bridge-S7", Metric: "cpu", Limit: 0.7},
	{What: "S8 CPU-µs/req within 3 % of S1", Target: "S8", Versus: "S1", Metric: "cpu", Limit: 1.03},
	// Issue 11: the accept path at most 2× S1's CPU apart from the fsync
	// wait (CPU time does not count waiting; A1q's worker is paused).
	{What: "A1q (accept path) CPU-µs/req ≤ 2× S1", Target: "A1q", Versus: "S1", Metric: "cpu", Limit: 2},
}

// rssLimitMiB is issue 4's memory target: Busbar's peak RSS at c=200 with
// 200-item bodies.
const rssLimitMiB = 256

// writeGoals writes the scorecard: one line per goal and cell, the median
// ratio, the range the runs allow (best case to worst case) and whether the
// median meets the goal.
func writeGoals(w io.Writer, r *result) {
	var lines []string
	for _, g := range issueGoals {
		for i := range r.Tables {
			tr := &r.Tables[i]
			for _, pl := range tr.Table.Payloads {
				if g.Payload != "" && pl.Name != g.Payload {
					continue
				}
				for _, c := range tr.Table.Conns {
					if line, ok := g.check(tr, pl.Name, c); ok {
						lines = append(lines, line)
					}
				}
			}
		}
	}
	for i := range r.Tables {
		tr := &r.Tables[i]
		if !tableHas(tr, bapiPayload(200).Name, 200) {
			continue
		}
		for _, name := range tr.Table.Targets {
			t, _ := targetByName(name)
			kib, ok := tr.PeakKiB[name]
			if t.Kind != busbar || !ok {
				continue
			}
			mib := float64(kib) / 1024
			lines = append(lines, fmt.Sprintf("| %s peak RSS < %d MiB at c=200, 200 items | table %s | %.1f MiB | | %s |",
				name, rssLimitMiB, tr.Table.ID, mib, verdict(mib < rssLimitMiB)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "## Issue 4's goals")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios of medians; the range is the best and worst ratio any two runs allow (target's best over the other's worst, and the reverse).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| goal | where | median ratio | range | status |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|")
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	fmt.Fprintln(w)
}

func (g goal) check(tr *tableResult, payload string, conns int) (string, bool) {
	a, b := tr.find(g.Target, payload, conns), tr.find(g.Versus, payload, conns)
	if a == nil || b == nil || len(a.Samples) == 0 || len(b.Samples) == 0 {
		return "", false
	}
	f := cpu
	if g.Metric == "rps" {
		f = rps
	}
	sa, sb := a.stat(f), b.stat(f)
	if sb.Med == 0 || sb.Min == 0 || sb.Max == 0 {
		return "", false
	}
	med := sa.Med / sb.Med
	lo, hi := sa.Min/sb.Max, sa.Max/sb.Min
	met := med <= g.Limit
	if g.Min {
		met = med >= g.Limit
	}
	return fmt.Sprintf("| %s | table %s, %s, c=%d | %.2f | %.2f–%.2f | %s |",
		g.What, tr.Table.ID, payload, conns, med, lo, hi, verdict(met)), true
}

func tableHas(tr *tableResult, payload string, conns int) bool {
	for _, c := range tr.Cells {
		if c.Payload == payload && c.Conns == conns {
			return true
		}
	}
	return false
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "**missed**"
}
