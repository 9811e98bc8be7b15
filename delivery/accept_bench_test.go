package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAccept measures durable accepts: each Accept returns after the
// embedded server (SyncAlways) acknowledged the message, so every one is
// fsynced. It reports accepts/s and the CPU time (user + system, of the
// whole process: Busbar's side and the embedded server's) per accept.
// A realistic 1 KiB body; the data directory is on the test's temp dir, so
// run it with TMPDIR on the disk the store will use.
//
//	go test ./delivery/ -run '^$' -bench Accept -benchtime 3000x
func BenchmarkAccept(b *testing.B) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	if n, err := strconv.Atoi(os.Getenv("BUSBAR_BENCH_COMMITTERS")); err == nil {
		committers = n
	}
	if n, err := strconv.Atoi(os.Getenv("BUSBAR_BENCH_KEY_COMMITTERS")); err == nil {
		keyCommitters = n
	}
	for _, c := range []struct {
		name     string
		conc     int
		maxBatch int
		keyed    bool
	}{
		{"c=1", 1, 0, false},
		{"c=50", 50, 0, false},
		{"c=50/ungrouped", 50, 1, false},
		{"c=1/key", 1, 0, true},
		{"c=50/key", 50, 0, true},
		{"c=50/key/ungrouped-keys", 50, -1, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			maxBatch := c.maxBatch
			if maxBatch < 0 { // only the keys ungrouped
				keyMaxBatch, maxBatch = 1, 0
				defer func() { keyMaxBatch = 0 }()
			}
			s, err := Open(context.Background(), Config{DataDir: b.TempDir(), MaxBatch: maxBatch,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var next atomic.Int64
			var wg sync.WaitGroup
			ctx := context.Background()
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now()
			for w := range c.conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						sub := &Submission{Body: body, ContentType: "application/json", BusinessKey: "1000/2026/V"}
						if c.keyed {
							sub.IdempotencyKey = fmt.Sprintf("k-%d-%d", w, i)
						}
						if _, err := s.Accept(ctx, "bench", sub); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
			b.ReportMetric(float64(s.msgBatch.committed.Load())/float64(s.msgBatch.commits.Load()), "accepts/write")
			if c.keyed {
				b.ReportMetric(float64(s.keyBatch.committed.Load())/float64(s.keyBatch.commits.Load()), "keys/write")
				b.ReportMetric(float64(s.keyBatch.failed.Load()+s.msgBatch.failed.Load()), "failed-batches")
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "CPU-µs/accept")
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
