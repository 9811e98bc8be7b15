package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test: a child process (this test binary, re-executed) runs a
// store, an accept endpoint and a worker on 127.0.0.1; the test submits
// messages while it kills the child with SIGKILL at random moments and
// restarts it, and a backend here fails a share of the calls. Then every
// message that got a 202 must have reached the backend and be recorded
// delivered. BUSBAR_CRASH_KILLS sets the number of kills (default 20),
// BUSBAR_CRASH_MESSAGES how many messages must have been acknowledged
// before the submitting stops (default: whatever the kills' time allows;
// `make crash` asks for 10,000 with 50 kills).

const (
	envCrashDir     = "BUSBAR_CRASH_CHILD_DIR"
	envCrashBackend = "BUSBAR_CRASH_BACKEND"
)

var crashRoute = RouteConfig{MaxAttempts: 1000, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	Timeout: time.Second, AckWait: 2 * time.Second, Concurrency: 8}

func TestCrash(t *testing.T) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		crashChild(dir, os.Getenv(envCrashBackend))
		return
	}
	if testing.Short() {
		t.Skip("the crash test takes ~30 s")
	}
	kills := 20
	if v := os.Getenv("BUSBAR_CRASH_KILLS"); v != "" {
		fmt.Sscan(v, &kills)
	}
	messages := 0
	if v := os.Getenv("BUSBAR_CRASH_MESSAGES"); v != "" {
		fmt.Sscan(v, &messages)
	}
	dir := t.TempDir()

	// The backend: fails one call in five, deduplicates on the key.
	var mu sync.Mutex
	seen := map[string]int{} // idempotency key → successful deliveries
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(5) == 0 {
			http.Error(w, "SAP is busy", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	defer backend.Close()
	backendURL := "http://" + ln.Addr().String()

	var child *exec.Cmd
	var addr string
	start := func() {
		os.Remove(filepath.Join(dir, "addr"))
		child = exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.v=false")
		child.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashBackend+"="+backendURL)
		child.Stderr = os.Stderr
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dir, "addr"))
			if err == nil && len(b) > 0 {
				addr = string(b)
				return
			}
			if time.Now().After(deadline) {
				child.Process.Kill()
				t.Fatal("the child did not start in 20 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var amu sync.Mutex
	acked := map[string]string{} // key → message id, for every 202
	current := func() string { amu.Lock(); defer amu.Unlock(); return addr }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("m-%d-%d", g, n)
				req, _ := http.NewRequest("POST", "http://"+current()+"/accept", strings.NewReader(`{"voucher":"`+key+`"}`))
				req.Header.Set("Idempotency-Key", key)
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the child is down: this one got no 202
					continue
				}
				id, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					amu.Lock()
					acked[key] = string(id)
					amu.Unlock()
				}
			}
		}()
	}
	amu.Lock()
	start()
	amu.Unlock()
	for range kills {
		time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
		amu.Lock()
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		start()
		amu.Unlock()
	}
	// The kills may end before enough messages were acknowledged: the
	// submitting goes on, without kills, up to the count asked for.
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		amu.Lock()
		n := len(acked)
		amu.Unlock()
		if n >= messages || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Everything acknowledged reaches the backend.
	deadline := time.Now().Add(40 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		mu.Lock()
		for key := range acked {
			if seen[key] == 0 {
				missing = append(missing, key)
			}
		}
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages never reached the backend, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	twice := 0
	mu.Lock()
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d messages acknowledged: the test did not test much", len(acked))
	}

	// And the store says so.
	s := openTest(t, dir)
	for key, id := range acked {
		st, err := s.Get(context.Background(), id)
		if err != nil || st.State != Delivered {
			t.Fatalf("message %s (key %s): want delivered, got %+v, %v", id, key, st, err)
		}
	}
	t.Logf("%d kills, %d messages acknowledged, all delivered; %d delivered more than once (the backend deduplicated them on the key)",
		kills, len(acked), twice)
}

// crashChild is the child process: a store, the accept endpoint and a
// worker posting to the test's backend with the idempotency key. It runs
// until it is killed.
func crashChild(dir, backendURL string) {
	s, err := Open(context.Background(), Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	_, err = s.StartWorker(context.Background(), "crash", crashRoute, forwarder(backendURL, ""))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	serveReady(dir, ln, acceptHandler(s, "crash"))
}
