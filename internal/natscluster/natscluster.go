// Package natscluster runs a JetStream cluster of real nats-server
// processes on 127.0.0.1 for tests and benchmarks: the server is built from
// the nats-server/v2 module at the version in go.mod (the Go build cache
// makes every build after the first a link), so the cluster runs the same
// server code as Busbar's embedded one, and a test can kill a server with
// SIGKILL as a machine would lose it.
package natscluster

import (
	"fmt"
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

// Server is one nats-server process of a cluster.
type Server struct {
	Name      string
	ClientURL string
	monitor   string
	cmd       *exec.Cmd
	done      chan struct{}
	mu        sync.Mutex
	killed    bool
}

// Cluster is a running cluster; its processes are killed by t.Cleanup.
type Cluster struct {
	Servers []*Server
}

// URL is the comma-separated client URL of every server, as `--nats-url`
// takes it: a client reconnects to another server when its own dies.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.ClientURL
	}
	return strings.Join(urls, ",")
}

var (
	buildMu  sync.Mutex
	builtBin string
)

// Binary builds nats-server once per test binary run, into the temporary
// directory of the test that first asks; a later test that finds it removed
// builds again (a link, from the build cache).
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBin != "" {
		if _, err := os.Stat(builtBin); err == nil {
			return builtBin
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	// The go command that runs the tests is on PATH (make test, .ci/run).
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("natscluster: build nats-server: %v\n%s", err, out)
	}
	builtBin = bin
	return bin
}

// Start runs n servers (3 for a replicated cluster) with JetStream and
// `sync_interval: always`, each with its store in a temporary directory,
// and waits until JetStream is ready on every one of them.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	ports := make([][3]int, n) // client, cluster, monitoring
	for i := range ports {
		for j := range 3 {
			ports[i][j] = freePort(t)
		}
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p[1]))
	}
	c := &Cluster{}
	for i, p := range ports {
		dir := t.TempDir()
		name := fmt.Sprintf("n%d", i+1)
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 8MB
jetstream { store_dir: %q, sync_interval: always }
cluster { name: busbar-test, listen: 127.0.0.1:%d, routes: [%s] }
`, name, p[0], p[2], filepath.Join(dir, "js"), p[1], strings.Join(routes, ", "))
		if n == 1 {
			conf = conf[:strings.Index(conf, "cluster {")]
		}
		cf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", cf)
		logf, err := os.Create(filepath.Join(dir, "nats.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s := &Server{Name: name, ClientURL: fmt.Sprintf("nats://127.0.0.1:%d", p[0]),
			monitor: fmt.Sprintf("http://127.0.0.1:%d", p[2]), cmd: cmd, done: make(chan struct{})}
		go func() { cmd.Wait(); logf.Close(); close(s.done) }()
		t.Cleanup(s.Kill)
		c.Servers = append(c.Servers, s)
	}
	c.WaitReady(t, 60*time.Second)
	return c
}

// WaitReady waits until every live server reports JetStream healthy
// (/healthz: the meta group has a leader and the server is current).
func (c *Cluster) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for _, s := range c.Servers {
		if s.Killed() {
			continue
		}
		for {
			resp, err := client.Get(s.monitor + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("natscluster: %s not ready after %s (last: %v)", s.Name, within, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Killed reports whether Kill was called.
func (s *Server) Killed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killed
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// may take it before the server binds it; on a test machine that is rare
// enough that a failed start is better reported than retried.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
