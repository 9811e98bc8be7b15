// Command benchrun runs Busbar's benchmark suite (make bench, make
// bench-quick): it builds Busbar, the echo backend and the Go peers,
// starts them and nginx on 127.0.0.1, loads them with wrk, measures CPU
// time and peak RSS from /proc, and writes a markdown report.
//
//	benchrun [-mode quick|full] [-out DIR] [-note TEXT] [-tables A,B,C] [-duration D] [-reps N]
//
// Every process it starts is ended when it returns, on error and on
// Ctrl-C alike (and by the kernel if benchrun itself is killed).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	root, out, note string
	plan            plan
	busbarEnv       []string // extra environment for Busbar's processes only
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "quick", "quick (a smoke run of ~2-3 minutes) or full (~28 minutes)")
	root := fs.String("root", ".", "the Busbar checkout")
	out := fs.String("out", "bench/results", "folder for the report")
	note := fs.String("note", "", "a line to put at the top of the report")
	tables := fs.String("tables", "", "run only these tables, e.g. A,C")
	dur := fs.Duration("duration", 0, "length of one measured run (default: the mode's)")
	reps := fs.Int("reps", 0, "repetitions (default: the mode's)")
	only := fs.String("targets", "", "run only these targets of the tables, e.g. S1,revproxy (the report's ratios need their baselines: S0, S1, the peers)")
	busbarEnv := fs.String("busbar-env", "", "extra environment for Busbar only, e.g. \"GOGC=100 GOMEMLIMIT=off\" to measure it on Go's defaults")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{root: *root, out: *out, note: *note, busbarEnv: strings.Fields(*busbarEnv)}
	for _, kv := range o.busbarEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return options{}, fmt.Errorf("-busbar-env %q: want NAME=value pairs separated by spaces", kv)
		}
	}
	switch *mode {
	case "quick":
		o.plan = quickPlan()
	case "full":
		o.plan = fullPlan()
	default:
		return options{}, fmt.Errorf("-mode %q: want quick or full", *mode)
	}
	if *dur > 0 {
		o.plan.Duration = *dur
	}
	if *reps > 0 {
		o.plan.Reps = *reps
	}
	if *tables != "" {
		want := strings.Split(strings.ToUpper(*tables), ",")
		o.plan.Tables = slices.DeleteFunc(o.plan.Tables, func(t table) bool { return !slices.Contains(want, t.ID) })
		if len(o.plan.Tables) == 0 {
			return options{}, fmt.Errorf("-tables %q names no table (A, B, C, D)", *tables)
		}
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		for _, name := range want {
			if _, ok := targetByName(name); !ok {
				return options{}, fmt.Errorf("-targets: no target %q", name)
			}
		}
		kept := o.plan.Tables[:0]
		for _, t := range o.plan.Tables {
			t.Targets = slices.DeleteFunc(slices.Clone(t.Targets), func(n string) bool { return !slices.Contains(want, n) })
			if len(t.Targets) > 0 {
				kept = append(kept, t)
			}
		}
		if o.plan.Tables = kept; len(kept) == 0 {
			return options{}, fmt.Errorf("-targets %q: none of them is in the tables chosen", *only)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "benchrun:", err)
		}
		return 2
	}
	var b bins
	if b.Wrk, b.Nginx, err = findTools(); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "busbar-bench-")
	if err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	// nginx's workers run as nobody when benchrun is root: let them in.
	os.Chmod(tmp, 0o755)
	defer os.RemoveAll(tmp)
	sup := &supervisor{dir: tmp}
	defer sup.stopAll()

	res, err := bench(ctx, o, b, sup, tmp, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	name := res.Machine.Date
	if o.plan.Mode != "full" {
		name += "-" + o.plan.Mode
	}
	path := filepath.Join(o.out, name+".md")
	var buf bytes.Buffer
	writeReport(&buf, res)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\n%s\nreport written to %s\n", buf.String(), path)
	return 0
}

// findTools finds wrk and nginx; it installs nothing.
func findTools() (wrk, nginxPath string, err error) {
	wrk, err1 := exec.LookPath("wrk")
	nginxPath, err2 := exec.LookPath("nginx")
	if err2 != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginxPath, err2 = "/usr/sbin/nginx", nil
		}
	}
	if err1 != nil || err2 != nil {
		return "", "", errors.New("wrk and nginx are needed (Debian): apt-get install wrk nginx")
	}
	return wrk, nginxPath, nil
}

func build(ctx context.Context, root, dir string, stdout io.Writer) (bins, error) {
	fmt.Fprintln(stdout, "building busbar, the echo backend and the peers…")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator),
		"./cmd/busbar", "./bench/echo", "./bench/peers/revproxy", "./bench/peers/bridge")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return bins{}, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bins{Busbar: filepath.Join(dir, "busbar"), Echo: filepath.Join(dir, "echo"),
		RevProxy: filepath.Join(dir, "revproxy"), Bridge: filepath.Join(dir, "bridge")}, nil
}

// validate runs `busbar validate` on a target's config and decides its status.
func validate(ctx context.Context, b bins, root string, t target) status {
	cmd := exec.CommandContext(ctx, b.Busbar, "validate", filepath.Join(root, "bench", "routes", t.Config))
	cmd.Env = append(os.Environ(), "BENCH_BACKEND=http://127.0.0.1:9")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return status{Target: t.Name, State: "ok"}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	first = strings.TrimPrefix(first, root+string(os.PathSeparator))
	if t.Pending != "" {
		return status{Target: t.Name, State: "pending", Reason: fmt.Sprintf("needs %s; busbar validate: %s", t.Pending, first)}
	}
	return status{Target: t.Name, State: "failed", Reason: "busbar validate: " + first}
}

func describeMachine(b bins) machine {
	m := machine{Date: time.Now().Format("2006-01-02"), Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown CPU"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(data))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	firstLine := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	m.Wrk = firstLine(b.Wrk, "-v")
	if i := strings.Index(m.Wrk, " ["); i > 0 {
		m.Wrk = m.Wrk[:i]
	}
	m.Nginx = strings.TrimPrefix(firstLine(b.Nginx, "-v"), "nginx version: ")
	return m
}

// bench runs the plan.
func bench(ctx context.Context, o options, tools bins, sup *supervisor, tmp string, stdout io.Writer) (*result, error) {
	b, err := build(ctx, o.root, filepath.Join(tmp, "bin"), stdout)
	if err != nil {
		return nil, err
	}
	b.Wrk, b.Nginx = tools.Wrk, tools.Nginx
	root, err := filepath.Abs(o.root)
	if err != nil {
		return nil, err
	}
	res := &result{Plan: o.plan, Machine: describeMachine(b), Note: o.note, BusbarEnv: o.busbarEnv}

	e := &env{ctx: ctx, sup: sup, bins: b, root: root, tmp: tmp, busbarEnv: o.busbarEnv}
	states := map[string]*status{}
	for _, t := range targets {
		if !o.plan.uses(t.Name) {
			continue
		}
		st := status{Target: t.Name, State: "ok"}
		if t.Kind == busbar {
			st = validate(ctx, b, root, t)
		}
		res.Statuses = append(res.Statuses, st)
	}
	for i := range res.Statuses {
		states[res.Statuses[i].Target] = &res.Statuses[i]
	}
	if e.cert, e.key, err = selfSigned(tmp); err != nil {
		return nil, err
	}
	echo, err := e.startEcho()
	if err != nil {
		return nil, err
	}
	e.backend = "http://" + echo.addr

	runs := func(name string) bool { return states[name].State == "ok" }
	total := o.plan.runs(runs)
	fmt.Fprintf(stdout, "%d measured runs, each after a %s warm-up: about %s\n",
		total, o.plan.Warmup, time.Duration(o.plan.seconds(runs)*float64(time.Second)).Round(time.Second))
	r := &runner{env: e, plan: o.plan, states: states, echo: echo, stdout: stdout, total: total}
	for _, t := range o.plan.Tables {
		tr, err := r.table(t)
		if err != nil {
			return nil, err
		}
		res.Tables = append(res.Tables, *tr)
	}
	if a1, _ := targetByName("A1"); o.plan.uses(a1.Name) && runs(a1.Name) {
		for _, c := range latencyCases(o.plan.Mode) {
			fmt.Fprintf(stdout, "A1 from 202 to delivery: c=%d, %d messages, paced %d/s (0: no)\n", c.Conns, c.N, c.Rate)
			res.Latency = append(res.Latency, e.asyncLatency(ctx, a1, c))
		}
	}
	return res, nil
}

func (p plan) uses(name string) bool {
	for _, t := range p.Tables {
		if slices.Contains(t.Targets, name) {
			return true
		}
	}
	return false
}
