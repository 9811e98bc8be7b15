package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The crash and cluster tests run nodes as child processes: each accepts
// over HTTP, delivers to the test's backend with the key (and, when node is
// set, its own name) in headers, and says where it listens by a file.

// forwarder delivers a message by POSTing its body to backendURL.
func forwarder(backendURL, node string) Deliverer {
	client := &http.Client{Timeout: time.Second}
	return DelivererFunc(func(ctx context.Context, env *Envelope) ([]byte, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", backendURL, bytes.NewReader(env.Body))
		req.Header.Set("Idempotency-Key", env.IdempotencyKey)
		if node != "" {
			req.Header.Set("X-Busbar-Node", node)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, "", errors.New(resp.Status)
		}
		return nil, "", nil
	})
}

// acceptHandler stores a request on route and answers 202 with its id.
func acceptHandler(s *Store, route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := s.Accept(r.Context(), route, &Submission{Body: body, IdempotencyKey: r.Header.Get("Idempotency-Key")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, id)
	}
}

// serveReady serves h on ln until the process is killed. The address file
// in dir appears (by rename) only once the node is ready.
func serveReady(dir string, ln net.Listener, h http.Handler) {
	tmp := filepath.Join(dir, "addr.tmp")
	os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600)
	os.Rename(tmp, filepath.Join(dir, "addr"))
	http.Serve(ln, h)
	os.Exit(0)
}
