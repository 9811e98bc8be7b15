package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/busbar/busbar/bus"
)

// Go's garbage collector is tuned for programs whose live heap is large
// compared with what they allocate. Busbar is the opposite: a few MiB live,
// every request allocating a parsed document and throwing it away. With
// Go's default (GOGC=100) a collection runs every few hundred requests and
// costs a third of the CPU per request. `busbar serve` therefore lets the
// heap grow further between collections, and sets a soft memory limit so
// that a burst of large documents makes the collector work harder instead
// of growing the process without bound.
const (
	// defaultGCPercent is GOGC for `busbar serve` (Go's default is 100).
	// Measured on S5-S7: 300 costs no more CPU per request than 400 within
	// the noise, and keeps S5 at c=200 (200 items) ~50 MiB further below
	// the 256 MiB target; 800 saves a little more CPU at small bodies but
	// goes past it.
	defaultGCPercent = 300
	// defaultMemoryLimit is the soft limit (GOMEMLIMIT) when no cgroup
	// limit says better. The work slots (--work-slots) keep the live heap of
	// requests small (~30-40 MiB with 200 mapping requests of 58 KB in
	// flight), so the limit rarely binds; it caps the heap's growth at
	// GOGC=300 when something else grows (large lookup tables, a burst of
	// big documents), and is high enough that such a live heap does not
	// make the collector run without pause.
	defaultMemoryLimit = 512 << 20
	// cgroupShare is the part of a container's memory limit the Go heap
	// may use before the collector works harder: the rest is for goroutine
	// stacks, the runtime and the kernel's socket buffers.
	cgroupShare = 0.9
	// bodyBudgetShare is the part of the memory limit that request bodies
	// being received may hold at once (--body-budget): a body is parsed
	// into a tree several times its size, and the heap holds more than
	// bodies, so no sequence of requests can push the process past the
	// limit by sending bodies.
	bodyBudgetShare = 4 // a quarter
)

// defaultWorkSlots is --work-slots: a few requests per core compute at
// once. More gain no throughput (the cores are busy) and hold one parsed
// document each; a few more than the cores keep them busy while a request
// stalls on the allocator or the collector.
func defaultWorkSlots() int { return 2 * runtime.GOMAXPROCS(0) }

// gcPercentFlag is --gc-percent: a number, or "off" (no collection but the
// memory limit's), as GOGC is written.
type gcPercentFlag struct {
	v   int
	set bool
}

func (f *gcPercentFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	if f.v < 0 {
		return "off"
	}
	return strconv.Itoa(f.v)
}

// Type names the value in help: "--gc-percent N|off".
func (*gcPercentFlag) Type() string { return "N|off" }

func (f *gcPercentFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		f.v, f.set = -1, true
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: write a percentage such as 400, or off", s)
	}
	f.v, f.set = n, true
	return nil
}

// sizeFlag is a size with a unit ("256MiB", "1GiB"), or "off"
// (math.MaxInt64).
type sizeFlag struct {
	v   int64
	set bool
}

func (f *sizeFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return formatSizeOrOff(f.v)
}

// Type names the value in help: "--memory-limit SIZE|off".
func (*sizeFlag) Type() string { return "SIZE|off" }

// parse reads s, a size of at least least bytes (why says what goes wrong
// below it) or "off".
func (f *sizeFlag) parse(s string, least int64, why string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		f.v, f.set = math.MaxInt64, true
		return nil
	}
	var b bus.ByteSize
	if err := b.UnmarshalText([]byte(s)); err != nil {
		return err
	}
	if int64(b) < least {
		return fmt.Errorf("%q is below %s: %s", s, formatSize(least), why)
	}
	f.v, f.set = int64(b), true
	return nil
}

// memoryLimitFlag is --memory-limit: a size, or "off" for none.
type memoryLimitFlag struct{ sizeFlag }

func (f *memoryLimitFlag) Set(s string) error {
	return f.parse(s, 16<<20, "Busbar would do nothing but collect garbage")
}

// bodyBudgetFlag is --body-budget: a size, or "off" for none; unset, a
// share of the memory limit (see bytes).
type bodyBudgetFlag struct{ sizeFlag }

func (f *bodyBudgetFlag) Set(s string) error {
	return f.parse(s, 64<<10, "not even one body's first read would fit")
}

// bytes is the budget for connectors.ServerConfig.BodyBudget (0: none),
// given the memory limit in force (math.MaxInt64: none, and then the
// budget is a share of the default limit: bodies stay bounded).
func (f bodyBudgetFlag) bytes(memoryLimit int64) int64 {
	switch {
	case f.set && f.v == math.MaxInt64:
		return 0
	case f.set:
		return f.v
	case memoryLimit <= 0 || memoryLimit == math.MaxInt64:
		return defaultMemoryLimit / bodyBudgetShare
	}
	return memoryLimit / bodyBudgetShare
}

func formatSizeOrOff(n int64) string {
	if n == math.MaxInt64 {
		return "off"
	}
	return formatSize(n)
}

// memoryPolicy is what applyMemoryPolicy decided, for the start-up log.
type memoryPolicy struct {
	GCPercent       int    // -1: off
	GCSource        string // flag, GOGC, default
	MemoryLimit     int64  // math.MaxInt64: none
	LimitSource     string // flag, GOMEMLIMIT, cgroup, default
	CgroupLimit     int64  // 0: no cgroup limit found
	CgroupLimitFile string
}

// decideMemoryPolicy picks GOGC and the memory limit: a flag wins, then the
// operator's environment (GOGC, GOMEMLIMIT — the runtime applied those
// already), then Busbar's defaults, the limit derived from the cgroup's
// memory limit when the process runs under one.
func decideMemoryPolicy(gc gcPercentFlag, limit memoryLimitFlag, getenv func(string) string, cgroupFS fs.FS) memoryPolicy {
	p := memoryPolicy{GCPercent: defaultGCPercent, GCSource: "default",
		MemoryLimit: defaultMemoryLimit, LimitSource: "default"}
	p.CgroupLimit, p.CgroupLimitFile = cgroupMemoryLimit(cgroupFS)
	switch {
	case gc.set:
		p.GCPercent, p.GCSource = gc.v, "flag"
	case getenv("GOGC") != "":
		p.GCPercent, p.GCSource = -2, "GOGC" // -2: leave the runtime's value
	}
	switch {
	case limit.set:
		p.MemoryLimit, p.LimitSource = limit.v, "flag"
	case getenv("GOMEMLIMIT") != "":
		p.MemoryLimit, p.LimitSource = -1, "GOMEMLIMIT" // -1: leave the runtime's value
	case p.CgroupLimit > 0:
		p.MemoryLimit, p.LimitSource = int64(float64(p.CgroupLimit)*cgroupShare), "cgroup"
	}
	return p
}

// apply sets the policy in the runtime and logs it once. It returns the
// memory limit in force (math.MaxInt64: none).
func (p memoryPolicy) apply(log *slog.Logger) int64 {
	if p.GCPercent != -2 {
		debug.SetGCPercent(p.GCPercent)
	}
	if p.MemoryLimit != -1 {
		debug.SetMemoryLimit(p.MemoryLimit)
	}
	// Reading the values back reports what the runtime really uses,
	// whichever source set them.
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	lim := debug.SetMemoryLimit(-1)
	gcText, limText := strconv.Itoa(gc), formatSizeOrOff(lim)
	if gc < 0 {
		gcText = "off"
	}
	attrs := []any{slog.String("gc_percent", gcText), slog.String("gc_percent_from", p.GCSource),
		slog.String("memory_limit", limText), slog.String("memory_limit_from", p.LimitSource)}
	if p.CgroupLimit > 0 {
		attrs = append(attrs, slog.String("cgroup_limit", formatSize(p.CgroupLimit)), slog.String("cgroup_file", p.CgroupLimitFile))
	}
	log.Info("memory policy", attrs...)
	return lim
}

// cgroupMemoryLimit finds the memory limit of the cgroup the process runs
// in (cgroup v2, then v1), in fsys rooted at /. It returns 0 when there is
// none or it cannot be read: Busbar then keeps its fixed default.
//
// Written here rather than taken from a library (automemlimit and the
// cgroup packages it uses): two files are read, and the libraries bring
// dependencies of their own for mount-table parsing Busbar does not need
// inside the usual container layout, where the process's cgroup is
// mounted at /sys/fs/cgroup.
func cgroupMemoryLimit(fsys fs.FS) (int64, string) {
	if fsys == nil {
		return 0, ""
	}
	v2, v1 := cgroupPaths(fsys)
	var candidates []string
	for _, p := range []string{v2, ""} {
		candidates = append(candidates, cleanJoin("sys/fs/cgroup", p, "memory.max"))
	}
	for _, p := range []string{v1, ""} {
		candidates = append(candidates, cleanJoin("sys/fs/cgroup/memory", p, "memory.limit_in_bytes"))
	}
	seen := map[string]bool{}
	for _, name := range candidates {
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		n, err := parseCgroupLimit(string(b))
		if err != nil {
			continue
		}
		if n == 0 { // "no limit" is an answer too: the files further up are not this process's
			return 0, ""
		}
		return n, "/" + name
	}
	return 0, ""
}

// cgroupPaths reads the process's cgroup paths from /proc/self/cgroup:
// the v2 one ("0::/path") and the v1 memory controller's.
func cgroupPaths(fsys fs.FS) (v2, v1 string) {
	b, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return "", ""
	}
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case strings.Contains(","+parts[1]+",", ",memory,"):
			v1 = parts[2]
		}
	}
	return v2, v1
}

func cleanJoin(root, path, file string) string {
	path = strings.Trim(path, "/")
	if path == "" || strings.Contains(path, "..") {
		return root + "/" + file
	}
	return root + "/" + path + "/" + file
}

// parseCgroupLimit reads memory.max ("max" or bytes) or
// memory.limit_in_bytes (bytes; v1 writes "no limit" as a number near 2^63).
func parseCgroupLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	if n <= 0 || n >= 1<<62 {
		return 0, nil
	}
	return n, nil
}

// formatSize writes bytes in the largest binary unit that divides them.
func formatSize(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.unit
		}
	}
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
