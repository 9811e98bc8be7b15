package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// latencyCase is one measurement of A1's time from the 202 to the
// delivery: Conns clients submit N messages, paced to Rate per second
// (0: as fast as the node accepts them).
type latencyCase struct {
	Conns, Rate, N int
}

// latencyRun is one case's outcome.
type latencyRun struct {
	Case                latencyCase
	Accepted, Delivered int
	AcceptsPerSec       float64
	// P50, P99 and Max are over the delivered messages: the backend's
	// arrival time minus the time the client had read the 202. Delivery can
	// win that race, so a figure near zero may be negative.
	P50, P99, Max time.Duration
	Err           string
}

// latencyCases: a light load, where the figure is the worker's own latency,
// and c=50 unpaced, where accepts outrun one node's deliveries and the
// figure is the queue's length.
func latencyCases(mode string) []latencyCase {
	if mode == "full" {
		return []latencyCase{{Conns: 1, Rate: 200, N: 3000}, {Conns: 50, Rate: 1000, N: 10000}, {Conns: 50, N: 10000}}
	}
	return []latencyCase{{Conns: 1, Rate: 200, N: 600}, {Conns: 50, N: 2000}}
}

// asyncLatency serves A1 against a backend that records when each message
// arrives (by the key Busbar sends downstream: without an idempotency key,
// the message id the 202 carried) and submits the case's messages.
func (e *env) asyncLatency(ctx context.Context, t target, c latencyCase) latencyRun {
	run := latencyRun{Case: c}
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	done := make(chan struct{}, 1)
	want := -1 // set once every submission is answered
	rec := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		now := time.Now()
		mu.Lock()
		if id := r.Header.Get("Idempotency-Key"); id != "" {
			if _, ok := arrived[id]; !ok {
				arrived[id] = now
			}
		}
		if want >= 0 && len(arrived) >= want {
			select {
			case done <- struct{}{}:
			default:
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		run.Err = err.Error()
		return run
	}
	go rec.Serve(ln)
	defer rec.Close()
	le := *e
	le.backend = "http://" + ln.Addr().String()
	s, err := le.startBusbar(t)
	if err != nil {
		run.Err = err.Error()
		return run
	}
	defer e.sup.stop(s.proc)

	body := `{"voucher":"V","pad":"` + strings.Repeat("x", 1000) + `"}`
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.Conns}}
	jobs := make(chan struct{})
	go func() {
		defer close(jobs)
		var tick <-chan time.Time
		if c.Rate > 0 {
			tk := time.NewTicker(time.Second / time.Duration(c.Rate))
			defer tk.Stop()
			tick = tk.C
		}
		for range c.N {
			if tick != nil {
				<-tick
			}
			select {
			case jobs <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	acked := map[string]time.Time{}
	var amu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c.Conns {
		wg.Go(func() {
			for range jobs {
				resp, err := client.Post("http://"+s.addr+t.Path, "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				var a struct {
					MessageID string `json:"messageId"`
				}
				err = json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				at := time.Now()
				if err == nil && resp.StatusCode == http.StatusAccepted {
					amu.Lock()
					acked[a.MessageID] = at
					amu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	run.Accepted = len(acked)
	run.AcceptsPerSec = float64(len(acked)) / time.Since(t0).Seconds()
	mu.Lock()
	want = len(acked)
	n := len(arrived)
	mu.Unlock()
	if n < want {
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
		case <-ctx.Done():
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for id, at := range acked {
		if got, ok := arrived[id]; ok {
			lat = append(lat, got.Sub(at))
		}
	}
	run.Delivered = len(lat)
	if len(lat) == 0 {
		run.Err = "nothing delivered"
		return run
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	run.P50, run.P99, run.Max = pct(0.50), pct(0.99), lat[len(lat)-1]
	if run.Delivered < run.Accepted {
		run.Err = fmt.Sprintf("%d accepted messages not delivered within 2 minutes", run.Accepted-run.Delivered)
	}
	return run
}

func writeLatency(w io.Writer, runs []latencyRun) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintln(w, "## A1: from 202 to delivery")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Busbar serves A1 against a backend that records when each message arrives, by the key Busbar sends "+
		"downstream (the message id the 202 carried). Time = the arrival minus the moment the client had read the 202; "+
		"the worker can win that race, so a figure near zero may be negative. One run per case, after table D.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| c | paced | accepted | accepts/s | delivered | p50 ms | p99 ms | max ms | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	for _, r := range runs {
		paced := "no"
		if r.Case.Rate > 0 {
			paced = fmt.Sprintf("%d/s", r.Case.Rate)
		}
		fmt.Fprintf(w, "| %d | %s | %d | %.0f | %d | %s | %s | %s | %s |\n", r.Case.Conns, paced, r.Accepted, r.AcceptsPerSec,
			r.Delivered, ms(r.P50), ms(r.P99), ms(r.Max), escapeCell(r.Err))
	}
	fmt.Fprintln(w)
}
