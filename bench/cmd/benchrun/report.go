package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// sample is one measured run.
type sample struct {
	RPS      float64
	P50, P99 float64 // µs
	CPU      float64 // CPU-µs per request of the measured process(es)
	Requests int64   // completed in the run
}

// inFlightShare is the share of a run's requests that were still in flight
// when wrk stopped: their CPU is counted, they are not, so a large share
// inflates CPU-µs/req.
func (c *cell) inFlightShare() float64 {
	worst := 0.0
	for _, s := range c.Samples {
		if s.Requests > 0 {
			worst = max(worst, float64(c.Conns)/float64(s.Requests))
		}
	}
	return worst
}

// inFlightLimit is the share above which the report marks a CPU figure.
const inFlightLimit = 0.05

// cell is everything measured for one target, payload and concurrency.
type cell struct {
	Target   string
	Payload  string
	Conns    int
	Samples  []sample
	Failures []string // runs that did not count, and why
}

// status is a target's state for a whole run.
type status struct {
	Target string
	State  string // "ok", "pending", "failed"
	Reason string
}

// tableResult is one table's measurements.
type tableResult struct {
	Table   table
	Cells   []*cell
	PeakKiB map[string]int64 // VmHWM at the end of the table, per target
}

// machine describes where the run happened.
type machine struct {
	Date, CPU, Go, Kernel, Wrk, Nginx string
	Cores                             int
	Load                              string // /proc/loadavg at start
}

// result is a whole run.
type result struct {
	Plan    plan
	Machine machine
	Note    string // e.g. "smoke run on a busy machine"
	// BusbarEnv is the extra environment Busbar ran with (-busbar-env).
	BusbarEnv []string
	Statuses  []status
	Tables    []tableResult
	// Latency: A1's time from 202 to delivery, when the plan ran A1.
	Latency []latencyRun
}

// stats is a median with its range.
type stats struct{ Med, Min, Max float64 }

func summarize(xs []float64) stats {
	if len(xs) == 0 {
		return stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{Med: m, Min: s[0], Max: s[len(s)-1]}
}

func (c *cell) stat(f func(sample) float64) stats {
	xs := make([]float64, len(c.Samples))
	for i, s := range c.Samples {
		xs[i] = f(s)
	}
	return summarize(xs)
}

func (tr *tableResult) find(target, payload string, conns int) *cell {
	for _, c := range tr.Cells {
		if c.Target == target && c.Payload == payload && c.Conns == conns {
			return c
		}
	}
	return nil
}

// median of a metric for a target's cell, ok false when it has no sample.
func (tr *tableResult) median(target, payload string, conns int, f func(sample) float64) (float64, bool) {
	c := tr.find(target, payload, conns)
	if c == nil || len(c.Samples) == 0 {
		return 0, false
	}
	return c.stat(f).Med, true
}

func rps(s sample) float64 { return s.RPS }
func cpu(s sample) float64 { return s.CPU }

// baseline is the S0 a target's throughput is compared with: the direct
// call with the same kind of body.
func baseline(t target) string {
	if t.Input == jsonIn {
		return "S0-json"
	}
	return "S0"
}

func ratio(a float64, b float64, ok bool) string {
	if !ok || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// withRange prints "median (min–max)", or the median alone for one sample.
func withRange(s stats, n int, format string) string {
	if n < 2 {
		return fmt.Sprintf(format, s.Med)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Med, s.Min, s.Max)
}

// writeReport writes the markdown report.
func writeReport(w io.Writer, r *result) {
	p := r.Plan
	fmt.Fprintf(w, "# Busbar benchmark — %s (%s)\n\n", r.Machine.Date, p.Mode)
	if r.Note != "" {
		fmt.Fprintf(w, "> %s\n\n", r.Note)
	}
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d cores (`nproc`), %s; %s; kernel %s; %s; %s. Load average at start: %s.\n\n",
		m.Cores, m.CPU, m.Go, m.Kernel, m.Wrk, m.Nginx, m.Load)
	if len(r.BusbarEnv) > 0 {
		fmt.Fprintf(w, "Busbar ran with `%s` in its environment; the peers with Go's defaults.\n\n", strings.Join(r.BusbarEnv, " "))
	}
	fmt.Fprintf(w, "Each figure: %d run(s) of %s after a %s warm-up at the same load, tables' targets interleaved; "+
		"median (min–max). CPU-µs/req is utime+stime of the measured process (nginx: master and workers) "+
		"from /proc around the run, divided by the requests wrk completed. Peak RSS is VmHWM at the end of the table. "+
		"A run with any error reply or socket error does not count. "+
		"A CPU figure marked * comes from runs where the connections still in flight at the end were more than %.0f %% of the "+
		"completed requests: their CPU is counted, they are not, so the figure is high by up to about half that share.\n\n",
		p.Reps, p.Duration, p.Warmup, inFlightLimit*100)

	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | what | status |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, st := range r.Statuses {
		t, _ := targetByName(st.Target)
		state := st.State
		if st.Reason != "" {
			state += ": " + st.Reason
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.What, escapeCell(state))
	}
	fmt.Fprintln(w)

	skip := map[string]bool{}
	for _, st := range r.Statuses {
		if st.State != "ok" {
			skip[st.Target] = true
		}
	}
	writeGoals(w, r)
	for i := range r.Tables {
		writeTable(w, &r.Tables[i], skip)
	}
	writeLatency(w, r.Latency)
}

func writeTable(w io.Writer, tr *tableResult, skip map[string]bool) {
	t := tr.Table
	fmt.Fprintf(w, "## Table %s: %s\n\n", t.ID, t.Title)
	if t.Note != "" {
		fmt.Fprintf(w, "%s\n\n", t.Note)
	}
	if t.Duration > 0 {
		fmt.Fprintf(w, "Measured runs in this table last %s.\n\n", t.Duration)
	}
	var notRun []string
	for _, name := range t.Targets {
		if skip[name] {
			notRun = append(notRun, name)
		}
	}
	if len(notRun) > 0 {
		fmt.Fprintf(w, "Not run (see Targets): %s.\n\n", strings.Join(notRun, ", "))
	}
	fmt.Fprintln(w, "| payload | c | target | CPU-µs/req | × peer CPU | req/s | × S0 | × S1 | p50 ms | p99 ms | peak RSS MiB | runs ok |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, pl := range t.Payloads {
		for _, c := range t.Conns {
			for _, name := range t.Targets {
				if skip[name] {
					continue
				}
				writeRow(w, tr, name, pl.Name, c)
			}
		}
	}
	fmt.Fprintln(w)
}

func writeRow(w io.Writer, tr *tableResult, name, pl string, conns int) {
	tg, _ := targetByName(name)
	c := tr.find(name, pl, conns)
	if c == nil {
		return // the target takes no body of this payload's kind
	}
	runs := fmt.Sprintf("%d/%d", len(c.Samples), len(c.Samples)+len(c.Failures))
	if len(c.Samples) == 0 {
		why := "failed"
		if len(c.Failures) > 0 {
			why = "failed: " + c.Failures[0]
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | | | | | | | | %s |\n", pl, conns, name, escapeCell(why), runs)
		return
	}
	n := len(c.Samples)
	r, cp := c.stat(rps), c.stat(cpu)
	s0, ok0 := tr.median(baseline(tg), pl, conns, rps)
	s1, ok1 := tr.median("S1", pl, conns, rps)
	peer := "–"
	if tg.Peer != "" {
		if pc, ok := tr.median(tg.Peer, pl, conns, cpu); ok {
			peer = ratio(cp.Med, pc, true) + " " + tg.Peer
		}
	}
	rss := "–"
	if kib, ok := tr.PeakKiB[name]; ok {
		rss = fmt.Sprintf("%.1f", float64(kib)/1024)
	}
	cpuText := withRange(cp, n, "%.1f")
	if c.inFlightShare() > inFlightLimit {
		cpuText += " *"
	}
	fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %s |\n",
		pl, conns, name, cpuText, peer, withRange(r, n, "%.0f"),
		ratio(r.Med, s0, ok0), ratio(r.Med, s1, ok1),
		c.stat(func(s sample) float64 { return s.P50 }).Med/1000, c.stat(func(s sample) float64 { return s.P99 }).Med/1000,
		rss, runs)
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
