package routes

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Fault injection: whole routes against backends that misbehave, asserting
// what the caller sees, how many requests reached the backend and what the
// breaker did.

// writeConfig writes files (name → text) into a fresh configuration directory.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// passThroughRoute is the oa-sap-post-document route of the examples.
const passThroughRoute = `route: oa-sap-post-document
from:
  http: { method: POST, path: /pass/sap/rfc }
to: { connector: sap-ecc-passthrough, path: /bapi }
`

const (
	postAction  = "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"
	clientFault = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault>` +
		`<faultcode>SOAP-ENV:Client</faultcode><faultstring>Malformed envelope</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	okEnvelope = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>` +
		`<BAPI_ACC_DOCUMENT_POSTResponse><OBJ_KEY>4900000001</OBJ_KEY></BAPI_ACC_DOCUMENT_POSTResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

func envelope(payload string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` + payload + `</soapenv:Body></soapenv:Envelope>`
}

// Defect 1 of issue 10: a caller's malformed envelopes, which SAP answers
// with Client faults on HTTP 500, must not open the pass-through's breaker
// and lock every other caller out; Server faults still open it.
func TestCallerFaultsDoNotOpenBreaker(t *testing.T) {
	var calls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		switch {
		case strings.Contains(string(body), "BROKEN"):
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, clientFault)
		case strings.Contains(string(body), "LOCKED"):
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, backendFault) // a Server fault
		default:
			io.WriteString(w, okEnvelope)
		}
	}))
	defer backend.Close()
	t.Setenv("SAP_SOAP_BASE", backend.URL)
	b := start(t, writeConfig(t, map[string]string{
		"sap.yaml": "connector: sap-ecc-passthrough\ntype: http\nurl: ${SAP_SOAP_BASE}\ntimeout: 2s\n" +
			"breaker: { failures: 5, open-for: 1m }\n",
		"route.yaml": passThroughRoute,
	}))

	for i := range 8 {
		r := b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BROKEN"))
		if r.Status != 500 || r.Body != clientFault {
			t.Fatalf("bad call %d: want the backend's Client fault, got %d %s", i+1, r.Status, r.Body)
		}
	}
	r := b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BAPI_ACC_DOCUMENT_POST/>"))
	if r.Status != 200 || r.Body != okEnvelope || calls.Load() != 9 {
		t.Fatalf("a good caller after 8 Client faults: want 200 from the backend (9 calls), got %d %s (%d calls)", r.Status, r.Body, calls.Load())
	}

	for range 5 {
		b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<LOCKED/>"))
	}
	r = b.postSOAP11(t, "/pass/sap/rfc", postAction, envelope("<BAPI_ACC_DOCUMENT_POST/>"))
	if r.Status == 200 || !strings.Contains(r.Body, "Backend circuit open") || calls.Load() != 14 {
		t.Errorf("after 5 Server faults: want the breaker open (14 calls), got %d %s (%d calls)", r.Status, r.Body, calls.Load())
	}
}
