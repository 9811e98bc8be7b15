package delivery

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAcceptToDelivery measures the time from an accept's return (the
// 202) to the backend's call, with a backend that answers at once: the
// worker's own cost (two status writes per message, each fsynced) and
// queueing. c=1 submits one at a time; c=50 from 50 goroutines, so the
// queue grows when accepts outpace delivery; c=1/200-per-s paces the
// accepts so that nothing queues. Reports the median and p99 and
// deliveries/s.
func BenchmarkAcceptToDelivery(b *testing.B) {
	if n, err := strconv.Atoi(os.Getenv("BUSBAR_BENCH_STATUS_COMMITTERS")); err == nil {
		statusCommitters = n
	}
	for _, c := range []struct {
		name        string
		conc        int
		concurrency int
		pace        time.Duration // between one goroutine's accepts
	}{
		{"c=1/200-per-s", 1, 4, 5 * time.Millisecond}, // no queue: the worker's own latency
		{"c=1", 1, 4, 0},
		{"c=50", 50, 4, 0},
		{"c=50/workers=16", 50, 16, 0},
		{"c=50/workers=16/ungrouped-status", 50, -16, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.concurrency < 0 {
				c.concurrency, statusMaxBatch = -c.concurrency, 1
				defer func() { statusMaxBatch = 0 }()
			}
			s, err := Open(context.Background(), Config{DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			var accepted sync.Map // id → time Accept returned
			done := make(chan struct{})
			var n atomic.Int64
			cfg := RouteConfig{Concurrency: c.concurrency, Timeout: 10 * time.Second}
			if _, err := s.StartWorker(context.Background(), "bench", cfg, DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
				at := time.Now()
				for {
					if v, ok := accepted.Load(env.ID); ok {
						mu.Lock()
						lat = append(lat, at.Sub(v.(time.Time)))
						mu.Unlock()
						break
					}
					time.Sleep(50 * time.Microsecond) // delivered before Accept returned to its caller
				}
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return nil, "", nil
			})); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 1024)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range c.conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						id, err := s.Accept(context.Background(), "bench", &Submission{Body: body})
						if err != nil {
							b.Error(err)
							return
						}
						accepted.Store(id, time.Now())
						time.Sleep(c.pace)
					}
				}()
			}
			wg.Wait()
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("delivered %d of %d", n.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
		})
	}
}
