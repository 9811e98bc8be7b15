package connectors

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

// hostileEnvelope is one of testdata/hostile: an envelope a careful SOAP
// stack refuses, and the detail of the Client fault it must get.
type hostileEnvelope struct {
	name    string
	body    []byte
	version bus.SOAPVersion // what its Content-Type says
	detail  string
}

func hostileEnvelopes(t *testing.T) []hostileEnvelope {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no hostile envelopes (%v)", err)
	}
	var out []hostileEnvelope
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(f, ".xml") + ".want")
		if err != nil {
			t.Fatal(err)
		}
		v := bus.SOAP11
		if strings.Contains(string(body), bus.NSSOAP12) {
			v = bus.SOAP12
		}
		out = append(out, hostileEnvelope{strings.TrimSuffix(filepath.Base(f), ".xml"), body, v, strings.TrimSpace(string(want))})
	}
	return out
}

// Each hostile envelope is a Client fault (never VersionMismatch) whose
// detail says what is wrong.
func TestParseEnvelopeHostile(t *testing.T) {
	for _, h := range hostileEnvelopes(t) {
		_, err := ParseEnvelope(h.body, "", h.version)
		f, ok := err.(*bus.Fault)
		switch {
		case !ok:
			t.Errorf("%s: want a fault, got %v", h.name, err)
		case f.Blame != bus.BlameClient || f.Code != "" || f.Status != http.StatusBadRequest || f.Title != "Malformed SOAP envelope":
			t.Errorf("%s: want a 400 Client fault \"Malformed SOAP envelope\", got %d %v %q %q", h.name, f.Status, f.Blame, f.Code, f.Title)
		case !strings.Contains(f.Detail, h.detail):
			t.Errorf("%s: want the detail to hold %q, got %q", h.name, h.detail, f.Detail)
		}
	}
}

// A facade and a raw route that reads the envelope answer each hostile
// envelope with a Client/Sender fault of the caller's version, and the
// route never runs.
func TestHostileEnvelopesRefused(t *testing.T) {
	var ran atomic.Int32
	handle := func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		ran.Add(1)
		r := m.Reply()
		r.SetXMLBytes([]byte(`<ok/>`))
		return r, nil
	}
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{
		SOAP: []*SOAPEndpoint{{Path: "/facade", Operations: []SOAPOperation{{Route: "facade", Handle: handle}}}},
		HTTP: []HTTPEndpoint{{Route: "raw", Method: "POST", Path: "/raw", Handle: handle,
			Match: &Match{Body: func(*bus.Message) (bool, error) { return true, nil }}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	for _, h := range hostileEnvelopes(t) {
		for _, path := range []string{"/facade", "/raw"} {
			wantStatus, wantCode := http.StatusInternalServerError, "soap:Client"
			if h.version == bus.SOAP12 {
				wantStatus, wantCode = http.StatusBadRequest, "soap:Sender"
			}
			r := postSOAP(t, "http://"+addr+path, h.version, "", h.body)
			if r.status != wantStatus || r.code != wantCode || !strings.Contains(r.reason, h.detail) {
				t.Errorf("%s to %s: want %d %s with %q, got %d %s %q\n%s", h.name, path, wantStatus, wantCode, h.detail, r.status, r.code, r.reason, r.body)
			}
		}
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("routes ran %d times for hostile envelopes", n)
	}
}

// soapReply is what a SOAP caller got: the status, and a fault's code and
// reason ("" when the reply is no fault).
type soapReply struct {
	status       int
	code, reason string
	body         []byte
}

// postSOAP sends an envelope as a SOAP caller of version v does, with
// action as its SOAPAction (1.1) or action parameter (1.2).
func postSOAP(t *testing.T, url string, v bus.SOAPVersion, action string, body []byte) soapReply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
	if v == bus.SOAP12 {
		ct := ContentTypeSOAP12 + "; charset=utf-8"
		if action != "" {
			ct += `; action="` + action + `"`
		}
		req.Header.Set("Content-Type", ct)
	} else {
		req.Header.Set("Content-Type", ContentTypeSOAP11+"; charset=utf-8")
		req.Header.Set("SOAPAction", `"`+action+`"`)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code, reason := soapFaultOf(b)
	return soapReply{resp.StatusCode, code, reason, b}
}

// soapFaultOf reads a SOAP fault's code and reason (1.1 or 1.2).
func soapFaultOf(b []byte) (code, reason string) {
	doc := etree.NewDocument()
	if doc.ReadFromBytes(b) != nil {
		return "", ""
	}
	if e := doc.FindElement("//faultcode"); e != nil {
		return e.Text(), doc.FindElement("//faultstring").Text()
	}
	if e := doc.FindElement("//Code/Value"); e != nil {
		if r := doc.FindElement("//Reason/Text"); r != nil {
			reason = r.Text()
		}
		return e.Text(), reason
	}
	return "", ""
}

// A raw route chosen by a soap-header condition, from the bytes or from the
// Header's tree, refuses an envelope with a second Header instead of
// choosing by the first while its backend may read the second.
func TestSOAPHeaderMatchRefusesSecondHeader(t *testing.T) {
	var ran atomic.Int32
	handle := func(_ context.Context, m *bus.Message) (*bus.Message, error) {
		ran.Add(1)
		return m.Reply(), nil
	}
	ns := map[string]string{"h": "urn:h"}
	field := &Match{SOAPHeader: func(*etree.Element, *bus.Message) (bool, error) { return true, nil },
		SOAPHeaderField: ParseHeaderField("/h:Routing/h:Target == 'a'", ns)}
	tree := &Match{SOAPHeader: func(h *etree.Element, _ *bus.Message) (bool, error) { return h.FindElement("Routing") != nil, nil }}
	srv := NewServer(ServerConfig{})
	err := srv.Swap(Endpoints{HTTP: []HTTPEndpoint{
		{Route: "field", Method: "POST", Path: "/field", Handle: handle, Match: field},
		{Route: "tree", Method: "POST", Path: "/tree", Handle: handle, Match: tree},
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)
	const env = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h">`
	routing := `<h:Routing><h:Target>a</h:Target></h:Routing>`
	for _, body := range []string{
		env + `<s:Header>` + routing + `</s:Header><s:Header/><s:Body><x/></s:Body></s:Envelope>`,
		env + `<s:Header>` + routing + "</s:Header>\n<s:Header><h:Routing><h:Target>b</h:Target></h:Routing></s:Header><s:Body><x/></s:Body></s:Envelope>",
	} {
		for _, path := range []string{"/field", "/tree"} {
			r := postSOAP(t, "http://"+addr+path, bus.SOAP11, "urn:a", []byte(body))
			if r.status != http.StatusInternalServerError || r.code != "soap:Client" || !strings.Contains(r.reason, "the envelope has a second <s:Header>") {
				t.Errorf("%s: want a Client fault naming the second Header, got %d %s %q", path, r.status, r.code, r.reason)
			}
		}
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("routes ran %d times", n)
	}
}
