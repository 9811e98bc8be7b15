package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkResult is the JSON line bench/wrk/post.lua prints in done().
type wrkResult struct {
	DurationUS int64 `json:"duration_us"`
	Requests   int64 `json:"requests"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"` // replies with a status ≥ 400
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	LatencyUS struct {
		Min  int64   `json:"min"`
		Mean float64 `json:"mean"`
		Max  int64   `json:"max"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
	} `json:"latency_us"`
}

const wrkMarker = "BENCHJSON "

// parseWrk finds post.lua's line in wrk's output.
func parseWrk(out []byte) (wrkResult, error) {
	for line := range strings.SplitSeq(string(out), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), wrkMarker)
		if !ok {
			continue
		}
		var r wrkResult
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			return wrkResult{}, fmt.Errorf("wrk output: %w", err)
		}
		return r, nil
	}
	return wrkResult{}, errors.New("wrk output has no " + strings.TrimSpace(wrkMarker) + " line (is bench/wrk/post.lua in use?)")
}

// RPS is completed requests per second.
func (r wrkResult) RPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// failure says why a run does not count, "" when it does: an error reply or
// a socket error means the figures describe failures, not service.
func (r wrkResult) failure() string {
	e := r.Errors
	var why []string
	for _, c := range []struct {
		n    int64
		what string
	}{{e.Status, "status ≥ 400"}, {e.Connect, "connect"}, {e.Read, "read"}, {e.Write, "write"}, {e.Timeout, "timeout"}} {
		if c.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if r.Requests == 0 {
		why = append(why, "no request completed")
	}
	return strings.Join(why, ", ")
}

// load is one wrk invocation.
type load struct {
	URL         string
	Body        string // file
	ContentType string
	Headers     []string // "Name: value"
	Conns       int
	Duration    time.Duration
}

func (l load) args(script string) []string {
	threads := min(l.Conns, 2)
	secs := max(1, int(l.Duration.Round(time.Second)/time.Second))
	a := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(l.Conns), "-d", strconv.Itoa(secs) + "s",
		"--timeout", "10s", "-s", script, l.URL, "--", l.Body, l.ContentType}
	return append(a, l.Headers...)
}

func runWrk(ctx context.Context, wrk, script string, l load) (wrkResult, error) {
	cmd := exec.CommandContext(ctx, wrk, l.args(script)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v: %s", l.URL, err, strings.TrimSpace(out.String()))
	}
	return parseWrk(out.Bytes())
}
