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
		{Route: "small", Element: "Small", Namespace: "urn:t", Limits: Limits{MaxBody: 1 << 10}, Handle: echoHandle},
		{Route: "big", Element: "Big", Namespace: "urn:t", Limits: Limits{MaxBody: 64 << 10}, Handle: echoHandle},
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

// A facade dispatches on the body element's namespace and local name; a
// SOAPAction that names an operation must name the element's.
func TestSOAPDispatch(t *testing.T) {
	const ns = "urn:busbar:demo:expense"
	expense := &SOAPEndpoint{Path: "/soap/expense", Operations: []SOAPOperation{
		{Route: "submit", Name: "SubmitExpense", Action: ns + ":SubmitExpense", Element: "SubmitExpense", Namespace: ns},
		{Route: "status", Name: "GetExpenseStatus", Action: ns + ":GetExpenseStatus", Element: "GetExpenseStatus", Namespace: ns},
		{Route: "ping", Element: "Ping"}, // no action, no namespace
	}}
	wildcard := &SOAPEndpoint{Path: "/soap/any", Operations: []SOAPOperation{{Route: "any"}}}
	cases := []struct {
		name              string
		ep                *SOAPEndpoint
		action, ns, local string
		route             string // "" for a fault
		title, detail     string
	}{
		{"action and element", expense, ns + ":SubmitExpense", ns, "SubmitExpense", "submit", "", ""},
		{"element alone", expense, "", ns, "GetExpenseStatus", "status", "", ""},
		{"unknown action where operations declare theirs", expense, "urn:other", ns, "GetExpenseStatus", "", "SOAPAction does not match the body",
			`SOAPAction "urn:other" names no operation of /soap/expense; the body holds <GetExpenseStatus xmlns="urn:busbar:demo:expense">, the element of operation GetExpenseStatus`},
		{"any action for an operation that declares none", expense, "urn:other", "", "Ping", "ping", "", ""},
		{"element without namespace", expense, "", "", "Ping", "ping", "", ""},
		{"foreign namespace", expense, "", "urn:evil", "SubmitExpense", "", "Unknown operation",
			`no operation of /soap/expense accepts <SubmitExpense xmlns="urn:evil"> (SOAPAction "")`},
		{"no namespace where one is expected", expense, "", "", "SubmitExpense", "", "Unknown operation",
			`accepts <SubmitExpense> (SOAPAction "")`},
		{"namespace where none is expected", expense, "", ns, "Ping", "", "Unknown operation",
			`accepts <Ping xmlns="urn:busbar:demo:expense">`},
		{"action of another operation", expense, ns + ":SubmitExpense", ns, "GetExpenseStatus", "", "SOAPAction does not match the body",
			`SOAPAction "urn:busbar:demo:expense:SubmitExpense" is operation SubmitExpense, whose body element is <SubmitExpense xmlns="urn:busbar:demo:expense">; ` +
				`the body holds <GetExpenseStatus xmlns="urn:busbar:demo:expense">, the element of operation GetExpenseStatus`},
		{"action with a foreign element", expense, ns + ":GetExpenseStatus", "urn:evil", "GetExpenseStatus", "", "SOAPAction does not match the body",
			`is operation GetExpenseStatus, whose body element is <GetExpenseStatus xmlns="urn:busbar:demo:expense">; the body holds <GetExpenseStatus xmlns="urn:evil">`},
		{"action of an operation without element", expense, ns + ":SubmitExpense", "", "Ping", "", "SOAPAction does not match the body",
			"the body holds <Ping>, the element of operation <Ping>"},
		{"the one operation takes any element", wildcard, "urn:whatever", "urn:x", "Anything", "any", "", ""},
	}
	for _, c := range cases {
		op, f := c.ep.dispatch(c.action, c.ns, c.local)
		switch {
		case c.route != "" && (f != nil || op == nil || op.Route != c.route):
			t.Errorf("%s: want route %q, got %+v, %v", c.name, c.route, op, f)
		case c.route == "" && (f == nil || op != nil):
			t.Errorf("%s: want a fault, got %+v, %v", c.name, op, f)
		case c.route == "" && (f.Status != 400 || f.Title != c.title || !strings.Contains(f.Detail, c.detail)):
			t.Errorf("%s: want 400 %q with %q, got %d %q: %q", c.name, c.title, c.detail, f.Status, f.Title, f.Detail)
		}
	}
}
