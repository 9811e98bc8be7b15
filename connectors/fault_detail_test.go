package connectors

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

// A body that stops arriving is a 408 saying so, with the correlation id;
// the read error, which names both socket addresses, goes to the log line
// of that id, not to the caller.
func TestBodyReadTimeoutKeepsAddressesFromCallers(t *testing.T) {
	var log syncBuffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(&log, nil)))
	srv := NewServer(ServerConfig{ReadTimeout: 200 * time.Millisecond})
	err := srv.Swap(Endpoints{REST: []RESTEndpoint{{Route: "r", Method: "POST", Path: "/x",
		Handle: func(_ context.Context, m *bus.Message) (*bus.Message, error) { return m.Reply(), nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", serveLoopback(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: busbar\r\nContent-Type: application/json\r\nX-Correlation-ID: slow-1\r\nContent-Length: 100\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(conn)
	got := string(reply)
	if !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, `"detail":"the request body did not arrive within 200ms"`) ||
		!strings.Contains(got, `"correlationId":"slow-1"`) || strings.Contains(got, "127.0.0.1") {
		t.Errorf("want a 408 that says the body did not arrive in time, with the correlation id and no address; got\n%s", got)
	}
	if l := log.string(); !strings.Contains(l, `"correlation_id":"slow-1"`) || !strings.Contains(l, "i/o timeout") {
		t.Errorf("the log should hold the read error under the correlation id, got %q", l)
	}
}

// syncBuffer is a log destination the server's goroutines write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) string() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
