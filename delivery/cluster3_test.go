package delivery

import (
	"context"
	"encoding/json"
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
// nodes, each a child process (this test binary, re-executed) with a store,
// an accept endpoint, the status endpoint and a worker. A client alternates
// between the nodes; mid-run the test kills the leader of the message
// stream's NATS server and then node b, both with SIGKILL. Then every
// message that got a 202 must have reached the backend and be reported
// delivered by the surviving node.
//
// BUSBAR_CLUSTER_MESSAGES sets the number of messages (default 300, about
// 30 s; `make cluster` runs 5,000).

const (
	envClusterNode    = "BUSBAR_CLUSTER_NODE" // the child's directory; its name is the base
	envClusterNATS    = "BUSBAR_CLUSTER_NATS"
	envClusterBackend = "BUSBAR_CLUSTER_BACKEND"
	clusterRouteName  = "cluster"
)

// The ack wait is short so that node b's interrupted deliveries come back
// within the test's time; a real route's is its timeout + 30 s.
var clusterRoute = RouteConfig{MaxAttempts: 1000, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	Timeout: 2 * time.Second, AckWait: 3 * time.Second, Concurrency: 4}

// arrival is one call the backend answered 200.
type arrival struct {
	node string
	at   time.Time
}

func TestThreeServerCluster(t *testing.T) {
	if dir := os.Getenv(envClusterNode); dir != "" {
		clusterChild(dir, os.Getenv(envClusterNATS), os.Getenv(envClusterBackend))
		return
	}
	if testing.Short() {
		t.Skip("the cluster test takes ~30 s")
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
		calls[key] = append(calls[key], arrival{r.Header.Get("X-Busbar-Node"), time.Now()})
		mu.Unlock()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(ln)
	t.Cleanup(func() { backend.Close() })

	cluster := natscluster.Start(t, 3)
	t.Logf("cluster ready in %s", time.Since(t0).Round(time.Millisecond))
	nodes := map[string]*clusterNode{}
	for _, name := range []string{"a", "b"} {
		nodes[name] = startClusterNode(t, name, cluster.URL(), "http://"+ln.Addr().String())
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
		id, _ := io.ReadAll(resp.Body)
		return string(id), resp.StatusCode == http.StatusAccepted
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

// StatusPath is routes.StatusPath: the child serves the same URL.
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

// clusterNode is a Busbar node: a child process of the test.
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

func startClusterNode(t *testing.T, name, natsURL, backendURL string) *clusterNode {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestThreeServerCluster$", "-test.v=false")
	cmd.Env = append(os.Environ(), envClusterNode+"="+dir, envClusterNATS+"="+natsURL, envClusterBackend+"="+backendURL)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(n.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "addr"))
		if err == nil && len(b) > 0 {
			n.url = "http://" + string(b)
			return n
		}
		select {
		case <-n.done:
			t.Fatalf("node %s exited before it was ready", name)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not start in 30 s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterChild is a Busbar node: a store on the cluster with 3 replicas,
// the accept and status endpoints, and a worker posting to the test's
// backend with the key and its own name. It runs until it is killed.
func clusterChild(dir, natsURL, backendURL string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "cluster node:", err)
		os.Exit(2)
	}
	node := filepath.Base(dir)
	s, err := Open(context.Background(), Config{NATSURL: natsURL, Replicas: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fail(err)
	}
	_, err = s.StartWorker(context.Background(), clusterRouteName, clusterRoute, forwarder(backendURL, node))
	if err != nil {
		fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /accept", acceptHandler(s, clusterRouteName))
	mux.HandleFunc("GET "+StatusPath+"{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(st)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	serveReady(dir, ln, mux)
}
