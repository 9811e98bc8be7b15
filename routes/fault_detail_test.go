package routes

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/busbar/busbar/connectors"
)

// lockedBuffer is a log destination the server's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// logLine returns the log entry that carries the correlation id.
func (l *lockedBuffer) logLine(t *testing.T, correlationID string) map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["correlation_id"] == correlationID {
			return entry
		}
	}
	t.Fatalf("no log line with correlation_id %q in:\n%s", correlationID, l.b.String())
	return nil
}

// Callers get what is wrong in their request and the correlation id; the
// mapping file, its expression, the backend's address go to the log line of
// that correlation id only (issue 10, defect 10).
func TestFaultDetailsStayInTheLog(t *testing.T) {
	t.Setenv("SAP_URL", "http://127.0.0.1:1/sap/bapi") // nothing listens there
	var log lockedBuffer
	b := startWith(t, examples, connectors.ServerConfig{Logger: slog.New(slog.NewJSONHandler(&log, nil))})

	for _, c := range []struct {
		name, body     string
		status         int
		public         string   // in the caller's detail
		secret, logged []string // never in the reply; in the log line
	}{
		{"mapping", `{"companyCode":"1000","date":"20.11.2026","currency":"CNY","voucherNo":"EXP-4","lines":[]}`, 422,
			`"20.11.2026" does not match the date layout "2006-01-02" (input $.date)`,
			[]string{"voucher-to-bapi.yaml", "DOC_DATE", "date($.date"}, []string{"maps/voucher-to-bapi.yaml:", "DOC_DATE"}},
		{"unreachable", balancedVoucher, 502,
			`connector "sap-ecc": the backend could not be reached; nothing was sent`,
			[]string{"127.0.0.1:1", "dial tcp", "/sap/bapi"}, []string{"127.0.0.1:1", "connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "corr-" + c.name
			r := b.do(t, "POST", "/api/v1/vouchers", map[string]string{"Content-Type": "application/json", "X-Correlation-ID": id}, c.body)
			r.expect(t, c.status, "application/problem+json")
			var doc map[string]any
			if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
				t.Fatal(err)
			}
			if doc["correlationId"] != id || !strings.HasPrefix(doc["detail"].(string), c.public) {
				t.Errorf("want correlationId %q and a detail starting %q, got %s", id, c.public, r.Body)
			}
			for _, s := range c.secret {
				if strings.Contains(r.Body, s) {
					t.Errorf("the reply leaks %q: %s", s, r.Body)
				}
			}
			entry := log.logLine(t, id)
			for _, s := range c.logged {
				if !strings.Contains(entry["error"].(string), s) {
					t.Errorf("the log line should hold %q: %v", s, entry)
				}
			}
		})
	}
}
