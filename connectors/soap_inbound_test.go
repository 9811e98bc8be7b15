package connectors

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
)

// A facade's operations keep their own max-body: the body is read under
// the largest of them, and checked again against its operation's once the
// envelope says which operation it is.
func TestSOAPOperationMaxBody(t *testing.T) {
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{SOAP: []*SOAPEndpoint{{Path: "/s", Operations: []SOAPOperation{
		{Route: "small", Element: "Small", Limits: Limits{MaxBody: 1 << 10}, Handle: echoHandle},
		{Route: "big", Element: "Big", Limits: Limits{MaxBody: 64 << 10}, Handle: echoHandle},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	envelope := func(op string, size int) string {
		return `<soap:Envelope xmlns:soap="` + bus.NSSOAP11 + `"><soap:Body><` + op + ` xmlns="urn:t"><A>` +
			strings.Repeat("x", size) + `</A></` + op + `></soap:Body></soap:Envelope>`
	}
	for i, c := range []struct {
		op   string
		size int
		want string // in the answer
	}{
		{"Small", 100, "<A>"},
		{"Small", 2 << 10, "<bb:status>413</bb:status><bb:route>small</bb:route>"},
		{"Big", 2 << 10, "<A>"},
		{"Big", 100 << 10, "<bb:status>413</bb:status>"},
	} {
		resp, err := http.Post("http://"+addr+"/s", "text/xml; charset=utf-8", strings.NewReader(envelope(c.op, c.size)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantStatus := 200
		if strings.Contains(c.want, "413") {
			wantStatus = 500 // SOAP 1.1 sends every fault with 500
			if !strings.Contains(string(body), "<faultcode>soap:Client</faultcode>") {
				t.Errorf("case %d: want a Client fault, got %s", i, body)
			}
		}
		if resp.StatusCode != wantStatus || !strings.Contains(string(body), c.want) {
			t.Errorf("case %d: %s of %d bytes: want %d with %q, got %d %.300s", i, c.op, c.size, wantStatus, c.want, resp.StatusCode, body)
		}
	}
}
