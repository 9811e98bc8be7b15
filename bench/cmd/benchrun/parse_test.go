package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

const wrkOutput = `Running 1s test @ http://127.0.0.1:40001/echo
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.21ms    1.52ms  27.66ms   89.62%
    Req/Sec    11.52k     1.20k   13.44k    70.00%
  22935 requests in 1.00s, 25.90MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  22796.52
Transfer/sec:     25.74MB
BENCHJSON {"duration_us":1006087,"requests":22935,"bytes":27161190,"errors":{"connect":0,"read":0,"write":0,"status":3,"timeout":0},"latency_us":{"min":101,"mean":2210.4,"max":27660,"p50":1350,"p90":3900,"p99":17470}}
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 22935 || r.DurationUS != 1006087 || r.LatencyUS.P50 != 1350 || r.LatencyUS.P99 != 17470 || r.Errors.Status != 3 {
		t.Errorf("parsed %+v", r)
	}
	if got := r.RPS(); got < 22796 || got > 22797 {
		t.Errorf("RPS = %.2f, want 22796.5", got)
	}
	for i, c := range []struct{ out, err string }{
		{"Running 1s test\n  0 requests\n", "no BENCHJSON line"},
		{"BENCHJSON {\"requests\":", "wrk output: unexpected end of JSON input"},
	} {
		if _, err := parseWrk([]byte(c.out)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("case %d: want an error with %q, got %v", i, c.err, err)
		}
	}
}

func TestWrkFailure(t *testing.T) {
	ok := wrkResult{Requests: 10}
	withStatus := ok
	withStatus.Errors.Status = 3
	withSockets := ok
	withSockets.Errors.Read, withSockets.Errors.Timeout = 1, 2
	for i, c := range []struct {
		r    wrkResult
		want string
	}{
		{ok, ""},
		{withStatus, "3 status ≥ 400"},
		{withSockets, "1 read, 2 timeout"},
		{wrkResult{}, "no request completed"},
	} {
		if got := c.r.failure(); got != c.want {
			t.Errorf("case %d: want %q, got %q", i, c.want, got)
		}
	}
}

func TestLoadArgs(t *testing.T) {
	l := load{URL: "http://127.0.0.1:1/s1", Body: "b.xml", ContentType: "text/xml", Headers: []string{`SOAPAction: "x"`}, Conns: 1, Duration: 1500e6}
	got := strings.Join(l.args("post.lua"), " ")
	want := `-t 1 -c 1 -d 2s --timeout 10s -s post.lua http://127.0.0.1:1/s1 -- b.xml text/xml SOAPAction: "x"`
	if got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
}

func TestParseStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses.
	const stat = `4242 (my (odd) prog) S 17 4242 4242 0 -1 4194560 2500 0 0 0 731 122 0 0 20 0 9 0 5000 1200000000 9000 18446744073709551615`
	s, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != 17 || s.UTime != 731 || s.STime != 122 {
		t.Errorf("parsed %+v, want ppid 17, utime 731, stime 122", s)
	}
	for i, bad := range []string{"4242 S 1 2", "4242 (x) S 17 1 2 3"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("case %d: %q parsed without error", i, bad)
		}
	}
}

func TestParseHWM(t *testing.T) {
	const status = "Name:\tbusbar\nVmPeak:\t 1300000 kB\nVmHWM:\t   48212 kB\nVmRSS:\t   40000 kB\n"
	if got, err := parseHWM(status); err != nil || got != 48212 {
		t.Errorf("got %d, %v; want 48212", got, err)
	}
	for i, bad := range []string{"Name:\tx\n", "VmHWM:\t12 MB\n"} {
		if _, err := parseHWM(bad); err == nil {
			t.Errorf("case %d: %q parsed without error", i, bad)
		}
	}
}

// TestProcReadersOnSelf reads this test process's own /proc entries.
func TestProcReadersOnSelf(t *testing.T) {
	u, err := measure(family(currentPID()))
	if err != nil {
		t.Fatal(err)
	}
	if u.HWMKiB <= 0 {
		t.Errorf("VmHWM of the test process is %d KiB", u.HWMKiB)
	}
}

func TestSummarize(t *testing.T) {
	for i, c := range []struct {
		in   []float64
		want stats
	}{
		{[]float64{5}, stats{5, 5, 5}},
		{[]float64{9, 1, 5}, stats{5, 1, 9}},
		{[]float64{4, 1, 2, 10}, stats{3, 1, 10}},
		{nil, stats{}},
	} {
		if got := summarize(c.in); got != c.want {
			t.Errorf("case %d: want %+v, got %+v", i, c.want, got)
		}
	}
}

func TestPayloadBody(t *testing.T) {
	bapi := bapiPayload(2)
	soapOnly := sweepPayloads([]int{1024}, false)[0]
	for i, c := range []struct {
		p      payload
		in     input
		file   string
		header string
		ok     bool
	}{
		{bapi, soapIn, "bapi-2.xml", `SOAPAction: "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"`, true},
		{bapi, jsonIn, "voucher-2.json", "", true},
		{bapi, anyIn, "bapi-2.xml", `SOAPAction: "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"`, true},
		{soapOnly, jsonIn, "", "", false},
		{soapOnly, anyIn, "soap-1KiB.xml", `SOAPAction: "urn:busbar:bench:Echo"`, true},
	} {
		file, _, headers, ok := c.p.body(c.in)
		if ok != c.ok || file != c.file || strings.Join(headers, "") != c.header {
			t.Errorf("case %d: got %q %q %v", i, file, headers, ok)
		}
	}
}

// TestPlans: every target a plan names exists, and the full plan fits the
// half hour it promises.
func TestPlans(t *testing.T) {
	for _, p := range []plan{quickPlan(), fullPlan()} {
		for _, tb := range p.Tables {
			for _, name := range tb.Targets {
				if _, ok := targetByName(name); !ok {
					t.Errorf("%s plan, table %s: unknown target %q", p.Mode, tb.ID, name)
				}
			}
		}
		all := p.runs(func(string) bool { return true })
		if secs := p.seconds(func(string) bool { return true }); p.Mode == "full" && secs > 27*60 {
			t.Errorf("full plan: %d runs take %.0f minutes of load alone", all, secs/60)
		} else if p.Mode == "quick" && secs > 150 {
			t.Errorf("quick plan: %d runs take %.0f s of load alone", all, secs)
		}
	}
}

func currentPID() int { return os.Getpid() }

func TestParseFlags(t *testing.T) {
	names := func(o options) string {
		var parts []string
		for _, tb := range o.plan.Tables {
			parts = append(parts, tb.ID+":"+strings.Join(tb.Targets, ","))
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		args      []string
		want, env string
		err       string
	}{
		{args: []string{"-tables", "C", "-targets", "S5,S6,bridge-S6"}, want: "C:S6,bridge-S6"},
		{args: []string{"-mode", "full", "-tables", "B,C", "-targets", "S1,S5"}, want: "B:S1,S5 C:S1,S5"},
		{args: []string{"-tables", "A", "-targets", "S7"}, err: `-targets "S7": none of them is in the tables chosen`},
		{args: []string{"-targets", "S77"}, err: `-targets: no target "S77"`},
		{args: []string{"-tables", "A", "-busbar-env", "GOGC=100  GOMEMLIMIT=off"}, want: "A:S0,S1,nginx,revproxy", env: "GOGC=100|GOMEMLIMIT=off"},
		{args: []string{"-busbar-env", "GOGC"}, err: `-busbar-env "GOGC": want NAME=value pairs`},
	} {
		o, err := parseFlags(c.args, io.Discard)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: want error %q, got %v", c.args, c.err, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if got := names(o); got != c.want {
			t.Errorf("%q: tables %q, want %q", c.args, got, c.want)
		}
		if got := strings.Join(o.busbarEnv, "|"); got != c.env {
			t.Errorf("%q: busbar env %q, want %q", c.args, got, c.env)
		}
	}
}
