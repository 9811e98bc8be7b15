package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// runner runs tables, one after the other.
type runner struct {
	*env
	plan   plan
	states map[string]*status
	echo   *server
	stdout io.Writer
	total  int
	done   int
}

func (r *runner) ok(name string) bool { return r.states[name] != nil && r.states[name].State == "ok" }

// startServers starts fresh servers for a table's targets, so that each
// table's peak RSS is its own. S0 is the shared echo backend; the bridge
// serves both bridge targets.
func (r *runner) startServers(t table) (map[string]*server, []*server) {
	servers := map[string]*server{}
	var started []*server
	var shared = map[kind]*server{}
	for _, name := range t.Targets {
		tg, _ := targetByName(name)
		if !r.ok(name) {
			continue
		}
		var s *server
		var err error
		switch tg.Kind {
		case direct:
			servers[name] = r.echo
			continue
		case busbar:
			s, err = r.startBusbar(tg)
		case nginx, revproxy, bridge:
			if s = shared[tg.Kind]; s != nil {
				servers[name] = s
				continue
			}
			switch tg.Kind {
			case nginx:
				s, err = r.startNginx(runtime.NumCPU())
			case revproxy:
				s, err = r.startRevProxy()
			default:
				s, err = r.startBridge()
			}
			shared[tg.Kind] = s
		}
		if err != nil {
			st := r.states[name]
			st.State, st.Reason = "failed", err.Error()
			if tg.TLS && strings.Contains(err.Error(), "flag provided but not defined") {
				st.State, st.Reason = "pending", "needs "+pendingTLS+"; "+err.Error()
			} else if tg.Pending != "" {
				st.State, st.Reason = "pending", "needs "+tg.Pending+"; "+err.Error()
			}
			fmt.Fprintf(r.stdout, "%s: %s: %s\n", name, st.State, st.Reason)
			continue
		}
		servers[name] = s
		started = append(started, s)
	}
	return servers, started
}

func (r *runner) table(t table) (*tableResult, error) {
	fmt.Fprintf(r.stdout, "\n== table %s: %s\n", t.ID, t.Title)
	servers, started := r.startServers(t)
	defer func() {
		for _, s := range started {
			r.sup.stop(s.proc)
		}
	}()
	tr := &tableResult{Table: t, PeakKiB: map[string]int64{}}
	cells := map[string]*cell{}
	for rep := 1; rep <= r.plan.Reps; rep++ {
		for _, pl := range t.Payloads {
			for _, c := range t.Conns {
				for _, name := range t.Targets {
					if err := r.ctx.Err(); err != nil {
						return nil, err
					}
					tg, _ := targetByName(name)
					file, ctype, headers, ok := pl.body(tg.Input)
					if !ok {
						continue
					}
					key := fmt.Sprintf("%s|%s|%d", name, pl.Name, c)
					ce := cells[key]
					if ce == nil {
						ce = &cell{Target: name, Payload: pl.Name, Conns: c}
						cells[key] = ce
						tr.Cells = append(tr.Cells, ce)
					}
					if !r.ok(name) || servers[name] == nil {
						continue
					}
					r.done++
					scheme := "http"
					if tg.TLS {
						scheme = "https"
					}
					l := load{URL: scheme + "://" + servers[name].addr + tg.Path, Body: filepath.Join(r.root, "bench", "testdata", file),
						ContentType: ctype, Headers: headers, Conns: c}
					s, why := r.measure(servers[name], l, r.plan.duration(t))
					prefix := fmt.Sprintf("[%d/%d] %s rep %d %s c=%d %s:", r.done, r.total, t.ID, rep, pl.Name, c, name)
					if why != "" {
						ce.Failures = append(ce.Failures, why)
						fmt.Fprintf(r.stdout, "%s failed: %s\n", prefix, why)
						if gone, tail := servers[name].proc.exited(); gone {
							st := r.states[name]
							st.State, st.Reason = "failed", "the process ended during the run: "+tail
						}
						continue
					}
					ce.Samples = append(ce.Samples, s)
					fmt.Fprintf(r.stdout, "%s %.0f req/s, %.1f CPU-µs/req, p99 %.2f ms\n", prefix, s.RPS, s.CPU, s.P99/1000)
				}
			}
		}
	}
	for name, s := range servers {
		if tg, _ := targetByName(name); tg.Kind == direct {
			continue // the echo backend lives through the whole run
		}
		if u, err := measure(family(s.proc.pid())); err == nil {
			tr.PeakKiB[name] = u.HWMKiB
		}
	}
	return tr, nil
}

// measure warms a server up, then runs the load and reads the server's CPU
// time around it. A non-empty reason means the run does not count.
func (r *runner) measure(s *server, l load, d time.Duration) (sample, string) {
	warm := l
	warm.Duration = r.plan.Warmup
	// A slow scenario at c=200 may complete nothing in a short warm-up;
	// only error replies and socket errors make the warm-up a failure.
	if res, err := runWrk(r.ctx, r.bins.Wrk, r.script(), warm); err != nil {
		return sample{}, "warm-up: " + err.Error()
	} else if res.Requests = max(res.Requests, 1); res.failure() != "" {
		return sample{}, "warm-up: " + res.failure()
	}
	l.Duration = d
	pids := family(s.proc.pid())
	// Requests the warm-up left in flight are still being worked off: wait
	// for the server to go idle so their CPU is not charged to this run.
	before, err := settle(r.ctx, pids)
	if err != nil {
		return sample{}, err.Error()
	}
	res, err := runWrk(r.ctx, r.bins.Wrk, r.script(), l)
	if err != nil {
		return sample{}, err.Error()
	}
	after, err := measure(pids)
	if err != nil {
		return sample{}, err.Error()
	}
	if why := res.failure(); why != "" {
		return sample{}, why
	}
	return sample{
		RPS: res.RPS(), P50: float64(res.LatencyUS.P50), P99: float64(res.LatencyUS.P99), Requests: res.Requests,
		CPU: float64(after.Ticks-before.Ticks) * (1e6 / clockTicks) / float64(res.Requests),
	}, ""
}

func (r *runner) script() string { return filepath.Join(r.root, "bench", "wrk", "post.lua") }

// settle waits until pids use no CPU for 100 ms (at most 5 s) and returns
// their usage then.
func settle(ctx context.Context, pids []int) (usage, error) {
	prev, err := measure(pids)
	if err != nil {
		return usage{}, err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
		cur, err := measure(pids)
		if err != nil {
			return usage{}, err
		}
		if cur.Ticks == prev.Ticks {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}
