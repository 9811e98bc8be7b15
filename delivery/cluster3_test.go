package delivery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/busbar/busbar/internal/natscluster"
)

// The cluster test: three nats-server processes in a JetStream cluster
// (`sync_interval: always`, everything with 3 replicas) and two Busbar
// nodes, each a `busbar serve --nats-url … --nats-replicas 3` process built
// from ./cmd/busbar, serving one async REST route whose connector posts to
// the test's backend. A client alternates between the nodes; mid-run the
// test kills the leader of the message stream's NATS server and then node
// b, both with SIGKILL. Then every message that got a 202 must have reached
// the backend and be reported delivered by the surviving node.
//
// BUSBAR_CLUSTER_MESSAGES sets the number of messages (default 300, under a
// minute; `make cluster` runs 5,000).

// The nodes tell the backend who they are through a connector header whose
// value comes from each process's environment.
const clusterNodeHeader = "X-Busbar-Node"

// The attempt timeout is short because a killed node's in-flight messages
// come back after the ack wait, which serve sets to timeout + 30 s: the
// test waits that out once. The connector's own retries and breaker are off
// so that the backend's failures reach the message's attempts, which is
// what the test is about.
var clusterConfig = map[string]string{
	"routes/cluster.yaml": `route: cluster
from:
  rest: { method: POST, path: /accept }
delivery:
  mode: async
  idempotency-key: header
  attempts: 1000
  backoff: 20ms
  max-backoff: 200ms
  timeout: 2s
  concurrency: 4
to: { connector: backend }
`,
	"connectors/backend.yaml": `connector: backend
type: http
url: ${CLUSTER_BACKEND}
timeout: 2s
headers:
  ` + clusterNodeHeader + `: ${NODE}
retry: { attempts: 1 }
breaker: { disabled: true }
`,
}

// arrival is one call the backend answered 200.
type arrival struct {
	node string
	at   time.Time
}

func TestThreeServerCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster test takes ~50 s")
	}
	n := 300
	if v := os.Getenv("BUSBAR_CLUSTER_MESSAGES"); v != "" {
		fmt.Sscan(v, &n)
	}
	t0 := time.Now()

	// The backend fails one call in ten and deduplicates on the key: a
	// repeated key is answered 200 and not posted again.
	var mu sync.Mutex
	calls := map[string][]arrival{}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(10) == 0 {
			http.Error(w, "SAP is busy", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		key := r.Header.Get("Idempotency-Key")
		calls[key] = append(calls[key], arrival{r.Header.Get(clusterNodeHeader), time.Now()})
		mu.Unlock()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Close() })

	bin := busbarBinary(t)
	t.Logf("busbar built in %s", time.Since(t0).Round(time.Millisecond))
	cluster := natscluster.Start(t, 3)
	t.Logf("cluster ready in %s", time.Since(t0).Round(time.Millisecond))
	config := t.TempDir()
	for name, text := range clusterConfig {
		path := filepath.Join(config, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]*clusterNode{}
	for _, name := range []string{"a", "b"} {
		nodes[name] = startClusterNode(t, bin, name, config, cluster.URL(), "http://"+ln.Addr().String())
	}
	t.Logf("nodes ready in %s", time.Since(t0).Round(time.Millisecond))

	// The client: message i goes to node a or b by turn; a node that does
	// not answer gets the same key sent to the other one.
	var amu sync.Mutex
	acked := map[string]string{} // key → message id, for every 202
	client := &http.Client{Timeout: 5 * time.Second}
	submit := func(node *clusterNode, key string) (string, bool) {
		if node.dead.Load() {
			return "", false
		}
		req, _ := http.NewRequest("POST", node.url+"/accept", strings.NewReader(`{"voucher":"`+key+`"}`))
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		var accepted struct {
			MessageID string `json:"messageId"`
		}
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&accepted) != nil || accepted.MessageID == "" {
			return "", false
		}
		return accepted.MessageID, true
	}
	var next atomic.Int64
	var killNATS, killNode sync.Once
	var bKilled atomic.Int64 // unix nanos
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				switch i {
				case n / 3:
					killNATS.Do(func() { killStreamLeader(t, cluster) })
				case n / 2:
					killNode.Do(func() {
						nodes["b"].kill()
						bKilled.Store(time.Now().UnixNano())
						t.Logf("killed node b after %d submissions", i)
					})
				}
				key := fmt.Sprintf("v-%d", i)
				first, second := nodes["a"], nodes["b"]
				if i%2 == 1 {
					first, second = second, first
				}
				id, ok := submit(first, key)
				if !ok {
					id, ok = submit(second, key)
				}
				if ok {
					amu.Lock()
					acked[key] = id
					amu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d submissions acknowledged in %s", len(acked), n, time.Since(t0).Round(time.Millisecond))
	if len(acked) < n*3/4 {
		t.Fatalf("only %d of %d submissions acknowledged: the cluster did not keep accepting", len(acked), n)
	}

	// Everything acknowledged reaches the backend.
	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		mu.Lock()
		for key := range acked {
			if len(calls[key]) == 0 {
				missing = append(missing, key)
			}
		}
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages never reached the backend, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	t.Logf("all delivered %s after the start", time.Since(t0).Round(time.Millisecond))

	// Each message by one node: a second call with a key is at-least-once
	// at work (the backend kept one post); one whose first call came from
	// node b before it died is the expected kind, others are reported.
	mu.Lock()
	byNode := map[string]int{}
	var dupFromB, dupOther []string
	for key, cs := range calls {
		byNode[cs[0].node]++
		if len(cs) > 1 {
			if cs[0].node == "b" && cs[0].at.UnixNano() <= bKilled.Load() {
				dupFromB = append(dupFromB, key)
			} else {
				var at []string
				for _, c := range cs {
					at = append(at, fmt.Sprintf("%s at %s", c.node, c.at.Sub(t0).Round(time.Millisecond)))
				}
				dupOther = append(dupOther, key+": "+strings.Join(at, ", "))
			}
		}
	}
	mu.Unlock()
	t.Logf("posted once each (the backend deduplicated on the key): node a %d, node b %d; called twice: %d after node b died mid-call, %d otherwise %v",
		byNode["a"], byNode["b"], len(dupFromB), len(dupOther), dupOther[:min(5, len(dupOther))])
	if byNode["a"] == 0 || byNode["b"] == 0 {
		t.Fatalf("one node did all the work: %v", byNode)
	}
	if len(dupFromB)+len(dupOther) > max(10, len(acked)/50) {
		t.Fatalf("%d messages called more than once out of %d: more than a node's in-flight work at each kill", len(dupFromB)+len(dupOther), len(acked))
	}

	// The surviving node answers for every message, node b's included.
	for key, id := range acked {
		resp, err := client.Get(nodes["a"].url + StatusPath + id)
		if err != nil {
			t.Fatal(err)
		}
		var st Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.State != Delivered {
			t.Fatalf("message %s (key %s) on node a: want delivered, got %s %+v, %v", id, key, resp.Status, st, err)
		}
	}
	t.Logf("node a reports all %d delivered; %s in all", len(acked), time.Since(t0).Round(time.Millisecond))
}

// StatusPath is routes.StatusPath, where serve answers for a message; the
// delivery package cannot import routes.
const StatusPath = "/busbar/messages/"

// killStreamLeader kills the NATS server leading the message stream: the
// replicas must elect another and lose no acknowledged write.
func killStreamLeader(t *testing.T, c *natscluster.Cluster) {
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Error(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leader := ""
	if s, err := js.Stream(ctx, MessageStream); err == nil && s.CachedInfo().Cluster != nil {
		leader = s.CachedInfo().Cluster.Leader
	}
	victim := c.Servers[0]
	for _, s := range c.Servers {
		if s.Name == leader {
			victim = s
		}
	}
	victim.Kill()
	t.Logf("killed NATS server %s (stream leader %q)", victim.Name, leader)
}

var (
	busbarMu  sync.Mutex
	busbarBin string
)

// busbarBinary builds ./cmd/busbar once per test binary run, as natscluster
// builds nats-server: the nodes are the program operators run, flags and
// configuration loading included.
func busbarBinary(t *testing.T) string {
	t.Helper()
	busbarMu.Lock()
	defer busbarMu.Unlock()
	if busbarBin != "" {
		if _, err := os.Stat(busbarBin); err == nil {
			return busbarBin
		}
	}
	bin := filepath.Join(t.TempDir(), "busbar")
	// The go command that runs the tests is on PATH (make test, .ci/run).
	out, err := exec.Command("go", "build", "-o", bin, "github.com/busbar/busbar/cmd/busbar").CombinedOutput()
	if err != nil {
		t.Fatalf("build busbar: %v\n%s", err, out)
	}
	busbarBin = bin
	return bin
}

// clusterNode is a Busbar node: a `busbar serve` process.
type clusterNode struct {
	url  string
	cmd  *exec.Cmd
	dead atomic.Bool
	done chan struct{}
}

func (n *clusterNode) kill() {
	n.dead.Store(true)
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func startClusterNode(t *testing.T, bin, name, config, natsURL, backendURL string) *clusterNode {
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--config", config, "--listen", "127.0.0.1:0",
		"--nats-url", natsURL, "--nats-replicas", "3", "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "NODE="+name, "CLUSTER_BACKEND="+backendURL)
	logf, err := os.Create(filepath.Join(dir, "busbar.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{cmd: cmd, done: make(chan struct{})}
	// serve prints the address it listens on, the port chosen by the
	// kernel; the rest of stdout is drained so that the node never blocks
	// on a full pipe.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "busbar listening on "); ok {
				select {
				case addr <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	t.Cleanup(n.kill)
	log := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	select {
	case n.url = <-addr:
		return n
	case <-n.done:
		t.Fatalf("node %s exited before it was ready: %s\n%s", name, cmd.ProcessState, log())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not start in 30 s\n%s", name, log())
	}
	return nil
}
