package main

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMemoryPolicy(t *testing.T) {
	v2 := fstest.MapFS{
		"proc/self/cgroup": {Data: []byte("0::/kubepods/pod1/busbar\n")},
		"sys/fs/cgroup/kubepods/pod1/busbar/memory.max": {Data: []byte("536870912\n")},
		"sys/fs/cgroup/memory.max":                      {Data: []byte("max\n")},
	}
	v2Root := fstest.MapFS{ // a container whose own cgroup is mounted at the root
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
	}
	v2Unlimited := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/user.slice\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
	}
	v1 := fstest.MapFS{
		"proc/self/cgroup": {Data: []byte("5:devices:/\n4:memory:/docker/abc\n0::/\n")},
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("268435456\n")},
	}
	v1Unlimited := fstest.MapFS{
		"proc/self/cgroup": {Data: []byte("4:memory:/process_api/x\n")},
		"sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
	}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	flagGC := func(s string) gcPercentFlag {
		var f gcPercentFlag
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
		return f
	}
	flagLim := func(s string) memoryLimitFlag {
		var f memoryLimitFlag
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		name   string
		gc     gcPercentFlag
		limit  memoryLimitFlag
		getenv func(string) string
		fs     fstest.MapFS
		want   memoryPolicy
	}{
		{"no cgroup", gcPercentFlag{}, memoryLimitFlag{}, env(), fstest.MapFS{},
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 512 << 20, LimitSource: "default"}},
		{"cgroup v2 of the process", gcPercentFlag{}, memoryLimitFlag{}, env(), v2,
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 483183820, LimitSource: "cgroup",
				CgroupLimit: 512 << 20, CgroupLimitFile: "/sys/fs/cgroup/kubepods/pod1/busbar/memory.max"}},
		{"cgroup v2 at the root", gcPercentFlag{}, memoryLimitFlag{}, env(), v2Root,
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 966367641, LimitSource: "cgroup",
				CgroupLimit: 1 << 30, CgroupLimitFile: "/sys/fs/cgroup/memory.max"}},
		{"cgroup v2 without a limit", gcPercentFlag{}, memoryLimitFlag{}, env(), v2Unlimited,
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 512 << 20, LimitSource: "default"}},
		{"cgroup v1", gcPercentFlag{}, memoryLimitFlag{}, env(), v1,
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 241591910, LimitSource: "cgroup",
				CgroupLimit: 256 << 20, CgroupLimitFile: "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"}},
		{"cgroup v1 without a limit", gcPercentFlag{}, memoryLimitFlag{}, env(), v1Unlimited,
			memoryPolicy{GCPercent: 300, GCSource: "default", MemoryLimit: 512 << 20, LimitSource: "default"}},
		{"the operator's environment is kept", gcPercentFlag{}, memoryLimitFlag{}, env("GOGC", "150", "GOMEMLIMIT", "1GiB"), v2,
			memoryPolicy{GCPercent: -2, GCSource: "GOGC", MemoryLimit: -1, LimitSource: "GOMEMLIMIT",
				CgroupLimit: 512 << 20, CgroupLimitFile: "/sys/fs/cgroup/kubepods/pod1/busbar/memory.max"}},
		{"flags win", flagGC("off"), flagLim("1GiB"), env("GOGC", "150", "GOMEMLIMIT", "100MiB"), v2,
			memoryPolicy{GCPercent: -1, GCSource: "flag", MemoryLimit: 1 << 30, LimitSource: "flag",
				CgroupLimit: 512 << 20, CgroupLimitFile: "/sys/fs/cgroup/kubepods/pod1/busbar/memory.max"}},
		{"no memory limit", flagGC("800"), flagLim("off"), env(), fstest.MapFS{},
			memoryPolicy{GCPercent: 800, GCSource: "flag", MemoryLimit: math.MaxInt64, LimitSource: "flag"}},
	}
	for _, c := range cases {
		got := decideMemoryPolicy(c.gc, c.limit, c.getenv, c.fs)
		if got != c.want {
			t.Errorf("%s: want %+v, got %+v", c.name, c.want, got)
		}
	}
}

func TestMemoryFlags(t *testing.T) {
	cases := []struct {
		flag, value, want string // want: the value read back, or the error
	}{
		{"gc", "400", "400"},
		{"gc", "OFF", "off"},
		{"gc", "0", `"0": write a percentage such as 400, or off`},
		{"gc", "fast", `"fast": write a percentage such as 400, or off`},
		{"limit", "256MiB", "256MiB"},
		{"limit", "1GiB", "1GiB"},
		{"limit", "300000000", "286.1MiB"},
		{"limit", "off", "off"},
		{"limit", "1MiB", `"1MiB" is below 16MiB: Busbar would do nothing but collect garbage`},
		{"limit", "lots", `invalid size "lots": write it like 512KiB, 10MiB or 1048576`},
		{"budget", "64MiB", "64MiB"},
		{"budget", "off", "off"},
		{"budget", "1KiB", `"1KiB" is below 64KiB: not even one body's first read would fit`},
	}
	for _, c := range cases {
		var v interface {
			Set(string) error
			String() string
		}
		switch c.flag {
		case "gc":
			v = &gcPercentFlag{}
		case "limit":
			v = &memoryLimitFlag{}
		default:
			v = &bodyBudgetFlag{}
		}
		got := ""
		if err := v.Set(c.value); err != nil {
			got = err.Error()
		} else {
			got = v.String()
		}
		if got != c.want {
			t.Errorf("--%s %s: want %q, got %q", c.flag, c.value, c.want, got)
		}
	}
}

// apply sets the runtime's values and logs what the runtime then holds.
func TestMemoryPolicyApply(t *testing.T) {
	oldGC, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(oldGC); debug.SetMemoryLimit(oldLimit) }()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	memoryPolicy{GCPercent: 300, GCSource: "flag", MemoryLimit: 200 << 20, LimitSource: "cgroup",
		CgroupLimit: 222 << 20, CgroupLimitFile: "/sys/fs/cgroup/memory.max"}.apply(log)
	if gc := debug.SetGCPercent(100); gc != 300 {
		t.Errorf("GOGC: want 300, got %d", gc)
	}
	if lim := debug.SetMemoryLimit(math.MaxInt64); lim != 200<<20 {
		t.Errorf("memory limit: want %d, got %d", 200<<20, lim)
	}
	want := `msg="memory policy" gc_percent=300 gc_percent_from=flag memory_limit=200MiB memory_limit_from=cgroup cgroup_limit=222MiB cgroup_file=/sys/fs/cgroup/memory.max`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("want a log line containing %s, got %s", want, logs.String())
	}
	// The environment's values are left alone and reported as they are.
	logs.Reset()
	debug.SetGCPercent(150)
	memoryPolicy{GCPercent: -2, GCSource: "GOGC", MemoryLimit: -1, LimitSource: "GOMEMLIMIT"}.apply(log)
	if !strings.Contains(logs.String(), `gc_percent=150 gc_percent_from=GOGC memory_limit=off memory_limit_from=GOMEMLIMIT`) {
		t.Errorf("want the environment's values in the log, got %s", logs.String())
	}
}

// The body budget is a share of the memory limit in force, so that bodies
// being received cannot push the process past it; without a limit it is a
// share of the default one, and only "off" turns it off.
func TestBodyBudgetDefault(t *testing.T) {
	set := func(s string) bodyBudgetFlag {
		var f bodyBudgetFlag
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i, c := range []struct {
		flag  bodyBudgetFlag
		limit int64
		want  int64
	}{
		{bodyBudgetFlag{}, 512 << 20, 128 << 20},
		{bodyBudgetFlag{}, 2 << 30, 512 << 20},
		{bodyBudgetFlag{}, math.MaxInt64, defaultMemoryLimit / 4},
		{set("64MiB"), 512 << 20, 64 << 20},
		{set("off"), 512 << 20, 0},
	} {
		if got := c.flag.bytes(c.limit); got != c.want {
			t.Errorf("case %d: want %d, got %d", i, c.want, got)
		}
	}
}
