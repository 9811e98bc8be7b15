package connectors

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// A facade hands its request's payload to a SOAP connector and answers with
// the connector's reply: the reply's document is released once the caller
// has its reply, and requests running at once, each parsing into arrays
// another one released, still get their own payload back.
func TestDocsReleasedAfterTheReply(t *testing.T) {
	// The backend answers with the envelope it was sent.
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(b)
	}))
	t.Cleanup(be.Close)
	k := buildSOAP(t, be.URL)
	var mu sync.Mutex
	var docs []*transforms.Doc
	keep := func(m *bus.Message) {
		if p, ok := m.XMLSource().(*transforms.DocPayload); ok {
			mu.Lock()
			docs = append(docs, p.Doc)
			mu.Unlock()
		}
	}
	handle := func(ctx context.Context, m *bus.Message) (*bus.Message, error) {
		reply, err := k.Call(ctx, m)
		if err == nil {
			keep(reply)
		}
		return reply, err
	}
	srv := NewServer(ServerConfig{})
	if err := srv.Swap(Endpoints{SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{{Route: "s", Handle: handle}}}}}); err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)

	line := func(g, i int) string { return fmt.Sprintf(`<Line n="%d">%d-%d</Line>`, i, g, i) }
	// Sizes vary, so a document may get a larger one's array.
	lines := func(g, i int) int { return 1 + (g*7+i*13)%40 }
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := fmt.Sprintf(`id="%d-%d"`, g, i)
				env := `<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><Req xmlns="urn:r" ` + id + `>` +
					strings.Repeat(line(g, i), lines(g, i)) + `</Req></soap:Body></soap:Envelope>`
				req, _ := http.NewRequest("POST", "http://"+addr+"/s", strings.NewReader(env))
				req.Header.Set("Content-Type", "text/xml; charset=utf-8")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				// The payload comes back with the envelope's declaration
				// added (it is written out of its envelope): its own
				// attributes and lines are what was sent.
				if resp.StatusCode != 200 || !strings.Contains(string(b), id+">") ||
					strings.Count(string(b), line(g, i)) != lines(g, i) || strings.Count(string(b), "<Line") != lines(g, i) {
					t.Errorf("request %d-%d: %s\n%s", g, i, resp.Status, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(docs) != 100 {
		t.Fatalf("%d replies' documents seen, want 100", len(docs))
	}
	for i, d := range docs {
		if !d.Released() {
			t.Fatalf("document %d was not released after its request", i)
		}
	}
}
