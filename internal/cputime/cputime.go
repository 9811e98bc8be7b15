// Package cputime gives benchmarks the process's CPU time per operation.
// On a machine shared with other work, wall time per op swings with the
// load; CPU time (user and system, all threads: GC and an in-process
// backend included) tells more steadily what an operation costs.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is the process's user and system CPU time so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report adds the CPU time per iteration since start to b's results, in
// unit (time.Microsecond gives "cpu-µs/op", time.Nanosecond "cpu-ns/op").
func Report(b *testing.B, start, unit time.Duration) {
	if b.N == 0 {
		return
	}
	name := "cpu-ns/op"
	if unit == time.Microsecond {
		name = "cpu-µs/op"
	}
	b.ReportMetric(float64(Process()-start)/float64(unit)/float64(b.N), name)
}
